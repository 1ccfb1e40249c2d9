//! Tone: linear 16-bit -> display encoded. In order: the exposure (a
//! factor; a still's digital gain multiplies it) with a highlight roll-off
//! (values the exposure pushes past white approach it smoothly from the
//! `shoulder`, and with an exposure below 1 the sensor's saturation still
//! lands on white), the transfer function (sRGB, linear or a pure power),
//! an S-shaped contrast curve around mid-grey, then optional user control
//! points (piecewise linear, the curve editor's). With `preserve_hue` (the
//! default) that curve acts on each pixel's largest channel and the three
//! channels are scaled alike, so a saturated colour keeps its hue; off, on
//! each channel. Applied through lookup tables built once per parameter
//! version ([`ToneLut`]): a scale per largest channel, then the transfer
//! function per channel.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Gamma {
    #[default]
    Srgb,
    Linear,
    Power(f32),
}

impl Gamma {
    /// The power's range (`{"kind": "power", "value": v}`).
    pub const FIELDS: &'static [super::fields::Field] =
        &[super::fields::Field::closed("value", 0.0, f64::INFINITY)
            .open_min()
            .slider(0.5, 4.0)];
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToneParams {
    pub enabled: bool,
    pub gamma: Gamma,
    /// 1.0 leaves the curve alone; above 1 steepens the mid-tones.
    pub contrast: f32,
    /// Extra control points `(in, out)` in 0..=1, sorted by `in`; empty = none.
    pub curve: Vec<[f32; 2]>,
    /// Exposure before the curve, a linear factor (1 = none).
    pub exposure: f32,
    /// Where the highlight roll-off starts, a fraction of white (1 = a hard
    /// clip).
    pub shoulder: f32,
    /// Contrast and control points on each pixel's largest channel, the
    /// three channels scaled alike (hue kept); off, on each channel.
    pub preserve_hue: bool,
}

impl ToneParams {
    pub const FIELDS: &'static [super::fields::Field] = &[
        super::fields::Field::closed("contrast", 0.0, 8.0)
            .open_min()
            .log()
            .slider(0.1, 8.0),
        super::fields::Field::closed("exposure", 1.0 / 64.0, 64.0).log(),
        super::fields::Field::closed("shoulder", 0.5, 1.0),
    ];
}

impl Default for ToneParams {
    fn default() -> Self {
        ToneParams {
            enabled: true,
            gamma: Gamma::Srgb,
            contrast: 1.1,
            curve: Vec::new(),
            exposure: 1.0,
            shoulder: 0.8,
            preserve_hue: true,
        }
    }
}

pub fn srgb_oetf(x: f32) -> f32 {
    if x <= 0.003_130_8 {
        12.92 * x
    } else {
        1.055 * x.powf(1.0 / 2.4) - 0.055
    }
}

/// The inverse of [`srgb_oetf`].
pub fn srgb_eotf(y: f32) -> f32 {
    if y <= 0.040_45 {
        y / 12.92
    } else {
        ((y + 0.055) / 1.055).powf(2.4)
    }
}

impl ToneParams {
    pub fn check(&self) -> Result<(), String> {
        Self::FIELDS[0]
            .check(self.contrast as f64)
            .map_err(|e| format!("contrast {e}"))?;
        Self::FIELDS[1]
            .check(self.exposure as f64)
            .map_err(|e| format!("exposure {e}"))?;
        Self::FIELDS[2]
            .check(self.shoulder as f64)
            .map_err(|e| format!("shoulder {e}"))?;
        if let Gamma::Power(p) = self.gamma
            && !Gamma::FIELDS[0].admits(p as f64)
        {
            return Err(format!("gamma power {p} must be > 0"));
        }
        for w in self.curve.windows(2) {
            if w[1][0] <= w[0][0] {
                return Err("curve points must have increasing inputs".into());
            }
        }
        if self
            .curve
            .iter()
            .flatten()
            .any(|v| !(0.0..=1.0).contains(v))
        {
            return Err("curve points must lie in 0..=1".into());
        }
        Ok(())
    }

    /// The exposure and the highlight roll-off: linear in, linear out
    /// (0..=1). Slope 1 up to the knee (`shoulder` of white, times the
    /// exposure when that is below 1), then `p + (1 - p) g(u)` with
    /// `g(u) = (1 + b) u / (1 + b u)`: `u` runs from the knee to the
    /// brightest input the exposure makes (`exposure` x full scale), `g(1) =
    /// 1` puts it on white, and `b` keeps the slope continuous at the knee.
    pub fn roll_off(&self, x: f32) -> f32 {
        let k = self.exposure;
        let t = k * x.clamp(0.0, 1.0);
        if self.shoulder >= 1.0 {
            return t.min(1.0);
        }
        let p = self.shoulder * k.min(1.0);
        if t <= p {
            return t;
        }
        let u = (t - p) / (k - p);
        let b = (k - 1.0) / (1.0 - p);
        (p + (1.0 - p) * (1.0 + b) * u / (1.0 + b * u)).min(1.0)
    }

    /// The transfer function alone (linear -> encoded, 0..=1).
    pub fn encode(&self, x: f32) -> f32 {
        let x = x.clamp(0.0, 1.0);
        if !self.enabled {
            return x;
        }
        match self.gamma {
            Gamma::Srgb => srgb_oetf(x),
            Gamma::Linear => x,
            Gamma::Power(p) => x.powf(1.0 / p),
        }
    }

    /// The transfer function's inverse (encoded -> linear, 0..=1).
    pub fn decode(&self, y: f32) -> f32 {
        let y = y.clamp(0.0, 1.0);
        if !self.enabled {
            return y;
        }
        match self.gamma {
            Gamma::Srgb => srgb_eotf(y),
            Gamma::Linear => y,
            Gamma::Power(p) => y.powf(p),
        }
    }

    /// The whole curve for a neutral input `x` in 0..=1 (linear) -> the
    /// encoded output: roll-off, transfer function, contrast, points.
    /// Disabled: the exposure and roll-off only, linear.
    pub fn eval(&self, x: f32) -> f32 {
        let y = self.encode(self.roll_off(x));
        if !self.enabled {
            return y;
        }
        let c = self.contrast;
        let y = if (c - 1.0).abs() < 1e-6 {
            y
        } else if y < 0.5 {
            0.5 * (2.0 * y).powf(c)
        } else {
            1.0 - 0.5 * (2.0 * (1.0 - y)).powf(c)
        };
        apply_points(&self.curve, y)
    }
}

fn apply_points(pts: &[[f32; 2]], y: f32) -> f32 {
    if pts.is_empty() {
        return y;
    }
    // Implicit end points (0,0) and (1,1).
    let mut prev = [0.0f32, 0.0];
    for &p in pts.iter().chain(std::iter::once(&[1.0, 1.0])) {
        if y <= p[0] {
            let span = (p[0] - prev[0]).max(1e-9);
            return (prev[1] + (p[1] - prev[1]) * (y - prev[0]) / span).clamp(0.0, 1.0);
        }
        prev = p;
    }
    1.0
}

/// The curve tabulated for every 16-bit input. A pixel's output is
/// `to8[c']` (or `to16[c']`) per channel with `c' = clamp_u16(c *
/// scale[max(r, g, b)])`: with `preserve_hue`, `scale` takes the largest
/// channel to the linear value the curve gives it (the other two alike) and
/// `to8`/`to16` are the transfer function; without, `scale` is 1 and the
/// tables are the whole curve per channel.
#[derive(Clone)]
pub struct ToneLut {
    pub to8: Vec<u8>,
    pub to16: Vec<u16>,
    pub scale: Vec<f32>,
}

impl std::fmt::Debug for ToneLut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToneLut")
    }
}

impl ToneLut {
    pub fn build(p: &ToneParams) -> Self {
        let mut to8 = Vec::with_capacity(65536);
        let mut to16 = Vec::with_capacity(65536);
        let mut scale = Vec::with_capacity(65536);
        for v in 0..65536u32 {
            let x = v as f32 / 65535.0;
            let (y, s) = if p.preserve_hue {
                let s = if v == 0 { 0.0 } else { p.decode(p.eval(x)) / x };
                (p.encode(x), s)
            } else {
                (p.eval(x), 1.0)
            };
            to8.push((y * 255.0 + 0.5).clamp(0.0, 255.0) as u8);
            to16.push((y * 65535.0 + 0.5).clamp(0.0, 65535.0) as u16);
            scale.push(s);
        }
        ToneLut { to8, to16, scale }
    }

    /// The pixel's samples ready for `to8`/`to16`.
    #[inline(always)]
    pub fn scaled(&self, px: [u16; 3]) -> [u16; 3] {
        let s = self.scale[px[0].max(px[1]).max(px[2]) as usize];
        px.map(|c| super::clamp_u16(c as f32 * s))
    }
}

/// The tone table of `p`, built once for the same parameters asked again
/// (a still's exposure makes a table per frame otherwise).
pub fn lut_for(p: &ToneParams) -> std::sync::Arc<ToneLut> {
    use std::sync::{Arc, Mutex};
    static LAST: Mutex<Option<(ToneParams, Arc<ToneLut>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((q, lut)) = last.as_ref()
        && q == p
    {
        return lut.clone();
    }
    let lut = Arc::new(ToneLut::build(p));
    *last = Some((p.clone(), lut.clone()));
    lut
}

/// Interleaved RGB16 -> RGBA8 (alpha 255).
pub fn apply_rgba8(lut: &ToneLut, rgb: &[u16], out: &mut [u8]) {
    for (px, o) in rgb.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        let c = lut.scaled([px[0], px[1], px[2]]);
        o[0] = lut.to8[c[0] as usize];
        o[1] = lut.to8[c[1] as usize];
        o[2] = lut.to8[c[2] as usize];
        o[3] = 255;
    }
}

/// Interleaved RGB16 -> encoded RGB16, in place.
pub fn apply_rgb16(lut: &ToneLut, rgb: &mut [u16]) {
    for px in rgb.chunks_exact_mut(3) {
        let c = lut.scaled([px[0], px[1], px[2]]);
        for (o, v) in px.iter_mut().zip(c) {
            *o = lut.to16[v as usize];
        }
    }
}

/// Interleaved linear RGB16 times the exposure alone, clipped at full
/// scale (the slow path's linear output stays linear: no roll-off), in
/// place.
pub fn apply_exposure(p: &ToneParams, rgb: &mut [u16]) {
    if p.exposure == 1.0 {
        return;
    }
    let lin = ToneParams {
        enabled: false,
        preserve_hue: true,
        shoulder: 1.0,
        ..p.clone()
    };
    apply_rgb16(&lut_for(&lin), rgb);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_by_hand() {
        let p = ToneParams {
            contrast: 1.0,
            ..Default::default()
        };
        let lut = ToneLut::build(&p);
        assert_eq!(lut.to8[0], 0);
        assert_eq!(lut.to8[65535], 255);
        // 18% grey encodes to about 118 in sRGB.
        assert_eq!(lut.to8[(0.18f32 * 65535.0) as usize], 118);
        assert!((srgb_oetf(0.5) - 0.735_356_6).abs() < 1e-5);
    }

    #[test]
    fn contrast_is_an_s_curve() {
        let p = ToneParams {
            gamma: Gamma::Linear,
            contrast: 2.0,
            ..Default::default()
        };
        assert!((p.eval(0.25) - 0.125).abs() < 1e-6);
        assert!((p.eval(0.5) - 0.5).abs() < 1e-6);
        assert!((p.eval(0.75) - 0.875).abs() < 1e-6);
    }

    #[test]
    fn control_points_are_piecewise_linear() {
        let p = ToneParams {
            gamma: Gamma::Linear,
            contrast: 1.0,
            curve: vec![[0.5, 0.25]],
            ..Default::default()
        };
        assert!((p.eval(0.25) - 0.125).abs() < 1e-6);
        assert!((p.eval(0.75) - 0.625).abs() < 1e-6);
        let mut bad = p.clone();
        bad.curve = vec![[0.5, 0.2], [0.4, 0.3]];
        assert_eq!(
            bad.check(),
            Err("curve points must have increasing inputs".to_string())
        );
    }

    #[test]
    fn monotonic() {
        let lut = ToneLut::build(&ToneParams::default());
        assert!(lut.to16.windows(2).all(|w| w[0] <= w[1]));
    }
}
