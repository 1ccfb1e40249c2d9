//! `isp capture`: a burst and a bracket merged and developed, the report,
//! and its errors.

use crate::common::*;
use isp_engine::sources::synthetic::{Scene, SensorModel};

const W: usize = 320;
const H: usize = 240;

/// Mean and standard deviation of channel `c` of a PNG in a 13x13 window
/// at the centre of checker patch `i`.
fn patch_stats(p: &Png, i: usize, c: usize) -> (f64, f64) {
    let (cx, cy) = Scene::checker_centre(i, W, H);
    let v: Vec<f64> = (cy - 6..=cy + 6)
        .flat_map(|y| (cx - 6..=cx + 6).map(move |x| (x, y)))
        .map(|(x, y)| p.at(x, y, c) as f64)
        .collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (mean, var.sqrt())
}

/// Scene-linear value of an 8-bit sRGB code (IEC 61966-2-1).
fn srgb_linear(code: u8) -> f64 {
    let c = code as f64 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn capture(args: &[&str], out: &std::path::Path) -> serde_json::Value {
    let o = out.display().to_string();
    let mut a = vec![
        "capture",
        "synthetic:checker",
        "--width",
        "320",
        "--height",
        "240",
    ];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--backend", "cpu", "--out", &o]);
    let run = isp(&a).ok();
    let report = read_json(&out.join("report.json"));
    assert_eq!(run.json(), report, "stdout and report.json differ");
    report
}

#[test]
fn a_burst_writes_the_merged_and_reference_images_the_raw_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("burst");
    let r = capture(&["--burst", "4"], &out);
    assert_eq!(
        r["plan"]["kind"],
        serde_json::json!({"kind": "burst", "frames": 4})
    );
    assert_eq!(r["frames"].as_array().unwrap().len(), 4);
    assert_eq!(r["selection"]["chosen"].as_array().unwrap().len(), 4);
    assert_eq!(r["alignment"].as_array().unwrap().len(), 4);
    for k in ["read_ms", "align_ms", "merge_ms", "total_ms"] {
        assert!(r[k].as_f64().unwrap() > 0.0, "{k}: {r}");
    }
    assert_eq!(
        r["files"],
        serde_json::json!(["merged.png", "reference.png", "merged.raw"])
    );
    for name in ["merged.png", "reference.png"] {
        let png = read_png(&out.join(name));
        assert_eq!(
            (png.width, png.height, png.color),
            (320, 240, png::ColorType::Rgb)
        );
    }
    // merged.raw is the mosaic `merged_format` describes, and `isp process`
    // develops it again.
    assert_eq!(r["merged_format"]["packing"], "plain");
    let raw = out.join("merged.raw");
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 320 * 240 * 2);
    let again = tmp.path().join("again");
    let spec = format!("raw:{}", raw.display());
    isp(&[
        "process",
        &spec,
        "--width",
        "320",
        "--height",
        "240",
        "--bits",
        "10",
        "--frames",
        "1",
        "--backend",
        "cpu",
        "--out",
        &again.display().to_string(),
    ])
    .ok();
    assert_eq!(files_with(&again, "png").len(), 1);

    // Four frames merged: on the flat grey patches the merged picture has
    // the reference's level and about half its noise (1/sqrt(4); measured
    // 0.44 to 0.62 of it per patch).
    let (m, r) = (
        read_png(&out.join("merged.png")),
        read_png(&out.join("reference.png")),
    );
    for i in 18..24 {
        for c in 0..3 {
            let ((mm, ms), (rm, rs)) = (patch_stats(&m, i, c), patch_stats(&r, i, c));
            assert!(
                (mm / rm - 1.0).abs() < 0.03,
                "patch {} channel {c}: merged level {mm:.0} vs {rm:.0}",
                i + 1
            );
            assert!(
                ms < 0.75 * rs,
                "patch {} channel {c}: merged noise {ms:.0} vs reference {rs:.0}",
                i + 1
            );
        }
    }
}

#[test]
fn a_bracket_writes_linear_hdr_too() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hdr");
    let r = capture(&["--bracket", "-2,0,2"], &out);
    assert_eq!(r["plan"]["kind"]["ev"], serde_json::json!([-2.0, 0.0, 2.0]));
    assert_eq!(r["selection"]["reference"], 1);
    let e: Vec<f64> = r["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["exposure_us"].as_f64().unwrap() * f["analogue_gain"].as_f64().unwrap())
        .collect();
    assert!((e[2] / e[0] - 16.0).abs() < 1.6, "{e:?}");
    let bytes = std::fs::read(out.join("hdr_linear.f32")).unwrap();
    assert_eq!(bytes.len(), W * H * 4);
    let hdr: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // The HDR is the scene's radiance at the reference's exposure: on the
    // green sites of the six grey patches (green = the grey's linear value
    // through the synthetic sensor: its rows keep white, its green cast is
    // 1), value / (reflectance x vignetting) is the sensor's sensitivity x
    // the reference's exposure x the 10-bit range above black, for the white
    // the long frame clips as for the black that only it resolves. A merge
    // that did not scale each frame by its exposure is off by x4 or more.
    // Measured: within 0.4% on every patch.
    let model = SensorModel::default();
    let refr = &r["frames"][r["selection"]["reference"].as_u64().unwrap() as usize];
    let scale =
        refr["exposure_us"].as_f64().unwrap() / 10_000.0 * refr["analogue_gain"].as_f64().unwrap();
    assert_eq!(r["merged_format"]["bayer"], "RGGB");
    let range = (1023 - model.black_level) as f64;
    let mut black_patch = Vec::new();
    for (i, code) in (18..24).zip([243u8, 200, 160, 122, 85, 52]) {
        let (cx, cy) = Scene::checker_centre(i, W, H);
        let mut ratios = Vec::new();
        for y in cy - 6..=cy + 6 {
            for x in cx - 6..=cx + 6 {
                if (x + y) % 2 == 0 {
                    continue; // RGGB: green where x + y is odd
                }
                let dx = (x as f64 + 0.5) / W as f64 * 2.0 - 1.0;
                let dy = (y as f64 + 0.5) / H as f64 * 2.0 - 1.0;
                let vig = 1.0 / (1.0 + model.vignetting as f64 * (dx * dx + dy * dy) / 2.0);
                let want = srgb_linear(code) * vig * model.sensitivity as f64 * scale * range;
                ratios.push(hdr[y * W + x] as f64 / want);
            }
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!(
            (mean - 1.0).abs() < 0.02,
            "patch {}: HDR / expected radiance = {mean:.4}",
            i + 1
        );
        if i == 23 {
            black_patch = ratios;
        }
    }
    // The black patch (14.6 DN at the reference's exposure: one frame's
    // shot and read noise are 11% of it) is taken mostly from the long
    // frame: measured 4.1%.
    let n = black_patch.len() as f64;
    let mean = black_patch.iter().sum::<f64>() / n;
    let sd = (black_patch.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(sd < 0.07, "black patch relative noise {sd:.3}");
}

#[test]
fn capture_errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("x").display().to_string();
    isp(&["capture", "synthetic:checker", "--out", &o]).error(&["--burst N or --bracket"]);
    isp(&[
        "capture",
        "synthetic:checker",
        "--bracket",
        "-2,x",
        "--out",
        &o,
    ])
    .error(&["--bracket -2,x", "`x` is not an EV step"]);
    isp(&["capture", "synthetic:checker", "--burst", "1", "--out", &o])
        .error(&["a burst is 2 to 16 frames"]);
    isp(&[
        "capture",
        "synthetic:checker",
        "--width",
        "320",
        "--height",
        "240",
        "--bits",
        "8",
        "--burst",
        "2",
        "--out",
        &o,
    ])
    .error(&["10- to 16-bit"]);
    // A recorded session cannot change its exposure: no bracket from it.
    isp(&["capture", "--bracket", "-1,0,1", "--out", &o]).error(&["did not take an exposure"]);
}
