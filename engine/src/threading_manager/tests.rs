use super::*;
use crate::envelope::{StageError, StageId, StageOutput};

fn params() -> Arc<crate::tuning::FrameParams> {
    let f = crate::types::RawFormat::new(
        2,
        2,
        10,
        crate::types::BayerOrder::Rggb,
        crate::types::Packing::Plain,
    );
    Arc::new(crate::tuning::FrameParams::from_tuning(
        &crate::tuning::Tuning::default(),
        f,
    ))
}

fn sleepy(env: &Envelope) -> Result<StageOutput, StageError> {
    std::thread::sleep(Duration::from_millis(env.frame_id % 1000));
    Ok(StageOutput::None)
}

fn env(id: u64, lane: Lane) -> Envelope {
    Envelope::new(id, StageId::Noop, lane, sleepy, params())
}

fn outcomes(rx: &crossbeam_channel::Receiver<CompletionEvent>) -> Vec<(u64, Outcome)> {
    rx.try_iter()
        .map(|c| (c.envelope.frame_id, c.outcome))
        .collect()
}

fn cfg() -> ThreadingConfig {
    let lane = LaneConfig {
        workers: 1,
        queue: 2,
        data_threads: 1,
    };
    ThreadingConfig {
        realtime: lane,
        background: lane,
    }
}

fn ok(_env: &Envelope) -> Result<StageOutput, StageError> {
    Ok(StageOutput::None)
}

fn quick(id: u64, lane: Lane) -> Envelope {
    let mut e = env(id, lane);
    e.worker = ok;
    e
}

const WAIT: Duration = Duration::from_secs(30);

/// Run `f` on another thread; its result, or a failure if it has not
/// returned within `WAIT` (it blocked).
fn must_return<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WAIT).expect("the call blocked")
}

#[test]
fn saturated_realtime_drops_the_oldest_and_never_blocks() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let tm = Arc::new(ThreadingManager::new(cfg(), tx));
    // The one realtime worker is inside frame 1; the queue holds 2.
    let hold = tm.holds().hold(StageId::Noop, 1);
    tm.submit(quick(1, Lane::Realtime)).unwrap();
    assert!(hold.wait_entered(WAIT));
    // Nine more submits while the worker is held: none may block.
    let t = tm.clone();
    must_return(move || {
        for i in 2..=10 {
            t.submit(quick(i, Lane::Realtime)).unwrap();
        }
    });
    // Each submit past the queue's room dropped the oldest pending frame:
    // exactly 2..=8, completed as dropped before anything else ran.
    let dropped: Vec<(u64, Outcome)> = outcomes(&rx);
    assert_eq!(
        dropped,
        (2..=8).map(|i| (i, Outcome::Dropped)).collect::<Vec<_>>()
    );
    assert_eq!(tm.pending(Lane::Realtime), 2);
    assert_eq!(tm.stats(Lane::Realtime).dropped, 7);
    assert_eq!(tm.stats(Lane::Realtime).submitted, 10);
    hold.release();
    tm.shutdown();
    // The held frame and the two newest ran, in order.
    assert_eq!(
        outcomes(&rx),
        vec![(1, Outcome::Ok), (9, Outcome::Ok), (10, Outcome::Ok)]
    );
}

#[test]
fn background_applies_backpressure_and_shutdown_loses_nothing() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let tm = Arc::new(ThreadingManager::new(cfg(), tx));
    // The worker is inside frame 0; two more fit the queue, the rest are
    // refused, not dropped.
    let hold = tm.holds().hold(StageId::Noop, 0);
    tm.try_submit(quick(0, Lane::Background)).unwrap();
    assert!(hold.wait_entered(WAIT));
    let refused: Vec<bool> = (1..6)
        .map(|i| match tm.try_submit(quick(i, Lane::Background)) {
            Ok(()) => false,
            Err(SubmitError::Full(e)) => {
                assert_eq!(e.frame_id, i);
                true
            }
            Err(SubmitError::Closed) => panic!("closed"),
        })
        .collect();
    assert_eq!(refused, [false, false, true, true, true]);
    // A blocking submit waits for room: it returns only once the held
    // worker has finished frame 0 and taken frame 1 off the queue.
    let t2 = tm.clone();
    let (ret_tx, ret_rx) = crossbeam_channel::bounded(1);
    let blocked = std::thread::spawn(move || {
        let r = t2.submit(quick(99, Lane::Background));
        let _ = ret_tx.send(t2.stats(Lane::Background).jobs[0]);
        r
    });
    // Returning while frame 0 is held would be the bug.
    assert!(
        ret_rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "a blocking submit returned while the lane was full"
    );
    hold.release();
    let jobs_when_returned = ret_rx
        .recv_timeout(WAIT)
        .expect("the submit never returned");
    assert!(jobs_when_returned >= 1);
    assert!(blocked.join().unwrap().is_ok());
    tm.shutdown();
    assert!(matches!(
        tm.submit(env(7, Lane::Realtime)),
        Err(SubmitError::Closed)
    ));
    let out = outcomes(&rx);
    // Every accepted envelope completed exactly once, ok or cancelled.
    let mut ids: Vec<u64> = out.iter().map(|o| o.0).collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2, 7, 99]);
    assert!(out.iter().all(|o| o.1 != Outcome::Dropped));
    assert!(out.contains(&(7, Outcome::Cancelled)));
}

#[test]
fn a_panicking_worker_fails_its_envelope_and_the_lane_keeps_serving() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let tm = ThreadingManager::new(cfg(), tx);
    for lane in [Lane::Realtime, Lane::Background] {
        let hold = tm.holds().hold(StageId::Noop, 5);
        tm.submit(quick(5, lane)).unwrap();
        assert!(hold.wait_entered(WAIT));
        hold.panic("injected fault");
        let next = || {
            let c = rx.recv_timeout(WAIT).unwrap();
            (c.envelope.frame_id, c.outcome, c.error)
        };
        assert_eq!(
            next(),
            (
                5,
                Outcome::Failed,
                Some("panic: injected fault".to_string())
            ),
            "{lane:?}"
        );
        // The same worker serves the next frames.
        for i in 6..9 {
            tm.submit(quick(i, lane)).unwrap();
            assert_eq!(next(), (i, Outcome::Ok, None), "{lane:?}");
        }
        assert_eq!(tm.stats(lane).jobs, vec![4], "{lane:?}");
    }
    tm.shutdown();
}

#[test]
fn utilisation_is_busy_time_over_wall_time() {
    // The formula, on samples with known numbers.
    let at = |t: u64, busy: Vec<u64>| LaneStats {
        busy_ns: busy,
        sampled_ns: t,
        ..Default::default()
    };
    let u = utilization(&at(1_000, vec![0, 100]), &at(2_000, vec![250, 100]));
    assert_eq!(u, vec![0.25, 0.0]);
    assert_eq!(utilization(&at(0, vec![0]), &at(10, vec![50])), vec![1.0]);
    // The counters: a worker's run adds its busy time and one job, before
    // its completion is sent.
    let (tx, rx) = crossbeam_channel::unbounded();
    let tm = ThreadingManager::new(cfg(), tx);
    let a = tm.stats(Lane::Realtime);
    tm.submit(env(1_040, Lane::Realtime)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap().outcome, Outcome::Ok);
    let b = tm.stats(Lane::Realtime);
    // `sleepy` runs for 40 ms.
    assert!(b.busy_ns[0] - a.busy_ns[0] >= 40_000_000);
    assert_eq!(b.jobs[0] - a.jobs[0], 1);
    let u = utilization(&a, &b);
    assert!(u[0] > 0.0 && u[0] <= 1.0, "{u:?}");
    tm.shutdown();
}
