//! Raspberry Pi tuning files (JSON, `"version": 2.0`, an `algorithms` list
//! of one-key objects; libcamera `src/ipa/rpi/controller/rpi/*.cpp`).
//!
//! - `rpi.black_level` `black_level` (and `_r`, `_g`, `_b`; 16-bit units,
//!   default 4096) -> `stages.black_level.levels` `>> (16 - bits)`; one green.
//! - `rpi.alsc`: a table per site of cells (16x12 on vc4, 32x32 on pisp,
//!   told by length) whose values sit at the cells' centres and are held
//!   beyond the outer centres. R gain = lum * Cr, G = lum, B = lum * Cb, with
//!   `lum = 1 + (luminance_lut - 1) * luminance_strength` and Cr, Cb the
//!   calibrations at the CT nearest 5000 K (`corner_strength` generates the
//!   luminance table as libcamera does). Resampled linearly onto a corner
//!   grid of the same size. Export inverts that resampling exactly (so a
//!   re-import gives the grid back): luminance = green gains (mean of Gr and
//!   Gb), Cr = R/G, Cb = B/G at ct 5000, `luminance_strength` 1, six
//!   decimals; a 32x32 grid makes a pisp file, any other a vc4 one (16x12,
//!   resampled when not 16x12). The run-time adaptation (omega, n_iter,
//!   sigma...) has no counterpart.
//! - `rpi.awb` `ct_curve` `[ct, r, b, ...]` (r = R/G, b = B/G of a grey),
//!   `transverse_pos/neg` -> `awb.ct_curve`, running when libcamera runs its
//!   Bayesian search (curve, priors and modes present, `bayes` not 0), else
//!   grey world runs and the curve is kept disabled.
//! - `rpi.ccm` `ccms` [{ct, ccm: 9 row-major}] -> `stages.ccm.by_ct`.
//! - `rpi.contrast` `gamma_curve` [x, y, ...] (0..65535 linear in, encoded
//!   out: the whole transfer) -> `stages.tone.curve` /65535 with gamma linear
//!   and contrast 1 (exact). Export of another tone samples it (64 points).
//! - `rpi.agc` `y_target` (a curve over lux) -> `ae.mean_luminance.target`
//!   at 1000 lux (first channel). Export writes one uniform metering mode
//!   and default exposure/constraint modes around it.
//! - `rpi.noise`: std = c + s·√m (16-bit units) -> variance `shot·m + read`
//!   in sensor units: shot = s²/k, read = c²/k² (k = 2^(16-bits)); the cross
//!   term 2cs√m is dropped (exact when c or s is 0).

use super::{Cx, Obj, REFERENCE_CT, REFERENCE_LUX, get, n32, n64};
use crate::stages::lens_shading::LensShadingParams;
use crate::stages::tone::Gamma;
use crate::tuning::{SensorNoise, Tuning, TuningError};
use serde_json::{Map, Value, json};

type Res<T> = Result<T, TuningError>;

fn reason(name: &str) -> &'static str {
    match name {
        "rpi.lux" => "lux estimation from a reference exposure",
        "rpi.dpc" => "defect pixel correction by strength level",
        "rpi.geq" => "green equalisation",
        "rpi.sdn" | "rpi.denoise" => "spatial denoise",
        "rpi.sharpen" => "sharpening",
        "rpi.hdr" => "HDR modes",
        "rpi.af" => "autofocus",
        "rpi.focus" => "focus figure of merit",
        "rpi.cac" => "chromatic aberration correction",
        "rpi.tonemap" => "local tone mapping",
        "rpi.saturation" => "output saturation",
        "rpi.decompand" => "sensor decompanding",
        "rpi.nn.awb" => "neural-network AWB",
        _ => "not an algorithm ISP Studio knows",
    }
}

pub(super) fn import(v: &Value, cx: &mut Cx, t: &mut Tuning) -> Res<()> {
    let top = v
        .as_object()
        .ok_or_else(|| cx.err("(document)", "expected a JSON object"))?;
    match top.get("version") {
        Some(x) if x.as_f64() == Some(2.0) => {}
        Some(x) => return Err(cx.err("version", format!("{x} is not supported (this reads 2.0)"))),
        None => return Err(cx.err("version", "missing: a version 1.0 file? (convert it)")),
    }
    let pisp = get(top, "target").as_str() == Some("pisp");
    let items = cx.list(get(top, "algorithms"), "algorithms")?;
    for (i, a) in items.iter().enumerate() {
        let Some((name, p)) = super::single(a) else {
            let m = "expected an object of one key, the algorithm's name";
            return Err(cx.err(format!("algorithms[{i}]"), m));
        };
        let p = cx.obj(p, name)?;
        let enabled = match p.get("enabled") {
            None => true,
            Some(e) => e
                .as_bool()
                .ok_or_else(|| cx.err(format!("{name}.enabled"), "not a bool"))?,
        };
        match name {
            "rpi.black_level" => black_level(cx, t, p, enabled)?,
            "rpi.alsc" => alsc(cx, t, p, enabled, pisp)?,
            "rpi.awb" => awb(cx, t, p, enabled)?,
            "rpi.ccm" => {
                cx.set_ccms(t, name, p, |_, _, _, _| Ok(()))?;
                t.stages.ccm.enabled = enabled;
                cx.leftover(name, p, "enabled ccms", "saturation by lux: no counterpart");
            }
            "rpi.contrast" => contrast(cx, t, p, enabled)?,
            "rpi.agc" => agc(cx, t, p, enabled)?,
            "rpi.noise" => noise(cx, t, p)?,
            _ => cx.no(format!("{name}: no counterpart ({})", reason(name))),
        }
    }
    Ok(())
}

fn black_level(cx: &mut Cx, t: &mut Tuning, p: &Obj, enabled: bool) -> Res<()> {
    const B: &str = "rpi.black_level";
    let g = cx.opt_num(p, "black_level", B)?.unwrap_or(4096.0);
    let (mut v16, mut levels) = ([g; 4], [0u16; 4]);
    for ((v, l), c) in v16.iter_mut().zip(&mut levels).zip(["r", "g", "g", "b"]) {
        *v = cx.opt_num(p, &format!("black_level_{c}"), B)?.unwrap_or(g);
        *l = cx.from16(*v, B)?;
    }
    (t.stages.black_level.levels, t.stages.black_level.enabled) = (levels, enabled);
    let bits = cx.bits;
    cx.took(format!(
        "{B} -> stages.black_level.levels {levels:?} (at {bits} bits; {v16:?} in 16-bit units)"
    ));
    let keys = "enabled black_level black_level_r black_level_g black_level_b";
    cx.leftover(B, p, keys, "unknown keys");
    Ok(())
}

/// libcamera's generated luminance table (`corner_strength`, `asymmetry`).
fn generated_lut(x: i64, y: i64, cstrength: f64, asymmetry: f64) -> Vec<f64> {
    let (f1, f2) = (cstrength - 1.0, 1.0 + cstrength.sqrt());
    let r2max = (x * y / 4) as f64 * (1.0 + asymmetry * asymmetry);
    let at = |i: i64, j: i64| {
        let (dx, dy) = (
            ((i - x / 2) as f64 + 0.5) * asymmetry,
            (j - y / 2) as f64 + 0.5,
        );
        let r2 = (dx * dx + dy * dy) / r2max;
        (f1 * r2 + f2) * (f1 * r2 + f2) / (f2 * f2)
    };
    (0..y).flat_map(|j| (0..x).map(move |i| at(i, j))).collect()
}

/// Cell centres of `n` cells across the frame, 0..=1.
fn centres(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect()
}

fn alsc(cx: &mut Cx, t: &mut Tuning, p: &Obj, enabled: bool, pisp: bool) -> Res<()> {
    const B: &str = "rpi.alsc";
    let mut size = None;
    let mut table = |cx: &Cx, v: &Value, field: &str| -> Res<Vec<f64>> {
        let v = cx.nums(v, field)?;
        let s = match v.len() {
            192 => (16, 12),
            1024 => (32, 32),
            n => {
                return Err(cx.err(
                    field,
                    format!("has {n} values: 16x12 (vc4) or 32x32 (pisp)"),
                ));
            }
        };
        if *size.get_or_insert(s) != s {
            return Err(cx.err(
                field,
                format!("has {} values, unlike the other tables", v.len()),
            ));
        }
        Ok(v)
    };
    let mut cals = Vec::new();
    for key in ["calibrations_Cr", "calibrations_Cb"] {
        let mut list: Vec<(f64, Vec<f64>)> = Vec::new();
        let items = match p.get(key) {
            Some(v) => cx.list(v, &format!("{B}.{key}"))?,
            None => &[],
        };
        for (i, c) in items.iter().enumerate() {
            let f = format!("{B}.{key}[{i}]");
            let c = cx.obj(c, &f)?;
            let ct = cx.req(c, "ct", &f)?;
            if list.last().is_some_and(|l| ct <= l.0) {
                return Err(cx.err(f + ".ct", "colour temperatures must rise"));
            }
            list.push((ct, table(cx, get(c, "table"), &format!("{f}.table"))?));
        }
        cals.push(list);
    }
    let corner = p.contains_key("corner_strength");
    let lut = match p.get("luminance_lut").filter(|_| !corner) {
        Some(l) => Some(table(cx, l, &format!("{B}.luminance_lut"))?),
        None => None,
    };
    let (w, h) = size.unwrap_or(if pisp { (32, 32) } else { (16, 12) });
    let lut = match lut {
        Some(l) => l,
        None if corner => {
            let cs = cx.req(p, "corner_strength", B)?;
            let asym = cx.opt_num(p, "asymmetry", B)?.unwrap_or(1.0);
            if cs <= 1.0 || asym < 0.0 {
                let m = "must be > 1 (and asymmetry >= 0)";
                return Err(cx.err(format!("{B}.corner_strength"), m));
            }
            generated_lut(w as i64, h as i64, cs, asym)
        }
        None => vec![1.0; w * h],
    };
    let strength = cx.opt_num(p, "luminance_strength", B)?.unwrap_or(1.0);
    let lum: Vec<f64> = lut.iter().map(|l| 1.0 + (l - 1.0) * strength).collect();
    let (mut taken, mut tabs) = (Vec::new(), Vec::new());
    for (list, key) in cals.iter().zip(["Cr", "Cb"]) {
        if list.is_empty() {
            taken.push(format!("no {key}: 1"));
            tabs.push(lum.clone());
            continue;
        }
        let n = super::nearest(list.iter().map(|c| c.0), REFERENCE_CT);
        taken.push(format!("{key} at {} K", list[n].0));
        tabs.push(lum.iter().zip(&list[n].1).map(|(l, c)| l * c).collect());
        let rest = super::others(list.iter().map(|c| c.0), n);
        if !rest.is_empty() {
            let m = format!("{B}.calibrations_{key} at {rest} K not mapped (one grid here)");
            cx.no(m);
        }
    }
    let (cw, ch) = (centres(w), centres(h));
    let mut ls = super::lsc_in([&tabs[0], &lum, &lum, &tabs[1]], &cw, &ch, 1.0);
    ls.enabled = enabled;
    t.stages.lens_shading = ls;
    let taken = taken.join(", ");
    cx.took(format!(
        "{B} -> stages.lens_shading ({w}x{h} cell-centre table onto a {w}x{h} corner grid; \
         {taken}; luminance_strength {strength})"
    ));
    let keys = "enabled calibrations_Cr calibrations_Cb luminance_lut luminance_strength \
                corner_strength asymmetry";
    cx.leftover(B, p, keys, "run-time adaptive colour shading");
    Ok(())
}

fn awb(cx: &mut Cx, t: &mut Tuning, p: &Obj, enabled: bool) -> Res<()> {
    const B: &str = "rpi.awb";
    let curve = match p.get("ct_curve") {
        None => None,
        Some(c) => {
            let f = format!("{B}.ct_curve");
            let v = cx.nums(c, &f)?;
            if v.len() % 3 != 0 || v.len() < 6 {
                let m = format!("has {} numbers: [ct, r, b] triples, at least 2", v.len());
                return Err(cx.err(f, m));
            }
            let pts = v
                .chunks_exact(3)
                .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
                .collect();
            let pos = cx.opt_num(p, "transverse_pos", B)?.unwrap_or(0.01) as f32;
            let neg = cx.opt_num(p, "transverse_neg", B)?.unwrap_or(0.01) as f32;
            Some((pts, pos, neg))
        }
    };
    let bayes = cx.opt_num(p, "bayes", B)?.unwrap_or(1.0) != 0.0;
    let priors = get(p, "priors").as_array().is_some_and(|a| !a.is_empty());
    let modes = get(p, "modes").as_object().is_some_and(|m| !m.is_empty());
    let active = curve.is_some() && bayes && priors && modes;
    cx.set_awb(t, B, curve, active, enabled)?;
    let keys = "enabled ct_curve transverse_pos transverse_neg";
    cx.leftover(
        B,
        p,
        keys,
        "Bayesian priors, modes, sensitivities, convergence",
    );
    Ok(())
}

fn contrast(cx: &mut Cx, t: &mut Tuning, p: &Obj, enabled: bool) -> Res<()> {
    const B: &str = "rpi.contrast";
    let f = format!("{B}.gamma_curve");
    let v = cx.nums(get(p, "gamma_curve"), &f)?;
    if v.len() < 4 || v.len() % 2 != 0 {
        return Err(cx.err(
            f,
            format!("has {} numbers: [x, y] pairs, at least 2", v.len()),
        ));
    }
    let pairs = || v.chunks_exact(2);
    let rising = pairs().zip(pairs().skip(1)).all(|(a, b)| b[0] > a[0]);
    if !rising || v.iter().any(|x| !(0.0..=65535.0).contains(x)) {
        return Err(cx.err(f, "points must lie in 0..=65535 with rising x"));
    }
    let mut pts: Vec<[f32; 2]> = pairs()
        .map(|c| [(c[0] / 65535.0) as f32, (c[1] / 65535.0) as f32])
        .collect();
    // (0, 0) and (1, 1) are implicit in our curve.
    if pts.first() == Some(&[0.0, 0.0]) {
        pts.remove(0);
    }
    if pts.last() == Some(&[1.0, 1.0]) {
        pts.pop();
    }
    let n = pts.len();
    let tone = &mut t.stages.tone;
    (tone.enabled, tone.gamma, tone.contrast, tone.curve) = (enabled, Gamma::Linear, 1.0, pts);
    cx.took(format!(
        "{f} -> stages.tone.curve ({n} points /65535; gamma linear, contrast 1: the whole transfer)"
    ));
    let ce = cx.opt_num(p, "ce_enable", B)?.unwrap_or(1.0) != 0.0;
    let keys = if ce {
        "enabled gamma_curve"
    } else {
        "enabled gamma_curve ce_enable"
    };
    cx.leftover(B, p, keys, "adaptive contrast enhancement: no counterpart");
    Ok(())
}

fn agc(cx: &mut Cx, t: &mut Tuning, p: &Obj, enabled: bool) -> Res<()> {
    const B: &str = "rpi.agc";
    let (ch, at) = match p.get("channels") {
        Some(c) => {
            let list = cx.list(c, &format!("{B}.channels"))?;
            let first = list
                .first()
                .ok_or_else(|| cx.err(format!("{B}.channels"), "is empty"))?;
            if list.len() > 1 {
                let more = list.len() - 1;
                cx.no(format!(
                    "{B}.channels[1..]: {more} more not mapped (HDR channels)"
                ));
            }
            (
                cx.obj(first, &format!("{B}.channels[0]"))?,
                format!("{B}.channels[0]"),
            )
        }
        None => (p, B.to_string()),
    };
    let f = format!("{at}.y_target");
    let y = match ch.get("y_target") {
        Some(v @ Value::Array(_)) => cx.nums(v, &f)?,
        Some(v) => vec![0.0, cx.num(v, &f)?],
        None => return Err(cx.err(f, "missing (libcamera's AGC needs it)")),
    };
    if y.len() < 2 || y.len() % 2 != 0 {
        return Err(cx.err(f, format!("has {} numbers: [lux, target] pairs", y.len())));
    }
    cx.set_ae(
        t,
        &f,
        super::pwl_eval(&y, REFERENCE_LUX),
        "at 1000 lux",
        enabled,
    )?;
    let why = "metering, exposure and constraint modes: no counterpart";
    cx.leftover(&at, ch, "enabled channels y_target", why);
    Ok(())
}

fn noise(cx: &mut Cx, t: &mut Tuning, p: &Obj) -> Res<()> {
    const B: &str = "rpi.noise";
    let (c, s) = (
        cx.req(p, "reference_constant", B)?,
        cx.req(p, "reference_slope", B)?,
    );
    if c < 0.0 || s < 0.0 {
        return Err(cx.err(B, "reference_constant and reference_slope must be >= 0"));
    }
    let k = f64::from(1u32 << (16 - cx.bits));
    let (shot, read) = ((s * s / k) as f32, (c * c / (k * k)) as f32);
    t.noise = Some(SensorNoise {
        shot: [shot; 4],
        read: [read; 4],
    });
    let how = if c == 0.0 || s == 0.0 {
        "exact"
    } else {
        "approximated: 2·c·s·√signal dropped"
    };
    let bits = cx.bits;
    cx.took(format!(
        "{B} -> noise (shot {shot}, read {read} DN² at {bits} bits; {how})"
    ));
    cx.leftover(B, p, "reference_constant reference_slope", "unknown keys");
    Ok(())
}

// ---- export ----

pub(super) fn export(t: &Tuning, bits: u8, notes: &mut Vec<String>) -> Result<String, String> {
    let s = &t.stages;
    // A 32x32 grid is a pisp (Pi 5) table; anything else goes to vc4.
    let ls = &s.lens_shading;
    let pisp = ls.enabled && (ls.grid_width, ls.grid_height) == (32, 32);
    let mut algs = Vec::new();
    let mut push =
        |name: &str, v: Value| algs.push(Value::Object(Map::from_iter([(name.into(), v)])));
    let l = |i: usize| super::to16(t, i, bits);
    let levels = s.black_level.levels;
    if levels[1] != levels[2] {
        let (gr, gb) = (levels[1], levels[2]);
        notes.push(format!(
            "stages.black_level Gr {gr} and Gb {gb} differ: one green here (the mean)"
        ));
    }
    let g = (l(1) + l(2)) / 2;
    if l(0) == g && l(3) == g {
        push("rpi.black_level", json!({ "black_level": g }));
    } else {
        let (r, b) = (l(0), l(3));
        let v =
            json!({ "black_level": g, "black_level_r": r, "black_level_g": g, "black_level_b": b });
        push("rpi.black_level", v);
    }
    if let Some(n) = &t.noise {
        let k = f64::from(1u32 << (16 - bits));
        if n.shot.iter().any(|v| *v != n.shot[0]) || n.read.iter().any(|v| *v != n.read[0]) {
            notes.push("noise: RPi has one model for every site (their mean written)".into());
        }
        let (shot, read) = n.mean();
        let c = n32((f64::from(read).sqrt() * k) as f32);
        let sl = n32((f64::from(shot) * k).sqrt() as f32);
        push(
            "rpi.noise",
            json!({ "reference_constant": c, "reference_slope": sl }),
        );
    }
    push("rpi.awb", awb_out(t, notes));
    if let Some((p, enabled)) = super::ae_out(t) {
        let y = n32(p.target);
        notes.push("rpi.agc: metering, exposure and constraint modes written as defaults".into());
        push(
            "rpi.agc",
            json!({
                "enabled": enabled,
                "metering_modes": { "matrix": { "weights": vec![1; if pisp { 225 } else { 15 }] } },
                "exposure_modes": { "normal": {
                    "shutter": [100, 10000, 30000, 60000, 66666], "gain": [1.0, 2.0, 4.0, 6.0, 8.0]
                } },
                "constraint_modes": { "normal": [] },
                "y_target": [0, y, 100000, y]
            }),
        );
    }
    if s.lens_shading.enabled {
        push("rpi.alsc", alsc_out(&s.lens_shading, pisp, notes));
    } else {
        notes.push("stages.lens_shading is disabled: no rpi.alsc written".into());
    }
    if s.tone.enabled {
        push("rpi.contrast", contrast_out(t, notes));
    }
    if s.ccm.enabled {
        let ccm = |(ct, m): (f64, Vec<Value>)| json!({ "ct": n64(ct), "ccm": m });
        push(
            "rpi.ccm",
            json!({ "ccms": super::ccms_out(t).into_iter().map(ccm).collect::<Vec<_>>() }),
        );
    } else {
        notes.push("stages.ccm is disabled: no rpi.ccm written".into());
    }
    let target = if pisp { "pisp" } else { "bcm2835" };
    let mut out = format!("{{\n    \"version\": 2.0,\n    \"target\": \"{target}\",\n");
    out.push_str("    \"algorithms\": ");
    write_json(&Value::Array(algs), 1, "", &mut out);
    out.push_str("\n}\n");
    Ok(out)
}

fn awb_out(t: &Tuning, notes: &mut Vec<String>) -> Value {
    let a = super::awb_out(t);
    let mut o = Map::new();
    if !a.any {
        o.insert("enabled".into(), json!(false));
    }
    if let Some(c) = &a.curve {
        let flat: Vec<Value> = c.ct_curve.iter().flatten().map(|v| n32(*v)).collect();
        o.insert("ct_curve".into(), Value::Array(flat));
        o.insert("transverse_pos".into(), n32(c.transverse_pos));
        o.insert("transverse_neg".into(), n32(c.transverse_neg));
    }
    o.insert("bayes".into(), json!(u8::from(a.curve_runs)));
    if a.curve_runs {
        o.insert(
            "priors".into(),
            json!([{ "lux": 0, "prior": [2000, 1.0, 13000, 1.0] }]),
        );
        o.insert(
            "modes".into(),
            json!({ "auto": { "lo": 2500, "hi": 8000 } }),
        );
        notes.push(
            "rpi.awb: priors (flat) and modes (auto 2500..8000 K) written as defaults".into(),
        );
    }
    Value::Object(o)
}

fn alsc_out(ls: &LensShadingParams, pisp: bool, notes: &mut Vec<String>) -> Value {
    let (w, h) = if pisp { (32, 32) } else { (16, 12) };
    let (tabs, exact) = super::lsc_out(ls, &centres(w), &centres(h));
    if !exact {
        let (w, h) = (ls.grid_width, ls.grid_height);
        notes.push(format!(
            "stages.lens_shading: the {w}x{h} grid resampled to vc4's 16x12 cells"
        ));
    }
    if ls.gains[1] != ls.gains[2] {
        notes.push("stages.lens_shading: Gr and Gb differ; one green table here (the mean)".into());
    }
    let g: Vec<f64> = tabs[1]
        .iter()
        .zip(&tabs[2])
        .map(|(a, b)| (a + b) / 2.0)
        .collect();
    // Six decimals: the f32 noise goes; 5e-7 is far below any shading.
    let d6 = |v: f64| n64((v * 1e6).round() / 1e6);
    let ratio = |x: &[f64]| -> Vec<Value> {
        x.iter()
            .zip(&g)
            .map(|(a, g)| d6(if *g > 0.0 { a / g } else { 1.0 }))
            .collect()
    };
    json!({
        "luminance_strength": 1.0,
        "luminance_lut": g.iter().map(|v| d6(*v)).collect::<Vec<_>>(),
        "calibrations_Cr": [{ "ct": 5000, "table": ratio(&tabs[0]) }],
        "calibrations_Cb": [{ "ct": 5000, "table": ratio(&tabs[3]) }]
    })
}

fn contrast_out(t: &Tuning, notes: &mut Vec<String>) -> Value {
    let tone = &t.stages.tone;
    let pts: Vec<[f64; 2]> = if tone.gamma == Gamma::Linear && tone.contrast == 1.0 {
        let mut p: Vec<[f64; 2]> = tone.curve.iter().map(|p| p.map(f64::from)).collect();
        if p.first().is_none_or(|q| q[0] > 0.0) {
            p.insert(0, [0.0, 0.0]);
        }
        if p.last().is_none_or(|q| q[0] < 1.0) {
            p.push([1.0, 1.0]);
        }
        p
    } else {
        let (g, c, n) = (tone.gamma, tone.contrast, tone.curve.len());
        notes.push(format!(
            "stages.tone (gamma {g:?}, contrast {c}, {n} curve points): sampled into a 64-point \
             rpi.contrast gamma_curve"
        ));
        let at = |i: i32| (f64::from(i) / 63.0).powi(2);
        (0..64)
            .map(|i| [at(i), f64::from(tone.eval(at(i) as f32))])
            .collect()
    };
    let c: Vec<Value> = pts
        .iter()
        .flat_map(|p| p.map(|v| n64(v * 65535.0)))
        .collect();
    json!({ "ce_enable": 0, "gamma_curve": c })
}

/// JSON in the RPi files' shape: 4-space indents, number lists in rows
/// (triples for CCMs and CT curves, pairs for curves, 16 for tables).
fn write_json(v: &Value, ind: usize, key: &str, out: &mut String) {
    let pad = |n: usize| " ".repeat(n * 4);
    let (open, close, items): (&str, &str, Vec<(&str, &Value)>) = match v {
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_number) => {
            let n = match key {
                "ct_curve" | "ccm" => 3,
                "gamma_curve" | "y_target" | "prior" => 2,
                _ => 16,
            };
            let rows: Vec<String> = a
                .chunks(n)
                .map(|r| format!("{}{}", pad(ind + 1), join(r)))
                .collect();
            out.push_str(&format!("[\n{}\n{}]", rows.join(",\n"), pad(ind)));
            return;
        }
        Value::Array(a) if !a.is_empty() => ("[", "]", a.iter().map(|x| (key, x)).collect()),
        Value::Object(o) if !o.is_empty() => {
            ("{", "}", o.iter().map(|(k, x)| (k.as_str(), x)).collect())
        }
        _ => return out.push_str(&v.to_string()),
    };
    out.push_str(open);
    for (i, (k, x)) in items.iter().enumerate() {
        out.push_str(&format!(
            "{}{}",
            if i == 0 { "\n" } else { ",\n" },
            pad(ind + 1)
        ));
        if v.is_object() {
            out.push_str(&format!("{}: ", Value::from(*k)));
        }
        write_json(x, ind + 1, k, out);
    }
    out.push_str(&format!("\n{}{close}", pad(ind)));
}

fn join(r: &[Value]) -> String {
    r.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
