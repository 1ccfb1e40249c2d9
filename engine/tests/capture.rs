//! Bursts and brackets through the engine: frames read into the
//! FusionManager's reserved buffers, merged on the background lane, the
//! result developed on the capture path beside the reference; the plan's
//! buffers accounted for on every path (done, source ended, expired).

#![allow(clippy::unwrap_used)]

use isp_engine::fusion::FusionKind;
use isp_engine::gpu::Backend;
use isp_engine::pipeline::{CaptureRequest, Engine, EngineConfig, FrameResult, PathMode};
use isp_engine::sources::FrameSource;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::telemetry::EventKind;
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Lane, Outcome, Packing, RawFormat};
use std::sync::Arc;
use std::time::Duration;

fn engine() -> Engine {
    Engine::new(
        EngineConfig {
            backend: Backend::Cpu,
            path: PathMode::Fast,
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap()
}

fn source(w: u32, h: u32) -> SyntheticSource {
    let mut s = SyntheticSource::new(
        Scene::Checker,
        RawFormat::new(w, h, 10, BayerOrder::Rggb, Packing::Csi2),
    );
    // Dim: noise worth merging away.
    s.model.sensitivity = 0.08;
    s
}

/// Results of frames `ids`, waiting up to 60 s.
fn results(
    rx: &crossbeam_channel::Receiver<Arc<FrameResult>>,
    ids: &[u64],
) -> Vec<Arc<FrameResult>> {
    let mut out: Vec<Arc<FrameResult>> = Vec::new();
    let t0 = std::time::Instant::now();
    while out.len() < ids.len() && t0.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100))
            && ids.contains(&r.frame_id)
            && r.lane == Lane::Background
        {
            out.push(r);
        }
    }
    out.sort_by_key(|r| ids.iter().position(|&i| i == r.frame_id));
    out
}

/// The first `n` frames of `source(w, h)`, unpacked.
fn frames_of(w: usize, h: usize, n: usize) -> Vec<Vec<u16>> {
    let mut src = source(w as u32, h as u32);
    let fmt = src.format();
    let mut raw = vec![0u8; fmt.frame_bytes()];
    (0..n)
        .map(|_| {
            src.next_frame(&mut raw).unwrap().unwrap();
            let mut px = vec![0u16; w * h];
            isp_engine::stages::unpack::unpack(&fmt, &raw, &mut px).unwrap();
            px
        })
        .collect()
}

fn mean_of_frames(w: usize, h: usize, n: usize) -> Vec<f64> {
    let frames = frames_of(w, h, n);
    (0..w * h)
        .map(|i| frames.iter().map(|f| f[i] as f64).sum::<f64>() / n as f64)
        .collect()
}

/// RMS difference over the interior.
fn rms(m: &[u16], truth: &[f64], w: usize, h: usize) -> f64 {
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for y in 16..h - 16 {
        for x in 16..w - 16 {
            let d = m[y * w + x] as f64 - truth[y * w + x];
            s += d * d;
            n += 1.0;
        }
    }
    (s / n).sqrt()
}

#[test]
fn a_burst_is_merged_on_the_background_lane_and_developed() {
    let (w, h) = (320u32, 240u32);
    let engine = engine();
    let rx = engine.subscribe(true);
    let mut src = source(w, h);
    let report = engine
        .capture(
            &mut src,
            &CaptureRequest::new(FusionKind::Burst { frames: 4 }),
        )
        .unwrap();
    assert_eq!(report.frames.len(), 4);
    assert_eq!(report.selection.chosen.len(), 4, "{:?}", report.selection);
    assert!(report.frames.iter().all(|f| f.focus > 0.0));
    assert_eq!(report.merged_raw.len(), (w * h) as usize);
    let got = results(&rx, &[report.merged_frame, report.reference_frame]);
    assert_eq!(got.len(), 2, "both developed");
    assert!(got.iter().all(|r| r.outcome == Outcome::Ok), "{got:?}");
    assert!(got.iter().all(|r| r.capture_rgb16().is_some()));
    // Noise in the raw domain against the scene's truth (the mean of 32
    // frames of the same sensor): the reference's, the merge's.
    let truth = mean_of_frames(w as usize, h as usize, 32);
    let reference = frames_of(w as usize, h as usize, 1).remove(0);
    let err = |m: &[u16]| rms(m, &truth, w as usize, h as usize);
    let (em, er) = (err(&report.merged_raw), err(&reference));
    println!(
        "raw noise against the truth: merged {em:.2} DN, reference {er:.2} DN; report {}",
        serde_json::to_string(&report).unwrap()
    );
    // Four frames: half the noise when averaged in fully; the truth's own
    // noise (1/sqrt(32)) and the merge's weights leave a little.
    assert!(em < 0.62 * er, "merged {em} vs reference {er}");
    // Results not taken hold their pins: take and let go of them all,
    // then let the dispatcher handle the unpins.
    drop(got);
    let t0 = std::time::Instant::now();
    while !engine.flush(Duration::from_millis(100)) {
        rx.try_iter().for_each(drop);
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "frames still in flight"
        );
    }
    let _ = engine.call(|_| ());
    // The merge ran on the background lane and is a telemetry row.
    let snap = engine.telemetry.snapshot();
    assert!(snap.iter().any(|e| e.kind == EventKind::Stage
        && e.stage == "fusion"
        && e.lane == Some(Lane::Background)
        && e.outcome == Outcome::Ok));
    // Every buffer of the plan went back.
    let st = engine.rm.stats();
    assert_eq!(
        (st.allocated, st.reserved, st.pinned),
        (0, 0, 0),
        "{:#?}",
        engine.rm.snapshot()
    );
    engine.shutdown();
}

#[test]
fn a_bracket_sets_each_exposure_and_merges() {
    let (w, h) = (320u32, 240u32);
    let engine = engine();
    let mut src = source(w, h);
    let report = engine
        .capture(
            &mut src,
            &CaptureRequest::new(FusionKind::Bracket {
                ev: vec![-2.0, 0.0, 2.0],
            }),
        )
        .unwrap();
    let exposures: Vec<f32> = report
        .frames
        .iter()
        .map(|f| f.info.exposure_us * f.info.analogue_gain)
        .collect();
    let r = exposures[1];
    for (e, want) in exposures.iter().zip([0.25f32, 1.0, 4.0]) {
        assert!((e / r / want - 1.0).abs() < 0.1, "{exposures:?}");
    }
    assert_eq!(report.selection.reference, 1);
    assert!(report.hdr.is_some());
    // The sensor is back at its metered exposure.
    assert!(engine.flush(Duration::from_secs(30)));
    let st = engine.rm.stats();
    assert_eq!((st.allocated, st.reserved), (0, 0));
    engine.shutdown();
}

/// The source ends before the burst is in: an error naming it, and the
/// buffers already committed go back.
#[test]
fn a_source_that_ends_mid_burst_gives_everything_back() {
    let engine = engine();
    let mut src = source(320, 240);
    src.frame_limit = Some(2);
    let e = engine
        .capture(
            &mut src,
            &CaptureRequest::new(FusionKind::Burst { frames: 4 }),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("ended before the frames were in"),
        "{e}"
    );
    assert!(engine.flush(Duration::from_secs(10)));
    let _ = engine.sweep(u64::MAX);
    let st = engine.rm.stats();
    assert_eq!(
        (st.allocated, st.reserved),
        (0, 0),
        "{:#?}",
        engine.rm.snapshot()
    );
    // And with no frame at all: the reservation is cancelled.
    let mut src = source(320, 240);
    src.frame_limit = Some(0);
    let err = engine
        .capture(
            &mut src,
            &CaptureRequest::new(FusionKind::Burst { frames: 4 }),
        )
        .expect_err("a capture from a source with no frame fails")
        .to_string();
    assert!(err.contains("ended before the frames were in"), "{err}");
    let _ = engine.call(|_| ());
    let st = engine.rm.stats();
    assert_eq!((st.allocated, st.reserved), (0, 0));
    engine.shutdown();
}

/// Frames later than the reservation's time: it expired, the capture says
/// so, and nothing stays reserved (the capture gives the reservation up
/// with a cancel posted to the dispatcher; a sweep that runs first frees
/// it instead).
#[test]
fn a_reservation_that_expires_before_the_frames_is_given_up() {
    // No periodic sweep: this test sweeps when it wants to.
    let mut config = EngineConfig {
        backend: Backend::Cpu,
        ..Default::default()
    };
    config.housekeeper.period = Duration::from_secs(3600);
    let engine = Engine::new(config, Tuning::default()).unwrap();
    let mut src = source(320, 240);
    let mut req = CaptureRequest::new(FusionKind::Burst { frames: 3 });
    req.ttl = Duration::ZERO;
    let e = engine.capture(&mut src, &req).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    let report = engine.sweep(isp_engine::clock::now_ns()).unwrap();
    let _ = engine.call(|_| ());
    assert_eq!(engine.rm.stats().reserved, 0, "{report:?}");
    assert_eq!(engine.rm.stats().allocated, 0);
    engine.shutdown();
}

/// Wait until the pool holds nothing allocated or reserved (a merge left to
/// finish on its own releases its result when it ends).
fn wait_for_empty_pool(engine: &Engine) {
    let t0 = std::time::Instant::now();
    loop {
        let _ = engine.call(|_| ());
        let st = engine.rm.stats();
        if (st.allocated, st.reserved, st.pinned) == (0, 0, 0) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{:#?}",
            engine.rm.snapshot()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A merge that takes longer than the caller waits: the capture fails
/// naming the plan, and the result, when it comes, goes back to the pool.
#[test]
fn a_merge_past_its_timeout_gives_its_result_back() {
    let engine = engine();
    let mut src = source(640, 480);
    let mut req = CaptureRequest::new(FusionKind::Burst { frames: 8 });
    req.timeout = Duration::from_micros(1);
    let e = engine.capture(&mut src, &req).unwrap_err();
    assert!(e.to_string().contains("no merge in"), "{e}");
    wait_for_empty_pool(&engine);
    // Nothing was developed, and the engine still captures.
    let r = engine
        .capture(
            &mut src,
            &CaptureRequest::new(FusionKind::Burst { frames: 3 }),
        )
        .unwrap();
    assert_eq!(r.selection.chosen.len(), 3);
    engine.shutdown();
}

/// A capture scheduled and then dropped (its asker went away): the merge
/// runs on and its result goes back to the pool; finishing another works.
#[test]
fn a_dropped_pending_capture_gives_its_result_back() {
    let engine = engine();
    let mut src = source(320, 240);
    let req = CaptureRequest::new(FusionKind::Burst { frames: 4 });
    let pending = engine.capture_start(&mut src, &req).unwrap();
    assert!(engine.rm.stats().pinned > 0, "the merge holds its frames");
    drop(pending);
    wait_for_empty_pool(&engine);
    let pending = engine.capture_start(&mut src, &req).unwrap();
    let (report, rx) = engine.capture_finish_watched(pending).unwrap();
    // The watcher sees both results come down the capture path.
    let ids = [report.merged_frame, report.reference_frame];
    let got = results(&rx, &ids);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.capture_rgb16().is_some()));
    drop(got);
    drop(rx);
    wait_for_empty_pool(&engine);
    engine.shutdown();
}
