//! The runtime on its own: the envelope round trip of a no-op stage, and the
//! realtime lane's latency with the background lane saturated.

use super::Spread;
use crate::clock::now_ns;
use crate::completion_dispatcher::{CompletionDispatcher, DispatchCtx, Router};
use crate::envelope::{CompletionEvent, Envelope, StageId};
use crate::housekeeper::Housekeeper;
use crate::resource_manager::{PoolConfig, ResourceManager};
use crate::telemetry::TelemetryManager;
use crate::threading_manager::{ThreadingConfig, ThreadingManager};
use crate::tuning::{FrameParams, Tuning};
use crate::types::{BayerOrder, Lane, Packing, RawFormat};
use crossbeam_channel::{Sender, unbounded};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Forwards the lane, enqueue and completion time of every envelope.
struct Echo(Sender<(Lane, u64, u64)>);

impl Router for Echo {
    fn route(&mut self, ev: CompletionEvent, _ctx: &mut DispatchCtx) {
        let _ = self
            .0
            .send((ev.envelope.lane, ev.envelope.enqueue_ns, now_ns()));
    }
}

/// Parameters for envelopes that touch no pixels (round trips, lane tests).
pub(crate) fn bare_params() -> Arc<FrameParams> {
    let t = Tuning::default();
    Arc::new(FrameParams {
        version: 1,
        format: RawFormat::new(2, 2, 10, BayerOrder::Rggb, Packing::Plain),
        linear_output: false,
        stages: t.stages.clone(),
        lut: Arc::new(crate::stages::tone::ToneLut {
            to8: Vec::new(),
            to16: Vec::new(),
            scale: Vec::new(),
        }),
        algorithms: Arc::new(Vec::new()),
    })
}

fn noop_envelope(
    i: u64,
    lane: Lane,
    worker: crate::envelope::WorkerFn,
    params: &Arc<FrameParams>,
) -> Envelope {
    Envelope::new(i, StageId::Noop, lane, worker, params.clone())
}

struct Rig {
    threading: Arc<ThreadingManager>,
    dispatcher: CompletionDispatcher,
    done: crossbeam_channel::Receiver<(Lane, u64, u64)>,
}

fn rig() -> Rig {
    let rm = Arc::new(ResourceManager::new(
        Box::new(crate::allocator::HeapAllocator),
        PoolConfig::default(),
    ));
    let tm = Arc::new(TelemetryManager::new());
    let inbox = CompletionDispatcher::channel();
    let threading = Arc::new(ThreadingManager::new(
        ThreadingConfig::default(),
        CompletionDispatcher::sink(&inbox.0),
    ));
    let (tx, done) = unbounded();
    let lifecycle = rm.take_lifecycle().expect("a new pool's lifecycle");
    let dispatcher = CompletionDispatcher::start(
        inbox,
        rm,
        lifecycle,
        tm,
        Housekeeper::new(Default::default()),
        Box::new(Echo(tx)),
    );
    Rig {
        threading,
        dispatcher,
        done,
    }
}

/// Submit -> completion (seen by a dispatcher subscriber) of a no-op stage,
/// one envelope at a time, µs.
pub fn roundtrip(n: usize) -> Spread {
    let mut r = rig();
    let params = bare_params();
    let mut v = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t0 = now_ns();
        let _ = r.threading.submit(noop_envelope(
            i as u64,
            Lane::Realtime,
            crate::isp::noop,
            &params,
        ));
        if let Ok((_, _, t1)) = r.done.recv()
            && i >= 100
        {
            v.push((t1 - t0) as f64 / 1e3);
        }
    }
    r.threading.shutdown();
    r.dispatcher.shutdown();
    Spread::of(v)
}

/// A stage that burns about `ms` of CPU on every core of its lane's pool.
fn burn(env: &Envelope) -> Result<crate::envelope::StageOutput, crate::envelope::StageError> {
    let ms = env.frame_id as f64 / 1000.0;
    rayon::broadcast(|_| {
        // Work in slices of ~0.25 ms, stepping aside for realtime work
        // between them as long background stages do between row bands.
        let mut left = ms;
        while left > 0.0 {
            crate::threading_manager::yield_to_realtime();
            let slice = left.min(0.25);
            let t = Instant::now();
            let mut x = 1u64;
            while t.elapsed().as_secs_f64() * 1000.0 < slice {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                std::hint::black_box(x);
            }
            left -= slice;
        }
    });
    Ok(crate::envelope::StageOutput::None)
}

#[derive(Debug, Serialize)]
pub struct QosBench {
    /// Realtime latency (submit -> completion) of a 2 ms stage, idle, ms.
    pub idle_ms: Spread,
    /// The same with the background lane saturated by 20 ms stages.
    pub loaded_ms: Spread,
    pub p99_ratio: f64,
}

/// Realtime latency with and without a saturated background lane.
pub fn qos(n: usize) -> QosBench {
    let measure = |load: bool| {
        let mut r = rig();
        let params = bare_params();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let filler = load.then(|| {
            let (stop, params) = (stop.clone(), params.clone());
            let tm = r.threading.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Background submit blocks while the lane is full: saturation.
                    let _ = tm.submit(noop_envelope(20_000, Lane::Background, burn, &params));
                }
            })
        });
        if load {
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut v = Vec::new();
        for i in 0..n + 10 {
            let t0 = now_ns();
            let _ = r
                .threading
                .submit(noop_envelope(2_000, Lane::Realtime, burn, &params));
            loop {
                match r.done.recv() {
                    Ok((Lane::Realtime, enq, t1)) if enq >= t0 => {
                        if i >= 10 {
                            v.push((t1 - t0) as f64 / 1e6);
                        }
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        r.threading.shutdown();
        if let Some(f) = filler {
            let _ = f.join();
        }
        r.dispatcher.shutdown();
        Spread::of(v)
    };
    let idle_ms = measure(false);
    let loaded_ms = measure(true);
    QosBench {
        p99_ratio: loaded_ms.p99 / idle_ms.p99.max(1e-9),
        idle_ms,
        loaded_ms,
    }
}
