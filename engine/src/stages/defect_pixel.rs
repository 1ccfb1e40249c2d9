//! Defect pixel correction: a pixel that stands out from all eight
//! same-colour neighbours (two pixels away) by more than `threshold` is
//! replaced by the mean of its four axial same-colour neighbours.

use super::reflect;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefectPixelParams {
    pub enabled: bool,
    /// How far (16-bit units) a pixel must lie outside its neighbours' range.
    pub threshold: u16,
}

impl DefectPixelParams {
    pub const FIELDS: &'static [super::fields::Field] =
        &[super::fields::Field::closed("threshold", 0.0, 65535.0)];
}

impl Default for DefectPixelParams {
    fn default() -> Self {
        DefectPixelParams {
            enabled: false,
            threshold: 4096,
        }
    }
}

/// Correct a mosaic (any Bayer order: neighbours two apart share the colour).
/// Returns how many pixels were replaced.
pub fn apply(
    p: &DefectPixelParams,
    width: usize,
    height: usize,
    src: &[u16],
    dst: &mut [u16],
) -> usize {
    if !p.enabled {
        dst[..width * height].copy_from_slice(&src[..width * height]);
        return 0;
    }
    let t = p.threshold as i32;
    let mut fixed = 0;
    for y in 0..height {
        for x in 0..width {
            let at = |dx: isize, dy: isize| -> i32 {
                let xx = reflect(x as isize + dx, width);
                let yy = reflect(y as isize + dy, height);
                src[yy * width + xx] as i32
            };
            let c = src[y * width + x] as i32;
            let axial = [at(-2, 0), at(2, 0), at(0, -2), at(0, 2)];
            let diag = [at(-2, -2), at(2, -2), at(-2, 2), at(2, 2)];
            let (mut lo, mut hi) = (i32::MAX, i32::MIN);
            for v in axial.iter().chain(diag.iter()) {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
            dst[y * width + x] = if c > hi + t || c < lo - t {
                fixed += 1;
                ((axial.iter().sum::<i32>() + 2) / 4) as u16
            } else {
                c as u16
            };
        }
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_and_dead_pixels_are_replaced() {
        let (w, h) = (8, 8);
        let mut src = vec![1000u16; w * h];
        src[3 * w + 3] = 60000; // hot
        src[4 * w + 5] = 0; // dead
        src[6 * w + 1] = 1500; // within threshold: kept
        let mut dst = vec![0u16; w * h];
        let p = DefectPixelParams {
            enabled: true,
            threshold: 800,
        };
        assert_eq!(apply(&p, w, h, &src, &mut dst), 2);
        assert_eq!(dst[3 * w + 3], 1000);
        assert_eq!(dst[4 * w + 5], 1000);
        assert_eq!(dst[6 * w + 1], 1500);
    }

    #[test]
    fn edges_and_gradients_survive() {
        let (w, h) = (10, 6);
        let src: Vec<u16> = (0..w * h).map(|i| ((i % w) * 3000) as u16).collect();
        let mut dst = vec![0u16; w * h];
        let p = DefectPixelParams {
            enabled: true,
            threshold: 100,
        };
        assert_eq!(apply(&p, w, h, &src, &mut dst), 0);
        assert_eq!(src, dst);
    }
}
