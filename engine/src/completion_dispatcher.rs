//! CompletionDispatcher: ONE thread, the only place buffer lifecycles end.
//!
//! Every completion arrives here. The dispatcher unpins the envelope's
//! buffers, appends its telemetry row and hands the completion to the
//! [`Router`] (the pipeline), which decides the frame's next stage, publishes
//! results to subscribers and says which buffers to release. Subscribers give
//! their pins back by message ([`PinGuard`]), so even their unpins happen on
//! this thread. The Housekeeper's sweeps run here too.

use crate::clock::now_ns;
use crate::envelope::CompletionEvent;
use crate::housekeeper::Housekeeper;
use crate::resource_manager::{BufferId, BufferRef, Lifecycle, ResourceManager, RmError};
use crate::telemetry::{EventKind, TelemetryEvent, TelemetryManager};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The dispatcher's inbox.
pub enum DispatcherMsg {
    Completion(Box<CompletionEvent>),
    /// A subscriber gives back its pin.
    Unpin {
        id: BufferId,
        owner: String,
    },
    /// Run a Housekeeper sweep now.
    Sweep,
    /// Run a closure on the dispatcher thread (lifecycle changes from outside).
    Call(Box<dyn FnOnce(&mut DispatchCtx) + Send>),
    Shutdown,
}

impl std::fmt::Debug for DispatcherMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DispatcherMsg::Completion(c) => write!(f, "Completion({:?})", c.envelope.stage),
            DispatcherMsg::Unpin { id, owner } => write!(f, "Unpin({id}, {owner})"),
            DispatcherMsg::Sweep => f.write_str("Sweep"),
            DispatcherMsg::Call(_) => f.write_str("Call"),
            DispatcherMsg::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// What the router may touch while handling a completion.
pub struct DispatchCtx {
    pub rm: Arc<ResourceManager>,
    /// The pool's one right to end lifecycles: only this thread has it.
    lifecycle: Lifecycle,
    pub telemetry: Arc<TelemetryManager>,
    inbox: Sender<DispatcherMsg>,
    release_after_unpin: HashSet<BufferId>,
    pub housekeeper: Housekeeper,
}

impl std::fmt::Debug for DispatchCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DispatchCtx")
    }
}

impl DispatchCtx {
    /// Release `id` now if nobody pins it, else as soon as the last pin goes.
    pub fn release_when_unpinned(&mut self, id: BufferId) {
        match self.rm.pin_count(id) {
            Ok(0) => {
                if let Err(e) = self.rm.release(&self.lifecycle, id) {
                    self.telemetry
                        .note("dispatcher", format!("release {id}: {e}"));
                }
            }
            Ok(_) => {
                self.release_after_unpin.insert(id);
            }
            Err(e) => self
                .telemetry
                .note("dispatcher", format!("release {id}: {e}")),
        }
    }

    /// Pin `buf` for a subscriber; the guard unpins (through this thread) on drop.
    pub fn pin_for(&mut self, buf: &BufferRef, owner: &str) -> Option<PinGuard> {
        match self.rm.pin(buf.id, owner) {
            Ok(_) => Some(PinGuard {
                buffer: buf.clone(),
                owner: owner.to_string(),
                inbox: self.inbox.clone(),
            }),
            Err(e) => {
                self.telemetry
                    .note("dispatcher", format!("pin {} for {owner}: {e}", buf.id));
                None
            }
        }
    }

    /// A sender into the dispatcher's inbox.
    pub fn inbox(&self) -> Sender<DispatcherMsg> {
        self.inbox.clone()
    }

    /// Drop one pin held by `owner`; the buffer goes if it was waiting for
    /// its last pin (a frame that could not start; a pin taken by hand).
    pub fn unpin(&mut self, id: BufferId, owner: &str) {
        match self.rm.unpin(&self.lifecycle, id, owner) {
            Ok(0) if self.release_after_unpin.remove(&id) => {
                if let Err(e) = self.rm.release(&self.lifecycle, id) {
                    self.telemetry
                        .note("dispatcher", format!("release {id}: {e}"));
                }
            }
            Ok(_) => {}
            Err(e) => self
                .telemetry
                .note("dispatcher", format!("unpin {id} by {owner}: {e}")),
        }
    }

    /// A Housekeeper sweep as of `now` (engine clock): expiries, stale pins,
    /// the pool row.
    pub fn sweep(&mut self, now: u64) -> crate::housekeeper::SweepReport {
        let hk = self.housekeeper.clone();
        hk.sweep(&self.rm, &self.lifecycle, &self.telemetry, now)
    }

    /// Give a plan's reservation back (its frames will not come).
    pub fn cancel_reservation(
        &mut self,
        plan: crate::resource_manager::PlanId,
    ) -> Result<(), RmError> {
        self.rm.cancel_reservation(&self.lifecycle, plan)
    }

    /// Buffers waiting for their last pin before release.
    pub fn pending_releases(&self) -> usize {
        self.release_after_unpin.len()
    }
}

/// A pin held by a subscriber on a published buffer.
pub struct PinGuard {
    buffer: BufferRef,
    owner: String,
    inbox: Sender<DispatcherMsg>,
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinGuard({} by {})", self.buffer.id, self.owner)
    }
}

impl PinGuard {
    pub fn buffer(&self) -> &BufferRef {
        &self.buffer
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        // After engine shutdown nobody listens; the pool goes with the engine.
        let _ = self.inbox.send(DispatcherMsg::Unpin {
            id: self.buffer.id,
            owner: std::mem::take(&mut self.owner),
        });
    }
}

/// Decides what follows a completion. Runs on the dispatcher thread.
pub trait Router: Send {
    /// Called after the envelope's pins are dropped and its row appended.
    fn route(&mut self, ev: CompletionEvent, ctx: &mut DispatchCtx);
    /// Called once when the dispatcher stops.
    fn finish(&mut self, _ctx: &mut DispatchCtx) {}
}

/// The dispatcher thread.
pub struct CompletionDispatcher {
    inbox: Sender<DispatcherMsg>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CompletionDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompletionDispatcher")
    }
}

/// Build the telemetry row for a completion.
pub fn stage_event(ev: &CompletionEvent) -> TelemetryEvent {
    let env = &ev.envelope;
    let mut detail = ev.error.clone().unwrap_or_default();
    if let crate::envelope::StageOutput::Algo(a) = &ev.output
        && detail.is_empty()
    {
        detail = a.summary();
    }
    if let crate::envelope::StageOutput::Model(m) = &ev.output
        && detail.is_empty()
    {
        detail = format!(
            "{} model={} gains={:.4},{:.4},{:.4} input_ms={:.3} infer_ms={:.3}",
            m.algorithm,
            m.model.display(),
            m.wb_gains[0],
            m.wb_gains[1],
            m.wb_gains[2],
            m.input_ns as f64 / 1e6,
            m.infer_ns as f64 / 1e6
        );
    }
    TelemetryEvent {
        seq: 0,
        kind: EventKind::Stage,
        frame_id: env.frame_id,
        stage: env.stage.name(),
        lane: Some(env.lane),
        worker: ev.worker,
        enqueue_ns: env.enqueue_ns,
        start_ns: ev.start_ns,
        end_ns: ev.end_ns,
        buffers: env.buffer_indices(),
        params_version: env.params_version(),
        outcome: ev.outcome,
        detail,
    }
}

impl CompletionDispatcher {
    /// The inbox must be created first so the lanes can be given its sender.
    pub fn channel() -> (Sender<DispatcherMsg>, Receiver<DispatcherMsg>) {
        unbounded()
    }

    /// The lanes' way into the inbox.
    pub fn sink(inbox: &Sender<DispatcherMsg>) -> crate::envelope::CompletionSink {
        let tx = inbox.clone();
        crate::envelope::CompletionSink::new(move |ev| {
            let _ = tx.send(DispatcherMsg::Completion(Box::new(ev)));
        })
    }

    /// Start the thread; `lifecycle` is `rm`'s (from
    /// [`ResourceManager::take_lifecycle`]), and from here on only this
    /// thread can end a buffer's lifecycle.
    pub fn start(
        inbox: (Sender<DispatcherMsg>, Receiver<DispatcherMsg>),
        rm: Arc<ResourceManager>,
        lifecycle: Lifecycle,
        telemetry: Arc<TelemetryManager>,
        housekeeper: Housekeeper,
        mut router: Box<dyn Router>,
    ) -> Self {
        let (tx, rx) = inbox;
        let mut ctx = DispatchCtx {
            rm,
            lifecycle,
            telemetry,
            inbox: tx.clone(),
            release_after_unpin: HashSet::new(),
            housekeeper,
        };
        let thread = std::thread::Builder::new()
            .name("completion-dispatcher".into())
            .spawn(move || {
                let mut stopping = false;
                loop {
                    // After Shutdown, finish what is queued (including the
                    // unpins that handling it produces), then stop.
                    let msg = if stopping {
                        match rx.try_recv() {
                            Ok(m) => m,
                            Err(_) => break,
                        }
                    } else {
                        match rx.recv() {
                            Ok(m) => m,
                            Err(_) => break,
                        }
                    };
                    match msg {
                        DispatcherMsg::Completion(ev) => {
                            let ev = *ev;
                            let owner = ev.envelope.pin_owner.clone();
                            for b in ev.envelope.inputs.iter().chain(ev.envelope.outputs.iter()) {
                                ctx.unpin(b.id, &owner);
                            }
                            ctx.telemetry.append(stage_event(&ev));
                            router.route(ev, &mut ctx);
                        }
                        DispatcherMsg::Unpin { id, owner } => ctx.unpin(id, &owner),
                        DispatcherMsg::Sweep => {
                            ctx.sweep(now_ns());
                        }
                        DispatcherMsg::Call(f) => f(&mut ctx),
                        DispatcherMsg::Shutdown => stopping = true,
                    }
                }
                router.finish(&mut ctx);
            })
            .expect("spawning the completion dispatcher");
        CompletionDispatcher {
            inbox: tx,
            thread: Some(thread),
        }
    }

    pub fn inbox(&self) -> Sender<DispatcherMsg> {
        self.inbox.clone()
    }

    /// Process everything already in the inbox, then stop and join.
    pub fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.inbox.send(DispatcherMsg::Shutdown);
            let _ = t.join();
        }
    }
}

impl Drop for CompletionDispatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}
