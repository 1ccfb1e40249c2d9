//! Unit tests of the rkisp1 and simple YAML mapping's helpers.

use super::*;

#[test]
fn scalars_are_plain_only_where_yaml_reads_them_back_as_strings() {
    use serde_json::json;
    assert_eq!(scalar(&json!("GammaOutCorrection")), "GammaOutCorrection");
    assert_eq!(scalar(&json!("grey_world2")), "grey_world2");
    for s in ["true", "No", "null", "1abc", "a b", "a-b", ""] {
        assert_eq!(scalar(&json!(s)), format!("{s:?}"), "{s}");
    }
    assert_eq!(scalar(&json!(1.5)), "1.5");
}

#[test]
fn every_block_without_a_counterpart_says_why() {
    let unknown = reason("NoSuchBlock");
    for name in [
        "DefectPixelClusterCorrection",
        "Dpcc",
        "Dpf",
        "Filter",
        "Lux",
        "ColorProcessing",
        "GammaSensorLinearization",
        "Compress",
        "Wdr",
        "Lut",
        "Agc",
    ] {
        assert_ne!(reason(name), unknown, "{name}");
    }
}

#[test]
fn sectors_mirror_into_positions() {
    let p = positions(&[0.2, 0.3]);
    let want = [0.0, 0.2, 0.5, 0.8, 1.0];
    assert!(
        p.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
        "{p:?}"
    );
}

#[test]
fn lens_shading_tables_invert_exactly_and_yaml_reads_back() {
    // Cell-centre samples (RPi's kind) of a 5-point axis: a re-import of
    // the exported table gives the grid back.
    let c: Vec<f64> = (0..5).map(|i| (i as f64 + 0.5) / 5.0).collect();
    let mut ls = crate::stages::lens_shading::LensShadingParams::radial(5, 5, [0.5; 4]);
    ls.gains[0][7] = 1.7;
    let (tabs, exact) = super::super::lsc_out(&ls, &c, &c);
    let back = super::super::lsc_in([&tabs[0], &tabs[1], &tabs[2], &tabs[3]], &c, &c, 1.0);
    assert!(exact);
    for (a, b) in ls.gains.iter().flatten().zip(back.gains.iter().flatten()) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let v = json!({ "ccms": [{ "ct": 5000, "ccm": [1, 0, 0, 0, 1, 0, 0, 0, 1] }], "s": "a b" });
    let mut out = String::new();
    write_map(v.as_object().unwrap(), 0, false, &mut out);
    assert_eq!(serde_norway::from_str::<Value>(&out).unwrap(), v, "{out}");
}
