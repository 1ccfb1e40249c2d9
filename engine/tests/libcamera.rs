//! libcamera tuning files in and out (`isp_engine::libcamera`): real files
//! (Raspberry Pi vc4 IMX219, rkisp1 IMX258, the simple pipeline's
//! uncalibrated file) and two written in their shape (see
//! `tests/data/libcamera/README.md`).
//!
//! Tolerances, and why:
//! - `TEXT` 1e-6 relative: an f32 written as its shortest decimal and read
//!   back as f64 then f32, or through `1/x` (rkisp1's colour gains are the
//!   inverse of our curve's ratios), or a square/root (RPi's noise).
//! - `RPI_LSC` 1e-5 relative: the RPi table is made from our grid by solving
//!   the import's resampling (f64), split into luminance x Cr/Cb and written
//!   with six decimals (up to ~3e-6 back in a gain of 1..4).
//! - `RK_LSC` 0.5/1024: rkisp1 tables are integers with 1024 = 1.0; a grid
//!   resampled from non-uniform sectors is re-quantised on export.
//! - black levels are exact (16-bit units are sensor units << (16 - bits)).

#![allow(clippy::unwrap_used)]

use LibcameraFormat::{Rkisp1, Rpi, Simple};
use isp_engine::algorithms::{ae::MeanLuminanceParams, awb_ct::CtCurveParams, parse_params};
use isp_engine::libcamera::{self, Import, LibcameraFormat};
use isp_engine::stages::ccm::CcmAtCt;
use isp_engine::stages::lens_shading::LensShadingParams;
use isp_engine::stages::tone::Gamma;
use isp_engine::tuning::{AlgorithmBlock, SensorNoise, Tuning};

const TEXT: f32 = 1e-6;
const RPI_LSC: f32 = 1e-5;
const RK_LSC: f32 = 0.5 / 1024.0 + 1e-6;

fn data(name: &str) -> String {
    let p = format!("{}/tests/data/libcamera/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn imp(name: &str, bits: u8) -> Import {
    libcamera::import(&data(name), name, &Tuning::default(), bits, None)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The block `name` of an RPi tuning file's `algorithms` list.
fn rpi_block(file: &serde_json::Value, name: &str) -> serde_json::Value {
    file["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a.get(name))
        .unwrap()
        .clone()
}

fn close(a: f32, b: f32, rel: f32) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

#[track_caller]
fn near(a: f32, b: f32, rel: f32, what: &str) {
    assert!(close(a, b, rel), "{what}: {a} vs {b}");
}

fn block<'a>(t: &'a Tuning, name: &str) -> Option<&'a AlgorithmBlock> {
    t.algorithms.iter().find(|b| b.name == name)
}

fn runs(t: &Tuning, name: &str) -> bool {
    block(t, name).is_some_and(|b| b.enabled)
}

fn curve(t: &Tuning) -> CtCurveParams {
    parse_params(
        &block(t, "awb.ct_curve")
            .expect("an awb.ct_curve block")
            .params,
    )
    .unwrap()
}

fn ae(t: &Tuning) -> MeanLuminanceParams {
    parse_params(&block(t, "ae.mean_luminance").unwrap().params).unwrap()
}

/// A line starting with each of `starts` (separated by `|`).
#[track_caller]
fn has(lines: &[String], starts: &str) {
    for start in starts.split('|') {
        let found = lines.iter().any(|l| l.starts_with(start));
        assert!(found, "no line starting {start:?} in {lines:#?}");
    }
}

/// Every value that maps in `f` (of those `only` says were mapped, when
/// given), compared field by field.
#[track_caller]
fn same_mapped(a: &Tuning, b: &Tuning, f: LibcameraFormat, only: Option<&[String]>) {
    let m = |key: &str| only.is_none_or(|l| l.iter().any(|x| x.contains(key)));
    let (sa, sb) = (&a.stages, &b.stages);
    if m("stages.black_level") {
        assert_eq!(sa.black_level.levels, sb.black_level.levels, "black levels");
    }
    if m("stages.ccm") {
        ccm_same(a, b);
    }
    if m("-> AWB") {
        awb_same(a, b);
    }
    if m("ae.mean_luminance") {
        assert_eq!(
            runs(a, "ae.mean_luminance"),
            runs(b, "ae.mean_luminance"),
            "AE enabled"
        );
        if f != Simple {
            near(ae(a).target, ae(b).target, TEXT, "AE target");
        }
    }
    if f != Simple && m("stages.lens_shading") {
        let (la, lb) = (&sa.lens_shading, &sb.lens_shading);
        assert_eq!(
            (la.grid_width, la.grid_height, la.enabled),
            (lb.grid_width, lb.grid_height, lb.enabled)
        );
        let tol = if f == Rpi { RPI_LSC } else { RK_LSC };
        for (c, (ga, gb)) in la.gains.iter().zip(&lb.gains).enumerate() {
            for (i, (p, q)) in ga.iter().zip(gb).enumerate() {
                near(*p, *q, tol, &format!("lens shading site {c} point {i}"));
            }
        }
    }
    if m("stages.tone") {
        let (ta, tb) = (&sa.tone, &sb.tone);
        assert_eq!(
            (ta.enabled, ta.contrast, ta.curve.len()),
            (tb.enabled, tb.contrast, tb.curve.len()),
            "tone"
        );
        match (ta.gamma, tb.gamma) {
            (Gamma::Power(p), Gamma::Power(q)) => near(p, q, TEXT, "gamma"),
            (p, q) => assert_eq!(p, q),
        }
        for (p, q) in ta.curve.iter().flatten().zip(tb.curve.iter().flatten()) {
            near(*p, *q, TEXT, "tone curve");
        }
    }
    if m("-> noise") {
        match (&a.noise, &b.noise) {
            (Some(p), Some(q)) => {
                for (x, y) in p
                    .shot
                    .iter()
                    .chain(&p.read)
                    .zip(q.shot.iter().chain(&q.read))
                {
                    near(*x, *y, TEXT, "noise");
                }
            }
            (p, q) => assert_eq!(p, q, "noise"),
        }
    }
}

#[track_caller]
fn ccm_same(a: &Tuning, b: &Tuning) {
    let (sa, sb) = (&a.stages, &b.stages);
    assert_eq!(sa.ccm.by_ct.len(), sb.ccm.by_ct.len(), "CCM count");
    let (ma, mb) = ([(0.0, sa.ccm.matrix)], [(0.0, sb.ccm.matrix)]);
    let each = |s: &[CcmAtCt]| s.iter().map(|c| (c.ct, c.matrix)).collect::<Vec<_>>();
    let (xs, ys) = (each(&sa.ccm.by_ct), each(&sb.ccm.by_ct));
    for (x, y) in xs.into_iter().chain(ma).zip(ys.into_iter().chain(mb)) {
        near(x.0, y.0, TEXT, "CCM ct");
        for (p, q) in x.1.iter().flatten().zip(y.1.iter().flatten()) {
            near(*p, *q, TEXT, &format!("CCM at {} K", x.0));
        }
    }
}

#[track_caller]
fn awb_same(a: &Tuning, b: &Tuning) {
    for name in ["awb.ct_curve", "awb.grey_world"] {
        assert_eq!(runs(a, name), runs(b, name), "{name} enabled");
    }
    if block(a, "awb.ct_curve").is_some() {
        let (ca, cb) = (curve(a), curve(b));
        assert_eq!(ca.ct_curve.len(), cb.ct_curve.len());
        for (p, q) in ca
            .ct_curve
            .iter()
            .flatten()
            .zip(cb.ct_curve.iter().flatten())
        {
            near(*p, *q, TEXT, "ct_curve");
        }
        near(ca.transverse_pos, cb.transverse_pos, TEXT, "transverse_pos");
        near(ca.transverse_neg, cb.transverse_neg, TEXT, "transverse_neg");
    }
}

/// (1) The Raspberry Pi IMX219 file's values, spot-checked against the
/// file's own numbers.
#[test]
fn rpi_imx219_maps_its_blocks() {
    let text = data("rpi_vc4_imx219.json");
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let alg = |name: &str| rpi_block(&file, name);
    let i = imp("rpi_vc4_imx219.json", 10);
    let t = &i.tuning;
    assert_eq!(i.format, Rpi);
    // 4096 in 16-bit units is 64 at 10 bits.
    assert_eq!(t.stages.black_level.levels, [64; 4]);
    // CCMs: six, rising; `matrix` is the one at 4650 K (nearest 5000).
    let c = &t.stages.ccm;
    assert_eq!(
        c.by_ct.iter().map(|m| m.ct).collect::<Vec<_>>(),
        [2860.0, 2960.0, 3603.0, 4650.0, 5858.0, 7580.0]
    );
    assert_eq!(c.by_ct[0].matrix[1], [-0.85342, 2.80445, -0.95103]);
    assert_eq!(c.matrix, c.by_ct[3].matrix);
    // The CT curve runs (the file has priors and modes), grey world does not.
    let cc = curve(t);
    assert_eq!(cc.ct_curve.len(), 7);
    assert_eq!(cc.ct_curve[0], [2498.0, 0.9309, 0.3599]);
    assert_eq!(cc.ct_curve[6], [8575.0, 0.4331, 0.8037]);
    assert_eq!((cc.transverse_pos, cc.transverse_neg), (0.04791, 0.04881));
    assert!(runs(t, "awb.ct_curve") && !runs(t, "awb.grey_world"));
    // Lens shading: the corners take the corner cells' gains (lum' x Cr/Cb
    // at 6000 K, the calibration nearest 5000 K; luminance strength 0.7).
    let alsc = alg("rpi.alsc");
    let lut = |k: usize| 1.0 + (alsc["luminance_lut"][k].as_f64().unwrap() - 1.0) * 0.7;
    let cal = |key: &str, k: usize| alsc[key][2]["table"][k].as_f64().unwrap();
    assert_eq!(alsc["calibrations_Cr"][2]["ct"], 6000);
    let ls = &t.stages.lens_shading;
    assert_eq!((ls.grid_width, ls.grid_height), (16, 12));
    for (ours, theirs) in [(0, 0), (15, 15), (16 * 11, 16 * 11), (191, 191)] {
        near(
            ls.gains[0][ours],
            (lut(theirs) * cal("calibrations_Cr", theirs)) as f32,
            TEXT,
            "R corner",
        );
        near(ls.gains[1][ours], lut(theirs) as f32, TEXT, "Gr corner");
        near(ls.gains[2][ours], lut(theirs) as f32, TEXT, "Gb corner");
        near(
            ls.gains[3][ours],
            (lut(theirs) * cal("calibrations_Cb", theirs)) as f32,
            TEXT,
            "B corner",
        );
    }
    // The frame's centre: RPi's value is the mean of the four middle cells;
    // ours interpolates grid points that are themselves resampled (a corner
    // grid cannot pass through every cell centre): within 0.5%.
    let mid = [16 * 5 + 7, 16 * 5 + 8, 16 * 6 + 7, 16 * 6 + 8];
    let theirs = mid
        .iter()
        .map(|k| lut(*k) * cal("calibrations_Cr", *k))
        .sum::<f64>()
        / 4.0;
    let ours = ls.gain_at(0, 2000, 1500, 4001, 3001);
    assert!(
        ((ours as f64) - theirs).abs() < 0.005 * theirs,
        "{ours} vs {theirs}"
    );
    // Tone: the gamma curve is the whole transfer.
    let tone = &t.stages.tone;
    assert_eq!(
        (tone.gamma, tone.contrast, tone.curve.len()),
        (Gamma::Linear, 1.0, 31)
    );
    assert_eq!(tone.curve[0], [1024.0 / 65535.0, 5040.0 / 65535.0]);
    assert!((tone.eval(32768.0 / 65535.0) - 54876.0 / 65535.0).abs() < 1e-6);
    // AE: y_target [0, 0.16, 1000, 0.165, 10000, 0.17] at 1000 lux.
    near(ae(t).target, 0.165, TEXT, "AE target");
    // Noise: constant 0, slope 3.67 in 16-bit units; at 10 bits k = 64.
    let n = t.noise.as_ref().unwrap();
    near(n.shot[0], 3.67 * 3.67 / 64.0, TEXT, "shot");
    assert_eq!(n.read, [0.0; 4]);
    let none = "rpi.dpc|rpi.lux|rpi.geq|rpi.sdn|rpi.nn.awb|rpi.sharpen|rpi.hdr";
    has(&i.unmapped, &none.replace('|', ": no counterpart|"));
    let rest =
        "rpi.alsc.calibrations_Cr at 3000, 3850|rpi.awb: |rpi.contrast: |rpi.agc.channels[1..]";
    has(&i.unmapped, rest);
    let took =
        "rpi.black_level ->|rpi.alsc ->|rpi.awb ->|rpi.ccm.ccms ->|rpi.contrast.gamma_curve ->";
    has(&i.mapped, &format!("{took}|rpi.noise ->"));
}

/// (1) The rkisp1 IMX258 file: lens shading only (its BlackLevelCorrection
/// has no levels).
#[test]
fn rkisp1_imx258_maps_lens_shading() {
    let i = imp("rkisp1_imx258.yaml", 10);
    assert_eq!(i.format, Rkisp1);
    let ls = &i.tuning.stages.lens_shading;
    assert_eq!((ls.grid_width, ls.grid_height), (17, 17));
    // The 5003 K set: corners and centre as written, 1024 = 1.0.
    for (k, r, b) in [
        (0, 1240, 1252),
        (16, 1336, 1303),
        (272, 1136, 1209),
        (288, 1283, 1333),
        (144, 1059, 1027),
    ] {
        assert_eq!(ls.gains[0][k], r as f32 / 1024.0, "r[{k}]");
        assert_eq!(ls.gains[3][k], b as f32 / 1024.0, "b[{k}]");
    }
    assert_eq!(
        i.tuning.stages.black_level,
        Tuning::default().stages.black_level
    );
    has(
        &i.unmapped,
        "rkisp1.BlackLevelCorrection: no (or not all four) levels",
    );
    has(
        &i.unmapped,
        "rkisp1.LensShadingCorrection.sets at 2856, 6504, 7504, 4000, 4230 K not mapped",
    );
    has(
        &i.unmapped,
        "rkisp1.LensShadingCorrection: sets[0].resolution",
    );
    has(
        &i.mapped,
        "rkisp1.LensShadingCorrection -> stages.lens_shading (17x17, 1024 = 1.0; the set at 5003 K",
    );
}

/// (1) The rkisp1 file with every mapped block.
#[test]
fn rkisp1_custom_maps_every_block() {
    let i = imp("rkisp1_custom.yaml", 12);
    let t = &i.tuning;
    assert_eq!(i.format, Rkisp1);
    // 16-bit levels >> 4 at 12 bits.
    assert_eq!(t.stages.black_level.levels, [256, 257, 258, 260]);
    // The set at 5000 K; non-uniform sectors, but the corners and centre
    // are grid points on both sides.
    let ls = &t.stages.lens_shading;
    for (k, v) in [(0, 2048), (16, 1900), (272, 1800), (288, 1700), (144, 1024)] {
        near(ls.gains[0][k], v as f32 / 1024.0, TEXT, &format!("r[{k}]"));
    }
    has(
        &i.mapped,
        "rkisp1.LensShadingCorrection -> stages.lens_shading (17x17, 1024 = 1.0; the set at 5000 K of 2 nearest 5000 K; resampled",
    );
    // CCMs; matrix = 5000 K's.
    let c = &t.stages.ccm;
    assert_eq!(c.by_ct.len(), 3);
    assert_eq!(
        c.matrix,
        [[1.7, -0.5, -0.2], [-0.3, 1.6, -0.3], [-0.05, -0.55, 1.6]]
    );
    assert_eq!(c.by_ct[2].matrix[2], [0.0, -0.5, 1.5]);
    has(
        &i.unmapped,
        "rkisp1.Ccm.ccms offsets [16.0, 0.0, -16.0] at 6500 K",
    );
    // Colour gains are the inverse of the curve's ratios; bayes runs it.
    let cc = curve(t);
    let want = [
        [2800.0, 0.8, 0.4],
        [4000.0, 0.625, 1.0 / 1.8],
        [6500.0, 0.5, 0.8],
    ];
    assert_eq!(cc.ct_curve.len(), 3);
    for (p, q) in cc.ct_curve.iter().flatten().zip(want.iter().flatten()) {
        near(*p, *q, TEXT, "ct_curve");
    }
    assert_eq!((cc.transverse_pos, cc.transverse_neg), (0.05, 0.03));
    assert!(runs(t, "awb.ct_curve") && !runs(t, "awb.grey_world"));
    has(&i.unmapped, "rkisp1.Awb: AwbMode, priors not mapped");
    assert_eq!(
        (t.stages.tone.gamma, t.stages.tone.contrast),
        (Gamma::Power(2.4), 1.0)
    );
    assert!(t.stages.tone.curve.is_empty());
    near(ae(t).target, 0.16, TEXT, "AE target");
    has(
        &i.unmapped,
        "rkisp1.Agc: AeMeteringMode not mapped|rkisp1.Dpf: no counterpart",
    );
    has(
        &i.unmapped,
        "rkisp1.Filter: no counterpart|rkisp1.Lux: no counterpart",
    );
    has(
        &i.unmapped,
        "rkisp1.DefectPixelClusterCorrection: no counterpart",
    );
}

/// (1) The simple pipeline's files.
#[test]
fn simple_files_map_their_blocks() {
    let i = imp("simple_uncalibrated.yaml", 10);
    assert_eq!(i.format, Simple);
    let t = &i.tuning;
    let id = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let ccm = &t.stages.ccm.by_ct;
    assert_eq!((ccm.len(), ccm[0].ct, ccm[0].matrix), (1, 6500.0, id));
    assert_eq!(
        (t.stages.tone.gamma, t.stages.tone.contrast),
        (Gamma::Power(2.2), 1.0)
    );
    assert!(runs(t, "awb.grey_world") && block(t, "awb.ct_curve").is_none());
    let none = "simple.BlackLevel: no blackLevel|simple.Lut: no counterpart|simple.Agc: no";
    has(&i.unmapped, none);

    let i = imp("simple_custom.yaml", 8);
    let t = &i.tuning;
    assert_eq!(i.format, Simple);
    assert_eq!(t.stages.black_level.levels, [16; 4]);
    assert_eq!(t.stages.ccm.by_ct.len(), 2);
    assert_eq!(
        t.stages.ccm.matrix, t.stages.ccm.by_ct[1].matrix,
        "6000 K is nearer 5000"
    );
    // algorithm grey: grey world runs, the curve is kept (disabled).
    assert!(runs(t, "awb.grey_world") && !runs(t, "awb.ct_curve"));
    let cc = curve(t);
    near(cc.ct_curve[0][1], 1.0 / 1.2, TEXT, "r");
    near(cc.ct_curve[1][2], 1.0 / 1.3, TEXT, "b");
    // Forced: the same file read as rkisp1 keeps Adjust/BlackLevel unmapped.
    let text = data("simple_custom.yaml");
    let f = libcamera::import(&text, "s", &Tuning::default(), 8, Some(Rkisp1)).unwrap();
    assert_eq!(f.format, Rkisp1);
    has(&f.unmapped, "rkisp1.Adjust: no counterpart");
}

/// (2) export(import(file)) imported again keeps every mapped value.
#[test]
fn files_round_trip_through_export() {
    for (name, bits) in [
        ("rpi_vc4_imx219.json", 10),
        ("rkisp1_imx258.yaml", 10),
        ("rkisp1_custom.yaml", 12),
        ("simple_uncalibrated.yaml", 10),
        ("simple_custom.yaml", 8),
    ] {
        let a = imp(name, bits);
        let (text, notes) = libcamera::export(&a.tuning, a.format, bits).unwrap();
        let b = libcamera::import(&text, "exported", &Tuning::default(), bits, None)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(b.format, a.format, "{name}");
        same_mapped(&a.tuning, &b.tuning, a.format, Some(&a.mapped));
        has(&notes, "stages.white_balance");
    }
}

fn grid(w: usize, h: usize, site: usize, q: bool) -> Vec<f32> {
    (0..w * h)
        .map(|k| {
            let (x, y) = (
                (k % w) as f32 / (w - 1) as f32 - 0.5,
                (k / w) as f32 / (h - 1) as f32 - 0.5,
            );
            let g = 1.0 + (0.8 + 0.1 * site as f32) * (x * x + y * y) + 0.05 * x;
            if q { (g * 1024.0).round() / 1024.0 } else { g }
        })
        .collect()
}

/// A tuning every value of which has a place in `f`.
fn representable(f: LibcameraFormat) -> Tuning {
    let mut t = Tuning::default();
    let s = &mut t.stages;
    s.black_level.levels = match f {
        Rkisp1 => [60, 64, 68, 72],
        Rpi => [60, 64, 64, 72],
        Simple => [64; 4],
    };
    let m = |d: f32| {
        [
            [1.5 + d, -0.3, -0.2 - d],
            [-0.25, 1.45, -0.2],
            [-0.05, -0.45 + d, 1.5 - d],
        ]
    };
    let at = |(ct, d)| CcmAtCt { ct, matrix: m(d) };
    s.ccm.by_ct = [(2800.0, 0.1), (4000.0, 0.05), (6500.0, -0.03)]
        .map(at)
        .to_vec();
    s.ccm.matrix = m(0.05);
    let (w, h) = if f == Rpi { (16, 12) } else { (17, 17) };
    let q = f == Rkisp1;
    s.lens_shading = LensShadingParams {
        enabled: true,
        grid_width: w,
        grid_height: h,
        gains: [0, 1, 1, 3].map(|c| grid(w, h, c, q)),
    };
    (s.tone.gamma, s.tone.contrast, s.tone.curve) = match f {
        Rpi => (
            Gamma::Linear,
            1.0,
            vec![[0.01, 0.08], [0.1, 0.35], [0.5, 0.8]],
        ),
        Rkisp1 => (Gamma::Power(2.4), 1.0, vec![]),
        Simple => (Gamma::Power(2.2), 1.0, vec![]),
    };
    if f == Rpi {
        t.noise = Some(SensorNoise {
            shot: [0.25; 4],
            read: [4.0; 4],
        });
    }
    let curve = CtCurveParams {
        ct_curve: vec![
            [2500.0, 0.9, 0.35],
            [3000.0, 0.8, 0.45],
            [4500.0, 0.62, 0.63],
            [7000.0, 0.45, 0.8],
        ],
        transverse_pos: 0.05,
        transverse_neg: 0.03,
        ..CtCurveParams::default()
    };
    t.algorithms = vec![
        AlgorithmBlock {
            name: "awb.ct_curve".into(),
            enabled: true,
            params: serde_json::to_value(&curve).unwrap(),
        },
        AlgorithmBlock {
            name: "awb.grey_world".into(),
            enabled: false,
            params: serde_json::json!({}),
        },
        AlgorithmBlock {
            name: "ae.mean_luminance".into(),
            enabled: true,
            params: serde_json::json!({ "target": 0.2 }),
        },
    ];
    t.check("t").unwrap();
    t
}

/// (3) import(export(t)) == t for a tuning whose values all have a place.
#[test]
fn representable_tunings_round_trip() {
    for f in [Rpi, Rkisp1, Simple] {
        let t = representable(f);
        let (text, notes) = libcamera::export(&t, f, 10).unwrap();
        let i = libcamera::import(&text, "exported", &Tuning::default(), 10, Some(f))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        same_mapped(&t, &i.tuning, f, None);
        if f == Simple {
            has(&notes, "stages.lens_shading: no place");
            has(&notes, "ae.mean_luminance target 0.2: no place");
        } else {
            assert!(
                !notes
                    .iter()
                    .any(|n| n.contains("resampled") || n.contains("clipped")),
                "{notes:#?}"
            );
        }
        // Gamma and LSC on the rkisp1 1/1024 grid are exact.
        if f == Rkisp1 {
            assert_eq!(i.tuning.stages.lens_shading, t.stages.lens_shading);
        }
    }
}

/// What has no place is said: Gr != Gb on RPi, distinct levels on simple,
/// a tone the format cannot hold.
#[test]
fn export_says_what_has_no_place() {
    let mut t = representable(Rkisp1);
    t.stages.tone = Default::default();
    let (_, n) = libcamera::export(&t, Rpi, 10).unwrap();
    has(&n, "stages.black_level Gr 64 and Gb 68 differ");
    has(
        &n,
        "stages.tone (gamma Srgb, contrast 1.1, 0 curve points): sampled",
    );
    has(&n, "stages.lens_shading: the 17x17 grid resampled");
    let (_, n) = libcamera::export(&t, Simple, 10).unwrap();
    has(&n, "stages.black_level.levels [60, 64, 68, 72] differ");
    let (_, n) = libcamera::export(&t, Rkisp1, 10).unwrap();
    has(&n, "stages.tone gamma sRGB: written as the power 2.2");
    let err = libcamera::export(&t, Rkisp1, 0).unwrap_err();
    assert!(err.contains("sensor bit depth 0 is not in 1..=16"), "{err}");
    for s in ["rpi", "rkisp1", "simple"] {
        assert_eq!(LibcameraFormat::parse(s).map(|f| f.name()), Some(s));
    }
    assert_eq!(LibcameraFormat::parse("ipu3"), None);
}

#[track_caller]
fn fails(text: &str, hint: Option<LibcameraFormat>, wants: &str) {
    let e = libcamera::import(text, "bad.file", &Tuning::default(), 10, hint).unwrap_err();
    let e = e.to_string();
    assert!(e.starts_with("bad.file: "), "{e}");
    for w in wants.split('|') {
        assert!(e.contains(w), "{e:?} does not say {w:?}");
    }
}

/// (4) Malformed files: errors naming the origin and the block, no panic.
#[test]
fn malformed_files_name_the_origin_and_block() {
    let (rpi, rk) = (data("rpi_vc4_imx219.json"), data("rkisp1_custom.yaml"));
    let mut v: serde_json::Value = serde_json::from_str(&rpi).unwrap();
    let algs = v["algorithms"].as_array_mut().unwrap();
    let alsc = algs.iter_mut().find_map(|a| a.get_mut("rpi.alsc")).unwrap();
    alsc["luminance_lut"]
        .as_array_mut()
        .unwrap()
        .push(1.0.into());
    let lut = v.to_string();
    let short_r = data("rkisp1_imx258.yaml").replacen("r: [1240, ", "r: [", 1);
    let cases = [
        ("{ \"version\": 2.0, ", "not valid JSON"),
        ("version: 1\nalgorithms: [ { Ccm: ", "not valid YAML"),
        (
            &rpi.replacen("\"version\": 2.0", "\"version\": 1.0", 1),
            "`version`|2.0",
        ),
        ("version: 2\nalgorithms: []\n", "`version`"),
        (
            &rpi.replacen("-0.52461, -0.59629", "-0.59629", 1),
            "`rpi.ccm.ccms[0].ccm`|8 numbers",
        ),
        (
            &rk.replacen("[ 2.0, -0.6, -0.4,", "[ 2.0, -0.6,", 1),
            "`rkisp1.Ccm.ccms[0].ccm`|8 numbers",
        ),
        (&lut, "`rpi.alsc.luminance_lut`|193 values"),
        (
            &short_r,
            "`rkisp1.LensShadingCorrection.sets[1].r`|288 numbers",
        ),
        (
            &rpi.replacen("2498.0, 0.9309, 0.3599,", "2498.0, 0.9309,", 1),
            "`rpi.awb.ct_curve`",
        ),
        (
            &rpi.replacen("\"black_level\": 4096", "\"black_level\": 70000", 1),
            "`rpi.black_level`|70000",
        ),
        (
            r#"{"version": 2.0, "algorithms": [{"rpi.ccm": {}, "rpi.awb": {}}]}"#,
            "`algorithms[0]`",
        ),
        (
            "version: 1\nalgorithms:\n  - Awb:\n      algorithm: magic\n",
            "`rkisp1.Awb.algorithm`|magic",
        ),
    ];
    for (text, wants) in cases {
        fails(text, None, wants);
    }
    fails(&rpi, Some(Rkisp1), "`version`|2.0 is not supported");
    fails(
        "version: 1\nalgorithms: []\n",
        Some(Rpi),
        "`version`|1 is not supported",
    );
    let err = libcamera::import(&rpi, "x", &Tuning::default(), 17, None)
        .expect_err("17-bit import refused")
        .to_string();
    assert!(
        err.contains("sensor bit depth 17 is not in 1..=16"),
        "{err}"
    );
    // Any truncation of a real file is an error or an import, never a panic.
    for text in [&rpi, &rk] {
        for cut in (0..text.len()).step_by(97) {
            if let Ok(i) = libcamera::import(&text[..cut], "cut", &Tuning::default(), 10, None) {
                i.tuning.check("cut").unwrap();
            }
        }
    }
}

/// An `rpi.alsc` block with `corner_strength` and no table: libcamera
/// generates the luminance table (alsc.cpp `generateLut`); the corner gain
/// is worked out by hand from its formula (16x12 cells, strength 2: f1 = 1,
/// f2 = 1 + sqrt 2, corner r2 = 86.5 / 96).
#[test]
fn rpi_generated_luminance_tables_are_libcameras() {
    let text = r#"{"version": 2.0, "target": "bcm2835",
        "algorithms": [{"rpi.alsc": {"corner_strength": 2.0}}]}"#;
    let i = libcamera::import(text, "gen.json", &Tuning::default(), 10, None).unwrap();
    let ls = &i.tuning.stages.lens_shading;
    assert_eq!((ls.grid_width, ls.grid_height), (16, 12));
    for g in &ls.gains {
        near(g[0], 1.885_743_3, TEXT, "corner");
        near(g[191], 1.885_743_3, TEXT, "far corner");
        // Inside, our grid's points fall between RPi's cell centres (the
        // import resamples), so only the corners are exact; the middle is
        // the lowest.
        let min = g.iter().copied().fold(f32::MAX, f32::min);
        let middle = [5 * 16 + 7, 5 * 16 + 8, 6 * 16 + 7, 6 * 16 + 8].map(|k| g[k]);
        assert!(min < 1.01 && middle.contains(&min), "{min} {middle:?}");
    }
    let text = text.replace("2.0}", "1.0}");
    let err = libcamera::import(&text, "gen.json", &Tuning::default(), 10, None)
        .expect_err("a corner strength of 1 generates nothing")
        .to_string();
    assert!(err.contains("rpi.alsc.corner_strength"), "{err}");
}

/// The edges of the RPi mapping: HDR channels counted, the noise model's
/// signs and exactness, a tone curve's ends, a zero shading gain.
#[test]
fn rpi_edges_are_mapped_and_said() {
    let imp = |algs: &str| {
        let text = format!(r#"{{"version": 2.0, "target": "bcm2835", "algorithms": [{algs}]}}"#);
        libcamera::import(&text, "e.json", &Tuning::default(), 10, None)
    };
    let i = imp(
        r#"{"rpi.agc": {"channels": [{"y_target": [0, 0.16]}, {"y_target": [0, 0.1]},
            {"y_target": [0, 0.2]}]}}"#,
    )
    .unwrap();
    assert!(
        i.unmapped
            .iter()
            .any(|l| l.starts_with("rpi.agc.channels[1..]: 2 more not mapped")),
        "{:?}",
        i.unmapped
    );
    // A noise model with either term 0 is exact; a negative one is refused.
    let i = imp(r#"{"rpi.noise": {"reference_constant": 0, "reference_slope": 3.0}}"#).unwrap();
    assert!(
        i.mapped
            .iter()
            .any(|l| l.starts_with("rpi.noise") && l.contains("; exact)")),
        "{:?}",
        i.mapped
    );
    for (c, s) in [(-1.0, 3.0), (1.0, -3.0)] {
        let err = imp(&format!(
            r#"{{"rpi.noise": {{"reference_constant": {c}, "reference_slope": {s}}}}}"#
        ))
        .expect_err("a negative noise term")
        .to_string();
        assert!(err.contains("must be >= 0"), "{err}");
    }

    // A linear tone curve that does not reach 0 or 1 is closed at both ends.
    let mut t = Tuning::default();
    t.stages.tone.gamma = Gamma::Linear;
    t.stages.tone.contrast = 1.0;
    t.stages.tone.curve = vec![[0.25, 0.2], [0.75, 0.8]];
    // A shading grid with a zero green gain: its colour ratio is 1, not NaN.
    t.stages.lens_shading = LensShadingParams::radial(16, 12, [0.3; 4]);
    t.stages.lens_shading.gains[1][0] = 0.0;
    t.stages.lens_shading.gains[2][0] = 0.0;
    let (text, _) = libcamera::export(&t, Rpi, 10).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let alg = |name: &str| rpi_block(&v, name);
    let curve: Vec<f64> = alg("rpi.contrast")["gamma_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(&curve[..2], &[0.0, 0.0]);
    assert_eq!(&curve[curve.len() - 2..], &[65535.0, 65535.0]);
    assert_eq!(curve.len(), 8, "{curve:?}");
    let alsc = alg("rpi.alsc");
    for key in ["calibrations_Cr", "calibrations_Cb"] {
        assert_eq!(alsc[key][0]["table"][0].as_f64(), Some(1.0), "{key}");
    }
}

/// The edges of the YAML (rkisp1, simple) mapping: AE targets in pairs,
/// the gamma's range, and the notes export writes only when something
/// has no place.
#[test]
fn yaml_edges_are_refused_or_said() {
    let rk = |algs: &str| format!("%YAML 1.1\n---\nversion: 1\nalgorithms:\n{algs}");
    fails(
        &rk("  - Agc:\n      relativeLuminanceTarget: [ 0, 0.14, 1000 ]\n"),
        Some(Rkisp1),
        "relativeLuminanceTarget|has 3 numbers",
    );
    fails(
        &rk("  - GammaOutCorrection:\n      gamma: 200\n"),
        Some(Rkisp1),
        "GammaOutCorrection.gamma|200 is not in (0, 100]",
    );

    let says = |t: &Tuning, f: LibcameraFormat, what: &str| {
        let (_, n) = libcamera::export(t, f, 10).unwrap();
        n.iter().any(|l| l.contains(what))
    };
    // One black level for all four sites: nothing to say; four: said.
    let mut t = Tuning::default();
    t.stages.black_level.levels = [64; 4];
    assert!(!says(&t, Simple, "differ"));
    t.stages.black_level.levels = [64, 64, 64, 66];
    assert!(says(&t, Simple, "differ"));
    // The soft ISP's Adjust is gamma 2.2, contrast 1: a contrast has no place.
    t.stages.tone.gamma = Gamma::Power(2.2);
    t.stages.tone.contrast = 1.0;
    t.stages.tone.curve.clear();
    assert!(!says(&t, Simple, "no place (Adjust"));
    t.stages.tone.contrast = 1.2;
    assert!(says(&t, Simple, "no place (Adjust"));
    // rkisp1's GammaOutCorrection is a power: a contrast has no place there.
    assert!(says(&t, Rkisp1, "no place (GammaOutCorrection"));
    t.stages.tone.contrast = 1.0;
    assert!(!says(&t, Rkisp1, "no place (GammaOutCorrection"));
    // rkisp1's shading tables hold 12 bits (4095/1024): a gain of 5 clips.
    assert!(!says(&t, Rkisp1, "clipped"));
    t.stages.lens_shading = LensShadingParams::radial(17, 17, [0.3; 4]);
    t.stages.lens_shading.gains[0][0] = 5.0;
    assert!(says(&t, Rkisp1, "clipped"));
}
