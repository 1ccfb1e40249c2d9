//! A DNG's colour as the specification's chapter 6 ("Mapping Camera Color
//! Space to CIE XYZ Space") says: the camera profile's one or two
//! calibrations (ColorMatrix, ForwardMatrix and CameraCalibration under a
//! CalibrationIlluminant) interpolated in inverse colour temperature at the
//! white balance, AnalogBalance applied, and the result the engine's CCM:
//! white-balanced camera RGB -> linear sRGB (D65), rows summing to 1.
//!
//! The white balance's colour temperature is found as the specification
//! does it: from D50, the xy whose interpolated matrix maps to the camera
//! neutral, iterated; temperatures of xy by McCamy's formula. With a
//! ForwardMatrix, camera -> XYZ (D50) is `FM * D * inv(AB * CC)`, `D`
//! making the neutral white; without, the inverse of `AB * CC * CM`
//! adapted (Bradford) from the white's xy to D50. XYZ (D50) goes to D65 by
//! Bradford and to sRGB by its matrix. `scripts/dng_colour.py` is an
//! independent numpy version of the same chapter, which the tests hold this
//! one to.

use super::{DngImage, XYZ_FROM_SRGB, illuminant_kelvin, mat_inv, mat_mul};

type M = [[f64; 3]; 3];

const IDENTITY: M = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
/// The specification's D50 (the profile connection space's white).
pub const D50_XY: [f64; 2] = [0.3457, 0.3585];
pub const D65_XY: [f64; 2] = [0.3127, 0.3290];

/// The colour a DNG's profile gives for one white balance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DngColour {
    /// White-balanced camera RGB -> linear sRGB, rows summing to 1.
    pub ccm: M,
    /// The white balance's colour temperature (K).
    pub ct: f64,
    /// Its chromaticity.
    pub xy: [f64; 2],
}

fn diag(v: [f64; 3]) -> M {
    [[v[0], 0.0, 0.0], [0.0, v[1], 0.0], [0.0, 0.0, v[2]]]
}

fn mul_v(m: &M, v: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|i| (0..3).map(|k| m[i][k] * v[k]).sum())
}

fn xyz_of(xy: [f64; 2]) -> [f64; 3] {
    [xy[0] / xy[1], 1.0, (1.0 - xy[0] - xy[1]) / xy[1]]
}

/// McCamy's correlated colour temperature of a chromaticity.
pub fn cct_of_xy(xy: [f64; 2]) -> f64 {
    let n = (xy[0] - 0.3320) / (0.1858 - xy[1]);
    449.0 * n.powi(3) + 3525.0 * n * n + 6823.3 * n + 5520.33
}

/// Bradford adaptation from white `from` to white `to` (XYZ).
pub fn bradford(from: [f64; 3], to: [f64; 3]) -> M {
    const B: M = [
        [0.8951, 0.2664, -0.1614],
        [-0.7502, 1.7135, 0.0367],
        [0.0389, -0.0685, 1.0296],
    ];
    let (s, d) = (mul_v(&B, from), mul_v(&B, to));
    let scale = diag(std::array::from_fn(|i| d[i] / s[i]));
    let b_inv = mat_inv(&B).unwrap_or(IDENTITY);
    mat_mul(&b_inv, &mat_mul(&scale, &B))
}

fn lerp(a: &M, b: &M, g: f64) -> M {
    std::array::from_fn(|i| std::array::from_fn(|j| a[i][j] * g + b[i][j] * (1.0 - g)))
}

/// One calibration of the profile.
#[derive(Clone, Copy, Debug)]
struct Cal {
    ct: f64,
    cm: M,
    fm: Option<M>,
    cc: M,
}

impl DngImage {
    fn calibrations(&self) -> Vec<Cal> {
        let mut v: Vec<Cal> = self
            .color_matrices
            .iter()
            .enumerate()
            .map(|(i, (ill, cm))| Cal {
                ct: illuminant_kelvin(*ill).unwrap_or(6500.0),
                cm: *cm,
                fm: self.forward_matrices.get(i).copied().flatten(),
                cc: self
                    .camera_calibrations
                    .get(i)
                    .copied()
                    .flatten()
                    .unwrap_or(IDENTITY),
            })
            .collect();
        v.sort_by(|a, b| a.ct.total_cmp(&b.ct));
        v.dedup_by(|a, b| a.ct == b.ct);
        v
    }

    /// The profile's (CM, FM, CC) at colour temperature `ct`: weighted by
    /// inverse temperature between the two calibrations, held at the ends.
    fn profile_at(cals: &[Cal], ct: f64) -> (M, Option<M>, M) {
        match cals {
            [] => (IDENTITY, None, IDENTITY),
            [c] => (c.cm, c.fm, c.cc),
            [lo, hi, ..] => {
                let g = ((1.0 / ct - 1.0 / hi.ct) / (1.0 / lo.ct - 1.0 / hi.ct)).clamp(0.0, 1.0);
                let fm = match (lo.fm, hi.fm) {
                    (Some(a), Some(b)) => Some(lerp(&a, &b, g)),
                    _ => None,
                };
                (lerp(&lo.cm, &hi.cm, g), fm, lerp(&lo.cc, &hi.cc, g))
            }
        }
    }

    /// The colour of the white balance whose camera neutral is `neutral`
    /// (`None` when the profile has no ColorMatrix or a matrix is singular).
    pub fn colour_for_neutral(&self, neutral: [f64; 3]) -> Option<DngColour> {
        let cals = self.calibrations();
        if cals.is_empty() || neutral.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return None;
        }
        let ab = diag(self.analog_balance.unwrap_or([1.0; 3]));
        let xyz_to_camera = |ct: f64| {
            let (cm, _, cc) = Self::profile_at(&cals, ct);
            mat_mul(&ab, &mat_mul(&cc, &cm))
        };
        // The white's xy: from D50, the xy whose matrix gives the neutral.
        let mut xy = D50_XY;
        for _ in 0..50 {
            let m = mat_inv(&xyz_to_camera(cct_of_xy(xy).clamp(1000.0, 50000.0)))?;
            let xyz = mul_v(&m, neutral);
            let s: f64 = xyz.iter().sum();
            if !(s.is_finite() && s.abs() > 1e-12) {
                return None;
            }
            let next = [xyz[0] / s, xyz[1] / s];
            let moved = (next[0] - xy[0]).abs() + (next[1] - xy[1]).abs();
            xy = next;
            if moved < 1e-9 {
                break;
            }
        }
        let ct = cct_of_xy(xy).clamp(1000.0, 50000.0);
        let (cm, fm, cc) = Self::profile_at(&cals, ct);
        let abcc = mat_mul(&ab, &cc);
        let camera_to_d50 = match fm {
            Some(fm) => {
                let abcc_inv = mat_inv(&abcc)?;
                let reference = mul_v(&abcc_inv, neutral);
                let d = diag(reference.map(|v| 1.0 / v));
                mat_mul(&fm, &mat_mul(&d, &abcc_inv))
            }
            None => {
                let camera_to_xyz = mat_inv(&mat_mul(&abcc, &cm))?;
                mat_mul(&bradford(xyz_of(xy), xyz_of(D50_XY)), &camera_to_xyz)
            }
        };
        let srgb_from_xyz = mat_inv(&XYZ_FROM_SRGB)?;
        let to_d65 = bradford(xyz_of(D50_XY), xyz_of(D65_XY));
        let cam_to_srgb = mat_mul(&srgb_from_xyz, &mat_mul(&to_d65, &camera_to_d50));
        // On white-balanced camera RGB: a neutral is (1, 1, 1) there.
        let mut ccm = mat_mul(&cam_to_srgb, &diag(neutral));
        for row in ccm.iter_mut() {
            let s: f64 = row.iter().sum();
            if !(s.is_finite() && s.abs() > 1e-12) {
                return None;
            }
            row.iter_mut().for_each(|v| *v /= s);
        }
        Some(DngColour { ccm, ct, xy })
    }

    /// The camera neutral of a colour temperature: the profile at `ct`
    /// applied to the daylight (or Planckian-like) white of McCamy's `ct`,
    /// found by the same iteration (for the CCMs per calibration).
    pub fn neutral_at(&self, ct: f64) -> Option<[f64; 3]> {
        let cals = self.calibrations();
        if cals.is_empty() {
            return None;
        }
        let ab = diag(self.analog_balance.unwrap_or([1.0; 3]));
        // A CIE daylight chromaticity at ct (4000..25000 K; held outside).
        let t = ct.clamp(4000.0, 25000.0);
        let x = if t <= 7000.0 {
            -4.607e9 / t.powi(3) + 2.9678e6 / t.powi(2) + 0.09911e3 / t + 0.244063
        } else {
            -2.0064e9 / t.powi(3) + 1.9018e6 / t.powi(2) + 0.24748e3 / t + 0.23704
        };
        let y = -3.0 * x * x + 2.87 * x - 0.275;
        let (cm, _, cc) = Self::profile_at(&cals, ct);
        let n = mul_v(&mat_mul(&ab, &mat_mul(&cc, &cm)), xyz_of([x, y]));
        let g = n[1];
        (g.is_finite() && g > 0.0).then(|| n.map(|v| v / g))
    }
}
