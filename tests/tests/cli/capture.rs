//! `isp capture`: a burst and a bracket merged and developed, the report,
//! and its errors.

use crate::common::*;

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
    let hdr = std::fs::metadata(out.join("hdr_linear.f32")).unwrap().len();
    assert_eq!(hdr, 320 * 240 * 4);
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
