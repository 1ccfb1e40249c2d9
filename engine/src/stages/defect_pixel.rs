//! Defect pixel correction: a pixel that stands out from all eight
//! same-colour neighbours (two pixels away) by more than `threshold` is
//! replaced by the mean of its four axial same-colour neighbours, unless it
//! is a point of light: a star or a lamp spreads into the pixels next to it
//! (a PSF of 0.7 px puts about a third of the peak into each), a hot pixel
//! does not. So a bright pixel is kept when its four nearest neighbours
//! stand out from their own colour's ring (the eight pixels a knight's move
//! away: `(±1, ±2)` and `(±2, ±1)`, the same colours as those four) by at
//! least an eighth of the pixel's own excess: `2 * sum(near) - sum(ring) >=
//! c - max(same-colour neighbours)`. The test is symmetric, so a gradient
//! (or an edge) cancels in it; dark defects are replaced as before.

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

/// Whether pixel `c` is a defect: outside `lo..=hi` (its same-colour
/// neighbours' range) by more than `t`, and when bright, not a point of
/// light (`spread` = 2 x the four nearest neighbours - their ring of eight).
#[inline]
pub fn decide(c: i32, lo: i32, hi: i32, t: i32, spread: i32) -> bool {
    (c > hi + t && spread < c - hi) || c < lo - t
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
            let near = at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1);
            let ring = at(-1, -2)
                + at(1, -2)
                + at(-1, 2)
                + at(1, 2)
                + at(-2, -1)
                + at(2, -1)
                + at(-2, 1)
                + at(2, 1);
            let axial = [at(-2, 0), at(2, 0), at(0, -2), at(0, 2)];
            let diag = [at(-2, -2), at(2, -2), at(-2, 2), at(2, 2)];
            let (mut lo, mut hi) = (i32::MAX, i32::MIN);
            for v in axial.iter().chain(diag.iter()) {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
            dst[y * width + x] = if decide(c, lo, hi, t, 2 * near - ring) {
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

    /// A point of light (a star: a Gaussian PSF of sigma 0.7 px, its peak
    /// on a pixel) is kept; a hot pixel of the same height beside it on the
    /// same background is replaced. The spread into the neighbours is
    /// computed here from the PSF, not by the stage.
    #[test]
    fn a_star_survives_where_a_hot_pixel_of_its_height_does_not() {
        let (w, h) = (32, 32);
        let (bg, peak, sigma) = (2000.0f64, 40000.0f64, 0.7f64);
        for colour_ratio in [0.5f64, 1.0, 2.0] {
            // Other-colour sites respond `colour_ratio` times as much.
            let at_site = |x: usize, y: usize| {
                if (x + y).is_multiple_of(2) {
                    1.0
                } else {
                    colour_ratio
                }
            };
            let mut src = vec![0u16; w * h];
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = (x as f64 - 10.0, y as f64 - 10.0);
                    let psf = (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp();
                    src[y * w + x] = (bg + peak * psf * at_site(x, y)).min(65535.0) as u16;
                }
            }
            src[22 * w + 22] = (bg + peak) as u16; // hot, alone
            let mut dst = vec![0u16; w * h];
            let p = DefectPixelParams {
                enabled: true,
                threshold: 4096,
            };
            apply(&p, w, h, &src, &mut dst);
            assert_eq!(
                dst[10 * w + 10],
                src[10 * w + 10],
                "star at ratio {colour_ratio}"
            );
            assert_eq!(
                dst[22 * w + 22],
                bg as u16,
                "hot pixel at ratio {colour_ratio}"
            );
        }
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
