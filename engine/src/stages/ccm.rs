//! Colour correction matrix: camera RGB -> linear sRGB primaries, 3x3.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CcmParams {
    pub enabled: bool,
    /// Row-major; output R = row 0 . (R, G, B). Rows usually sum to 1.
    pub matrix: [[f32; 3]; 3],
}

impl Default for CcmParams {
    fn default() -> Self {
        CcmParams {
            enabled: true,
            matrix: [
                [1.6, -0.45, -0.15],
                [-0.3, 1.55, -0.25],
                [-0.05, -0.5, 1.55],
            ],
        }
    }
}

impl CcmParams {
    pub fn effective(&self) -> [[f32; 3]; 3] {
        if self.enabled {
            self.matrix
        } else {
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        }
    }
    /// Each coefficient of `matrix`.
    pub const FIELDS: &'static [super::fields::Field] =
        &[super::fields::Field::closed("matrix", -16.0, 16.0)];

    pub fn check(&self) -> Result<(), String> {
        let cell = &Self::FIELDS[0];
        for v in self.matrix.iter().flatten() {
            cell.check(*v as f64)
                .map_err(|e| format!("coefficient {e}"))?;
        }
        Ok(())
    }
}

/// One pixel.
#[inline(always)]
pub fn mul(m: &[[f32; 3]; 3], r: f32, g: f32, b: f32) -> [u16; 3] {
    [
        super::clamp_u16(m[0][0] * r + m[0][1] * g + m[0][2] * b),
        super::clamp_u16(m[1][0] * r + m[1][1] * g + m[1][2] * b),
        super::clamp_u16(m[2][0] * r + m[2][1] * g + m[2][2] * b),
    ]
}

/// Apply in place to interleaved RGB16.
pub fn apply(p: &CcmParams, rgb: &mut [u16]) {
    let m = p.effective();
    for px in rgb.chunks_exact_mut(3) {
        let o = mul(&m, px[0] as f32, px[1] as f32, px[2] as f32);
        px.copy_from_slice(&o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let p = CcmParams {
            enabled: true,
            matrix: [[2.0, -1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]],
        };
        let mut px = vec![1000u16, 300, 3000, 100, 60000, 0];
        apply(&p, &mut px);
        assert_eq!(&px[..3], &[1700, 300, 2000]);
        assert_eq!(&px[3..], &[0, 60000, 50]); // negative clamps to 0
        let mut id = vec![5u16, 6, 7];
        apply(
            &CcmParams {
                enabled: false,
                ..p
            },
            &mut id,
        );
        assert_eq!(id, vec![5, 6, 7]);
    }
}
