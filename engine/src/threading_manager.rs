//! ThreadingManager: two QoS lanes on crossbeam-channel.
//!
//! Each lane has its own worker threads, its own bounded queue of new work,
//! an unbounded queue of continuations (the next stage of a frame already in
//! flight, never dropped, served first) and its own data-parallel pool for the
//! pixel loops. Background threads run at `SCHED_IDLE` (else nice 19), so the
//! realtime lane never waits behind them, not even for a core.
//!
//! * realtime: `submit` never blocks. A full queue drops its oldest pending
//!   envelope, which completes as `dropped`.
//! * background: `submit` blocks while the queue is full (backpressure);
//!   `try_submit` hands the envelope back instead.
//!
//! Every envelope yields exactly one [`CompletionEvent`] on the completion
//! channel, including the ones dropped or cancelled at shutdown.

use crate::clock::now_ns;
use crate::envelope::{CompletionEvent, Envelope};
use crate::types::{Lane, Outcome};
use crate::worker_holds::WorkerHolds;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select, unbounded};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::envelope::CompletionSink;

#[derive(Clone, Copy, Debug)]
pub struct LaneConfig {
    /// Threads taking envelopes off the queue.
    pub workers: usize,
    /// Bound on pending new work.
    pub queue: usize,
    /// Threads in the lane's pool for data-parallel pixel loops.
    pub data_threads: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct ThreadingConfig {
    pub realtime: LaneConfig,
    pub background: LaneConfig,
}

impl Default for ThreadingConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        ThreadingConfig {
            realtime: LaneConfig {
                workers: 2,
                queue: 4,
                data_threads: cores,
            },
            background: LaneConfig {
                workers: 1,
                queue: 4,
                data_threads: cores,
            },
        }
    }
}

/// Counters of one worker thread.
#[derive(Debug, Default)]
struct WorkerCounters {
    busy_ns: AtomicU64,
    jobs: AtomicU64,
}

/// What the UI samples about a lane.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LaneStats {
    pub lane: &'static str,
    /// Cumulative busy time per worker.
    pub busy_ns: Vec<u64>,
    pub jobs: Vec<u64>,
    pub queue_depth: usize,
    pub continuation_depth: usize,
    pub submitted: u64,
    pub dropped: u64,
    pub sampled_ns: u64,
}

/// Busy fraction per worker between two samples of the same lane.
pub fn utilization(prev: &LaneStats, now: &LaneStats) -> Vec<f64> {
    let dt = now.sampled_ns.saturating_sub(prev.sampled_ns).max(1) as f64;
    now.busy_ns
        .iter()
        .zip(prev.busy_ns.iter())
        .map(|(a, b)| (a.saturating_sub(*b) as f64 / dt).clamp(0.0, 1.0))
        .collect()
}

struct LaneShared {
    lane: Lane,
    tx: Sender<Envelope>,
    rx: Receiver<Envelope>,
    cont_tx: Sender<Envelope>,
    workers: Vec<Arc<WorkerCounters>>,
    submitted: AtomicU64,
    dropped: AtomicU64,
    completions: CompletionSink,
}

struct LaneHandle {
    shared: Arc<LaneShared>,
    /// The lane's data-parallel pool (background: idle class, yielding).
    pool: Arc<rayon::ThreadPool>,
}

/// The two lanes.
pub struct ThreadingManager {
    realtime: LaneHandle,
    background: LaneHandle,
    /// `true` once shut down; submitters hold the read side while they send, so
    /// nothing slips into a queue after the workers drained it.
    gate: RwLock<bool>,
    stop: Mutex<Option<Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    // Read through `holds()`, which only tests (feature `test-support`) have.
    #[cfg_attr(not(any(test, feature = "test-support")), allow(dead_code))]
    holds: Arc<WorkerHolds>,
}

impl std::fmt::Debug for ThreadingManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadingManager")
    }
}

/// Why a submission did not enter a lane.
#[derive(Debug)]
pub enum SubmitError {
    /// The background queue is full (from `try_submit`): the envelope comes back.
    Full(Box<Envelope>),
    /// The manager is shut down; the envelope was completed as cancelled.
    Closed,
}

/// Lets background pixel loops step aside while realtime work runs: the
/// kernel's SCHED_IDLE already gives realtime threads the CPU, this also keeps
/// background loops off the caches, the memory bus and SMT siblings.
#[derive(Debug, Default)]
pub struct QosGate {
    realtime_busy: Mutex<usize>,
    idle: Condvar,
}

impl QosGate {
    fn enter(&self) {
        *self.realtime_busy.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }
    fn exit(&self) {
        let mut n = self.realtime_busy.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
    }
    /// Wait (at most `max`) until no realtime work runs.
    fn wait_idle(&self, max: Duration) {
        let n = self.realtime_busy.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.idle.wait_timeout_while(n, max, |n| *n > 0);
    }
}

thread_local! {
    static BACKGROUND_GATE: std::cell::RefCell<Option<Arc<QosGate>>> = const { std::cell::RefCell::new(None) };
}

/// Called by long background loops between bands of work: returns at once on
/// realtime threads, and on background threads while no realtime work runs;
/// otherwise waits for the realtime lane to go idle (at most 20 ms, so a busy
/// realtime lane slows the background lane but never starves it).
pub fn yield_to_realtime() {
    BACKGROUND_GATE.with(|g| {
        if let Some(g) = g.borrow().as_ref() {
            g.wait_idle(Duration::from_millis(20));
        }
    });
}

fn set_background_gate(gate: &Arc<QosGate>) {
    BACKGROUND_GATE.with(|g| *g.borrow_mut() = Some(gate.clone()));
}

/// Lower the calling thread to the background QoS class.
fn lower_priority() {
    // SAFETY: sched_setscheduler/setpriority on the calling thread with a valid
    // param struct; failures only leave the priority unchanged.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
    }
}

fn send_completion(sink: &CompletionSink, ev: CompletionEvent) {
    sink.send(ev);
}

impl LaneHandle {
    fn start(
        lane: Lane,
        cfg: LaneConfig,
        completions: CompletionSink,
        stop: &Receiver<()>,
        threads: &mut Vec<JoinHandle<()>>,
        gate: &Arc<QosGate>,
        holds: &Arc<WorkerHolds>,
    ) -> Self {
        let (tx, rx) = bounded::<Envelope>(cfg.queue.max(1));
        let (cont_tx, cont_rx) = unbounded::<Envelope>();
        let workers: Vec<_> = (0..cfg.workers.max(1))
            .map(|_| Arc::new(WorkerCounters::default()))
            .collect();
        let shared = Arc::new(LaneShared {
            lane,
            tx,
            rx: rx.clone(),
            cont_tx,
            workers: workers.clone(),
            submitted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            completions: completions.clone(),
        });
        let background = lane == Lane::Background;
        let pool_gate = gate.clone();
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(cfg.data_threads.max(1))
                .thread_name(move |i| format!("{}-data-{i}", lane.name()))
                .start_handler(move |_| {
                    if background {
                        lower_priority();
                        set_background_gate(&pool_gate);
                    }
                })
                .build()
                .unwrap_or_else(|_| {
                    // A pool of one thread cannot fail for lack of threads twice.
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .build()
                        .expect("a one-thread pool")
                }),
        );
        for (i, counters) in workers.into_iter().enumerate() {
            let rx = rx.clone();
            let cont_rx = cont_rx.clone();
            let sink = completions.clone();
            let pool = pool.clone();
            let stop = stop.clone();
            let gate = gate.clone();
            let holds = holds.clone();
            let h = std::thread::Builder::new()
                .name(format!("{}-worker-{i}", lane.name()))
                .spawn(move || {
                    if background {
                        lower_priority();
                        set_background_gate(&gate);
                    }
                    let gate = (!background).then_some(gate);
                    let io = WorkerIo {
                        rx,
                        cont_rx,
                        stop,
                        sink,
                    };
                    worker_loop(i as u16, io, pool, counters, gate, holds)
                })
                .expect("spawning a lane worker thread");
            threads.push(h);
        }
        LaneHandle { shared, pool }
    }

    fn stats(&self) -> LaneStats {
        let s = &self.shared;
        LaneStats {
            lane: s.lane.name(),
            busy_ns: s
                .workers
                .iter()
                .map(|w| w.busy_ns.load(Ordering::Relaxed))
                .collect(),
            jobs: s
                .workers
                .iter()
                .map(|w| w.jobs.load(Ordering::Relaxed))
                .collect(),
            queue_depth: s.rx.len(),
            continuation_depth: s.cont_tx.len(),
            submitted: s.submitted.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            sampled_ns: now_ns(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// A worker's channels: its lane's queue, continuations, stop, completions.
struct WorkerIo {
    rx: Receiver<Envelope>,
    cont_rx: Receiver<Envelope>,
    stop: Receiver<()>,
    sink: CompletionSink,
}

fn worker_loop(
    id: u16,
    io: WorkerIo,
    pool: Arc<rayon::ThreadPool>,
    counters: Arc<WorkerCounters>,
    realtime_gate: Option<Arc<QosGate>>,
    holds: Arc<WorkerHolds>,
) {
    let WorkerIo {
        rx,
        cont_rx,
        stop,
        sink,
    } = io;
    loop {
        // Continuations first: they finish frames already in flight.
        let env = match cont_rx.try_recv() {
            Ok(e) => e,
            Err(_) => select! {
                recv(cont_rx) -> m => match m { Ok(e) => e, Err(_) => break },
                recv(rx) -> m => match m { Ok(e) => e, Err(_) => break },
                recv(stop) -> _ => break,
            },
        };
        if let Some(g) = &realtime_gate {
            g.enter();
        }
        let start = now_ns();
        let result = pool.install(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                holds.checkpoint(&env);
                (env.worker)(&env)
            }))
        });
        let end = now_ns();
        if let Some(g) = &realtime_gate {
            g.exit();
        }
        counters.busy_ns.fetch_add(end - start, Ordering::Relaxed);
        counters.jobs.fetch_add(1, Ordering::Relaxed);
        let (outcome, output, error) = match result {
            Ok(Ok(out)) => (Outcome::Ok, out, None),
            Ok(Err(e)) => (Outcome::Failed, Default::default(), Some(e.to_string())),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "worker panicked".into());
                (
                    Outcome::Failed,
                    Default::default(),
                    Some(format!("panic: {msg}")),
                )
            }
        };
        send_completion(
            &sink,
            CompletionEvent {
                envelope: env,
                outcome,
                output,
                error,
                worker: Some(id),
                start_ns: start,
                end_ns: end,
            },
        );
    }
    // Shut down: whatever is still queued completes as cancelled.
    while let Ok(env) = cont_rx.try_recv().or_else(|_| rx.try_recv()) {
        send_completion(
            &sink,
            CompletionEvent::unrun(env, Outcome::Cancelled, "lane shut down"),
        );
    }
}

impl ThreadingManager {
    pub fn new(cfg: ThreadingConfig, completions: impl Into<CompletionSink>) -> Self {
        let completions = completions.into();
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let mut threads = Vec::new();
        let qos = Arc::new(QosGate::default());
        let holds = Arc::new(WorkerHolds::default());
        let realtime = LaneHandle::start(
            Lane::Realtime,
            cfg.realtime,
            completions.clone(),
            &stop_rx,
            &mut threads,
            &qos,
            &holds,
        );
        let background = LaneHandle::start(
            Lane::Background,
            cfg.background,
            completions,
            &stop_rx,
            &mut threads,
            &qos,
            &holds,
        );
        ThreadingManager {
            realtime,
            background,
            gate: RwLock::new(false),
            stop: Mutex::new(Some(stop_tx)),
            threads: Mutex::new(threads),
            holds,
        }
    }

    fn handle(&self, lane: Lane) -> &LaneShared {
        match lane {
            Lane::Realtime => &self.realtime.shared,
            Lane::Background => &self.background.shared,
        }
    }

    fn cancel(lane: &LaneShared, env: Envelope) -> SubmitError {
        send_completion(
            &lane.completions,
            CompletionEvent::unrun(env, Outcome::Cancelled, "lane shut down"),
        );
        SubmitError::Closed
    }

    /// Submit new work. Realtime never blocks (drops the oldest pending
    /// envelope when full); background blocks while its queue is full.
    pub fn submit(&self, mut env: Envelope) -> Result<(), SubmitError> {
        let lane = self.handle(env.lane);
        let closed = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if *closed {
            return Err(Self::cancel(lane, env));
        }
        env.enqueue_ns = now_ns();
        lane.submitted.fetch_add(1, Ordering::Relaxed);
        if env.lane == Lane::Background {
            return lane.tx.send(env).map_err(|e| Self::cancel(lane, e.0));
        }
        loop {
            match lane.tx.try_send(env) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    env = back;
                    // Make room: the oldest pending preview frame goes.
                    if let Ok(old) = lane.rx.try_recv() {
                        lane.dropped.fetch_add(1, Ordering::Relaxed);
                        send_completion(
                            &lane.completions,
                            CompletionEvent::unrun(
                                old,
                                Outcome::Dropped,
                                "realtime queue full: oldest pending frame dropped",
                            ),
                        );
                    }
                }
                Err(TrySendError::Disconnected(back)) => return Err(Self::cancel(lane, back)),
            }
        }
    }

    /// Submit without waiting: a full background queue hands the envelope back.
    pub fn try_submit(&self, mut env: Envelope) -> Result<(), SubmitError> {
        if env.lane == Lane::Realtime {
            return self.submit(env);
        }
        let lane = self.handle(env.lane);
        let closed = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if *closed {
            return Err(Self::cancel(lane, env));
        }
        env.enqueue_ns = now_ns();
        match lane.tx.try_send(env) {
            Ok(()) => {
                lane.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(e)) => Err(SubmitError::Full(Box::new(e))),
            Err(TrySendError::Disconnected(e)) => Err(Self::cancel(lane, e)),
        }
    }

    /// Queue the next stage of a frame already in flight: never dropped, never
    /// blocks, served before new work.
    pub fn continue_with(&self, mut env: Envelope) {
        let lane = self.handle(env.lane);
        let closed = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if *closed {
            Self::cancel(lane, env);
            return;
        }
        env.enqueue_ns = now_ns();
        lane.submitted.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = lane.cont_tx.send(env) {
            Self::cancel(lane, e.0);
        }
    }

    /// Run `f` on the background lane's data-parallel pool (idle-class
    /// threads; loops that call `yield_to_realtime` also step aside), waiting
    /// for it: for work a
    /// caller must do in line but that must not compete with the realtime
    /// lane (a capture's frames unpacked as they are read).
    pub fn on_background_pool<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.background.pool.install(f)
    }

    /// Holds on this manager's workers (tests of the runtime's promises).
    #[cfg(any(test, feature = "test-support"))]
    pub fn holds(&self) -> &Arc<WorkerHolds> {
        &self.holds
    }

    pub fn stats(&self, lane: Lane) -> LaneStats {
        match lane {
            Lane::Realtime => self.realtime.stats(),
            Lane::Background => self.background.stats(),
        }
    }

    /// Pending envelopes in a lane (new work and continuations).
    pub fn pending(&self, lane: Lane) -> usize {
        let h = self.handle(lane);
        h.rx.len() + h.cont_tx.len()
    }

    /// Stop both lanes: running envelopes finish, pending ones complete as
    /// `cancelled`, every thread is joined. Later submissions are cancelled.
    pub fn shutdown(&self) {
        {
            let mut closed = self.gate.write().unwrap_or_else(|p| p.into_inner());
            *closed = true;
        }
        drop(self.stop.lock().unwrap_or_else(|p| p.into_inner()).take());
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    pub fn is_shut_down(&self) -> bool {
        *self.gate.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ThreadingManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
