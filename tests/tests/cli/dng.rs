//! `isp export-dng` read back by LibRaw (rawpy, `scripts/dng_reference.py
//! check`), and DNGs as a source (`dng:PATH`, a folder).

use crate::common::*;
use isp_e2e::{reference_python, repo_root};
use isp_engine::sources::{self, SourceOptions};
use isp_engine::stages::unpack;
use isp_engine::tuning::Tuning;
use sha2::{Digest, Sha256};
use std::process::Command;

/// A tuning with every value the DNG carries set apart from the defaults,
/// and 3A off so each frame's white balance is the tuning's.
fn tuning() -> Tuning {
    let mut t = Tuning::default();
    t.stages.black_level.levels = [60, 62, 63, 65];
    t.stages.black_level.white_level = Some(1000);
    t.stages.white_balance.gains = [2.0, 1.0, 1.5];
    t.stages.ccm.matrix = [[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]];
    for a in &mut t.algorithms {
        a.enabled = false;
    }
    t
}

#[test]
fn export_dng_reads_back_in_libraw_bit_for_bit() {
    let Some(py) = reference_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tp = tmp.path().join("tuning.json");
    tuning().save(&tp).unwrap();
    let out = tmp.path().join("dng");
    // CSI-2 packed RAW10 in, so the export unpacks.
    let spec = "synthetic:zoneplate";
    let geo = [
        "--width", "128", "--height", "96", "--bits", "10", "--packed", "--bayer", "GBRG",
    ];
    let out_s = s(&out);
    let mut args = vec!["export-dng", spec, "--frames", "3", "--out", &out_s];
    args.extend(geo);
    let t = s(&tp);
    args.extend(["--tuning", &t]);
    let run = isp(&args).ok();
    let files: Vec<String> = run.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 3);

    // The same frames read straight from the source, unpacked here.
    let opts = SourceOptions {
        width: Some(128),
        height: Some(96),
        bits: Some(10),
        packed: true,
        bayer: isp_engine::types::BayerOrder::parse("GBRG"),
        ..Default::default()
    };
    let mut src = sources::open(Some(spec), &opts).unwrap();
    let fmt = src.format();
    let mut raw = vec![0u8; fmt.frame_bytes()];
    let mut frames = Vec::new();
    for _ in 0..3 {
        let meta = src.next_frame(&mut raw).unwrap().unwrap();
        let mut bytes = Vec::new();
        let mut row = vec![0u16; 128];
        for y in 0..96 {
            let st = y * fmt.stride as usize;
            unpack::unpack_row(&fmt, &raw[st..st + fmt.min_stride() as usize], &mut row);
            bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
        }
        frames.push((format!("{:x}", Sha256::digest(&bytes)), meta));
    }

    let o = Command::new(py)
        .arg(repo_root().join("scripts/dng_reference.py"))
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got = v["files"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (f, (sha, meta)) in got.iter().zip(&frames) {
        assert!(f.get("error").is_none(), "{f}");
        assert_eq!(
            (f["width"].as_u64(), f["height"].as_u64()),
            (Some(128), Some(96))
        );
        assert_eq!(f["raw_pattern_str"], "GBRG");
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            sha,
            "samples differ from the source's"
        );
        // LibRaw's black levels by colour (R, G, B, G2): GBRG puts Gb first.
        let bl: Vec<u64> = f["black_level_per_channel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(bl[0], 60);
        assert_eq!(bl[2], 65);
        let mut g = [bl[1], bl[3]];
        g.sort();
        assert_eq!(g, [62, 63]);
        assert_eq!(f["white_level"], 1000);
        // AsShotNeutral = 1 / the frame's white balance.
        let wb: Vec<f64> = f["camera_whitebalance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for (a, b) in wb.iter().zip([2.0, 1.0, 1.5]) {
            assert!((a - b).abs() < 1e-5, "{wb:?}");
        }
        // The colour LibRaw derives from the written ColorMatrix (dcraw's
        // cam_xyz_coeff): its camera -> sRGB matrix is the tuning's CCM, and
        // the D65 white balance it implies is the frame's (the exporter
        // writes the frame's neutral as the matrix's white). 2e-3: LibRaw's
        // f32 and dcraw's rounded sRGB constants.
        let ccm = tuning().stages.ccm.matrix;
        let rgb_cam = f64_rows(&f["rgb_cam"]);
        for (r, w) in ccm.iter().zip(&rgb_cam) {
            for (a, b) in r.iter().zip(w) {
                assert!((*a as f64 - b).abs() < 2e-3, "{rgb_cam:?} vs {ccm:?}");
            }
        }
        let day: Vec<f64> = f["daylight_whitebalance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for (c, want) in [2.0, 1.0, 1.5].iter().enumerate() {
            let got = day[c] / day[1];
            assert!((got - want).abs() < 1e-3, "daylight wb {day:?}");
        }
        let iso = f["iso"].as_f64().unwrap();
        assert_eq!(iso, (meta.analogue_gain * 100.0).round() as f64, "{f}");
        let shutter = f["shutter"].as_f64().unwrap();
        let want = meta.exposure_us as f64 / 1e6;
        assert!((shutter - want).abs() < want * 1e-6, "{shutter} vs {want}");
    }

    // The exported folder is a source again, with the same samples.
    let back = isp(&["info", &format!("dng:{}", s(&out))]).ok().json();
    assert_eq!(back["frames"], 3);
    assert_eq!(back["format"]["bayer"], "GBRG");
}

/// Mean R, G, B of a `n` x `n` box of an RGB(A) PNG at (x, y).
fn box_mean(p: &Png, x: usize, y: usize, n: usize) -> [f64; 3] {
    let mut m = [0.0; 3];
    for yy in y..y + n {
        for xx in x..x + n {
            for (c, v) in m.iter_mut().enumerate() {
                *v += p.at(xx, yy, c) as f64;
            }
        }
    }
    m.map(|v| v / (n * n) as f64)
}

#[test]
fn a_dng_is_developed_with_its_own_white_balance_and_exposure() {
    let tmp = tempfile::tempdir().unwrap();
    // A colour chart, exported with 3A off and grey world's opposite
    // gains: the file's own AsShotNeutral is wrong on purpose.
    let mut t = tuning();
    // The synthetic sensor's own pedestal.
    t.stages.black_level.levels = [64; 4];
    t.stages.black_level.white_level = None;
    t.stages.white_balance.gains = [1.0, 1.0, 1.0];
    let tp = tmp.path().join("t.json");
    t.save(&tp).unwrap();
    let dng = tmp.path().join("in");
    isp(&[
        "export-dng",
        "synthetic:checker",
        "--width",
        "320",
        "--height",
        "240",
        "--frames",
        "1",
        "--tuning",
        &s(&tp),
        "--out",
        &s(&dng),
    ])
    .ok();
    let file = format!("dng:{}", s(&dng.join("frame_000000.dng")));
    // Developed with the file's tuning: its own white balance (AsShotNeutral,
    // AWB off, as LibRaw, darktable and Lightroom open a DNG), AE settling
    // on the frame.
    let out = tmp.path().join("out");
    let r = isp(&["process", &file, "--backend", "cpu", "--out", &s(&out)]).ok();
    assert!(
        r.stderr
            .contains("AsShotNeutral is the white balance: awb.grey_world off"),
        "{}",
        r.stderr
    );
    let csv = std::fs::read_to_string(out.join("telemetry.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains(",still,") && l.contains("settled")),
        "no still note:\n{csv}"
    );
    // AWB as a choice: the built-in tuning (grey world and AE on).
    let awb = tmp.path().join("awb.json");
    Tuning::default().save(&awb).unwrap();
    let out_awb = tmp.path().join("awb");
    isp(&[
        "process",
        &file,
        "--backend",
        "cpu",
        "--tuning",
        &s(&awb),
        "--out",
        &s(&out_awb),
    ])
    .ok();
    // And with AWB and AE off (the gains of the file, no exposure).
    let mut off = Tuning::default();
    for a in &mut off.algorithms {
        a.enabled = false;
    }
    off.stages.white_balance.gains = [1.0, 1.0, 1.0];
    let op = tmp.path().join("off.json");
    off.save(&op).unwrap();
    let out_off = tmp.path().join("off");
    isp(&[
        "process",
        &file,
        "--backend",
        "cpu",
        "--tuning",
        &s(&op),
        "--out",
        &s(&out_off),
    ])
    .ok();

    // The chart's grey row (the last row of patches, columns 2 to 5).
    let cast = |p: &Png| {
        let mut worst: f64 = 0.0;
        for col in 1..5 {
            let [r, g, b] = box_mean(p, 20 + 48 * col + 16, 20 + 51 * 3 + 14, 12);
            worst = worst.max((r / g - 1.0).abs()).max((b / g - 1.0).abs());
        }
        worst
    };
    let own = cast(&read_png(&out.join("frame_000000.png")));
    let c_on = cast(&read_png(&out_awb.join("frame_000000.png")));
    let c_off = cast(&read_png(&out_off.join("frame_000000.png")));
    eprintln!(
        "grey cast: {own:.3} as shot, {c_on:.3} with AWB, {c_off:.3} with the file's gains and no 3A"
    );
    // As shot is the file's balance: its cast (wrong on purpose) stays
    // (the file's CCM and AE's exposure make it differ a little from no 3A).
    assert!(
        own > 3.0 * c_on && (own / c_off - 1.0).abs() < 0.2,
        "as shot {own:.3} vs AWB {c_on:.3} and the file's gains with no 3A {c_off:.3}"
    );
    // Grey world on a colour chart keeps a bias of its own (about 10% of
    // red here); the file's unit gains leave a far stronger cast.
    assert!(c_on < 0.15, "greys still cast after AWB: {c_on:.3}");
    assert!(
        c_on * 3.0 < c_off,
        "AWB {c_on:.3} vs the file's gains {c_off:.3}"
    );
}

/// The ColorMatrix `export-dng` writes is the camera's under D65 where the
/// tuning knows it (its CT curve's grey at 6500 K), labelled D65, so
/// LibRaw's daylight balance is that grey's and not the frame's; without a
/// curve it is the frame's own light's, labelled unknown (0).
#[test]
fn export_dng_writes_the_daylight_neutral_the_tuning_knows() {
    let Some(py) = reference_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut with_curve = tuning();
    with_curve
        .algorithms
        .push(isp_engine::tuning::AlgorithmBlock {
            name: "awb.ct_curve".into(),
            enabled: false,
            params: serde_json::json!({"ct_curve": [[2800.0, 0.8, 0.4], [6500.0, 0.5, 0.8]]}),
        });
    let mut files = Vec::new();
    for (name, t) in [("curve", with_curve), ("none", tuning())] {
        let tp = tmp.path().join(format!("{name}.json"));
        t.save(&tp).unwrap();
        let out = tmp.path().join(name);
        isp(&[
            "export-dng",
            "synthetic:checker",
            "--width",
            "64",
            "--height",
            "48",
            "--frames",
            "1",
            "--tuning",
            &s(&tp),
            "--out",
            &s(&out),
        ])
        .ok();
        files.push(s(&out.join("frame_000000.dng")));
    }
    let o = Command::new(py)
        .arg(repo_root().join("scripts/dng_reference.py"))
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let wb = |f: &serde_json::Value, k: &str| -> Vec<f64> {
        let v: Vec<f64> = f[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        v.iter().take(3).map(|x| x / v[1]).collect()
    };
    let near = |a: &[f64], b: [f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2e-3);
    let curve = &v["files"][0];
    // As shot: the frame's gains; daylight: 1 / the curve's grey at 6500 K.
    assert!(
        near(&wb(curve, "camera_whitebalance"), [2.0, 1.0, 1.5]),
        "{curve}"
    );
    assert!(
        near(&wb(curve, "daylight_whitebalance"), [2.0, 1.0, 1.25]),
        "{curve}"
    );
    let none = &v["files"][1];
    assert!(
        near(&wb(none, "daylight_whitebalance"), [2.0, 1.0, 1.5]),
        "{none}"
    );
    // The labels, read back.
    let ill = |f: &str| {
        isp_engine::dng::read_tags(std::path::Path::new(f))
            .unwrap()
            .color_matrices[0]
            .0
    };
    assert_eq!((ill(&files[0]), ill(&files[1])), (21, 0));
}

/// A single-matrix DNG developed by the engine (its own tuning: the file's
/// levels, ColorMatrix and as-shot white balance) against LibRaw's
/// development of the same file (`scripts/dng_libraw_delta_e.py`: linear,
/// the camera's white balance, no brightening), on the ColorChecker's 24
/// patches, exposure matched: mean CIEDE2000 below 0.5, none above 4, and
/// 20 of the 24 within 0.1. The few left are the brightest (white, yellow,
/// orange-yellow: a channel within 2% of clipping after the white balance),
/// where the highlights stage blends towards neutral and LibRaw clips each
/// channel; measured 2.9, 2.4 and 1.1, the other 21 at most 0.05.
#[test]
fn a_single_matrix_dng_develops_as_libraw_develops_it() {
    let Some(py) = reference_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (w, h) = (480usize, 320usize);
    let mut t = tuning();
    t.stages.black_level.levels = [64; 4];
    t.stages.black_level.white_level = None;
    t.stages.white_balance.gains = [1.9, 1.0, 1.5];
    // AE on while exporting, so the sensor settles where a still's AE
    // wants it (a digital gain near 1: nothing bright pushed past white
    // that LibRaw, which does not brighten, keeps).
    for a in &mut t.algorithms {
        a.enabled = a.name.starts_with("ae.");
    }
    let tp = tmp.path().join("t.json");
    t.save(&tp).unwrap();
    let dng = tmp.path().join("in");
    isp(&[
        "export-dng",
        "synthetic:checker",
        "--width",
        &w.to_string(),
        "--height",
        &h.to_string(),
        "--frames",
        "12",
        "--tuning",
        &s(&tp),
        "--out",
        &s(&dng),
    ])
    .ok();
    let file = dng.join("frame_000011.dng");
    let out = tmp.path().join("out");
    isp(&[
        "process",
        &format!("dng:{}", s(&file)),
        "--linear16",
        "--backend",
        "cpu",
        "--out",
        &s(&out),
    ])
    .ok();
    let centres: Vec<[usize; 2]> = (0..24)
        .map(|i| {
            let (x, y) = isp_engine::sources::synthetic::Scene::checker_centre(i, w, h);
            [x, y]
        })
        .collect();
    let cp = tmp.path().join("centres.json");
    std::fs::write(&cp, serde_json::to_string(&centres).unwrap()).unwrap();
    let o = Command::new(py)
        .arg(repo_root().join("scripts/dng_libraw_delta_e.py"))
        .arg(&file)
        .arg(out.join("frame_000000.png"))
        .arg(&cp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("engine vs LibRaw: {v}");
    let (mean, max) = (
        v["mean_de2000"].as_f64().unwrap(),
        v["max_de2000"].as_f64().unwrap(),
    );
    let close = v["de2000"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d.as_f64().unwrap() < 0.1)
        .count();
    assert!(
        mean < 0.5 && max < 4.0 && close >= 20,
        "dE2000 mean {mean:.2} max {max:.2}, {close} of 24 within 0.1: {v}"
    );
}

#[test]
fn bad_dngs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("broken.dng");
    std::fs::write(&p, b"II*\0\x08\0\0\0\x01\0").unwrap();
    isp(&[
        "process",
        &format!("dng:{}", s(&p)),
        "--out",
        &s(&tmp.path().join("o")),
    ])
    .error(&["broken.dng", "truncated"]);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    isp(&["info", &format!("dng:{}", s(&empty))]).error(&["empty", "no .dng files"]);
}

#[test]
fn a_dark_still_shot_long_and_at_high_iso_is_brightened() {
    // A frame 8x darker than the chart's usual exposure, shot at 1/10 s and
    // ISO 1600 (beyond what a live sensor's AE plans within): the still's
    // digital gain makes up the difference all the same.
    let tmp = tempfile::tempdir().unwrap();
    let opts = SourceOptions {
        width: Some(320),
        height: Some(240),
        bits: Some(12),
        ..Default::default()
    };
    let mut src = sources::open(Some("synthetic:checker"), &opts).unwrap();
    let fmt = src.format();
    let mut raw = vec![0u8; fmt.frame_bytes()];
    src.next_frame(&mut raw).unwrap().unwrap();
    let mut row = vec![0u16; 320];
    let mut samples = Vec::new();
    for y in 0..240 {
        let st = y * fmt.stride as usize;
        unpack::unpack_row(&fmt, &raw[st..st + fmt.min_stride() as usize], &mut row);
        samples.extend(row.iter().map(|&v| 64 + v.saturating_sub(64) / 8));
    }
    let p = tmp.path().join("dark.dng");
    isp_engine::dng::write(
        &p,
        &isp_engine::dng::DngFrame {
            width: 320,
            height: 240,
            cfa: fmt.bayer,
            samples: &samples,
            white_level: 4095,
            black_level: [64; 4],
            color_matrix: None,
            calibration_illuminant: 0,
            as_shot_neutral: [0.55, 1.0, 0.62],
            exposure_time: Some(0.1),
            iso: Some(1600),
            camera: "test",
            description: "",
        },
    )
    .unwrap();
    let out = tmp.path().join("out");
    isp(&[
        "process",
        &format!("dng:{}", s(&p)),
        "--backend",
        "cpu",
        "--out",
        &s(&out),
    ])
    .ok();
    let csv = std::fs::read_to_string(out.join("telemetry.csv")).unwrap();
    let note = csv
        .lines()
        .find(|l| l.contains(",still,"))
        .expect("a still note");
    let k: f32 = note
        .split("digital gain ")
        .nth(1)
        .and_then(|t| t.trim_end_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!(k > 8.0, "digital gain {k}: {note}");
}
