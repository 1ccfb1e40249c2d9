//! RGB -> YUV (Y'CbCr) 4:4:4, BT.601 or BT.709, full or limited range, on
//! display-encoded 16-bit RGB. Output is three 16-bit planes; limited range
//! is the 8-bit legal range times 256 (black 4096, white 60160, as P010 and
//! P016 expect), not divided by 255.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum YuvMatrix {
    Bt601,
    #[default]
    Bt709,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum YuvRange {
    #[default]
    Full,
    Limited,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct YuvParams {
    pub matrix: YuvMatrix,
    pub range: YuvRange,
}

impl YuvParams {
    pub const FIELDS: &'static [super::fields::Field] = &[
        super::fields::Field::choice("matrix", &["bt601", "bt709"]),
        super::fields::Field::choice("range", &["full", "limited"]),
    ];
}

impl YuvMatrix {
    /// (Kr, Kb).
    pub fn coefficients(self) -> (f32, f32) {
        match self {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
        }
    }
}

/// One pixel, components in 0..=1 in and out.
#[inline]
pub fn convert(p: &YuvParams, r: f32, g: f32, b: f32) -> [f32; 3] {
    let (kr, kb) = p.matrix.coefficients();
    let kg = 1.0 - kr - kb;
    let y = kr * r + kg * g + kb * b;
    let u = (b - y) / (2.0 * (1.0 - kb)) + 0.5;
    let v = (r - y) / (2.0 * (1.0 - kr)) + 0.5;
    match p.range {
        YuvRange::Full => [y, u, v],
        // The 8-bit legal range scaled by 256 (BT.2100's 16-bit
        // convention, P010/P016's): Y 4096..=60160, Cb/Cr 4096..=61440.
        YuvRange::Limited => [
            (4096.0 + 56064.0 * y) / 65535.0,
            (4096.0 + 57344.0 * u) / 65535.0,
            (4096.0 + 57344.0 * v) / 65535.0,
        ],
    }
}

/// Interleaved RGB16 -> planar Y, U, V (each `width*height` samples).
pub fn apply(p: &YuvParams, rgb: &[u16], y: &mut [u16], u: &mut [u16], v: &mut [u16]) {
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        let [a, b, c] = convert(
            p,
            px[0] as f32 / 65535.0,
            px[1] as f32 / 65535.0,
            px[2] as f32 / 65535.0,
        );
        y[i] = super::clamp_u16(a * 65535.0);
        u[i] = super::clamp_u16(b * 65535.0);
        v[i] = super::clamp_u16(c * 65535.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(p: &YuvParams, rgb: [u16; 3]) -> [u16; 3] {
        let (mut y, mut u, mut v) = ([0u16], [0u16], [0u16]);
        apply(p, &rgb, &mut y, &mut u, &mut v);
        [y[0], u[0], v[0]]
    }

    #[test]
    fn white_black_and_primaries() {
        let p = YuvParams::default();
        assert_eq!(one(&p, [65535; 3]), [65535, 32768, 32768]);
        assert_eq!(one(&p, [0; 3]), [0, 32768, 32768]);
        // BT.709 red: Y = 0.2126, V = 1.0
        let r = one(&p, [65535, 0, 0]);
        assert_eq!(r[0], (0.2126f32 * 65535.0 + 0.5) as u16);
        assert_eq!(r[2], 65535);
        let p601 = YuvParams {
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Full,
        };
        let g = one(&p601, [0, 65535, 0]);
        assert_eq!(g[0], (0.587f32 * 65535.0 + 0.5) as u16);
    }

    #[test]
    fn limited_range_by_hand() {
        let p = YuvParams {
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Limited,
        };
        // 16-bit legal range: 8-bit codes times 256.
        assert_eq!(one(&p, [65535; 3]), [60160, 32768, 32768]);
        assert_eq!(one(&p, [0; 3]), [4096, 32768, 32768]);
        let b = one(&p, [0, 0, 65535]);
        assert_eq!(b[1], 240 * 256);
        let r = one(&p, [65535, 0, 0]);
        assert_eq!(r[2], 240 * 256);
    }
}
