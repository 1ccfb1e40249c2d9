//! The engine end to end: every envelope completes once, outputs name their
//! parameter version, parameter changes land on frame boundaries, shutdown
//! loses nothing, AE/AWB converge on the synthetic sensor.

use isp_engine::bench::MemorySource;
use isp_engine::pipeline::{Engine, EngineConfig, PathMode};
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::telemetry::EventKind;
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Outcome, Packing, RawFormat};
use std::time::Duration;

fn fmt() -> RawFormat {
    RawFormat::new(128, 96, 10, BayerOrder::Grbg, Packing::Csi2)
}

#[test]
fn every_envelope_completes_once_and_buffers_come_back() {
    for path in [PathMode::Fast, PathMode::Slow, PathMode::Both] {
        let engine = Engine::new(
            EngineConfig {
                path,
                ..Default::default()
            },
            Tuning::default(),
        )
        .unwrap();
        let rx = engine.subscribe(true);
        let collector =
            std::thread::spawn(move || rx.iter().map(|r| r.outcome).collect::<Vec<_>>());
        let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 2, 12);
        let n = engine.feed(&mut src, None, |_| {}).unwrap();
        assert_eq!(n, 12);
        assert!(engine.flush(Duration::from_secs(30)));
        engine.shutdown();
        let outcomes = collector.join().unwrap();
        // Offline pacing: nothing dropped, every frame published on each path.
        assert_eq!(outcomes.len(), if path == PathMode::Both { 24 } else { 12 });
        assert!(outcomes.iter().all(|o| *o == Outcome::Ok), "{outcomes:?}");
        let snap = engine.telemetry.snapshot();
        let stages: Vec<_> = snap.iter().filter(|e| e.kind == EventKind::Stage).collect();
        let per_frame = match path {
            PathMode::Fast => 4,
            PathMode::Slow => 2,
            PathMode::Both => 6,
        };
        assert_eq!(stages.len(), 12 * per_frame, "{path:?}");
        for w in snap.iter().collect::<Vec<_>>().windows(2) {
            assert!(w[1].seq == w[0].seq + 1);
        }
        let st = engine.rm.stats();
        assert_eq!((st.allocated, st.pins), (0, 0), "{path:?}: {st:?}");
    }
}

#[test]
fn a_flooded_realtime_lane_drops_the_oldest_and_says_so() {
    let cfg = EngineConfig {
        max_in_flight: 1000,
        ..Default::default()
    };
    let engine = Engine::new(cfg, Tuning::default()).unwrap();
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 1, 40);
    engine.feed(&mut src, None, |_| {}).unwrap();
    let outcomes: Vec<_> = (0..40)
        .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap().outcome)
        .collect();
    let dropped = outcomes.iter().filter(|o| **o == Outcome::Dropped).count();
    assert!(dropped > 0);
    assert_eq!(
        dropped + outcomes.iter().filter(|o| **o == Outcome::Ok).count(),
        40
    );
    engine.shutdown();
    let rows = engine
        .telemetry
        .snapshot()
        .iter()
        .filter(|e| e.outcome == Outcome::Dropped)
        .count();
    assert_eq!(rows, dropped);
    assert_eq!(
        engine
            .threading()
            .stats(isp_engine::types::Lane::Realtime)
            .dropped as usize,
        dropped
    );
}

#[test]
fn parameter_changes_land_on_frame_boundaries() {
    // No 3A: only the edit may change the picture.
    let tuning = Tuning {
        algorithms: vec![],
        ..Default::default()
    };
    let engine = Engine::new(EngineConfig::default(), tuning).unwrap();
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Gradient, fmt(), 1, 100);
    let mut seen = Vec::new();
    let mut v2 = 0;
    for i in 0..6 {
        if i == 3 {
            v2 = engine
                .params
                .edit(|t| t.stages.tone.contrast = 2.0)
                .unwrap();
        }
        engine.feed(&mut src, Some(1), |_| {}).unwrap();
        let r = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        seen.push((r.params_version, r.preview_rgba().unwrap()));
    }
    assert!(seen[..3].iter().all(|r| r.0 == 1));
    assert!(seen[3..].iter().all(|r| r.0 == v2));
    // Same input frame, different contrast: the picture changed.
    assert!(seen[2].1 != seen[3].1);
    assert!(seen[0].1 == seen[1].1 && seen[4].1 == seen[5].1);
}

#[test]
fn shutdown_with_work_pending_loses_no_completion() {
    let engine = Engine::new(
        EngineConfig {
            path: PathMode::Both,
            max_in_flight: 64,
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap();
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 1, 40);
    engine.feed(&mut src, None, |_| {}).unwrap();
    engine.shutdown();
    let snap = engine.telemetry.snapshot();
    let stages: Vec<_> = snap.iter().filter(|e| e.kind == EventKind::Stage).collect();
    // Each submitted envelope has exactly one row, whatever its outcome.
    let first = stages
        .iter()
        .filter(|e| e.stage == "raw_isp" || e.stage == "slow_isp")
        .count();
    assert_eq!(first, 80);
    let st = engine.rm.stats();
    assert_eq!(st.pins, 0, "{st:?}");
}

#[test]
fn ae_and_awb_converge_on_the_synthetic_sensor() {
    let engine = Engine::new(EngineConfig::default(), Tuning::default()).unwrap();
    let mut src = SyntheticSource::new(
        Scene::Checker,
        RawFormat::new(192, 128, 10, BayerOrder::Rggb, Packing::Plain),
    );
    engine.feed(&mut src, Some(40), |_| {}).unwrap();
    engine.flush(Duration::from_secs(60));
    let ipa = engine.ipa();
    // The sensor's cast is 1/1.8 and 1/1.6 on a grey-dominated chart.
    assert!((ipa.wb_gains[0] - 1.8).abs() < 0.35, "{ipa:?}");
    assert!((ipa.wb_gains[2] - 1.6).abs() < 0.35, "{ipa:?}");
    // AE opened the exposure from its 10 ms start on this dark chart.
    assert!(ipa.exposure_us > 12_000.0, "{ipa:?}");
    // The sensor got it through the Modifier chain: flicker-free exposure
    // (whole 10 ms steps at 50 Hz), the rest as gain.
    let (e, g) = src.exposure();
    assert!(e * g > 12_000.0, "{e} {g}");
    assert_eq!(e % 10_000.0, 0.0, "{e}");
    let notes = engine
        .telemetry
        .snapshot()
        .iter()
        .filter(|e| e.stage == "coordinator")
        .count();
    assert!(notes > 0);
}

#[test]
fn housekeeper_reports_pins_held_too_long() {
    let cfg = EngineConfig {
        housekeeper: isp_engine::housekeeper::HousekeeperConfig {
            period: Duration::from_millis(20),
            stale_pin: Duration::from_millis(60),
        },
        ..Default::default()
    };
    let engine = Engine::new(cfg, Tuning::default()).unwrap();
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Flat, fmt(), 1, 1);
    engine.feed(&mut src, None, |_| {}).unwrap();
    let held = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    // Hold the preview well past the threshold.
    let t0 = std::time::Instant::now();
    let mut stale = Vec::new();
    while t0.elapsed() < Duration::from_secs(10) {
        stale = engine.housekeeper.last_report().stale_pins;
        if !stale.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0].owner, "subscribers:preview");
    assert!(stale[0].age_ns >= 60_000_000);
    let rows = engine
        .telemetry
        .snapshot()
        .iter()
        .filter(|e| e.kind == EventKind::Pool && e.detail.contains("stale_pin"))
        .count();
    assert!(rows >= 1);
    drop(held);
    assert!(engine.flush(Duration::from_secs(10)));
    engine.shutdown();
    let st = engine.rm.stats();
    assert_eq!((st.pins, st.allocated), (0, 0), "{st:?}");
}

#[test]
fn the_isp_recovers_the_synthetic_ground_truth() {
    use isp_engine::sources::synthetic::Scene;
    use isp_engine::stages::lens_shading::LensShadingParams;
    // A tuning that undoes exactly what the simulated sensor does: pedestal,
    // vignetting, colour cast and crosstalk. No 3A, linear output.
    let mut tuning = Tuning {
        algorithms: vec![],
        ..Default::default()
    };
    tuning.stages.lens_shading = LensShadingParams::radial(17, 13, [0.4; 4]);
    tuning.stages.white_balance.gains = [1.8, 1.0, 1.6];
    let cfg = EngineConfig {
        path: PathMode::Slow,
        linear_output: true,
        ..Default::default()
    };
    let engine = Engine::new(cfg, tuning).unwrap();
    let rx = engine.subscribe(true);
    let fmt = RawFormat::new(480, 320, 12, BayerOrder::Gbrg, Packing::Plain);
    let mut src = SyntheticSource::new(Scene::Checker, fmt);
    let truth = src.ground_truth();
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    let r = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let out = r.capture_rgb16().unwrap();
    let (w, h) = (480usize, 320usize);
    let sensitivity = 0.5; // reflectance 1.0 -> half of full scale at 10 ms
    let mut worst = 0.0f32;
    for patch in 0..24 {
        let (cx, cy) = Scene::checker_centre(patch, w, h);
        for c in 0..3 {
            let (mut got, mut want, mut n) = (0.0f32, 0.0f32, 0.0f32);
            for y in cy - 4..=cy + 4 {
                for x in cx - 4..=cx + 4 {
                    got += out[(y * w + x) * 3 + c] as f32 / 65535.0 / sensitivity;
                    want += truth[(y * w + x) * 3 + c];
                    n += 1.0;
                }
            }
            let err = (got / n - want / n).abs();
            worst = worst.max(err);
            assert!(
                err < 0.02 + 0.05 * want / n,
                "patch {patch} channel {c}: {} vs {}",
                got / n,
                want / n
            );
        }
    }
    assert!(worst < 0.05, "{worst}");
}
