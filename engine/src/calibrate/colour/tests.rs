use super::*;
use serde_json::Value;

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/colour/reference.json"
);

fn reference() -> Value {
    let text = std::fs::read_to_string(REFERENCE)
        .unwrap_or_else(|e| panic!("{REFERENCE}: {e} (run scripts/colour_reference.py)"));
    serde_json::from_str(&text).expect("reference.json parses")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn vec3(v: &Value) -> Vec3 {
    let a = v.as_array().expect("array");
    assert_eq!(a.len(), 3, "{v}");
    [num(&a[0]), num(&a[1]), num(&a[2])]
}

fn mat3(v: &Value) -> Mat3 {
    let a = v.as_array().expect("array");
    assert_eq!(a.len(), 3, "{v}");
    [vec3(&a[0]), vec3(&a[1]), vec3(&a[2])]
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().expect("array")
}

fn max_diff(a: Vec3, b: Vec3) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).abs()).fold(0.0, f64::max)
}

fn max_diff_mat(a: Mat3, b: Mat3) -> f64 {
    (0..3).map(|i| max_diff(a[i], b[i])).fold(0.0, f64::max)
}

const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

#[test]
fn constants_match_colour_science() {
    let r = reference();
    let c = &r["constants"];
    assert!(max_diff(D50_XYZ, vec3(&c["d50_xyz"])) < 1e-15);
    assert!(max_diff(D65_XYZ, vec3(&c["d65_xyz"])) < 1e-15);
    let m = max_diff_mat(XYZ_FROM_LINEAR_SRGB, mat3(&c["xyz_from_linear_srgb"]));
    assert!(m < 1e-14, "{m}");
    let m = max_diff_mat(LINEAR_SRGB_FROM_XYZ, mat3(&c["linear_srgb_from_xyz"]));
    assert!(m < 1e-13, "{m}");
    let m = max_diff_mat(bradford(D65_XYZ, D50_XYZ), mat3(&c["bradford_d65_to_d50"]));
    assert!(m < 1e-14, "{m}");
    let m = max_diff_mat(bradford(D50_XYZ, D65_XYZ), mat3(&c["bradford_d50_to_d65"]));
    assert!(m < 1e-14, "{m}");
}

#[test]
fn white_points() {
    // Y = 1 and the xy they come from.
    for (xyz, xy) in [(D50_XYZ, D50_XY), (D65_XYZ, D65_XY)] {
        assert_eq!(xyz[1], 1.0);
        let sum = xyz[0] + xyz[1] + xyz[2];
        assert!((xyz[0] / sum - xy[0]).abs() < 1e-15);
        assert!((xyz[1] / sum - xy[1]).abs() < 1e-15);
    }
    assert!(max_diff(D50_XYZ, [0.96429568, 1.0, 0.82510460]) < 1e-8);
    assert!(max_diff(D65_XYZ, [0.95045593, 1.0, 1.08905775]) < 1e-8);
}

#[test]
fn srgb_matrices_are_inverses_and_round_to_the_standard() {
    let m = max_diff_mat(
        mat3_mul(XYZ_FROM_LINEAR_SRGB, LINEAR_SRGB_FROM_XYZ),
        IDENTITY,
    );
    assert!(m < 1e-12, "{m}");
    let m = max_diff_mat(
        mat3_mul(LINEAR_SRGB_FROM_XYZ, XYZ_FROM_LINEAR_SRGB),
        IDENTITY,
    );
    assert!(m < 1e-12, "{m}");
    // RGB white is the D65 white; Y row is the luminance weights.
    assert!(max_diff(mat3_mul_vec(XYZ_FROM_LINEAR_SRGB, [1.0; 3]), D65_XYZ) < 1e-15);
    // IEC 61966-2-1 prints these to four decimals.
    let iec = [
        [0.4124, 0.3576, 0.1805],
        [0.2126, 0.7152, 0.0722],
        [0.0193, 0.1192, 0.9505],
    ];
    assert!(max_diff_mat(XYZ_FROM_LINEAR_SRGB, iec) <= 5e-5 + 1e-12);
    let iec_inv = [
        [3.2406, -1.5372, -0.4986],
        [-0.9689, 1.8758, 0.0415],
        [0.0557, -0.2040, 1.0570],
    ];
    // The printed inverse was computed from the rounded forward matrix.
    assert!(max_diff_mat(LINEAR_SRGB_FROM_XYZ, iec_inv) < 1e-3);
}

#[test]
fn bradford_properties() {
    let m = bradford(D65_XYZ, D50_XYZ);
    assert!(max_diff(mat3_mul_vec(m, D65_XYZ), D50_XYZ) < 1e-15);
    let back = bradford(D50_XYZ, D65_XYZ);
    assert!(max_diff_mat(mat3_mul(m, back), IDENTITY) < 1e-15);
    assert!(max_diff_mat(bradford(D65_XYZ, D65_XYZ), IDENTITY) < 1e-15);
    // Only the ratio of the whites matters.
    let scaled = bradford([2.0 * D65_XYZ[0], 2.0, 2.0 * D65_XYZ[2]], D50_XYZ);
    let m2 = mat3_mul(scaled, [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]);
    assert!(max_diff_mat(m2, m) < 1e-15);
    // Lindbloom's published Bradford D65 -> D50, computed for slightly
    // different whites (D65 0.95047/1.08883, D50 0.96422/0.82521).
    let lindbloom = [
        [1.0478112, 0.0228866, -0.0501270],
        [0.0295424, 0.9904844, -0.0170491],
        [-0.0092345, 0.0150436, 0.7521316],
    ];
    assert!(max_diff_mat(m, lindbloom) < 5e-4);
}

#[test]
fn lab_white_black_and_continuity() {
    assert!(max_diff(xyz_to_lab(D50_XYZ, D50_XYZ), [100.0, 0.0, 0.0]) < 1e-12);
    assert_eq!(xyz_to_lab([0.0; 3], D50_XYZ), [0.0, 0.0, 0.0]);
    // sRGB white is D50 white after adaptation: a* = b* = 0.
    let w = linear_srgb_to_lab_d50([1.0; 3]);
    assert!(max_diff(w, [100.0, 0.0, 0.0]) < 1e-12, "{w:?}");
    // Any neutral renders neutral.
    for v in [0.001, 0.005, 0.02, 0.18, 0.5, 2.0] {
        let lab = linear_srgb_to_lab_d50([v; 3]);
        assert!(lab[1].abs() < 1e-12 && lab[2].abs() < 1e-12, "{v}: {lab:?}");
    }
    // f is continuous at epsilon (both sides give 24/116, L* = 8).
    let below = xyz_to_lab([0.0, CIE_EPSILON * (1.0 - 1e-12), 0.0], [1.0; 3]);
    let above = xyz_to_lab([0.0, CIE_EPSILON * (1.0 + 1e-12), 0.0], [1.0; 3]);
    assert!((below[0] - 8.0).abs() < 1e-9 && (above[0] - 8.0).abs() < 1e-9);
    assert!(below[0] < above[0]);
}

#[test]
fn lab_round_trips_across_segments() {
    let whites = [D50_XYZ, D65_XYZ, [1.0, 1.0, 1.0]];
    for white in whites {
        for &l in &[0.0, 1.0, 7.9, 8.0, 8.1, 25.0, 50.0, 99.0, 100.0, 120.0] {
            for &a in &[-150.0, -60.0, -1.0, 0.0, 0.5, 40.0, 150.0] {
                for &b in &[-150.0, -30.0, 0.0, 2.0, 90.0, 150.0] {
                    let lab = [l, a, b];
                    let back = xyz_to_lab(lab_to_xyz(lab, white), white);
                    assert!(max_diff(lab, back) < 1e-11, "{lab:?} -> {back:?}");
                }
            }
        }
    }
}

#[test]
fn ciede2000_sharma_pairs() {
    let r = reference();
    let pairs = list(&r["ciede2000"]["sharma"]);
    assert_eq!(pairs.len(), 34);
    for p in pairs {
        let (lab1, lab2) = (vec3(&p["lab1"]), vec3(&p["lab2"]));
        let got = ciede2000(lab1, lab2);
        let paper = num(&p["paper"]);
        let cs = num(&p["colour_science"]);
        assert!(
            (got - paper).abs() < 1e-4,
            "pair {}: {got} vs paper {paper}",
            p["pair"]
        );
        assert!(
            (got - cs).abs() < 1e-9,
            "pair {}: {got} vs colour-science {cs}",
            p["pair"]
        );
        // The published pairs come in both orders too (7/8).
        let swapped = ciede2000(lab2, lab1);
        assert!((swapped - paper).abs() < 1e-4, "pair {} swapped", p["pair"]);
    }
}

#[test]
fn ciede2000_random_pairs() {
    let r = reference();
    let pairs = list(&r["ciede2000"]["random"]);
    assert_eq!(pairs.len(), 300);
    let mut worst = 0.0_f64;
    for p in pairs {
        let (lab1, lab2) = (vec3(&p["lab1"]), vec3(&p["lab2"]));
        let got = ciede2000(lab1, lab2);
        let cs = num(&p["colour_science"]);
        assert!(
            (got - cs).abs() < 1e-9,
            "{} {lab1:?} {lab2:?}: {got} vs colour-science {cs}",
            p["kind"]
        );
        assert!((ciede2000(lab2, lab1) - got).abs() < 1e-9, "not symmetric");
        worst = worst.max((got - cs).abs());
    }
    for kind in [
        "general",
        "near",
        "achromatic",
        "hue_across_180",
        "blue",
        "low_chroma",
    ] {
        assert!(pairs.iter().any(|p| p["kind"] == kind), "no {kind} pairs");
    }
    assert!(worst < 1e-9);
}

#[test]
fn ciede2000_basics() {
    assert_eq!(ciede2000([50.0, 10.0, -5.0], [50.0, 10.0, -5.0]), 0.0);
    assert_eq!(ciede2000([50.0, 0.0, 0.0], [50.0, 0.0, 0.0]), 0.0);
    // Pure lightness differences between greys: S_L only.
    let d = ciede2000([50.0, 0.0, 0.0], [60.0, 0.0, 0.0]);
    let l50 = 25.0_f64;
    let s_l = 1.0 + 0.015 * l50 / (20.0 + l50).sqrt();
    assert!((d - 10.0 / s_l).abs() < 1e-12);
    assert!(ciede2000([f64::NAN, 0.0, 0.0], [50.0, 0.0, 0.0]).is_nan());
    // Signed zeros: a grey is a grey (its hue is taken as 0, and with
    // C1'C2' = 0 the hue terms drop out anyway).
    let other = [55.0, 3.0, 1.0];
    let d = ciede2000([50.0, 0.0, 0.0], other);
    assert_eq!(ciede2000([50.0, -0.0, -0.0], other), d);
    assert_eq!(ciede2000(other, [50.0, -0.0, -0.0]), d);
}

#[test]
fn lab_matches_colour_science() {
    let r = reference();
    let entries = list(&r["lab"]);
    assert_eq!(entries.len(), 112);
    for e in entries {
        let rgb = vec3(&e["rgb"]);
        let xyz65 = mat3_mul_vec(XYZ_FROM_LINEAR_SRGB, rgb);
        assert!(max_diff(xyz65, vec3(&e["xyz_d65"])) < 1e-12, "{rgb:?}");
        let xyz50 = mat3_mul_vec(bradford(D65_XYZ, D50_XYZ), xyz65);
        assert!(max_diff(xyz50, vec3(&e["xyz_d50"])) < 1e-12, "{rgb:?}");
        let lab = linear_srgb_to_lab_d50(rgb);
        let want = vec3(&e["lab"]);
        assert!(max_diff(lab, want) < 1e-9, "{rgb:?}: {lab:?} vs {want:?}");
        // And back.
        let back = lab_d50_to_linear_srgb(want);
        assert!(max_diff(back, rgb) < 1e-9, "{want:?}: {back:?} vs {rgb:?}");
    }
}

#[test]
fn lab_srgb_round_trips() {
    let r = reference();
    let mut labs: Vec<Vec3> = list(&r["lab"]).iter().map(|e| vec3(&e["lab"])).collect();
    labs.extend(COLORCHECKER_24.iter().map(|&(_, lab)| lab));
    // A grid, out of gamut and into the dark linear segment included.
    for l in [0.0, 0.5, 5.0, 8.0, 30.0, 60.0, 95.0, 100.0] {
        for a in [-100.0, -20.0, 0.0, 3.0, 80.0] {
            for b in [-110.0, -4.0, 0.0, 60.0, 100.0] {
                labs.push([l, a, b]);
            }
        }
    }
    for lab in labs {
        let back = linear_srgb_to_lab_d50(lab_d50_to_linear_srgb(lab));
        assert!(max_diff(lab, back) < 1e-9, "{lab:?} -> {back:?}");
    }
}

#[test]
fn colorchecker_matches_reference() {
    let r = reference();
    let cc = &r["colorchecker"];
    let patches = list(&cc["patches"]);
    assert_eq!(patches.len(), 24);
    for (i, (p, &(name, lab))) in patches.iter().zip(COLORCHECKER_24.iter()).enumerate() {
        assert_eq!(p["name"].as_str(), Some(name), "patch {i}");
        let want = vec3(&p["lab"]);
        assert!(max_diff(lab, want) < 1e-12, "{name}: {lab:?} vs {want:?}");
        let rgb = lab_d50_to_linear_srgb(lab);
        let want = vec3(&p["linear_srgb"]);
        assert!(max_diff(rgb, want) < 1e-9, "{name}: {rgb:?} vs {want:?}");
        // Relative to the chart's own white these are X-Rite's printed
        // two-decimal values; relative to CIE D50 within 0.02 of them.
        let printed = vec3(&p["lab_chart_illuminant"]);
        assert!(max_diff(lab, printed) < 0.02, "{name}");
        for v in printed {
            assert!((v * 100.0 - (v * 100.0).round()).abs() < 1e-6, "{name}");
        }
    }
}

#[test]
fn grey_patches_are_grey() {
    let names: Vec<&str> = GREY_PATCHES.iter().map(|&i| COLORCHECKER_24[i].0).collect();
    assert!(names[0].starts_with("white") && names[5].starts_with("black"));
    let mut last_l = f64::INFINITY;
    for i in GREY_PATCHES {
        let (name, [l, a, b]) = COLORCHECKER_24[i];
        if i == GREY_PATCHES[0] {
            // X-Rite's post-2014 white is measurably yellow: b* = 2.93
            // printed (2.95 relative to CIE D50), so only C* is bounded.
            assert!(a.hypot(b) < 3.5, "{name}: a {a} b {b}");
        } else {
            assert!(a.abs() < 1.5 && b.abs() < 1.5, "{name}: a {a} b {b}");
        }
        assert!(l < last_l, "{name}: not darker than the one before");
        last_l = l;
    }
    // Nothing else on the chart is that neutral.
    for (i, &(name, [_, a, b])) in COLORCHECKER_24.iter().enumerate() {
        if !GREY_PATCHES.contains(&i) {
            assert!(a.hypot(b) > 10.0, "{name}");
        }
    }
}

#[test]
fn srgb_transfer() {
    let r = reference();
    let entries = list(&r["srgb_transfer"]);
    assert!(!entries.is_empty());
    for e in entries {
        let (lin, enc) = (num(&e["linear"]), num(&e["encoded"]));
        assert!((srgb_encode(lin) - enc).abs() < 1e-12, "encode {lin}");
        assert!((srgb_decode(enc) - lin).abs() < 1e-12, "decode {enc}");
    }
    for i in 0..=1000 {
        let v = f64::from(i) / 1000.0;
        assert!((srgb_decode(srgb_encode(v)) - v).abs() < 1e-14, "{v}");
        assert!((srgb_encode(srgb_decode(v)) - v).abs() < 1e-14, "{v}");
        assert!(srgb_encode(v + 1e-3) > srgb_encode(v));
    }
    assert_eq!(srgb_encode(0.0), 0.0);
    assert!((srgb_encode(1.0) - 1.0).abs() < 1e-15);
    assert!((srgb_decode(1.0) - 1.0).abs() < 1e-15);
    // Continuous at the breakpoints to within the standard's rounding.
    let at = srgb_encode(SRGB_LINEAR_MAX);
    let past = 1.055 * SRGB_LINEAR_MAX.powf(1.0 / 2.4) - 0.055;
    assert!((at - past).abs() < 1e-7);
    assert!((srgb_decode(-0.1) + 0.1 / 12.92).abs() < 1e-15);
}
