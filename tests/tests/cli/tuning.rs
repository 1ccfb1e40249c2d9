//! `isp tuning`: the built-in tuning, round trips, `--radial-lsc`, and a
//! malformed value in every block named by file and field path.

use crate::common::*;
use isp_engine::tuning::Tuning;
use serde_json::{Value, json};
use std::path::Path;

const STAGE_BLOCKS: [&str; 10] = [
    "black_level",
    "ccm",
    "defect_pixel",
    "demosaic",
    "highlights",
    "lens_shading",
    "stats",
    "tone",
    "white_balance",
    "yuv",
];

fn tuning(args: &[&str]) -> Run {
    let mut a = vec!["tuning"];
    a.extend(args);
    isp(&a)
}

/// The built-in tuning as the CLI prints it (f32 values written shortest).
fn default_json() -> Value {
    serde_json::from_str(&Tuning::default().to_json()).unwrap()
}

#[test]
fn default_prints_saves_and_reads_back_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let printed = tuning(&[]).ok();
    assert_eq!(printed.stdout, Tuning::default().to_json() + "\n");
    let v = printed.json();
    assert_keys(&v, &["algorithms", "name", "schema_version", "stages"]);
    assert_keys(&v["stages"], &STAGE_BLOCKS);
    assert_eq!(v["schema_version"], 1);
    let names: Vec<&str> = v["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["awb.grey_world", "ae.mean_luminance"]);

    // Saved as printed, it prints the same text.
    let f = tmp.path().join("t.json");
    std::fs::write(&f, &printed.stdout).unwrap();
    assert_eq!(tuning(&[&s(&f)]).ok().stdout, printed.stdout);
    // Minified, keys in another order: normalised to the same text.
    let mut obj: Vec<(String, Value)> = v.as_object().unwrap().clone().into_iter().collect();
    obj.reverse();
    let text = format!(
        "{{{}}}",
        obj.iter()
            .map(|(k, v)| format!("{:?}:{}", k, serde_json::to_string(v).unwrap()))
            .collect::<Vec<_>>()
            .join(",")
    );
    std::fs::write(&f, text).unwrap();
    assert_eq!(tuning(&[&s(&f)]).ok().stdout, printed.stdout);

    // A partial file gets the defaults filled in, and normalising is idempotent.
    std::fs::write(
        &f,
        r#"{"schema_version": 1, "name": "mine", "stages": {"ccm": {"enabled": false}, "tone": {"contrast": 1.5}}}"#,
    )
    .unwrap();
    let once = tuning(&[&s(&f)]).ok();
    let mut want = default_json();
    want["name"] = json!("mine");
    want["stages"]["ccm"]["enabled"] = json!(false);
    want["stages"]["tone"]["contrast"] = json!(1.5);
    assert_eq!(once.json(), want);
    std::fs::write(&f, &once.stdout).unwrap();
    assert_eq!(tuning(&[&s(&f)]).ok().stdout, once.stdout);
    // The demo session's tuning is a valid file too.
    let demo = isp_engine::sources::session::demo_session_dir()
        .unwrap()
        .join("tuning.json");
    let d = tuning(&[&s(&demo)]).ok().json();
    assert_eq!(d["name"], "demo: synthetic sensor");
}

#[test]
fn radial_lsc_writes_a_17x13_radial_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tuning(&["--radial-lsc", "0.5"]).ok();
    let v = r.json();
    let ls = &v["stages"]["lens_shading"];
    assert_eq!(
        (ls["grid_width"].clone(), ls["grid_height"].clone()),
        (17.into(), 13.into())
    );
    assert_eq!(ls["enabled"], true);
    let gains = ls["gains"].as_array().unwrap();
    assert_eq!(gains.len(), 4);
    for g in gains {
        let g: Vec<f64> = g
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(g.len(), 17 * 13);
        // 1 + k r^2 / 2 with r^2 = 2 at the corners: 1 at the centre, 1.5 there.
        assert!((g[6 * 17 + 8] - 1.0).abs() < 1e-6, "{}", g[6 * 17 + 8]);
        for c in [0, 16, 12 * 17, 12 * 17 + 16] {
            assert!((g[c] - 1.5).abs() < 1e-6, "corner {c}: {}", g[c]);
        }
    }
    // Everything else is the built-in tuning.
    let mut rest = v.clone();
    rest["stages"]["lens_shading"] = default_json()["stages"]["lens_shading"].clone();
    assert_eq!(rest, default_json());
    // Over a file: the file's other values stay; the result reads back as is.
    let f = tmp.path().join("t.json");
    std::fs::write(
        &f,
        r#"{"schema_version": 1, "name": "lab", "stages": {"yuv": {"range": "limited"}}}"#,
    )
    .unwrap();
    let over = tuning(&[&s(&f), "--radial-lsc", "0.5"]).ok();
    let ov = over.json();
    assert_eq!(ov["name"], "lab");
    assert_eq!(ov["stages"]["yuv"]["range"], "limited");
    assert_eq!(ov["stages"]["lens_shading"], v["stages"]["lens_shading"]);
    std::fs::write(&f, &over.stdout).unwrap();
    assert_eq!(tuning(&[&s(&f)]).ok().stdout, over.stdout);
    // A strength that makes negative gains is refused.
    tuning(&["--radial-lsc=-3"]).error(&[
        "--radial-lsc -3",
        "stages.lens_shading",
        "within 0..=16",
    ]);
    let r = tuning(&["--radial-lsc", "strong"]);
    assert_eq!(r.code, Some(2));
    r.fails(&["--radial-lsc"]);
}

/// Write the built-in tuning with `edit` applied to `dir/name`.
fn bad_file(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut t = default_json();
    edit(&mut t);
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    s(&p)
}

#[test]
fn a_malformed_value_in_every_block_names_the_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    type Edit = fn(&mut Value);
    // (field path the error must name, the edit). Every stage block, each
    // kind of value, and the algorithm blocks.
    let cases: Vec<(&str, Edit)> = vec![
        ("stages.black_level.levels[2]", |t| {
            t["stages"]["black_level"]["levels"][2] = json!("x")
        }),
        ("stages.black_level.white_level", |t| {
            t["stages"]["black_level"]["white_level"] = json!(-1)
        }),
        ("stages.black_level.enabled", |t| {
            t["stages"]["black_level"]["enabled"] = json!("yes")
        }),
        ("stages.defect_pixel.threshold", |t| {
            t["stages"]["defect_pixel"]["threshold"] = json!(70000)
        }),
        ("stages.lens_shading.gains[1][0]", |t| {
            t["stages"]["lens_shading"]["gains"][1][0] = json!("a")
        }),
        ("stages.lens_shading.grid_width", |t| {
            t["stages"]["lens_shading"]["grid_width"] = json!(2.5)
        }),
        ("stages.white_balance.gains[1]", |t| {
            t["stages"]["white_balance"]["gains"][1] = json!(true)
        }),
        ("stages.white_balance.gains", |t| {
            t["stages"]["white_balance"]["gains"] = json!([1.0, 1.0])
        }),
        ("stages.demosaic.method", |t| {
            t["stages"]["demosaic"]["method"] = json!("nearest")
        }),
        ("stages.ccm.matrix[0][0]", |t| {
            t["stages"]["ccm"]["matrix"][0][0] = json!("x")
        }),
        ("stages.ccm.matrix[2][1]", |t| {
            t["stages"]["ccm"]["matrix"][2][1] = json!(null)
        }),
        ("stages.tone.contrast", |t| {
            t["stages"]["tone"]["contrast"] = json!("high")
        }),
        ("stages.tone.gamma.kind", |t| {
            t["stages"]["tone"]["gamma"] = json!({"kind": "log"})
        }),
        ("stages.tone.gamma.value", |t| {
            t["stages"]["tone"]["gamma"] = json!({"kind": "power", "value": "2.2"})
        }),
        ("stages.tone.curve[1]", |t| {
            t["stages"]["tone"]["curve"] = json!([[0.0, 0.0], [0.5]])
        }),
        ("stages.yuv.matrix", |t| {
            t["stages"]["yuv"]["matrix"] = json!("bt2020")
        }),
        ("stages.yuv.range", |t| {
            t["stages"]["yuv"]["range"] = json!(1)
        }),
        ("stages.stats.zones_x", |t| {
            t["stages"]["stats"]["zones_x"] = json!(-3)
        }),
        ("stages.stats.saturation", |t| {
            t["stages"]["stats"]["saturation"] = json!("max")
        }),
        ("stages.scaler", |t| {
            t["stages"]["scaler"] = json!({"width": 1})
        }),
        ("stages.ccm.matix", |t| {
            t["stages"]["ccm"]["matix"] = json!([])
        }),
        ("algorithms[0].name", |t| {
            t["algorithms"][0]["name"] = json!("awb.magic")
        }),
        ("algorithms[1].enabled", |t| {
            t["algorithms"][1]["enabled"] = json!("on")
        }),
        ("algorithms[0].params.speed", |t| {
            t["algorithms"][0]["params"]["speed"] = json!("fast")
        }),
        ("algorithms[1].params.target", |t| {
            t["algorithms"][1]["params"]["target"] = json!([0.2])
        }),
        ("algorithms[1].params.exposure", |t| {
            t["algorithms"][1]["params"]["exposure"] = json!(1)
        }),
        ("schema_version", |t| t["schema_version"] = json!("one")),
        // Values of the right type but out of range: the block's checks.
        ("stages.black_level", |t| {
            t["stages"]["black_level"]["white_level"] = json!(50)
        }),
        ("stages.lens_shading", |t| {
            t["stages"]["lens_shading"]["grid_width"] = json!(1)
        }),
        ("stages.white_balance.gains", |t| {
            t["stages"]["white_balance"]["gains"][2] = json!(20.0)
        }),
        ("stages.ccm.matrix", |t| {
            t["stages"]["ccm"]["matrix"][1][1] = json!(99.0)
        }),
        ("stages.tone", |t| {
            t["stages"]["tone"]["contrast"] = json!(9.0)
        }),
        ("stages.stats", |t| {
            t["stages"]["stats"]["zones_y"] = json!(0)
        }),
        ("stages.highlights", |t| {
            t["stages"]["highlights"]["threshold"] = json!(1.5)
        }),
        ("stages.highlights.enabled", |t| {
            t["stages"]["highlights"]["enabled"] = json!("yes")
        }),
        ("stages.tone", |t| {
            t["stages"]["tone"]["shoulder"] = json!(0.1)
        }),
        ("algorithms[0].params.speed", |t| {
            t["algorithms"][0]["params"]["speed"] = json!(2.0)
        }),
        ("algorithms[0].params.min_gain", |t| {
            t["algorithms"][0]["params"]["min_gain"] = json!(0.0)
        }),
    ];
    let mut blocks_seen = std::collections::BTreeSet::new();
    for (i, (field, edit)) in cases.into_iter().enumerate() {
        let f = bad_file(tmp.path(), &format!("bad{i}.json"), edit);
        let line = tuning(&[&f]).error(&[&format!("{f}: field `{field}`: ")]);
        assert!(
            line.starts_with(&format!("isp: error: {f}: field `{field}`: ")),
            "{line}"
        );
        if let Some(b) = field.strip_prefix("stages.") {
            blocks_seen.insert(b.split(['.', '[']).next().unwrap().to_string());
        }
    }
    for b in STAGE_BLOCKS {
        assert!(blocks_seen.contains(b), "no case for stages.{b}");
    }
    // The same refusal where a tuning is used.
    let f = bad_file(tmp.path(), "ccm.json", |t| {
        t["stages"]["ccm"]["matrix"][1][1] = json!("x")
    });
    let out = tmp.path().join("out");
    isp(&[
        "process",
        "synthetic:flat",
        "--width",
        "32",
        "--height",
        "16",
        "--backend",
        "cpu",
        "--tuning",
        &f,
        "--out",
        &s(&out),
    ])
    .error(&[&format!("{f}: field `stages.ccm.matrix[1][1]`")]);
    assert!(!out.exists());
}

#[test]
fn unreadable_and_unsupported_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.json");
    tuning(&[&s(&missing)]).error(&[&format!("{}: cannot read", missing.display())]);
    let f = bad_file(tmp.path(), "v2.json", |t| t["schema_version"] = json!(2));
    tuning(&[&f]).error(&[&f, "schema_version 2 is not supported (this build reads 1)"]);
    let p = tmp.path().join("broken.json");
    std::fs::write(&p, "{\"schema_version\": 1, \"stages\": {").unwrap();
    tuning(&[&s(&p)]).error(&[&s(&p), "EOF"]);
    let p = tmp.path().join("string.json");
    std::fs::write(&p, "\"a tuning\"").unwrap();
    tuning(&[&s(&p)]).error(&[&format!("{}: field `(document)`", p.display())]);
    // A directory is not a tuning file.
    tuning(&[&s(tmp.path())]).error(&[&s(tmp.path()), "cannot read"]);
}

#[test]
fn libcamera_tuning_files_import_and_export() {
    let tmp = tempfile::tempdir().unwrap();
    let data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/data/libcamera");
    let ours = tmp.path().join("imx219.json");
    let r = isp(&[
        "tuning",
        "--import",
        &s(&data.join("rpi_vc4_imx219.json")),
        "--out",
        &s(&ours),
    ])
    .ok();
    assert!(r.stderr.contains("isp: rpi tuning file"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("isp: mapped: rpi.ccm.ccms -> stages.ccm.by_ct"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("isp: not mapped: rpi.sdn: no counterpart"),
        "{}",
        r.stderr
    );
    let t = isp_engine::tuning::Tuning::load(&ours).unwrap();
    assert_eq!(t.stages.black_level.levels, [64; 4]);
    assert_eq!(t.stages.ccm.by_ct.len(), 6);
    // Out as rkisp1 YAML, and back: the CCMs kept.
    let yaml = tmp.path().join("t.yaml");
    isp(&[
        "tuning",
        &s(&ours),
        "--export",
        "rkisp1",
        "--out",
        &s(&yaml),
    ])
    .ok();
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        text.contains("Ccm") && text.contains("LensShadingCorrection"),
        "{text}"
    );
    let back = isp(&["tuning", "--import", &s(&yaml), "--format", "rkisp1"]).ok();
    let t2: isp_engine::tuning::Tuning = serde_json::from_str(&back.stdout).unwrap();
    // Every CCM comes back (zip alone would pass an empty re-import).
    assert_eq!(t2.stages.ccm.by_ct.len(), t.stages.ccm.by_ct.len());
    for (a, b) in t.stages.ccm.by_ct.iter().zip(&t2.stages.ccm.by_ct) {
        for (x, y) in a.matrix.iter().flatten().zip(b.matrix.iter().flatten()) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }
    isp(&["tuning", "--export", "vc5"]).error(&["vc5", "rpi, rkisp1 or simple"]);
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"version\": 2.0, \"algorithms\": [{\"rpi.ccm\": {\"ccms\": [{\"ct\": 5000, \"ccm\": [1, 0, 0, 0, 1, 0, 0, 1]}]}}]}").unwrap();
    isp(&["tuning", "--import", &s(&bad)]).error(&["bad.json", "rpi.ccm"]);
}
