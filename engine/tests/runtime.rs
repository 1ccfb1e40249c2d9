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
    let engine = Engine::new(
        EngineConfig {
            backend: isp_engine::gpu::Backend::Cpu,
            ..Default::default()
        },
        tuning,
    )
    .unwrap();
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
    // And each is what the CPU reference chain makes of that raw frame under
    // the tuning of its version: the edit, all of it, from its frame on.
    use isp_engine::sources::FrameSource;
    use isp_engine::stages::chain::{Tap, TapImage};
    let mut again = MemorySource::synthetic(Scene::Gradient, fmt(), 1, 1);
    let mut raw = vec![0u8; fmt().frame_bytes()];
    again.next_frame(&mut raw).unwrap().unwrap();
    for (k, contrast) in [(2usize, None), (3, Some(2.0))] {
        let mut t = Tuning {
            algorithms: vec![],
            ..Default::default()
        };
        if let Some(c) = contrast {
            t.stages.tone.contrast = c;
        }
        let p = isp_engine::tuning::FrameParams::from_tuning(&t, fmt());
        let TapImage::Rgba8(want) = isp_engine::isp::reference_tap(&p, &raw, Tap::Tone).unwrap()
        else {
            panic!("the tone tap is RGBA8")
        };
        assert!(
            seen[k].1 == want,
            "frame {k} (v{}) is not the CPU reference under its tuning",
            seen[k].0
        );
    }
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
    // 40 frames, then more (up to 200) while the sensor has not got AE's
    // first controls yet: on a loaded machine the results lag the frames
    // read, and controls land frames after they are asked for.
    engine.feed(&mut src, Some(40), |_| {}).unwrap();
    engine.flush(Duration::from_secs(60));
    for _ in 0..8 {
        let (e, g) = src.exposure();
        if e * g > 12_000.0 {
            break;
        }
        engine.feed(&mut src, Some(20), |_| {}).unwrap();
        engine.flush(Duration::from_secs(60));
    }
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
    while t0.elapsed() < Duration::from_secs(60) {
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

/// The CCM a tuning engineer derives from a camera's published DNG colour
/// matrix (XYZ D65 -> camera, in 1/10000), dcraw's way: camera <- sRGB is the
/// matrix times sRGB -> XYZ, rows scaled so white is neutral, then inverted.
/// Written here from the publications, not taken from the engine. The
/// synthetic sensor is built from the same matrix the same way, so this test
/// checks the pipeline's arithmetic, not that way: `tests/tests/cli/colour.rs`
/// fits the CCM in numpy from a render and the published chart values and
/// scores the result with colour-science, and `engine/tests/dng.rs` holds the
/// matrix-to-CCM conversion to LibRaw's.
#[allow(clippy::needless_range_loop, clippy::unwrap_used)]
fn ccm_from_published(camera_from_xyz: [f64; 9]) -> [[f32; 3]; 3] {
    // IEC 61966-2-1: linear sRGB -> XYZ (D65).
    let xyz_from_srgb = [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ];
    let mut a = [[0.0f64; 6]; 3];
    for r in 0..3 {
        for c in 0..3 {
            a[r][c] = (0..3)
                .map(|k| camera_from_xyz[r * 3 + k] / 1e4 * xyz_from_srgb[k][c])
                .sum();
        }
        let sum: f64 = a[r][..3].iter().sum();
        for c in 0..3 {
            a[r][c] /= sum;
        }
        a[r][3 + r] = 1.0;
    }
    // Gauss-Jordan with partial pivoting.
    for col in 0..3 {
        let p = (col..3)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, p);
        let d = a[col][col];
        for v in a[col].iter_mut() {
            *v /= d;
        }
        for r in 0..3 {
            if r != col {
                let f = a[r][col];
                for c in 0..6 {
                    a[r][c] -= f * a[col][c];
                }
            }
        }
    }
    let mut m = [[0.0f32; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            m[r][c] = a[r][3 + c] as f32;
        }
    }
    m
}

#[test]
fn the_isp_recovers_the_synthetic_ground_truth() {
    use isp_engine::sources::synthetic::Scene;
    use isp_engine::stages::lens_shading::LensShadingParams;
    // The simulated sensor has the colour response of a real camera (the
    // Canon EOS 5D Mark III), a pedestal, vignetting and a colour cast. The
    // tuning is what an engineer would write from the camera's published
    // data: Adobe's matrix for the CCM, and the cast and vignetting measured.
    // No 3A, linear output.
    let mut tuning = Tuning {
        algorithms: vec![],
        ..Default::default()
    };
    tuning.stages.lens_shading = LensShadingParams::radial(17, 13, [0.4; 4]);
    tuning.stages.white_balance.gains = [1.8, 1.0, 1.6];
    // Adobe DNG Converter, Canon EOS 5D Mark III, ColorMatrix2 (D65).
    tuning.stages.ccm.matrix = ccm_from_published([
        6722.0, -635.0, -963.0, -4287.0, 12460.0, 2028.0, -908.0, 2162.0, 5668.0,
    ]);
    assert!(
        (tuning.stages.ccm.matrix[0][0]
            - isp_engine::stages::ccm::CcmParams::default().matrix[0][0])
            .abs()
            > 0.2,
        "the camera's CCM is not the default one"
    );
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

const WAIT: Duration = Duration::from_secs(60);

/// One realtime worker with room for two queued frames.
fn narrow_realtime() -> EngineConfig {
    let mut cfg = EngineConfig {
        max_in_flight: 1000,
        ..Default::default()
    };
    cfg.threading.realtime = isp_engine::threading_manager::LaneConfig {
        workers: 1,
        queue: 2,
        data_threads: 1,
    };
    cfg
}

#[test]
fn an_edit_while_a_frame_is_inside_raw_isp_applies_from_the_next_frame() {
    use isp_engine::envelope::StageId;
    // No 3A, one raw frame repeated: only the edit may change the picture.
    let tuning = Tuning {
        algorithms: vec![],
        ..Default::default()
    };
    let engine = Engine::new(narrow_realtime(), tuning).unwrap();
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Gradient, fmt(), 1, 100);
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    let first = rx.recv_timeout(WAIT).unwrap();
    // Frame 2 is inside RawISP when the edit lands.
    let hold = engine.threading().holds().hold(StageId::RawIsp, 2);
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    assert!(hold.wait_entered(WAIT), "frame 2 never reached RawISP");
    let v2 = engine
        .params
        .edit(|t| t.stages.tone.contrast = 2.0)
        .unwrap();
    hold.release();
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    let second = rx.recv_timeout(WAIT).unwrap();
    let third = rx.recv_timeout(WAIT).unwrap();
    assert_eq!([first.frame_id, second.frame_id, third.frame_id], [1, 2, 3]);
    assert_eq!([first.params_version, second.params_version], [1, 1]);
    assert_eq!(third.params_version, v2);
    assert!(v2 > 1);
    // Frame 2 kept the old picture; frame 3 has the new one.
    assert_eq!(second.preview_rgba(), first.preview_rgba());
    assert_ne!(third.preview_rgba(), first.preview_rgba());
    // And its telemetry rows name the version that made them. (Results
    // held keep their frames in flight.)
    drop((first, second, third));
    assert!(engine.flush(WAIT));
    let snap = engine.telemetry.snapshot();
    for (id, v) in [(2, 1), (3, v2)] {
        let rows: Vec<_> = snap
            .iter()
            .filter(|e| e.kind == EventKind::Stage && e.frame_id == id)
            .collect();
        let stages: Vec<&str> = rows.iter().map(|e| e.stage).collect();
        assert!(
            ["raw_isp", "raw_algo", "fast_isp"]
                .iter()
                .all(|s| stages.contains(s)),
            "{stages:?}"
        );
        assert!(rows.iter().all(|e| e.params_version == v), "{rows:?}");
    }
}

#[test]
fn a_full_realtime_lane_drops_exactly_the_oldest_pending_frames() {
    use isp_engine::envelope::StageId;
    let engine = Engine::new(narrow_realtime(), Tuning::default()).unwrap();
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 1, 10);
    // The one realtime worker is held inside frame 1's RawISP.
    let hold = engine.threading().holds().hold(StageId::RawIsp, 1);
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    assert!(hold.wait_entered(WAIT));
    // Nine more frames: two fit the queue, each one past that drops the oldest.
    engine.feed(&mut src, Some(9), |_| {}).unwrap();
    hold.release();
    let mut got: Vec<(u64, Outcome)> = (0..10)
        .map(|_| {
            let r = rx.recv_timeout(WAIT).unwrap();
            (r.frame_id, r.outcome)
        })
        .collect();
    got.sort_by_key(|g| g.0);
    let want: Vec<(u64, Outcome)> = (1..=10)
        .map(|i| {
            let o = if (2..=8).contains(&i) {
                Outcome::Dropped
            } else {
                Outcome::Ok
            };
            (i, o)
        })
        .collect();
    assert_eq!(got, want);
    assert!(engine.flush(WAIT));
    engine.shutdown();
    // One `dropped` row per dropped frame, on the realtime lane at RawISP.
    let snap = engine.telemetry.snapshot();
    let dropped: Vec<u64> = snap
        .iter()
        .filter(|e| e.outcome == Outcome::Dropped)
        .map(|e| {
            assert_eq!((e.kind, e.stage), (EventKind::Stage, "raw_isp"));
            assert_eq!(e.lane, Some(isp_engine::types::Lane::Realtime));
            e.frame_id
        })
        .collect();
    assert_eq!(dropped, (2..=8).collect::<Vec<_>>());
    let st = engine.rm.stats();
    assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
}

#[test]
fn a_panicking_stage_fails_its_frame_and_the_lane_keeps_serving() {
    use isp_engine::envelope::StageId;
    // One frame in flight at a time: `feed` waits, so nothing is dropped.
    let cfg = EngineConfig {
        max_in_flight: 1,
        ..Default::default()
    };
    let engine = Engine::new(cfg, Tuning::default()).unwrap();
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 1, 5);
    let hold = engine.threading().holds().hold(StageId::FastIsp, 2);
    // (A result held keeps its frame in flight: read each one.)
    let result = || {
        let r = rx.recv_timeout(WAIT).unwrap();
        (r.frame_id, r.outcome, r.error.clone(), r.preview.is_some())
    };
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    let mut got = vec![result()];
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    assert!(hold.wait_entered(WAIT));
    hold.panic("injected fault in fast_isp");
    got.push(result());
    for _ in 0..3 {
        engine.feed(&mut src, Some(1), |_| {}).unwrap();
        got.push(result());
    }
    got.sort_by_key(|g| g.0);
    assert_eq!(
        got[1],
        (
            2,
            Outcome::Failed,
            Some("panic: injected fault in fast_isp".into()),
            false
        )
    );
    for g in got.iter().filter(|g| g.0 != 2) {
        assert_eq!((g.1, g.3), (Outcome::Ok, true), "{g:?}");
    }
    assert!(engine.flush(WAIT));
    engine.shutdown();
    let snap = engine.telemetry.snapshot();
    let failed: Vec<_> = snap
        .iter()
        .filter(|e| e.outcome == Outcome::Failed)
        .map(|e| (e.frame_id, e.stage))
        .collect();
    assert_eq!(failed, [(2, "fast_isp")]);
    let st = engine.rm.stats();
    assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
}

#[test]
fn a_housekeeper_sweep_expires_a_reservation_and_writes_its_pool_row() {
    use isp_engine::resource_manager::{BufferKind, BufferSpec, RmError};
    let cfg = EngineConfig {
        housekeeper: isp_engine::housekeeper::HousekeeperConfig {
            // No timer sweep during the test: the sweeps below are the only ones.
            period: Duration::from_secs(3600),
            stale_pin: Duration::from_secs(3600),
        },
        ..Default::default()
    };
    let engine = Engine::new(cfg, Tuning::default()).unwrap();
    let spec = BufferSpec::new(BufferKind::Rgb16, 64, 32);
    let t0 = isp_engine::clock::now_ns();
    let ttl = 5_000_000;
    engine.rm.reserve_for_plan(41, 2, spec, ttl).unwrap();
    engine
        .rm
        .reserve_for_plan(42, 1, spec, 3600 * 1_000_000_000)
        .unwrap();
    assert_eq!(engine.rm.stats().reserved, 3);
    let rows = |e: &Engine| -> Vec<String> {
        e.telemetry
            .snapshot()
            .iter()
            .filter(|r| r.kind == EventKind::Pool)
            .map(|r| r.detail.clone())
            .collect()
    };
    // Before its time: nothing expires.
    let before = engine.sweep(t0).unwrap();
    assert!(before.expired_plans.is_empty());
    assert_eq!(engine.rm.stats().reserved, 3);
    // Past its time: plan 41 goes, 42 stays; the sweep's row says so.
    let n = rows(&engine).len();
    let after = engine.sweep(t0 + 2 * ttl + 1_000_000_000).unwrap();
    assert_eq!(after.expired_plans, vec![41]);
    assert_eq!(engine.rm.stats().reserved, 1);
    let r = rows(&engine);
    assert_eq!(r.len(), n + 1);
    let snap = engine.telemetry.snapshot();
    let expired: Vec<_> = snap
        .iter()
        .filter(|e| e.detail.contains("expired_plans="))
        .collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    let row = &expired[0];
    assert!(row.detail.contains("expired_plans=[41]"), "{row:?}");
    assert!(row.detail.contains("reserved=1"), "{row:?}");
    assert_eq!(
        (row.kind, row.frame_id, row.lane, row.stage),
        (EventKind::Pool, 0, None, "housekeeper")
    );
    // An expired plan cannot be committed; the other one can.
    assert!(matches!(
        engine.rm.commit_reservation(41, "late"),
        Err(RmError::UnknownPlan(41))
    ));
    let bufs = engine.rm.commit_reservation(42, "fusion").unwrap();
    assert_eq!(bufs.len(), 1);
    for b in bufs {
        engine.discard(b);
    }
    on_dispatcher(&engine);
    assert_eq!(engine.rm.stats().allocated, 0);
    engine.shutdown();
}

/// Run a closure on the engine's dispatcher and wait for it: everything
/// posted before it (releases, unpins) has happened.
fn on_dispatcher(engine: &Engine) {
    engine.call(|_| ()).expect("the dispatcher ran the call");
}

#[test]
fn a_frame_that_fails_to_submit_leaves_nothing_in_flight() {
    for path in [PathMode::Fast, PathMode::Both] {
        let engine = Engine::new(
            EngineConfig {
                path,
                ..Default::default()
            },
            Tuning::default(),
        )
        .unwrap();
        // A raw buffer handed back already: its handle is stale, so the
        // submit cannot pin it after taking the frame's other buffers.
        let raw = engine.acquire_raw(&fmt()).unwrap();
        let stale = raw.clone();
        engine.discard(raw);
        on_dispatcher(&engine);
        let meta = isp_engine::sources::FrameMeta {
            sequence: 0,
            timestamp_ns: 0,
            exposure_us: 0.0,
            analogue_gain: 1.0,
            ..Default::default()
        };
        let err = engine.submit(stale, meta, fmt()).unwrap_err();
        assert!(
            matches!(err, isp_engine::pipeline::EngineError::Buffer(_)),
            "{err}"
        );
        assert!(
            engine.flush(Duration::from_secs(2)),
            "{path:?}: the refused frame still counts as in flight"
        );
        on_dispatcher(&engine);
        let st = engine.rm.stats();
        assert_eq!((st.allocated, st.pins), (0, 0), "{path:?}: {st:?}");
    }
}

#[test]
fn ae_works_within_the_sensor_the_engine_is_configured_for() {
    // A sensor whose longest exposure is 2 ms: AE must not ask for more,
    // whatever the scene (the checker on its dark background wants more
    // light than 2 ms gives).
    let sensor = isp_engine::algorithms::SensorConfig {
        max_exposure_us: 2000.0,
        ..Default::default()
    };
    let engine = Engine::new(
        EngineConfig {
            sensor,
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap();
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 2, 4);
    engine.feed(&mut src, None, |_| {}).unwrap();
    assert!(engine.flush(Duration::from_secs(30)));
    let ipa = engine.ipa();
    assert!(ipa.frames_processed > 0, "{ipa:?}");
    assert!(
        ipa.exposure_us <= 2000.0 && ipa.exposure_us >= sensor.min_exposure_us,
        "AE asked for {} us on a sensor that stops at 2000",
        ipa.exposure_us
    );
    // The extra light it needs goes into gain.
    assert!(ipa.analogue_gain > 1.0, "{ipa:?}");
}

#[test]
fn every_algorithm_run_counts_even_when_frames_overlap() {
    // Three frames in flight: a frame's 3A context is taken before the
    // previous frame's result is folded. The count is still every run.
    let engine = Engine::new(EngineConfig::default(), Tuning::default()).unwrap();
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 2, 8);
    assert_eq!(engine.feed(&mut src, None, |_| {}).unwrap(), 8);
    assert!(engine.flush(Duration::from_secs(30)));
    assert_eq!(engine.ipa().frames_processed, 8);
}

#[test]
fn a_replayed_frame_shows_the_edit_and_leaves_3a_alone() {
    // Paused on a frame, an edit is shown by making that frame again: the
    // preview under the parameters now, with no 3A run (its state, the
    // controls and the capture path stay as they were).
    let cfg = EngineConfig {
        max_in_flight: 16,
        ..Default::default()
    };
    let engine = Engine::new(cfg, Tuning::default()).unwrap();
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 1, 6);
    engine.feed(&mut src, None, |_| {}).unwrap();
    let first: Vec<_> = (0..6)
        .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    let last = first.last().unwrap().preview_rgba().unwrap();
    drop(first);
    assert!(engine.flush(Duration::from_secs(30)));
    let ipa = engine.ipa();
    let v = engine
        .params
        .edit(|t| t.stages.white_balance.enabled = false)
        .unwrap();
    let mut again = MemorySource::synthetic(Scene::Checker, fmt(), 1, 1);
    let mut ids = Vec::new();
    assert_eq!(
        engine
            .feed_replay(&mut again, None, |id| ids.push(id))
            .unwrap(),
        1
    );
    let r = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(r.frame_id, ids[0]);
    assert_eq!(r.params_version, v);
    assert!(r.stats.is_some(), "a replay still has its statistics");
    assert_ne!(r.preview_rgba().unwrap(), last, "white balance off shows");
    drop(r);
    assert!(engine.flush(Duration::from_secs(30)));
    assert_eq!(engine.ipa(), ipa, "no 3A ran on the replay");
    let stages: Vec<&str> = engine
        .telemetry
        .snapshot()
        .iter()
        .filter(|e| e.kind == EventKind::Stage && e.frame_id == ids[0])
        .map(|e| e.stage)
        .collect();
    assert_eq!(stages, ["raw_isp", "raw_algo", "fast_isp"]);
    engine.shutdown();
}

/// A feed waiting for a free slot (`max_in_flight` reached: a result held,
/// its frame still in flight) when the engine shuts down gives up with
/// `Closed` instead of waiting for a slot that cannot come (the studio's
/// exit while its player fed hung in this wait).
#[test]
fn a_feed_waiting_for_a_slot_ends_when_the_engine_shuts_down() {
    use isp_engine::pipeline::EngineError;
    use std::sync::Arc;
    let engine = Arc::new(
        Engine::new(
            EngineConfig {
                max_in_flight: 1,
                ..Default::default()
            },
            Tuning::default(),
        )
        .unwrap(),
    );
    let rx = engine.subscribe(true);
    let mut src = MemorySource::synthetic(Scene::Checker, fmt(), 1, 3);
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    // Held: the first frame stays in flight, so the next feed waits.
    let held = rx.recv_timeout(WAIT).unwrap();
    let (tx, done) = std::sync::mpsc::channel();
    let e = engine.clone();
    std::thread::spawn(move || {
        let _ = tx.send(e.feed(&mut src, Some(1), |_| {}));
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        done.try_recv().is_err(),
        "the second feed did not wait for the held frame"
    );
    engine.shutdown();
    let r = done
        .recv_timeout(Duration::from_secs(20))
        .expect("the feed still waits for a slot after shutdown");
    assert!(matches!(r, Err(EngineError::Closed)), "{r:?}");
    drop(held);
}
