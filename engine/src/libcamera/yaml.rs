//! libcamera's YAML tuning files (`version: 1`, `algorithms:` a list of
//! one-key maps) for the rkisp1 and simple (soft ISP) pipelines. Which one a
//! file is for is told by the algorithms it holds (rkisp1's own names, or
//! the soft ISP's `BlackLevel`/`Adjust`/`Lut`; rkisp1 when neither).
//!
//! Both (libipa):
//! - `Awb` `colourGains` [{ct, gains: [R gain, B gain]}] -> `awb.ct_curve`
//!   points [ct, 1/R gain, 1/B gain], `transversePos/Neg`; running when
//!   `algorithm: bayes` (else grey world runs, the curve kept disabled).
//!   `priors`, `AwbMode`: unmapped; written as libcamera's example defaults.
//! - `Ccm` `ccms` [{ct (integer), ccm: 9 row-major, offsets: 3}] ->
//!   `stages.ccm.by_ct`; non-zero offsets are unmapped.
//!
//! rkisp1:
//! - `BlackLevelCorrection` `R`, `Gr`, `Gb`, `B` (int16, 16-bit units) ->
//!   `stages.black_level.levels` `>> (16 - bits)`.
//! - `LensShadingCorrection` (`type: table`): `x-size`/`y-size` (8 sector
//!   sizes of half the frame, mirrored) and `sets` [{ct, r, gr, gb, b: 17x17
//!   row major, 1024 = 1.0}] -> `stages.lens_shading` 17x17 (the set nearest
//!   5000 K; resampled linearly when the sectors are not uniform). Export:
//!   uniform sectors, gains rounded to 1/1024 and clipped to 12 bits.
//! - `GammaOutCorrection` `gamma` (default 2.2; out = in^(1/gamma)) ->
//!   `stages.tone.gamma` power, contrast 1, no curve (exact).
//! - `Agc` `relativeLuminanceTarget` (number or curve over lux) ->
//!   `ae.mean_luminance.target` (at 1000 lux).
//!
//! simple:
//! - `BlackLevel` `blackLevel` (one level, 16-bit units) -> every site.
//! - `Adjust` (reads no keys: gamma 2.2, contrast 1 until changed by
//!   controls) -> tone power 2.2, contrast 1, no curve.

use super::{Cx, LibcameraFormat, Obj, REFERENCE_CT, REFERENCE_LUX, get, n32, n64};
use crate::stages::tone::Gamma;
use crate::tuning::{Tuning, TuningError};
use LibcameraFormat::{Rkisp1, Simple};
use serde_json::{Map, Value, json};

type Res<T> = Result<T, TuningError>;

/// Algorithms only rkisp1 files hold.
const RKISP1_ONLY: &str = "BlackLevelCorrection LensShadingCorrection GammaOutCorrection \
    DefectPixelClusterCorrection Dpcc Dpf Filter ColorProcessing GammaSensorLinearization Lux \
    Compress Wdr";

fn reason(name: &str) -> &'static str {
    match name {
        "DefectPixelClusterCorrection" | "Dpcc" => "defect pixel cluster correction",
        "Dpf" => "denoise pre-filter",
        "Filter" => "denoise and sharpening filter",
        "Lux" => "lux estimation",
        "ColorProcessing" => "brightness, contrast, saturation and hue",
        "GammaSensorLinearization" => "sensor linearisation curve",
        "Compress" => "companding",
        "Wdr" => "wide dynamic range tone mapping",
        "Lut" => "takes no keys: an older soft ISP's LUT of Adjust's gamma and the gains",
        "Agc" => "takes no keys: the soft ISP's exposure loop",
        _ => "not an algorithm of this pipeline ISP Studio knows",
    }
}

pub(super) fn import(
    v: &Value,
    cx: &mut Cx,
    t: &mut Tuning,
    hint: Option<LibcameraFormat>,
) -> Res<LibcameraFormat> {
    let top = v
        .as_object()
        .ok_or_else(|| cx.err("(document)", "expected a YAML map"))?;
    match top.get("version") {
        Some(x) if x.as_f64() == Some(1.0) => {}
        Some(x) => return Err(cx.err("version", format!("{x} is not supported (this reads 1)"))),
        None => return Err(cx.err("version", "missing")),
    }
    let mut algs = Vec::new();
    let items = cx.list(get(top, "algorithms"), "algorithms")?;
    for (i, a) in items.iter().enumerate() {
        let Some((k, p)) = super::single(a) else {
            let m = "expected a map of one key, the algorithm's name";
            return Err(cx.err(format!("algorithms[{i}]"), m));
        };
        algs.push((k, p));
    }
    let has = |names: &str| {
        algs.iter()
            .any(|(n, _)| names.split_whitespace().any(|x| x == *n))
    };
    let simple = has("BlackLevel Adjust Lut") && !has(RKISP1_ONLY);
    let format = hint.unwrap_or(if simple { Simple } else { Rkisp1 });
    for (name, p) in algs {
        let block = format!("{}.{name}", format.name());
        let (b, p) = (block.as_str(), cx.obj(p, &block)?);
        match (format, name) {
            (_, "Awb") => awb(cx, t, b, p)?,
            (_, "Ccm") => {
                let mut offsets = Vec::new();
                cx.set_ccms(t, b, p, |cx, c, f, ct| {
                    let o = c
                        .get("offsets")
                        .map(|o| cx.nums_n(o, &format!("{f}.offsets"), 3, "RGB"));
                    match o.transpose()? {
                        Some(o) if o.iter().any(|v| *v != 0.0) => {
                            offsets.push(format!("{o:?} at {ct} K"))
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                if !offsets.is_empty() {
                    let o = offsets.join(", ");
                    cx.no(format!("{b}.ccms offsets {o} not mapped (no offsets here)"));
                }
                cx.leftover(b, p, "ccms", "unknown keys");
            }
            (Rkisp1, "BlackLevelCorrection") => {
                let keys = ["R", "Gr", "Gb", "B"];
                let v = keys.map(|k| cx.opt_num(p, k, b));
                if let [Ok(Some(r)), Ok(Some(gr)), Ok(Some(gb)), Ok(Some(bl))] = v {
                    set_levels(cx, t, b, [r, gr, gb, bl])?;
                } else if let Some(Err(e)) = v.into_iter().find(Result::is_err) {
                    return Err(e);
                } else {
                    let m = "no (or not all four) levels: libcamera takes the sensor helper's";
                    cx.no(format!("{b}: {m}; stages.black_level kept"));
                }
                cx.leftover(b, p, "R Gr Gb B", "unknown keys");
            }
            (Rkisp1, "LensShadingCorrection") => lsc(cx, t, b, p)?,
            (Rkisp1, "GammaOutCorrection") => {
                let g = cx.opt_num(p, "gamma", b)?;
                let how = if g.is_some() {
                    ""
                } else {
                    " (libcamera's default)"
                };
                set_power(cx, t, b, g.unwrap_or(2.2), how)?;
                cx.leftover(b, p, "gamma", "unknown keys");
            }
            (Rkisp1, "Agc") => {
                const K: &str = "relativeLuminanceTarget";
                let f = format!("{b}.{K}");
                let y = match p.get(K) {
                    None => None,
                    Some(v @ Value::Array(_)) => Some(cx.nums(v, &f)?),
                    Some(v) => Some(vec![0.0, cx.num(v, &f)?]),
                };
                match y {
                    None => cx.no(format!("{b}: no {K} (libcamera's 0.16); AE target kept")),
                    Some(y) if y.len() < 2 || y.len() % 2 != 0 => {
                        return Err(
                            cx.err(f, format!("has {} numbers: [lux, target] pairs", y.len()))
                        );
                    }
                    Some(y) => cx.set_ae(
                        t,
                        &f,
                        super::pwl_eval(&y, REFERENCE_LUX),
                        "at 1000 lux",
                        true,
                    )?,
                }
                cx.leftover(
                    b,
                    p,
                    K,
                    "metering, exposure and constraint modes: no counterpart",
                );
            }
            (Simple, "BlackLevel") => match cx.opt_num(p, "blackLevel", b)? {
                Some(v) => set_levels(cx, t, b, [v; 4])?,
                None => {
                    let m = "no blackLevel: the soft ISP guesses it at run time";
                    cx.no(format!("{b}: {m}; stages.black_level kept"));
                }
            },
            (Simple, "Adjust") => {
                set_power(cx, t, b, 2.2, " (the soft ISP's: Adjust reads no keys)")?;
                let why = "not read by libcamera: Gamma, Contrast, Saturation are controls";
                cx.leftover(b, p, "", why);
            }
            _ => cx.no(format!("{b}: no counterpart ({})", reason(name))),
        }
    }
    Ok(format)
}

fn set_levels(cx: &mut Cx, t: &mut Tuning, block: &str, v16: [f64; 4]) -> Res<()> {
    let mut levels = [0u16; 4];
    for (l, v) in levels.iter_mut().zip(v16) {
        *l = cx.from16(v, block)?;
    }
    (t.stages.black_level.levels, t.stages.black_level.enabled) = (levels, true);
    let bits = cx.bits;
    cx.took(format!(
        "{block} -> stages.black_level.levels {levels:?} (at {bits} bits; {v16:?} in 16-bit units)"
    ));
    Ok(())
}

fn set_power(cx: &mut Cx, t: &mut Tuning, block: &str, g: f64, how: &str) -> Res<()> {
    if !(g > 0.0 && g <= 100.0) {
        return Err(cx.err(format!("{block}.gamma"), format!("{g} is not in (0, 100]")));
    }
    let tone = &mut t.stages.tone;
    let power = Gamma::Power(g as f32);
    (tone.enabled, tone.gamma, tone.contrast, tone.curve) = (true, power, 1.0, Vec::new());
    cx.took(format!(
        "{block} -> stages.tone: gamma power {g}{how}, contrast 1, no curve"
    ));
    Ok(())
}

fn awb(cx: &mut Cx, t: &mut Tuning, b: &str, p: &Obj) -> Res<()> {
    let algorithm = match p.get("algorithm") {
        None => "grey",
        Some(v) => v.as_str().unwrap_or("(not a string)"),
    };
    if !matches!(algorithm, "grey" | "bayes") {
        let m = format!("`{algorithm}` is not grey or bayes");
        return Err(cx.err(format!("{b}.algorithm"), m));
    }
    let mut curve = None;
    if let Some(list) = p.get("colourGains") {
        let mut pts = Vec::new();
        let items = cx.list(list, &format!("{b}.colourGains"))?;
        for (i, e) in items.iter().enumerate() {
            let f = format!("{b}.colourGains[{i}]");
            let e = cx.obj(e, &f)?;
            let ct = cx.req(e, "ct", &f)?;
            let g = cx.nums_n(
                get(e, "gains"),
                &format!("{f}.gains"),
                2,
                "[R gain, B gain]",
            )?;
            if g.iter().any(|g| *g <= 0.0) {
                return Err(cx.err(format!("{f}.gains"), "gains must be > 0"));
            }
            pts.push([ct as f32, (1.0 / g[0]) as f32, (1.0 / g[1]) as f32]);
        }
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let pos = cx.opt_num(p, "transversePos", b)?.unwrap_or(0.01) as f32;
        let neg = cx.opt_num(p, "transverseNeg", b)?.unwrap_or(0.01) as f32;
        curve = Some((pts, pos, neg));
    }
    let active = algorithm == "bayes" && curve.is_some();
    cx.set_awb(t, b, curve, active, true)?;
    let keys = "algorithm colourGains transversePos transverseNeg";
    cx.leftover(b, p, keys, "Bayesian priors and AWB modes: no counterpart");
    Ok(())
}

/// rkisp1's sector sizes (half the frame, outermost first) as the 17 grid
/// positions across the frame.
fn positions(sizes: &[f64]) -> Vec<f64> {
    let half = sizes.len();
    let mut pos = vec![0.5; 2 * half + 1];
    let mut x = 0.0;
    for i in 1..=half {
        x += sizes[half - i];
        (pos[half - i], pos[half + i]) = (0.5 - x, 0.5 + x);
    }
    pos
}

fn lsc(cx: &mut Cx, t: &mut Tuning, b: &str, p: &Obj) -> Res<()> {
    let kind = get(p, "type").as_str().unwrap_or("table");
    if kind != "table" {
        let m = format!("{b}: type {kind} not mapped (only tables of gains are)");
        cx.no(m);
        return Ok(());
    }
    let mut pos = Vec::new();
    for key in ["x-size", "y-size"] {
        let f = format!("{b}.{key}");
        let s = cx.nums_n(get(p, key), &f, 8, "the 8 sectors of half the frame")?;
        let sum: f64 = s.iter().sum();
        if !(0.495..=0.505).contains(&sum) || s.iter().any(|v| *v <= 0.0) {
            return Err(cx.err(f, format!("sectors must be > 0 and sum to 0.5, got {sum}")));
        }
        pos.push(positions(&s));
    }
    let mut sets: Vec<(f64, Vec<Vec<f64>>)> = Vec::new();
    let mut extra = Vec::new();
    let items = cx.list(get(p, "sets"), &format!("{b}.sets"))?;
    for (i, s) in items.iter().enumerate() {
        let f = format!("{b}.sets[{i}]");
        let s = cx.obj(s, &f)?;
        let ct = cx.opt_num(s, "ct", &f)?.unwrap_or(0.0);
        if sets.iter().any(|(c, _)| *c == ct) {
            return Err(cx.err(f + ".ct", format!("a second set at {ct} K")));
        }
        let mut tabs = Vec::new();
        for k in ["r", "gr", "gb", "b"] {
            tabs.push(cx.nums_n(get(s, k), &format!("{f}.{k}"), 17 * 17, "a 17x17 table")?);
        }
        let known = ["ct", "r", "gr", "gb", "b"];
        let more = s.keys().filter(|k| !known.contains(&k.as_str()));
        extra.extend(more.map(|k| format!("sets[{i}].{k}")));
        sets.push((ct, tabs));
    }
    if sets.is_empty() {
        return Err(cx.err(format!("{b}.sets"), "holds no set"));
    }
    let n = super::nearest(sets.iter().map(|s| s.0), REFERENCE_CT);
    let tabs = &sets[n].1;
    let ls = super::lsc_in(
        [&tabs[0], &tabs[1], &tabs[2], &tabs[3]],
        &pos[0],
        &pos[1],
        1.0 / 1024.0,
    );
    t.stages.lens_shading = ls;
    let c17 = super::corners(17);
    let uniform = pos
        .iter()
        .flatten()
        .zip(c17.iter().chain(&c17))
        .all(|(a, b)| (a - b).abs() < 1e-9);
    let how = if uniform {
        ""
    } else {
        "; resampled from non-uniform sectors"
    };
    let (ct, count) = (sets[n].0, sets.len());
    cx.took(format!(
        "{b} -> stages.lens_shading (17x17, 1024 = 1.0; the set at {ct} K of {count} nearest 5000 K{how})"
    ));
    let rest = super::others(sets.iter().map(|s| s.0), n);
    if !rest.is_empty() {
        cx.no(format!("{b}.sets at {rest} K not mapped (one grid here)"));
    }
    if !extra.is_empty() {
        cx.no(format!(
            "{b}: {} not mapped (not read by libcamera)",
            extra.join(", ")
        ));
    }
    cx.leftover(b, p, "type x-size y-size sets", "unknown keys");
    Ok(())
}

// ---- export ----

pub(super) fn export(
    t: &Tuning,
    f: LibcameraFormat,
    bits: u8,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let s = &t.stages;
    let mut algs: Vec<(&str, Value)> = Vec::new();
    let rk = f == Rkisp1;
    let ae = super::ae_out(t);
    match &ae {
        Some((_, false)) => notes.push("ae.mean_luminance is disabled: no Agc written".into()),
        Some((p, true)) if rk => {
            algs.push(("Agc", json!({ "relativeLuminanceTarget": n32(p.target) })))
        }
        Some((p, true)) => notes.push(format!(
            "ae.mean_luminance target {}: no place (Agc takes no keys)",
            p.target
        )),
        None => {}
    }
    if super::awb_out(t).any {
        algs.push(("Awb", awb_out(t, notes)));
    } else {
        notes.push("AWB is off: no Awb written".into());
    }
    let l = [0, 1, 2, 3].map(|i| super::to16(t, i, bits));
    if let Some(v) = l.iter().find(|v| **v > 32767) {
        return Err(format!(
            "black level {v} (16-bit units) does not fit libcamera's int16"
        ));
    }
    if rk {
        algs.push((
            "BlackLevelCorrection",
            json!({ "R": l[0], "Gr": l[1], "Gb": l[2], "B": l[3] }),
        ));
    } else {
        if l.iter().any(|v| *v != l[0]) {
            let v = s.black_level.levels;
            notes.push(format!(
                "stages.black_level.levels {v:?} differ: one level here (the mean)"
            ));
        }
        algs.push((
            "BlackLevel",
            json!({ "blackLevel": l.iter().sum::<u32>() / 4 }),
        ));
    }
    if !rk {
        notes.push("stages.lens_shading: no place (the soft ISP has no lens shading)".into());
    } else if s.lens_shading.enabled {
        algs.push(("LensShadingCorrection", lsc_out(t, notes)));
    } else {
        notes.push("stages.lens_shading is disabled: no LensShadingCorrection written".into());
    }
    if s.ccm.enabled {
        let ccms = super::ccms_out(t).into_iter();
        let ccm = |(ct, m)| json!({ "ct": round_ct(ct, notes), "ccm": m, "offsets": [0, 0, 0] });
        algs.push(("Ccm", json!({ "ccms": ccms.map(ccm).collect::<Vec<_>>() })));
    } else {
        notes.push("stages.ccm is disabled: no Ccm written".into());
    }
    if s.tone.enabled {
        algs.push(tone_out(t, rk, notes));
    }
    if t.noise.is_some() {
        notes.push(format!("noise: no place in {} tuning files", f.name()));
    }
    if !rk && ae.is_some_and(|a| a.1) {
        algs.push(("Agc", Value::Null));
    }
    let mut out = String::from("%YAML 1.1\n---\nversion: 1\nalgorithms:\n");
    for (name, v) in algs {
        out.push_str(&format!("  - {name}:\n"));
        if let Value::Object(m) = &v {
            write_map(m, 6, false, &mut out);
        }
    }
    out.push_str("...\n");
    Ok(out)
}

fn tone_out(t: &Tuning, rk: bool, notes: &mut Vec<String>) -> (&'static str, Value) {
    let tone = &t.stages.tone;
    let (g, c, n) = (tone.gamma, tone.contrast, tone.curve.len());
    if !rk {
        if g != Gamma::Power(2.2) || c != 1.0 || n > 0 {
            notes.push(format!(
                "stages.tone (gamma {g:?}, contrast {c}, {n} curve points): no place (Adjust \
                 reads no keys: gamma 2.2, contrast 1)"
            ));
        }
        return ("Adjust", Value::Null);
    }
    if g == Gamma::Srgb {
        notes.push("stages.tone gamma sRGB: written as the power 2.2 (approximated)".into());
    }
    if c != 1.0 || n > 0 {
        notes.push(format!(
            "stages.tone contrast {c} and {n} curve points: no place (GammaOutCorrection is a power)"
        ));
    }
    let p = match g {
        Gamma::Power(p) => p,
        Gamma::Linear => 1.0,
        Gamma::Srgb => 2.2,
    };
    ("GammaOutCorrection", json!({ "gamma": n32(p) }))
}

fn round_ct(ct: f64, notes: &mut Vec<String>) -> Value {
    if ct.fract() != 0.0 {
        let r = ct.round();
        notes.push(format!(
            "colour temperature {ct} K written as {r} (libcamera reads whole K)"
        ));
    }
    n64(ct.round())
}

fn awb_out(t: &Tuning, notes: &mut Vec<String>) -> Value {
    let a = super::awb_out(t);
    let mut o = Map::new();
    o.insert(
        "algorithm".into(),
        json!(if a.curve_runs { "bayes" } else { "grey" }),
    );
    if let Some(c) = &a.curve {
        let gain = |p: &[f32; 3]| [n32(1.0 / p[1]), n32(1.0 / p[2])];
        let g = c
            .ct_curve
            .iter()
            .map(|p| json!({ "ct": round_ct(f64::from(p[0]), notes), "gains": gain(p) }));
        o.insert("colourGains".into(), Value::Array(g.collect()));
        o.insert("transversePos".into(), n32(c.transverse_pos));
        o.insert("transverseNeg".into(), n32(c.transverse_neg));
    }
    if a.curve_runs {
        let prior = json!([{ "lux": 0, "ct": [2000, 13000], "probability": [1.0, 1.0] }]);
        o.insert("priors".into(), prior);
        o.insert(
            "AwbMode".into(),
            json!({ "AwbAuto": { "lo": 2500, "hi": 8000 } }),
        );
        notes.push(
            "Awb: priors (flat) and AwbMode (AwbAuto 2500..8000 K) written as defaults".into(),
        );
    }
    Value::Object(o)
}

fn lsc_out(t: &Tuning, notes: &mut Vec<String>) -> Value {
    let ls = &t.stages.lens_shading;
    let c17 = super::corners(17);
    let (tabs, _) = super::lsc_out(ls, &c17, &c17);
    if (ls.grid_width, ls.grid_height) != (17, 17) {
        let (w, h) = (ls.grid_width, ls.grid_height);
        notes.push(format!(
            "stages.lens_shading: the {w}x{h} grid resampled to rkisp1's 17x17"
        ));
    }
    let q = |v: &f64| (v * 1024.0).round();
    if tabs.iter().flatten().any(|v| q(v) > 4095.0 || q(v) < 0.0) {
        notes.push("stages.lens_shading: gains above 4095/1024 clipped (rkisp1's 12 bits)".into());
    }
    let [r, gr, gb, b] = tabs.map(|t| {
        t.iter()
            .map(|v| json!(q(v).clamp(0.0, 4095.0) as u32))
            .collect::<Vec<_>>()
    });
    let set = json!({ "ct": 5000, "r": r, "gr": gr, "gb": gb, "b": b });
    let sizes = [0.0625; 8];
    json!({ "x-size": sizes, "y-size": sizes, "sets": [set] })
}

/// Block-style YAML of a map at `ind` spaces (the first key inline after a
/// `- ` when `inline`); number lists as flow sequences (17 a row, CCMs 3).
fn write_map(m: &Obj, ind: usize, inline: bool, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        let pad = if inline && i == 0 { 0 } else { ind };
        out.push_str(&format!("{}{k}:", " ".repeat(pad)));
        match v {
            Value::Array(a) if a.iter().all(Value::is_number) => {
                let n = if k == "ccm" { 3 } else { 17 };
                let row = |r: &[Value]| {
                    r.iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let rows: Vec<String> = a.chunks(n).map(row).collect();
                let sep = format!(",\n{}", " ".repeat(ind + 4));
                out.push_str(&format!(" [ {} ]\n", rows.join(&sep)));
            }
            Value::Array(a) => {
                out.push('\n');
                for x in a {
                    out.push_str(&format!("{}- ", " ".repeat(ind + 2)));
                    match x {
                        Value::Object(o) => write_map(o, ind + 4, true, out),
                        _ => out.push_str(&format!("{}\n", scalar(x))),
                    }
                }
            }
            Value::Object(o) => {
                out.push('\n');
                write_map(o, ind + 2, false, out);
            }
            Value::Null => out.push('\n'),
            _ => out.push_str(&format!(" {}\n", scalar(v))),
        }
    }
}

/// A plain scalar where YAML reads it back as the same string, else quoted.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s)
            if s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "true" | "false" | "null" | "yes" | "no" | "on" | "off"
                ) =>
        {
            s.clone()
        }
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests;
