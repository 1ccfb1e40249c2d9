//! libcamera tuning files in and out: the Raspberry Pi JSON files (version
//! 2.0, `rpi.rs`) and the YAML files of the rkisp1 and simple (soft ISP)
//! pipelines (`yaml.rs`), mapped onto a [`Tuning`].
//!
//! What maps (the details and units are in each file's header):
//!
//! | libcamera                               | here                                    |
//! |-----------------------------------------|-----------------------------------------|
//! | black levels (16-bit units)             | `stages.black_level.levels` (sensor units: `>> (16 - bits)`) |
//! | `rpi.alsc`, `LensShadingCorrection`     | `stages.lens_shading` (the CT nearest 5000 K) |
//! | CCMs per CT (`rpi.ccm`, `Ccm`)          | `stages.ccm.by_ct`, `matrix` = the one nearest 5000 K |
//! | AWB CT curve (`rpi.awb`, `Awb` colourGains) | the `awb.ct_curve` algorithm block  |
//! | `rpi.contrast` gamma curve              | `stages.tone.curve` (gamma linear, contrast 1) |
//! | `GammaOutCorrection`, simple `Adjust`   | `stages.tone.gamma` = power             |
//! | AGC y target (`rpi.agc`, rkisp1 `Agc`)  | `ae.mean_luminance` `target`            |
//! | `rpi.noise`                             | `noise`                                 |
//!
//! Everything else is listed, one line a block (or a block's keys), in
//! [`Import::unmapped`]; an export lists what of the tuning had no place.
//!
//! Shared here: the error/bookkeeping context ([`Cx`]), number readers, the
//! CCM/AWB/AE setters both importers use, and the lens-shading resampler
//! (tables whose samples sit elsewhere than our grid's frame corners).

mod rpi;
mod yaml;

use crate::algorithms::awb_ct::{CtCurveAwb, CtCurveParams};
use crate::algorithms::{self, Algorithm, ae::MeanLuminanceParams};
use crate::stages::ccm::CcmAtCt;
use crate::stages::lens_shading::LensShadingParams;
use crate::tuning::{AlgorithmBlock, Tuning, TuningError};
use serde_json::{Map, Value};
use std::sync::LazyLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibcameraFormat {
    Rpi,
    Rkisp1,
    Simple,
}

impl LibcameraFormat {
    /// `"rpi"`, `"rkisp1"` or `"simple"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rpi" => Some(Self::Rpi),
            "rkisp1" => Some(Self::Rkisp1),
            "simple" => Some(Self::Simple),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Rpi => "rpi",
            Self::Rkisp1 => "rkisp1",
            Self::Simple => "simple",
        }
    }
}

/// What an import made and said.
#[derive(Clone, Debug)]
pub struct Import {
    pub format: LibcameraFormat,
    pub tuning: Tuning,
    /// blocks (or keys) taken, one line each: "rpi.ccm -> stages.ccm.by_ct (5 matrices)"
    pub mapped: Vec<String>,
    /// blocks with no counterpart here, one line each, saying so: "rpi.sdn: no counterpart (spatial denoise)"
    pub unmapped: Vec<String>,
}

/// Read a libcamera tuning file's text (JSON or YAML, detected; rkisp1 vs
/// simple told apart by the algorithms it holds, or forced by `hint`) onto
/// `base` (values the file does not have stay as in `base`). `sensor_bits`:
/// the sensor's bit depth, to convert black levels (libcamera writes them in
/// 16-bit units) into sensor units. Errors name `origin` and the block/key.
///
/// A Raspberry Pi file is one that is JSON or whose algorithms are `rpi.*`
/// (unless `hint` says otherwise); the others are rkisp1 or simple YAML.
/// Once mapped, the tuning is checked like any other ([`Tuning::check`]).
pub fn import(
    text: &str,
    origin: &str,
    base: &Tuning,
    sensor_bits: u8,
    hint: Option<LibcameraFormat>,
) -> Result<Import, TuningError> {
    let mut cx = Cx {
        origin,
        bits: sensor_bits,
        mapped: Vec::new(),
        unmapped: Vec::new(),
    };
    if !(1..=16).contains(&sensor_bits) {
        return Err(cx.invalid(format!("sensor bit depth {sensor_bits} is not in 1..=16")));
    }
    // libcamera reads every tuning file, JSON too, with its YAML parser (so
    // the trailing commas of some upstream RPi files pass); so do we when
    // strict JSON fails.
    let json = text.trim_start().starts_with('{');
    // Refused before any parser sees them: deep nesting (the YAML parser's
    // cost grows with the square of the depth) and aliases (a few lines of
    // them expand to gigabytes; libcamera's own parser has none either).
    let depth = flow_depth(text);
    if depth > MAX_DEPTH {
        return Err(cx.invalid(format!(
            "nested {depth} deep (a tuning file nests at most {MAX_DEPTH} deep)"
        )));
    }
    if let Some(line) = yaml_alias_line(text) {
        return Err(cx.invalid(format!(
            "line {line}: a YAML alias (`*name`): libcamera's tuning files have none, and \
             they are not read here"
        )));
    }
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(je) => serde_norway::from_str(text).map_err(|ye| {
            cx.invalid(if json {
                format!("not valid JSON: {je}")
            } else {
                format!("not valid YAML: {ye}")
            })
        })?,
    };
    let names = get(v.as_object().unwrap_or(&EMPTY), "algorithms")
        .as_array()
        .cloned();
    let rpi_names = names
        .iter()
        .flatten()
        .filter_map(single)
        .any(|(n, _)| n.starts_with("rpi."));
    let mut t = base.clone();
    let format = if hint.map_or(json || rpi_names, |h| h == LibcameraFormat::Rpi) {
        rpi::import(&v, &mut cx, &mut t)?;
        LibcameraFormat::Rpi
    } else {
        yaml::import(&v, &mut cx, &mut t, hint)?
    };
    t.check(origin)
        .map_err(|e| cx.invalid(format!("the imported tuning is not valid: {e}")))?;
    Ok(Import {
        format,
        tuning: t,
        mapped: cx.mapped,
        unmapped: cx.unmapped,
    })
}

/// How deep a tuning file may nest `[`/`{` (libcamera's files: 5).
const MAX_DEPTH: usize = 64;

/// The deepest nesting of `[` and `{` in `text`, outside quoted strings and
/// comments: one pass, so a hostile file is measured in linear time.
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    let mut escaped = false;
    for &c in text.as_bytes() {
        if comment {
            comment = c != b'\n';
        } else if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == b'\\' && q == b'"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                b'"' | b'\'' => quote = Some(c),
                b'#' if prev.is_ascii_whitespace() => comment = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        prev = c;
    }
    max
}

/// The line (from 1) of the first YAML alias (`*name` where a value starts)
/// in `text`, outside quoted strings and comments.
fn yaml_alias_line(text: &str) -> Option<usize> {
    for (n, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        // The last character that was not a space: a value starts after
        // one of these (or at the line's start).
        let mut lead = ':';
        for c in line.chars() {
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
            } else if c == '"' || c == '\'' {
                quote = Some(c);
            } else if c == '#' && prev.is_whitespace() {
                break;
            } else if c == '*' && matches!(lead, ':' | '-' | '[' | '{' | ',' | '?') {
                return Some(n + 1);
            }
            if !c.is_whitespace() {
                lead = c;
            }
            prev = c;
        }
    }
    None
}

/// Write `t` as a libcamera tuning file of `format`; also the parts of `t`
/// that have no place in that format (and the defaults written for what the
/// format needs but `t` does not hold), one line each.
pub fn export(
    t: &Tuning,
    format: LibcameraFormat,
    sensor_bits: u8,
) -> Result<(String, Vec<String>), String> {
    if !(1..=16).contains(&sensor_bits) {
        return Err(format!("sensor bit depth {sensor_bits} is not in 1..=16"));
    }
    t.check("tuning").map_err(|e| e.to_string())?;
    let mut notes = common_unplaced(t, format);
    let text = match format {
        LibcameraFormat::Rpi => rpi::export(t, sensor_bits, &mut notes)?,
        _ => yaml::export(t, format, sensor_bits, &mut notes)?,
    };
    Ok((text, notes))
}

/// The colour temperature blocks with one table are taken at.
pub(crate) const REFERENCE_CT: f64 = 5000.0;
/// The lux level a target given as a curve over lux is taken at.
pub(crate) const REFERENCE_LUX: f64 = 1000.0;

mod cx;
pub(crate) use cx::{Cx, EMPTY, Obj, get, single};

/// A block's parameters in `t` (defaults where absent or unreadable).
pub(crate) fn block_params<T: serde::de::DeserializeOwned + Default>(t: &Tuning, name: &str) -> T {
    let b = t.algorithms.iter().find(|b| b.name == name);
    b.and_then(|b| algorithms::parse_params(&b.params).ok())
        .unwrap_or_default()
}

fn to_value<T: serde::Serialize>(p: &T) -> Value {
    serde_json::to_value(p).unwrap_or_default()
}

/// Block `name` takes `params` and is enabled; added at `at` (or the end).
fn put_block(t: &mut Tuning, name: &str, params: Value, at: Option<usize>) {
    if let Some(b) = t.algorithms.iter_mut().find(|b| b.name == name) {
        (b.params, b.enabled) = (params, true);
        return;
    }
    let (name, enabled) = (name.to_string(), true);
    let at = at.unwrap_or(t.algorithms.len());
    t.algorithms.insert(
        at,
        AlgorithmBlock {
            name,
            enabled,
            params,
        },
    );
}

/// The index of the value nearest `want`.
pub(crate) fn nearest(v: impl Iterator<Item = f64>, want: f64) -> usize {
    let by = |a: &(usize, f64), b: &(usize, f64)| (a.1 - want).abs().total_cmp(&(b.1 - want).abs());
    v.enumerate().min_by(by).map_or(0, |x| x.0)
}

/// The values but the `n`th, joined by commas.
pub(crate) fn others(v: impl Iterator<Item = f64>, n: usize) -> String {
    let rest: Vec<String> = v
        .enumerate()
        .filter(|c| c.0 != n)
        .map(|c| c.1.to_string())
        .collect();
    rest.join(", ")
}

/// A piecewise-linear curve `[x0, y0, x1, y1, ...]` at `x` (held at its ends).
pub(crate) fn pwl_eval(xy: &[f64], x: f64) -> f64 {
    let (xs, ys): (Vec<f64>, Vec<f64>) = xy.chunks_exact(2).map(|p| (p[0], p[1])).unzip();
    if xs.is_empty() {
        return 0.0;
    }
    let w = axis(&xs, &[x]).concat();
    w.iter().zip(&ys).map(|(w, y)| w * y).sum()
}

// ---- lens shading: tables whose samples sit elsewhere than our grid's ----

/// Positions (0..=1 of the frame) of `n` grid points from corner to corner.
pub(crate) fn corners(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / (n.max(2) - 1) as f64).collect()
}

/// Weights (a row of `src.len()` per `dst`) of linear interpolation between
/// samples at `src` (rising, at least one), held beyond its ends.
fn axis(src: &[f64], dst: &[f64]) -> Vec<Vec<f64>> {
    let row = |u: f64| {
        let mut w = vec![0.0; src.len()];
        match src.partition_point(|&s| s < u) {
            0 => w[0] = 1.0,
            hi if hi == src.len() => w[hi - 1] = 1.0,
            hi => {
                let f = (u - src[hi - 1]) / (src[hi] - src[hi - 1]).max(1e-12);
                (w[hi - 1], w[hi]) = (1.0 - f, f);
            }
        }
        w
    };
    dst.iter().map(|&u| row(u)).collect()
}

/// The inverse of a square matrix (Gauss-Jordan, partial pivoting).
fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let unit = |i: usize| (0..n).map(move |j| if i == j { 1.0 } else { 0.0 });
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, r)| r.iter().copied().chain(unit(i)).collect())
        .collect();
    for c in 0..n {
        let p = (c..n).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))?;
        if a[p][c].abs() < 1e-9 {
            return None;
        }
        a.swap(c, p);
        let d = a[c][c];
        a[c].iter_mut().for_each(|v| *v /= d);
        let pivot = a[c].clone();
        for (_, row) in a.iter_mut().enumerate().filter(|(r, _)| *r != c) {
            let k = row[c];
            row.iter_mut().zip(&pivot).for_each(|(x, y)| *x -= k * y);
        }
    }
    Some(a.into_iter().map(|r| r[n..].to_vec()).collect())
}

/// `wy · table · wxᵀ` for a row-major table `wx[0].len()` wide.
fn resample(table: &[f64], wx: &[Vec<f64>], wy: &[Vec<f64>]) -> Vec<f64> {
    let dot =
        |w: &Vec<f64>, v: &mut dyn Iterator<Item = f64>| w.iter().zip(v).map(|(a, b)| a * b).sum();
    let tw = wx.first().map_or(1, Vec::len);
    let rows: Vec<Vec<f64>> = table
        .chunks_exact(tw)
        .map(|r| wx.iter().map(|w| dot(w, &mut r.iter().copied())).collect())
        .collect();
    let col = |x: usize, w: &Vec<f64>| dot(w, &mut rows.iter().map(|r| r[x]));
    wy.iter()
        .flat_map(|w| (0..wx.len()).map(move |x| col(x, w)))
        .collect()
}

/// Tables `[R, Gr, Gb, B]` (gain = value x `unit`) whose samples sit at
/// `px` x `py` (0..=1 across the frame) as our corner grid of the same size.
pub(crate) fn lsc_in(tabs: [&[f64]; 4], px: &[f64], py: &[f64], unit: f64) -> LensShadingParams {
    let (w, h) = (px.len(), py.len());
    let (wx, wy) = (axis(px, &corners(w)), axis(py, &corners(h)));
    let site = |t: &[f64]| {
        resample(t, &wx, &wy)
            .into_iter()
            .map(|v| (v * unit) as f32)
            .collect()
    };
    let gains = tabs.map(site);
    LensShadingParams {
        enabled: true,
        grid_width: w,
        grid_height: h,
        gains,
    }
}

/// Our grid as tables whose samples sit at `px` x `py`: the exact inverse
/// of [`lsc_in`] when the sizes match (a re-import gives the grid back),
/// else our bilinear grid sampled there (`false`: resampled).
pub(crate) fn lsc_out(ls: &LensShadingParams, px: &[f64], py: &[f64]) -> ([Vec<f64>; 4], bool) {
    let way = |pos: &[f64], n: usize| {
        let inv = (pos.len() == n).then(|| invert(&axis(pos, &corners(n))));
        match inv.flatten() {
            Some(inv) => (inv, true),
            None => (axis(&corners(n), pos), false),
        }
    };
    let ((wx, ex), (wy, ey)) = (way(px, ls.grid_width), way(py, ls.grid_height));
    let site = |g: &Vec<f32>| {
        resample(
            &g.iter().map(|v| f64::from(*v)).collect::<Vec<_>>(),
            &wx,
            &wy,
        )
    };
    (ls.gains.each_ref().map(site), ex && ey)
}

// ---- export helpers ----

/// The AWB the tuning runs and its CT curve.
pub(crate) struct AwbOut {
    pub curve: Option<CtCurveParams>,
    /// The CT-curve AWB runs (else grey world, or nothing when `!any`).
    pub curve_runs: bool,
    pub any: bool,
}

pub(crate) fn awb_out(t: &Tuning) -> AwbOut {
    let block = t.algorithms.iter().find(|b| b.name == CtCurveAwb::NAME);
    AwbOut {
        curve: block.map(|_| block_params::<CtCurveParams>(t, CtCurveAwb::NAME)),
        curve_runs: block.is_some_and(|b| b.enabled),
        any: t
            .algorithms
            .iter()
            .any(|b| b.enabled && b.name.starts_with("awb.")),
    }
}

/// The AE block's parameters, if there is one, and whether it runs.
pub(crate) fn ae_out(t: &Tuning) -> Option<(MeanLuminanceParams, bool)> {
    let name = algorithms::ae::MeanLuminanceAe::NAME;
    let b = t.algorithms.iter().find(|b| b.name == name)?;
    Some((block_params(t, name), b.enabled))
}

/// The CCMs `(ct, row-major 9)`: `by_ct`, or `matrix` at 5000 K.
pub(crate) fn ccms_out(t: &Tuning) -> Vec<(f64, Vec<Value>)> {
    let c = &t.stages.ccm;
    let flat = |m: &[[f32; 3]; 3]| m.iter().flatten().map(|v| n32(*v)).collect();
    if c.by_ct.is_empty() {
        return vec![(REFERENCE_CT, flat(&c.matrix))];
    }
    c.by_ct
        .iter()
        .map(|e| (f64::from(e.ct), flat(&e.matrix)))
        .collect()
}

/// A sensor-unit level in 16-bit units (0 when black level is off).
pub(crate) fn to16(t: &Tuning, site: usize, bits: u8) -> u32 {
    let b = &t.stages.black_level;
    if b.enabled {
        u32::from(b.levels[site]) << (16 - bits)
    } else {
        0
    }
}

/// An f32 as the number its shortest decimal spells.
pub(crate) fn n32(x: f32) -> Value {
    n64(format!("{x}").parse::<f64>().unwrap_or(f64::from(x)))
}

/// A number: an integer when it is one.
pub(crate) fn n64(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return Value::from(x as i64);
    }
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The parts of `t` no libcamera format has a place for.
fn common_unplaced(t: &Tuning, f: LibcameraFormat) -> Vec<String> {
    let s = &t.stages;
    let gains = s.white_balance.gains;
    let mut n = vec![
        format!("stages.white_balance (gains {gains:?}): no place (libcamera's AWB sets them)"),
        "stages.demosaic, stages.yuv, stages.stats: no place (each ISP's own)".to_string(),
    ];
    if s.defect_pixel.enabled {
        n.push(format!(
            "stages.defect_pixel: no place ({}'s defect correction differs)",
            f.name()
        ));
    }
    if let Some(w) = s.black_level.white_level {
        n.push(format!("stages.black_level.white_level {w}: no place"));
    }
    if !s.black_level.enabled {
        n.push("stages.black_level is disabled: written as 0".into());
    }
    for b in &t.algorithms {
        let what = match b.name.as_str() {
            "awb.grey_world" => "its parameters",
            "awb.model" => "an ONNX model AWB",
            "ae.mean_luminance" => "speed, max_step, tolerance",
            "awb.ct_curve" => "speed, dark_threshold",
            _ => continue,
        };
        n.push(format!("algorithms {}: {what}: no place", b.name));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_depth_counts_brackets_outside_strings_and_comments() {
        assert_eq!(flow_depth("a: [[{}], []]"), 3);
        assert_eq!(flow_depth("a: \"[[[\" # [[[[\nb: [1]"), 1);
        assert_eq!(flow_depth("a: '[[' \n"), 0);
        // An escaped quote does not end a double-quoted string.
        assert_eq!(flow_depth("a: \"x\\\"[[\"\nb: [[1]]"), 2);
        // A comment ends at its line; what follows counts again.
        assert_eq!(flow_depth("# [[[\n[[1]]"), 2);
        // `#` inside a word is not a comment.
        assert_eq!(flow_depth("a: b#[[1]]"), 2);
        // More closers than openers do not wrap.
        assert_eq!(flow_depth("]]}[["), 2);
    }

    #[test]
    fn yaml_alias_line_finds_aliases_where_a_value_starts() {
        assert_eq!(yaml_alias_line("a: 1\nb: *x\n"), Some(2));
        assert_eq!(yaml_alias_line("- *x"), Some(1));
        assert_eq!(yaml_alias_line("a: [1, *x]"), Some(1));
        assert_eq!(yaml_alias_line("a: \"*x\"\nb: '*y'"), None);
        // Inside quotes nothing starts a value, after a comma or colon too.
        assert_eq!(yaml_alias_line("a: \"b, *x\"\nc: 'd: *y'"), None);
        assert_eq!(yaml_alias_line("a: 2*3 # *x"), None);
        assert_eq!(yaml_alias_line("a: b*c"), None);
        assert_eq!(yaml_alias_line("a: 1 #*x\nc: *z"), Some(2));
    }
}
