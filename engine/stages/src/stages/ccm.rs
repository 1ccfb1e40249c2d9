//! Colour correction matrix: camera RGB -> linear sRGB primaries, 3x3.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CcmParams {
    pub enabled: bool,
    /// Row-major; output R = row 0 . (R, G, B). Rows usually sum to 1.
    pub matrix: [[f32; 3]; 3],
    /// Matrices calibrated at colour temperatures (ascending): when there
    /// are any, each frame's matrix is interpolated (linearly in mired, held
    /// at the ends) at the colour temperature AWB estimated, and `matrix`
    /// is what it was last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_ct: Vec<CcmAtCt>,
}

/// A CCM calibrated under an illuminant of colour temperature `ct` (K).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CcmAtCt {
    pub ct: f32,
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
            by_ct: Vec::new(),
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
        for v in self
            .matrix
            .iter()
            .chain(self.by_ct.iter().flat_map(|c| c.matrix.iter()))
            .flatten()
        {
            cell.check(*v as f64)
                .map_err(|e| format!("coefficient {e}"))?;
        }
        let mut last = 0.0;
        for c in &self.by_ct {
            if !(c.ct.is_finite() && c.ct > last && c.ct <= 100_000.0) {
                return Err(format!(
                    "by_ct: colour temperatures must rise from above 0 to at most 100000 K (got {} after {last})",
                    c.ct
                ));
            }
            last = c.ct;
        }
        Ok(())
    }

    /// The matrix at colour temperature `ct`: `by_ct` interpolated
    /// linearly in mired (held at its ends), or `matrix` when `by_ct` is empty or
    /// `ct` is unknown (not above 0).
    pub fn for_ct(&self, ct: f32) -> [[f32; 3]; 3] {
        let t = &self.by_ct;
        if t.is_empty() || ct.is_nan() || ct <= 0.0 {
            return self.matrix;
        }
        let i = t.partition_point(|c| c.ct < ct);
        if i == 0 {
            return t[0].matrix;
        }
        if i == t.len() {
            return t[i - 1].matrix;
        }
        let (a, b) = (&t[i - 1], &t[i]);
        // Linear in mired (1e6 / CT), where colour moves about evenly.
        let f = (1.0 / ct - 1.0 / a.ct) / (1.0 / b.ct - 1.0 / a.ct);
        std::array::from_fn(|r| {
            std::array::from_fn(|c| a.matrix[r][c] * (1.0 - f) + b.matrix[r][c] * f)
        })
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

/// `m` as the pipeline applies it: to camera RGB less the pedestal, scaled
/// so white lands at 65535 again (`stages::PEDESTAL`).
pub fn for_pipeline(m: [[f32; 3]; 3]) -> [[f32; 3]; 3] {
    m.map(|r| r.map(|v| v * super::PEDESTAL_SCALE))
}

impl CcmParams {
    /// [`for_pipeline`] of the effective matrix (identity when off: the
    /// pedestal still comes off here).
    pub fn pipeline_matrix(&self) -> [[f32; 3]; 3] {
        for_pipeline(self.effective())
    }
}

/// Apply in place to interleaved RGB16 about the pedestal: the pedestal
/// comes off, and this is where the chain clamps at black, once.
pub fn apply(p: &CcmParams, rgb: &mut [u16]) {
    let m = p.pipeline_matrix();
    let k = super::PEDESTAL_F;
    for px in rgb.chunks_exact_mut(3) {
        let o = mul(&m, px[0] as f32 - k, px[1] as f32 - k, px[2] as f32 - k);
        px.copy_from_slice(&o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_by_colour_temperature_interpolate_and_hold_their_ends() {
        let mut p = CcmParams::default();
        let m = |v: f32| [[v, 0.0, 0.0], [0.0, v, 0.0], [0.0, 0.0, v]];
        p.by_ct = vec![
            CcmAtCt {
                ct: 3000.0,
                matrix: m(1.0),
            },
            CcmAtCt {
                ct: 5000.0,
                matrix: m(2.0),
            },
        ];
        assert_eq!(p.for_ct(2000.0), m(1.0));
        // Half way in mired (1e6/3000 = 333.3, 1e6/5000 = 200) is 3750 K,
        // not 4000 K (which is 5/8 of the way).
        let near = |a: [[f32; 3]; 3], v: f32| (a[1][1] - v).abs() < 1e-5 && a[0][1] == 0.0;
        assert!(near(p.for_ct(3750.0), 1.5), "{:?}", p.for_ct(3750.0));
        assert!(near(p.for_ct(4000.0), 1.625), "{:?}", p.for_ct(4000.0));
        assert_eq!(p.for_ct(9000.0), m(2.0));
        assert_eq!(p.for_ct(0.0), p.matrix);
        assert!(p.check().is_ok());
        p.by_ct.reverse();
        assert!(p.check().unwrap_err().contains("rise"));
    }

    #[test]
    fn by_hand() {
        let p = CcmParams {
            enabled: true,
            matrix: [[2.0, -1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]],
            by_ct: Vec::new(),
        };
        // Camera RGB about the pedestal P; out, 0 is black and white
        // (65535) stays white: each value is (v - P) 65535 / (65535 - P).
        let p0 = super::super::PEDESTAL;
        let k = 65535.0 / (65535.0 - p0 as f64);
        let o = |v: f64| (v * k).round().clamp(0.0, 65535.0) as u16;
        let mut px = vec![p0 + 1000, p0 + 300, p0 + 3000, p0 + 100, 60000, p0];
        apply(&p, &mut px);
        assert_eq!(&px[..3], &[o(1700.0), o(300.0), o(2000.0)]);
        // Negative clamps to 0, once, here.
        assert_eq!(&px[3..], &[0, o(60000.0 - p0 as f64), o(50.0)]);
        let mut id = vec![p0 + 5, p0 - 6, 65535];
        apply(
            &CcmParams {
                enabled: false,
                ..p
            },
            &mut id,
        );
        assert_eq!(id, vec![o(5.0), 0, 65535]);
    }
}
