//! `isp calibrate` on real files: synthetic captures with known truth
//! written as DNGs, calibrated from the command line; its outputs and errors.

use crate::common::*;
use isp_engine::calibrate::Capture;
use isp_engine::calibrate::synthetic::{Placement, SynthSensor};
use isp_engine::dng::{self, DngFrame};
use isp_engine::tuning::Tuning;
use std::path::Path;

pub(crate) fn write_dng(c: &Capture, p: &Path) {
    let samples: Vec<u16> = c
        .data
        .iter()
        .map(|v| v.round().clamp(0.0, 65535.0) as u16)
        .collect();
    dng::write(
        p,
        &DngFrame {
            width: c.width,
            height: c.height,
            cfa: c.cfa,
            samples: &samples,
            white_level: c.white_level as u16,
            black_level: [0; 4],
            color_matrix: None,
            calibration_illuminant: 0,
            as_shot_neutral: [1.0; 3],
            exposure_time: Some(0.01),
            iso: Some((c.analogue_gain * 100.0) as u16),
            camera: "synthetic",
            description: &c.name,
        },
    )
    .unwrap();
}

#[test]
fn calibrate_from_dng_files_writes_a_tuning_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sensor = SynthSensor {
        width: 800,
        height: 600,
        ..Default::default()
    };
    write_dng(&sensor.dark(8), &d.join("dark.dng"));
    write_dng(&sensor.flat(5000.0, 0.6, 4), &d.join("flat.dng"));
    for ct in [3000.0, 6500.0] {
        write_dng(
            &sensor.chart(ct, Placement::default(), 4, 1),
            &d.join(format!("chart{ct}.dng")),
        );
    }
    let out = d.join("cal");
    let dng_arg = |n: &str| format!("dng:{}", s(&d.join(n)));
    let run = isp(&[
        "calibrate",
        "--dark",
        &dng_arg("dark.dng"),
        "--flat",
        &format!("{}@5000", dng_arg("flat.dng")),
        "--chart",
        &format!("{}@3000", dng_arg("chart3000.dng")),
        "--chart",
        &format!("{}@6500K", dng_arg("chart6500.dng")),
        "--out",
        &s(&out),
    ])
    .ok();
    let j = run.json();
    let charts = j["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 2);
    for c in charts {
        assert!(c["found"].as_str().unwrap().contains("24 of 24"), "{c}");
        assert!(c["mean_de2000"].as_f64().unwrap() < 1.0, "{c}");
        assert!(c["max_de2000"].as_f64().unwrap() < 3.0, "{c}");
    }
    // The tuning loads and carries what was measured.
    let t = Tuning::load(&out.join("tuning.json")).unwrap();
    for (got, want) in t.stages.black_level.levels.iter().zip(sensor.black) {
        assert!((*got as f32 - want).abs() <= 1.0, "{got} vs {want}");
    }
    assert_eq!(t.stages.ccm.by_ct.len(), 2);
    assert_eq!(
        (
            t.stages.lens_shading.grid_width,
            t.stages.lens_shading.grid_height
        ),
        (17, 13)
    );
    assert!(
        t.algorithms
            .iter()
            .any(|a| a.name == "awb.ct_curve" && a.enabled)
    );
    let rep = read_json(&out.join("report.json"));
    assert_eq!(rep["charts"][0]["patches"].as_array().unwrap().len(), 24);
    assert_eq!(rep["ct_curve"].as_array().unwrap().len(), 2);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("dark skin") && html.contains("Lens shading"));

    // The calibrated tuning develops a chart with near-neutral greys.
    let dev = d.join("dev");
    isp(&[
        "process",
        &dng_arg("chart6500.dng"),
        "--tuning",
        &s(&out.join("tuning.json")),
        "--backend",
        "cpu",
        "--out",
        &s(&dev),
    ])
    .ok();
    // Its grey patches (20-23: the white and black ones clip or drown in
    // noise), measured at their true centres, come out neutral.
    let png = read_png(&dev.join("frame_000000.png"));
    for (k, c) in sensor
        .chart_centres(Placement::default())
        .iter()
        .enumerate()
        .skip(19)
        .take(4)
    {
        let mean = |ch: usize| {
            let mut sum = 0.0;
            for dy in -4..=4 {
                for dx in -4..=4 {
                    let (x, y) = ((c[0] as i64 + dx) as usize, (c[1] as i64 + dy) as usize);
                    sum += png.at(x, y, ch) as f64;
                }
            }
            sum / 81.0
        };
        let (r, g, b) = (mean(0), mean(1), mean(2));
        assert!(
            (r / g - 1.0).abs() < 0.05 && (b / g - 1.0).abs() < 0.05,
            "grey patch {}: rgb {r:.1} {g:.1} {b:.1}",
            k + 1
        );
    }

    // Measured from outside: the chart developed linear (no tone curve),
    // read and scored in Python with colour-science at the patches' true
    // centres (scripts/chart_delta_e.py), normalised on the grey patches.
    let Some(py) = isp_e2e::reference_python() else {
        return;
    };
    let centres = d.join("centres.json");
    std::fs::write(
        &centres,
        serde_json::to_string(&sensor.chart_centres(Placement::default())).unwrap(),
    )
    .unwrap();
    let score = |tuning: &Path, name: &str| -> serde_json::Value {
        let lin = d.join(name);
        isp(&[
            "process",
            &dng_arg("chart6500.dng"),
            "--tuning",
            &s(tuning),
            "--linear16",
            "--backend",
            "cpu",
            "--out",
            &s(&lin),
        ])
        .ok();
        let o = std::process::Command::new(&py)
            .arg(isp_e2e::repo_root().join("scripts/chart_delta_e.py"))
            .arg(lin.join("frame_000000.png"))
            .arg(&centres)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "chart_delta_e.py: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        println!("outside measure of the calibrated chart ({name}): {m}");
        m
    };
    let greys_within = |m: &serde_json::Value, tol: f64| {
        for k in ["grey_r_over_g", "grey_b_over_g"] {
            for v in m[k].as_array().unwrap() {
                let v = v.as_f64().unwrap();
                assert!((v - 1.0).abs() < tol, "{k} off by more than {tol}: {m}");
            }
        }
    };

    // 1. The calibration itself: 3A off, the white balance the calibrated
    // tuning gives the chart's illuminant (its AWB curve's 6500 K point),
    // nothing else. Measured: mean dE2000 0.43, max 3.55 (patch 18, cyan,
    // lies outside sRGB: a PNG cannot hold its negative red); greys' r/g
    // and b/g within 2.1% (the darkest, whose own b/g is 1.012).
    let mut fixed = t.clone();
    for a in &mut fixed.algorithms {
        a.enabled = false;
    }
    let curve = t
        .algorithms
        .iter()
        .find(|a| a.name == "awb.ct_curve")
        .unwrap()
        .params["ct_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect::<Vec<_>>()
        })
        .find(|p| p[0] == 6500.0)
        .expect("a 6500 K point on the AWB curve");
    fixed.stages.white_balance.gains = [(1.0 / curve[1]) as f32, 1.0, (1.0 / curve[2]) as f32];
    let fixed_path = d.join("fixed.json");
    fixed.save(&fixed_path).unwrap();
    let m = score(&fixed_path, "lin_fixed");
    let (mean, max) = (
        m["mean_de2000"].as_f64().unwrap(),
        m["max_de2000"].as_f64().unwrap(),
    );
    assert!(mean < 0.8 && max < 4.5, "{m}");
    greys_within(&m, 0.03);

    // 2. As a user develops it: AWB estimates the white from the scene and
    // AE brightens it (the white and yellow patches clip). Measured: mean
    // 1.60, max 8.5; greys within 3.7% (the AWB's estimate is 1-1.6% off
    // the calibrated white).
    let m = score(&out.join("tuning.json"), "lin_3a");
    let (mean, max) = (
        m["mean_de2000"].as_f64().unwrap(),
        m["max_de2000"].as_f64().unwrap(),
    );
    assert!(mean < 2.0 && max < 10.0, "{m}");
    greys_within(&m, 0.045);
}

#[test]
fn calibrate_errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let out = s(&tmp.path().join("o"));
    isp(&["calibrate", "--out", &out]).error(&["nothing to calibrate"]);
    isp(&[
        "calibrate",
        "--chart",
        "synthetic:checker@warm",
        "--out",
        &out,
    ])
    .error(&["synthetic:checker@warm", "colour temperature"]);
    isp(&[
        "calibrate",
        "--dark",
        "dng:/nonexistent/d.dng",
        "--out",
        &out,
    ])
    .error(&["/nonexistent/d.dng"]);
    // A scene with no chart: detection says so and points to --corners.
    isp(&[
        "calibrate",
        "--chart",
        "synthetic:flat@5000",
        "--width",
        "640",
        "--height",
        "480",
        "--out",
        &out,
    ])
    .error(&["synthetic:flat", "corner"]);
}
