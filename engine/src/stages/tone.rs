//! Tone curve: linear 16-bit -> display encoded. sRGB transfer function (or
//! linear, or a pure power), then an S-shaped contrast curve around mid-grey,
//! then optional user control points (piecewise linear, the curve editor's).
//! Applied through lookup tables built once per parameter version.

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
}

impl ToneParams {
    pub const FIELDS: &'static [super::fields::Field] =
        &[super::fields::Field::closed("contrast", 0.0, 8.0)
            .open_min()
            .log()
            .slider(0.1, 8.0)];
}

impl Default for ToneParams {
    fn default() -> Self {
        ToneParams {
            enabled: true,
            gamma: Gamma::Srgb,
            contrast: 1.1,
            curve: Vec::new(),
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

impl ToneParams {
    pub fn check(&self) -> Result<(), String> {
        Self::FIELDS[0]
            .check(self.contrast as f64)
            .map_err(|e| format!("contrast {e}"))?;
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

    /// The curve at `x` in 0..=1.
    pub fn eval(&self, x: f32) -> f32 {
        let x = x.clamp(0.0, 1.0);
        if !self.enabled {
            return x;
        }
        let y = match self.gamma {
            Gamma::Srgb => srgb_oetf(x),
            Gamma::Linear => x,
            Gamma::Power(p) => x.powf(1.0 / p),
        };
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

/// The curve tabulated for every 16-bit input.
#[derive(Clone)]
pub struct ToneLut {
    pub to8: Vec<u8>,
    pub to16: Vec<u16>,
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
        for v in 0..65536u32 {
            let y = p.eval(v as f32 / 65535.0);
            to8.push((y * 255.0 + 0.5).clamp(0.0, 255.0) as u8);
            to16.push((y * 65535.0 + 0.5).clamp(0.0, 65535.0) as u16);
        }
        ToneLut { to8, to16 }
    }
}

/// Interleaved RGB16 -> RGBA8 (alpha 255).
pub fn apply_rgba8(lut: &ToneLut, rgb: &[u16], out: &mut [u8]) {
    for (px, o) in rgb.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        o[0] = lut.to8[px[0] as usize];
        o[1] = lut.to8[px[1] as usize];
        o[2] = lut.to8[px[2] as usize];
        o[3] = 255;
    }
}

/// Interleaved RGB16 -> encoded RGB16, in place.
pub fn apply_rgb16(lut: &ToneLut, rgb: &mut [u16]) {
    for v in rgb.iter_mut() {
        *v = lut.to16[*v as usize];
    }
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
