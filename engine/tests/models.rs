//! The ModelManager and the model stage: the shipped ONNX model (written by
//! `scripts/make_awb_model.py`) against the same function computed here, the
//! errors for missing, malformed and mis-shaped files, and the stage on the
//! background lane of a running engine, switched off and on live.

#![allow(clippy::unwrap_used)]

use isp_engine::algorithms::awb_model::ModelAwb;
use isp_engine::gpu::Backend;
use isp_engine::models::{Model, ModelError, ModelManager, ModelRole};
use isp_engine::pipeline::{Engine, EngineConfig, PathMode};
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::telemetry::EventKind;
use isp_engine::tuning::{AlgorithmBlock, Tuning};
use isp_engine::types::{BayerOrder, Lane, Outcome, Packing, RawFormat};
use std::path::PathBuf;
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shipped() -> PathBuf {
    repo().join("assets/models/awb_shades_of_grey.onnx")
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/models")
        .join(name)
}

/// Shades of Grey (p = 6) over zone means, as the script documents it,
/// written out here in f64 with no ONNX involved.
fn shades_of_grey(x: &[f32], zones: usize) -> [f64; 3] {
    let p = 6.0f64;
    let mut num = [0.0f64; 3];
    let mut den = 0.0f64;
    for z in 0..zones {
        let v = [x[z] as f64, x[zones + z] as f64, x[2 * zones + z] as f64];
        let m = v[0].max(v[1]).max(v[2]);
        let w = (20.0 * (0.95 - m)).clamp(0.0, 1.0) * (100.0 * (m - 0.01)).clamp(0.0, 1.0);
        for c in 0..3 {
            num[c] += w * v[c].powf(p);
        }
        den += w;
    }
    let e = num.map(|n| (n / (den + 1e-6)).powf(1.0 / p));
    e.map(|ec| e[1] / (ec + 1e-6))
}

/// A deterministic pseudo-random zone grid with some clipped and some dark
/// zones (which the model must leave out).
fn grid(seed: u64, zones: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) as f32
    };
    let cast = [0.5 + next(), 1.0, 0.5 + next()];
    let mut x = vec![0.0f32; 3 * zones];
    for z in 0..zones {
        let level = next();
        let kind = next();
        for c in 0..3 {
            let v = if kind < 0.1 {
                0.99 // clipped
            } else if kind < 0.2 {
                0.004 * next() // black
            } else {
                (level * cast[c] * (0.8 + 0.4 * next())).min(0.9)
            };
            x[c * zones + z] = v;
        }
    }
    x
}

#[test]
fn the_shipped_model_computes_shades_of_grey() {
    let m = Model::load(&shipped(), ModelRole::AwbFromZones).unwrap();
    assert_eq!(m.input_shape(), [1, 3, 12, 16]);
    assert_eq!(m.output_shape(), [1, 3]);
    let zones = 12 * 16;
    let mut worst = 0.0f64;
    for seed in 0..50 {
        let x = grid(seed, zones);
        let got = m.run(&x).unwrap();
        let want = shades_of_grey(&x, zones);
        for c in 0..3 {
            worst = worst.max((got[c] as f64 - want[c]).abs() / want[c]);
        }
    }
    eprintln!("worst relative difference over 50 grids: {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
    // It is not grey world: a grid where the two disagree.
    let x = grid(7, zones);
    let gw = {
        let s: Vec<f64> = (0..3)
            .map(|c| {
                x[c * zones..(c + 1) * zones]
                    .iter()
                    .map(|&v| v as f64)
                    .sum()
            })
            .collect();
        s[1] / s[0]
    };
    let sog = m.run(&x).unwrap()[0] as f64;
    assert!((gw - sog).abs() > 0.01, "grey world {gw} vs model {sog}");
    // A wrong input length is an error naming the file.
    let e = m.run(&x[..10]).unwrap_err().to_string();
    assert!(
        e.contains("awb_shades_of_grey.onnx") && e.contains("576"),
        "{e}"
    );
}

#[test]
fn bad_files_are_errors_naming_the_file_and_the_shapes() {
    let missing = repo().join("assets/models/nope.onnx");
    let e = Model::load(&missing, ModelRole::AwbFromZones).unwrap_err();
    assert!(matches!(e, ModelError::Missing { .. }));
    assert!(e.to_string().contains("nope.onnx"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf \xff\xfe\x00\x01").unwrap();
    let e = Model::load(&junk, ModelRole::AwbFromZones).unwrap_err();
    assert!(matches!(e, ModelError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("junk.onnx"), "{e}");
    // Truncated: the shipped model's first half.
    let half = dir.path().join("half.onnx");
    let bytes = std::fs::read(shipped()).unwrap();
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let e = Model::load(&half, ModelRole::AwbFromZones).unwrap_err();
    assert!(e.to_string().contains("half.onnx"), "{e}");

    let e = Model::load(&fixture("awb_two_gains.onnx"), ModelRole::AwbFromZones).unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, ModelError::Shape { .. }), "{s}");
    assert!(
        s.contains("awb_two_gains.onnx")
            && s.contains("input [1, 3, 12, 16]")
            && s.contains("output [1, 2]")
            && s.contains("[1, 3]"),
        "{s}"
    );
    let e = Model::load(&fixture("awb_any_batch.onnx"), ModelRole::AwbFromZones).unwrap_err();
    assert!(e.to_string().contains("input [?, 3, 12, 16]"), "{e}");
}

#[test]
fn the_manager_loads_a_file_once_and_again_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    std::fs::copy(shipped(), &path).unwrap();
    let mm = ModelManager::new();
    let a = mm.load(&path, ModelRole::AwbFromZones).unwrap();
    let b = mm.load(&path, ModelRole::AwbFromZones).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(mm.loads(), 1);
    // Rewritten with a model that does not fit: the error, not the old copy.
    std::fs::copy(fixture("awb_two_gains.onnx"), &path).unwrap();
    assert!(mm.load(&path, ModelRole::AwbFromZones).is_err());
    std::fs::copy(shipped(), &path).unwrap();
    let c = mm.load(&path, ModelRole::AwbFromZones).unwrap();
    assert_eq!(mm.loads(), 2);
    assert_eq!(c.input_shape(), a.input_shape());
}

fn model_block(path: &std::path::Path, every: u32) -> AlgorithmBlock {
    AlgorithmBlock {
        name: ModelAwb::NAME.into(),
        enabled: true,
        params: serde_json::json!({"model": path, "speed": 1.0, "every": every}),
    }
}

#[test]
fn a_tuning_naming_a_bad_model_is_refused_with_the_file() {
    let mut t = Tuning {
        algorithms: vec![model_block(&repo().join("assets/models/missing.onnx"), 1)],
        ..Default::default()
    };
    let e = Tuning::from_json(&t.to_json(), "t.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("algorithms[0].params.model") && e.contains("missing.onnx"),
        "{e}"
    );
    t.algorithms = vec![model_block(&fixture("awb_two_gains.onnx"), 1)];
    let e = Tuning::from_json(&t.to_json(), "t.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("output [1, 2]"), "{e}");
    t.algorithms = vec![model_block(&shipped(), 1)];
    Tuning::from_json(&t.to_json(), "t.json").unwrap();
}

#[test]
fn a_relative_model_path_is_taken_beside_the_tuning_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sensor");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(shipped(), dir.join("awb.onnx")).unwrap();
    let t = Tuning {
        algorithms: vec![model_block(std::path::Path::new("awb.onnx"), 1)],
        ..Default::default()
    };
    let file = dir.join("tuning.json");
    t.save(&file).unwrap();
    // Loaded from anywhere, the model is the one beside the file; the
    // tuning keeps the path as written, so it saves as it was read.
    let loaded = Tuning::load(&file).unwrap();
    assert_eq!(loaded.algorithms[0].params["model"], "awb.onnx");
    assert_eq!(
        loaded.block_params(&loaded.algorithms[0])["model"],
        dir.join("awb.onnx").display().to_string()
    );
    let sensor = isp_engine::algorithms::SensorConfig::default();
    assert_eq!(loaded.algorithms(&sensor).len(), 1);
    let copy = tmp.path().join("copy.json");
    loaded.save(&copy).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&copy).unwrap()).unwrap();
    assert_eq!(saved["algorithms"][0]["params"]["model"], "awb.onnx");
    // The same text read with no folder looks in the working directory,
    // where there is no such file: refused, naming it.
    let e = Tuning::from_json(&t.to_json(), "t.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("awb.onnx") && !e.contains("sensor"), "{e}");
    // A relative path that is not beside the file is the working
    // directory's (the engine crate's here, where the shipped path does
    // not resolve): refused naming the path as written.
    let t = Tuning {
        algorithms: vec![model_block(
            std::path::Path::new("assets/models/awb_shades_of_grey.onnx"),
            1,
        )],
        ..Default::default()
    };
    let e = Tuning::from_json_in(&t.to_json(), "t.json", Some(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("assets/models/awb_shades_of_grey.onnx") && !e.contains("sensor"),
        "{e}"
    );
}

/// Model rows of the telemetry: (params version, detail).
fn model_rows(engine: &Engine) -> Vec<(u64, String)> {
    engine
        .telemetry
        .snapshot()
        .iter()
        .filter(|e| e.kind == EventKind::Stage && e.stage == "model")
        .map(|e| {
            assert_eq!(e.lane, Some(Lane::Background));
            assert_eq!(e.outcome, Outcome::Ok, "{}", e.detail);
            (e.params_version, e.detail.clone())
        })
        .collect()
}

#[test]
fn the_model_stage_runs_on_the_background_lane_and_switches_live() {
    let mut tuning = Tuning::default();
    // AE stays; the model is the only AWB.
    tuning
        .algorithms
        .retain(|b| b.name != isp_engine::algorithms::awb::GreyWorldAwb::NAME);
    tuning.algorithms.insert(0, model_block(&shipped(), 2));
    // Gains far from the sensor's cast (1.8, 1, 1.6), so the model's
    // estimate is seen to move them whichever frame it last ran on.
    tuning.stages.white_balance.gains = [1.0, 1.0, 1.0];
    let engine = Engine::new(
        EngineConfig {
            backend: Backend::Cpu,
            path: PathMode::Fast,
            ..Default::default()
        },
        tuning,
    )
    .unwrap();
    // Results are dropped as they come (each pins its preview buffer): the
    // count of realtime previews and each frame's statistics are kept.
    let seen = std::sync::Arc::new(std::sync::Mutex::new((
        0usize,
        std::collections::HashMap::new(),
    )));
    let rx = engine.subscribe(true);
    let keep = seen.clone();
    std::thread::spawn(move || {
        for r in rx {
            if r.lane == Lane::Realtime && r.outcome == Outcome::Ok {
                let mut k = keep.lock().unwrap();
                k.0 += 1;
                if let Some(st) = r.stats.clone() {
                    k.1.insert(r.frame_id, st);
                }
            }
        }
    });
    let mut src = SyntheticSource::new(
        Scene::Checker,
        RawFormat::new(320, 240, 10, BayerOrder::Rggb, Packing::Csi2),
    );
    let start = engine.ipa().wb_gains;
    let fed = engine.feed(&mut src, Some(24), |_| {}).unwrap();
    assert_eq!(fed, 24);
    assert!(engine.flush(Duration::from_secs(30)));
    let rows = model_rows(&engine);
    // Every other frame at most (and never queued behind itself).
    assert!(!rows.is_empty() && rows.len() <= 12, "{}", rows.len());
    assert!(rows[0].1.contains("infer_ms=") && rows[0].1.contains("awb_shades_of_grey.onnx"));
    // The realtime lane published every frame, none of them waited for it.
    let (previews, stats) = seen.lock().unwrap().clone();
    assert_eq!(previews, 24);
    // The engine's gains (speed 1) are the model's estimate of the scene
    // for the frame of its last run, computed here from the realtime lane's
    // statistics of that frame (which frame that is depends on how busy
    // the machine is: a run is skipped while one is in flight, and the
    // exposure is still settling).
    let last_model_frame = engine
        .telemetry
        .snapshot()
        .iter()
        .filter(|e| e.kind == EventKind::Stage && e.stage == "model")
        .map(|e| e.frame_id)
        .last()
        .unwrap();
    let st = stats[&last_model_frame].clone();
    assert_eq!((st.zones_x, st.zones_y), (16, 12));
    let want = shades_of_grey(&ModelAwb::input(&st), 16 * 12);
    let got = engine.ipa().wb_gains;
    assert!(engine.ipa().awb_active);
    for c in [0, 2] {
        assert!(
            (got[c] as f64 - want[c]).abs() / want[c] < 0.02,
            "gains {got:?} vs {want:?} (started at {start:?})"
        );
        assert!((got[c] - start[c]).abs() > 0.3, "{got:?} {start:?}");
    }
    // And they are what that run wrote in its row.
    let row = &rows.last().unwrap().1;
    let written: Vec<f32> = row
        .split_once("gains=")
        .unwrap()
        .1
        .split(' ')
        .next()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    for c in 0..3 {
        assert!((got[c] - written[c]).abs() < 1e-3, "{got:?} vs {row}");
    }

    // Off, live: no model step after the edit's version.
    let off = engine
        .params
        .edit(|t| t.algorithms[0].enabled = false)
        .unwrap();
    let before = model_rows(&engine).len();
    engine.feed(&mut src, Some(12), |_| {}).unwrap();
    assert!(engine.flush(Duration::from_secs(30)));
    let after = model_rows(&engine);
    assert_eq!(after.len(), before);
    assert!(after.iter().all(|(v, _)| *v < off));
    // On again, with a new pace.
    let on = engine
        .params
        .edit(|t| {
            t.algorithms[0].enabled = true;
            t.algorithms[0].params["every"] = serde_json::json!(1);
        })
        .unwrap();
    engine.feed(&mut src, Some(12), |_| {}).unwrap();
    assert!(engine.flush(Duration::from_secs(30)));
    let again = model_rows(&engine);
    assert!(again.iter().any(|(v, _)| *v >= on), "{again:?}");
}

#[test]
fn a_frame_with_nothing_to_estimate_from_gives_no_estimate() {
    use isp_engine::algorithms::Algorithm;
    use isp_engine::algorithms::awb_model::ModelStage;
    use isp_engine::stages::stats::StatsParams;
    let mut a = ModelAwb::default();
    a.init(&serde_json::json!({"model": shipped()})).unwrap();
    let (w, h) = (64, 48);
    // Black, then clipped: every zone weighs nothing.
    for level in [0u16, 65535] {
        let m = vec![level; w * h];
        let e = a
            .estimate(
                &StatsParams::default(),
                &no_shading(),
                BayerOrder::Rggb,
                w,
                h,
                &m,
            )
            .unwrap();
        assert!(e.is_none(), "{level}: {e:?}");
    }
    // A grey frame: gains of one.
    let m = vec![20000u16; w * h];
    let e = a
        .estimate(
            &StatsParams::default(),
            &no_shading(),
            BayerOrder::Rggb,
            w,
            h,
            &m,
        )
        .unwrap()
        .unwrap();
    for g in e.wb_gains {
        assert!((g - 1.0).abs() < 1e-3, "{:?}", e.wb_gains);
    }
}

#[test]
fn the_stage_reads_a_sample_of_rows_and_estimates_as_from_all_of_them() {
    use isp_engine::algorithms::Algorithm;
    use isp_engine::algorithms::awb_model::{ModelStage, sampled_rows};
    use isp_engine::stages::stats::StatsParams;
    let mut a = ModelAwb::default();
    a.init(&serde_json::json!({"model": shipped()})).unwrap();
    let (w, h) = (1920, 1080);
    let step = a.row_step(h);
    assert!(step >= 4, "1080 rows read every {step}");
    assert_eq!(a.row_step(240), 1, "a small frame is read whole");
    // A scene whose colour changes across and down the frame (patches of
    // colour over a tinted gradient) with sensor-like noise, as a mosaic.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut m = vec![0u16; w * h];
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
            let patch = ((x / 160 + y / 120) % 5) as f32 / 5.0;
            let rgb = [
                0.2 + 0.5 * u * patch,
                0.3 + 0.2 * v,
                0.15 + 0.6 * (1.0 - u) * v * (1.0 - patch),
            ];
            let c = match (y % 2, x % 2) {
                (0, 0) => 0,
                (1, 1) => 2,
                _ => 1,
            };
            m[y * w + x] = ((rgb[c] + 0.02 * noise()) * 50000.0) as u16;
        }
    }
    let sp = StatsParams::default();
    let full = a
        .estimate(&sp, &no_shading(), BayerOrder::Rggb, w, h, &m)
        .unwrap()
        .unwrap();
    let rows = sampled_rows(h, step);
    assert_eq!(rows.len(), 2 * (h / 2).div_ceil(step));
    let sub: Vec<u16> = rows
        .iter()
        .flat_map(|&y| m[y * w..(y + 1) * w].iter().copied())
        .collect();
    let part = a
        .estimate(&sp, &no_shading(), BayerOrder::Rggb, w, rows.len(), &sub)
        .unwrap()
        .unwrap();
    for (f, p) in full.wb_gains.iter().zip(part.wb_gains) {
        assert!(
            (p / f - 1.0).abs() < 0.005,
            "{:?} vs {:?}",
            full.wb_gains,
            part.wb_gains
        );
    }
    // The scene is not neutral: a sample that lost its colour would show.
    assert!(
        (full.wb_gains[0] - full.wb_gains[2]).abs() > 0.05,
        "{:?}",
        full.wb_gains
    );
}

/// Lens shading off: the zone means as measured.
fn no_shading() -> isp_engine::stages::lens_shading::LensShadingParams {
    isp_engine::stages::lens_shading::LensShadingParams {
        enabled: false,
        ..Default::default()
    }
}
