//! The router on its own: any plan, test workers, real buffers, real lanes.

use super::*;
use crate::allocator::{AllocatorKind, create_allocator};
use crate::completion_dispatcher::CompletionDispatcher;
use crate::envelope::{StageError, StageId, WorkerFn};
use crate::housekeeper::Housekeeper;
use crate::pipeline::plan::{PlanStep, Slot};
use crate::resource_manager::PoolConfig;
use crate::telemetry::EventKind;
use crate::threading_manager::{LaneConfig, ThreadingConfig};
use crate::tuning::Tuning;
use crate::types::{BayerOrder, Packing};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

struct Rig {
    rm: Arc<ResourceManager>,
    telemetry: Arc<TelemetryManager>,
    threading: Arc<ThreadingManager>,
    launcher: Launcher,
    dispatcher: CompletionDispatcher,
    results: Receiver<Arc<FrameResult>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.threading.shutdown();
        self.dispatcher.shutdown();
    }
}

fn format() -> RawFormat {
    RawFormat::new(16, 8, 16, BayerOrder::Rggb, Packing::Plain)
}

fn rig(max_buffers: usize) -> Rig {
    let (alloc, _) = create_allocator(AllocatorKind::Heap).unwrap();
    let rm = Arc::new(ResourceManager::new(
        alloc,
        PoolConfig {
            max_buffers,
            ..Default::default()
        },
    ));
    let telemetry = Arc::new(TelemetryManager::new());
    let inbox = CompletionDispatcher::channel();
    let lane = LaneConfig {
        workers: 2,
        queue: 64,
        data_threads: 1,
    };
    let threading = Arc::new(ThreadingManager::new(
        ThreadingConfig {
            realtime: lane,
            background: LaneConfig { workers: 1, ..lane },
        },
        CompletionDispatcher::sink(&inbox.0),
    ));
    let subscribers = Subscribers::default();
    let results = subscribers.add(true);
    let (router, launcher) = PipelineRouter::new(
        rm.clone(),
        threading.clone(),
        telemetry.clone(),
        inbox.0.clone(),
        subscribers,
        Arc::default(),
        Arc::default(),
    );
    let dispatcher = CompletionDispatcher::start(
        inbox,
        rm.clone(),
        rm.take_lifecycle().unwrap(),
        telemetry.clone(),
        Housekeeper::new(Default::default()),
        Box::new(router),
    );
    Rig {
        rm,
        telemetry,
        threading,
        launcher,
        dispatcher,
        results,
    }
}

impl Rig {
    /// Start frame `id` under `plan`; its raw buffer's first byte is the id.
    fn start(&self, id: u64, plan: &Arc<FramePlan>) -> Result<(), EngineError> {
        let raw = self.rm.allocate(Slot::Raw.spec(&format()), "test")?;
        raw.write()?.bytes_mut()[0] = id as u8;
        self.launcher.start(FrameStart {
            frame_id: id,
            meta: FrameMeta {
                sequence: id,
                timestamp_ns: 0,
                exposure_us: 0.0,
                analogue_gain: 1.0,
                ..Default::default()
            },
            format: format(),
            raw,
            plan: plan.clone(),
            params: Arc::new(FrameParams::from_tuning(&Tuning::default(), format())),
            ipa: IpaContext::default(),
            gpu: None,
        })
    }

    /// `n` results, as they come.
    fn results(&self, n: usize) -> Vec<Arc<FrameResult>> {
        (0..n)
            .map(|i| {
                self.results
                    .recv_timeout(WAIT)
                    .unwrap_or_else(|e| panic!("result {i}: {e}"))
            })
            .collect()
    }

    /// Wait for every frame to leave (its results dropped), then for the
    /// releases that follow.
    fn settle(&self) {
        assert!(
            self.launcher.in_flight.wait_below(1, WAIT),
            "frames still in flight"
        );
        // The releases are queued behind the last completion: a posted call
        // runs after them.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = self
            .launcher
            .inbox
            .send(DispatcherMsg::Call(Box::new(move |_| {
                let _ = tx.send(());
            })));
        rx.recv_timeout(WAIT).unwrap();
    }

    fn assert_nothing_held(&self) {
        let st = self.rm.stats();
        assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
    }

    /// Stage rows per frame, in completion order.
    fn rows(&self, frame: u64) -> Vec<crate::telemetry::TelemetryEvent> {
        self.telemetry
            .snapshot()
            .iter()
            .filter(|e| e.kind == EventKind::Stage && e.frame_id == frame)
            .collect()
    }
}

/// Writes the frame's id into the first byte of every output, after
/// checking every input carries it: data has to follow `reads`/`writes`.
fn relay(env: &Envelope) -> Result<StageOutput, StageError> {
    for b in &env.inputs {
        let got = b.read()?.bytes()[0];
        if got != env.frame_id as u8 {
            return Err(StageError::Invalid {
                stage: "relay",
                message: format!("input {} holds {got}, not frame {}", b.id, env.frame_id),
            });
        }
    }
    for b in &env.outputs {
        b.write()?.bytes_mut()[0] = env.frame_id as u8;
    }
    Ok(StageOutput::None)
}

fn fail(_: &Envelope) -> Result<StageOutput, StageError> {
    Err(StageError::Invalid {
        stage: "fail",
        message: "refused on purpose".into(),
    })
}

fn broken(_: &Envelope) -> Result<StageOutput, StageError> {
    panic!("a worker that panics")
}

const RT: Lane = Lane::Realtime;
const BG: Lane = Lane::Background;

/// Six realtime steps and two background ones, every slot used.
fn long_plan(faulty: Option<(usize, WorkerFn)>) -> Arc<FramePlan> {
    let mut steps = vec![
        PlanStep::cpu(StageId::RawIsp, RT, relay, &[Slot::Raw], &[Slot::Mosaic]),
        PlanStep::cpu(StageId::RawAlgo, RT, relay, &[Slot::Mosaic], &[]),
        PlanStep::cpu(StageId::Model, RT, relay, &[Slot::Mosaic], &[Slot::Mosaic]),
        PlanStep::cpu(
            StageId::FastIsp,
            RT,
            relay,
            &[Slot::Mosaic],
            &[Slot::Preview],
        )
        .publishing(Slot::Preview),
        PlanStep::cpu(StageId::FastAlgo, RT, relay, &[Slot::Preview], &[]),
        PlanStep::cpu(StageId::Fusion, RT, relay, &[], &[]),
        PlanStep::cpu(StageId::SlowIsp, BG, relay, &[Slot::Raw], &[Slot::Capture])
            .publishing(Slot::Capture),
        PlanStep::cpu(StageId::SlowAlgo, BG, relay, &[Slot::Capture], &[]),
    ];
    if let Some((i, w)) = faulty {
        steps[i].worker = w;
    }
    Arc::new(FramePlan::new("test", steps).unwrap())
}

#[test]
fn every_step_runs_once_per_frame_in_plan_order() {
    let r = rig(64);
    let plan = long_plan(None);
    for id in 1..=6 {
        r.start(id, &plan).unwrap();
    }
    let results = r.results(12);
    r.settle_with(results);
    for id in 1..=6 {
        let rows = r.rows(id);
        for (lane, want) in [
            (
                RT,
                vec![
                    "raw_isp",
                    "raw_algo",
                    "model",
                    "fast_isp",
                    "fast_algo",
                    "fusion",
                ],
            ),
            (BG, vec!["slow_isp", "slow_algo"]),
        ] {
            let on: Vec<_> = rows.iter().filter(|e| e.lane == Some(lane)).collect();
            let names: Vec<_> = on.iter().map(|e| e.stage).collect();
            assert_eq!(names, want, "frame {id}");
            assert!(on.iter().all(|e| e.outcome == Outcome::Ok), "{on:?}");
            for w in on.windows(2) {
                assert!(w[1].start_ns >= w[0].end_ns, "frame {id}: {w:?}");
            }
        }
    }
    assert!(
        r.results.try_recv().is_err(),
        "more than one result per frame and lane"
    );
}

impl Rig {
    /// Check the results' buffers, drop them, settle.
    fn settle_with(&self, results: Vec<Arc<FrameResult>>) {
        for res in &results {
            if res.outcome != Outcome::Ok {
                continue;
            }
            assert_eq!(res.outcome, Outcome::Ok);
            let g = match res.lane {
                RT => res.preview.as_ref(),
                BG => res.capture.as_ref(),
            };
            assert_eq!(
                g.unwrap().buffer().read().unwrap().bytes()[0],
                res.frame_id as u8
            );
        }
        drop(results);
        self.settle();
        self.assert_nothing_held();
    }
}

#[test]
fn a_failure_at_any_step_ends_the_lane_and_releases_the_frame() {
    for (i, w) in (0..8).flat_map(|i| [(i, fail as WorkerFn), (i, broken as WorkerFn)]) {
        let r = rig(64);
        let plan = long_plan(Some((i, w)));
        let failed = plan.steps()[i];
        r.start(1, &plan).unwrap();
        let results = r.results(2);
        // The failing lane published a failure unless it had published
        // already; the other lane was not disturbed.
        let published_before = plan.steps()[..i]
            .iter()
            .any(|s| s.lane == failed.lane && s.publishes.is_some());
        let on_lane: Vec<_> = results.iter().filter(|x| x.lane == failed.lane).collect();
        assert_eq!(on_lane.len(), 1, "step {i}: {results:?}");
        assert_eq!(
            on_lane[0].outcome,
            if published_before {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
            "step {i}"
        );
        let other: Vec<_> = results.iter().filter(|x| x.lane != failed.lane).collect();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].outcome, Outcome::Ok);
        drop((on_lane, other));
        // Every step ends and every buffer goes back.
        r.settle_with(results);
        // Nothing after the failed step ran on its lane.
        let rows = r.rows(1);
        let ran: Vec<_> = rows
            .iter()
            .filter(|e| e.lane == Some(failed.lane))
            .map(|e| (e.stage, e.outcome))
            .collect();
        assert_eq!(
            ran.last(),
            Some(&(failed.stage.name(), Outcome::Failed)),
            "step {i}"
        );
        assert!(ran[..ran.len() - 1].iter().all(|x| x.1 == Outcome::Ok));
        assert!(r.results.try_recv().is_err());
    }
}

#[test]
fn a_step_that_cannot_get_its_buffer_ends_the_lane() {
    // Raw, mosaic and capture fit; the preview (allocated when FastISP is
    // dispatched, on the dispatcher) does not while SlowISP holds the raw
    // buffer.
    let r = rig(3);
    let plan = long_plan(None);
    let hold = r.threading.holds().hold(StageId::SlowIsp, 1);
    r.start(1, &plan).unwrap();
    assert!(hold.wait_entered(WAIT));
    let mut results = r.results(1);
    hold.release();
    results.extend(r.results(1));
    let rt = results.iter().find(|x| x.lane == RT).unwrap();
    assert_eq!(rt.outcome, Outcome::Failed);
    assert!(
        rt.error.as_deref().unwrap().contains("preview buffer"),
        "{rt:?}"
    );
    assert_eq!(
        results.iter().find(|x| x.lane == BG).unwrap().outcome,
        Outcome::Ok
    );
    r.settle_with(results);
    let ran: Vec<_> = r
        .rows(1)
        .iter()
        .filter(|e| e.lane == Some(RT))
        .map(|e| e.stage)
        .collect();
    assert_eq!(ran, ["raw_isp", "raw_algo", "model"]);
}

#[test]
fn a_frame_that_cannot_start_leaves_nothing_behind() {
    // The first steps' buffers do not all fit: the frame is refused, never
    // counted, and what it took (its raw buffer too) goes back.
    let r = rig(2);
    let err = r.start(1, &long_plan(None)).unwrap_err();
    assert!(matches!(err, EngineError::Buffer(_)), "{err}");
    assert_eq!(r.launcher.in_flight.count(), 0);
    r.settle();
    r.assert_nothing_held();
    assert!(r.results.try_recv().is_err());
    // A raw buffer that is no longer live cannot be pinned: same.
    let r = rig(64);
    let raw = r.rm.allocate(Slot::Raw.spec(&format()), "test").unwrap();
    let stale = raw.clone();
    let _ = r
        .launcher
        .inbox
        .send(DispatcherMsg::Call(Box::new(move |ctx| {
            ctx.release_when_unpinned(raw.id)
        })));
    r.settle();
    let err = r
        .launcher
        .start(FrameStart {
            frame_id: 1,
            meta: FrameMeta {
                sequence: 1,
                timestamp_ns: 0,
                exposure_us: 0.0,
                analogue_gain: 1.0,
                ..Default::default()
            },
            format: format(),
            raw: stale,
            plan: long_plan(None),
            params: Arc::new(FrameParams::from_tuning(&Tuning::default(), format())),
            ipa: IpaContext::default(),
            gpu: None,
        })
        .unwrap_err();
    assert!(matches!(err, EngineError::Buffer(_)), "{err}");
    assert_eq!(r.launcher.in_flight.count(), 0);
    r.settle();
    r.assert_nothing_held();
}

#[test]
fn a_held_background_step_never_delays_the_realtime_steps() {
    let r = rig(64);
    // The realtime lane publishes at its last step: its result means the
    // whole lane ran.
    let mut steps = long_plan(None).steps().to_vec();
    steps[3].publishes = None;
    steps[5].reads = &[Slot::Preview];
    steps[5].publishes = Some(Slot::Preview);
    let plan = Arc::new(FramePlan::new("publish last", steps).unwrap());
    let hold = r.threading.holds().hold(StageId::SlowIsp, 1);
    r.start(1, &plan).unwrap();
    assert!(hold.wait_entered(WAIT), "SlowISP never started");
    for id in 2..=4 {
        r.start(id, &plan).unwrap();
    }
    // Every realtime result arrives while frame 1's background step is held.
    let mut rt = Vec::new();
    let mut kept = Vec::new();
    while rt.len() < 4 {
        let res = r.results.recv_timeout(WAIT).expect("a realtime result");
        // Frames 2..4 may finish their background step before frame 1's
        // is released only if the lane had a free worker; it has one.
        assert_eq!(res.lane, RT, "a background result while SlowISP is held");
        rt.push(res.frame_id);
        kept.push(res);
    }
    drop(kept);
    rt.sort();
    assert_eq!(rt, [1, 2, 3, 4]);
    // And their realtime steps all ran to the end.
    for id in 1..=4 {
        assert_eq!(
            r.rows(id).iter().filter(|e| e.lane == Some(RT)).count(),
            6,
            "frame {id}"
        );
    }
    assert_eq!(r.launcher.in_flight.count(), 4);
    hold.release();
    let bg = r.results(4);
    assert!(
        bg.iter().all(|x| x.lane == BG && x.outcome == Outcome::Ok),
        "{bg:?}"
    );
    r.settle_with(bg);
}
