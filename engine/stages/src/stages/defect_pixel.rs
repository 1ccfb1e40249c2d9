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
//!
//! How far is "standing out": with the sensor's noise model (the tuning's
//! `noise`, resolved per frame at its analogue gain into [`noise`]) and
//! `sigmas` > 0, `sigmas` times the noise's sigma at the neighbours' level
//! (the largest for a bright pixel, the smallest for a dark one), so the
//! test is as strict in a dark shadow as in a bright sky; without one, the
//! fixed `threshold`. Integer arithmetic: the excess squared against the
//! variance `a * (level >> 8) + b`, so the WGSL twin is exact.
//!
//! A static defect map (`map`, pixel coordinates, as `isp calibrate` finds
//! them in dark frames) is replaced whatever its neighbours say.
//!
//! [`noise`]: DefectPixelParams::noise

use super::reflect;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefectPixelParams {
    pub enabled: bool,
    /// How far (16-bit units) a pixel must lie outside its neighbours'
    /// range, when there is no noise model (or `sigmas` is 0).
    pub threshold: u16,
    /// With a noise model: how many of its sigmas a pixel must lie outside
    /// its neighbours' range (0: the fixed threshold).
    pub sigmas: f32,
    /// Pixels always replaced, `[x, y]` (a static defect map; any outside
    /// the frame are ignored).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub map: Vec<[u32; 2]>,
    /// The noise at this frame, `(a, b)`: variance `a * level + b` in
    /// 16-bit units squared, `level` above black. Set by the engine from
    /// the tuning's `noise` at the frame's gain (`with_noise`); not part of
    /// the file.
    #[serde(skip)]
    pub noise: Option<(f32, f32)>,
}

impl DefectPixelParams {
    pub const FIELDS: &'static [super::fields::Field] = &[
        super::fields::Field::closed("threshold", 0.0, 65535.0),
        super::fields::Field::closed("sigmas", 0.0, 100.0),
    ];

    /// These parameters with the noise of a sensor whose sample `s` DN
    /// above black varies by `shot * s + read` DN² at unity gain, at
    /// analogue gain `gain`, for a black level stage that scales a DN by
    /// `scale` (16-bit units above the pedestal per DN).
    pub fn with_noise(mut self, shot: f32, read: f32, gain: f32, scale: f32) -> Self {
        let (shot, read, gain) = (shot.max(0.0), read.max(0.0), gain.max(0.0));
        // A DN of signal is `scale` units; its variance `gain * shot` DN²
        // per DN is `scale * gain * shot` units² per unit.
        self.noise = Some((scale * gain * shot, scale * scale * gain * gain * read));
        self
    }

    /// What the per-pixel test needs: `(t, a, b)`, a pixel's excess `d`
    /// over its neighbours' range counts when `d > t` and `d * d > a *
    /// (level >> 8) + b` (`level` above the pedestal).
    pub fn resolve(&self) -> (i32, u32, u32) {
        match self.noise {
            Some((a, b)) if self.sigmas > 0.0 => {
                let k = (self.sigmas * self.sigmas) as f64;
                let q = |v: f64| v.round().clamp(0.0, u32::MAX as f64) as u32;
                (0, q(k * a as f64 * 256.0), q(k * b as f64))
            }
            _ => (self.threshold as i32, 0, 0),
        }
    }
}

/// The variance bound at `level` (16-bit, pedestal in), held at `u32::MAX`.
#[inline]
pub fn bound(a: u32, b: u32, level: i32) -> u32 {
    let s = ((level - super::PEDESTAL as i32).max(0) >> 8) as u64;
    (a as u64 * s + b as u64).min(u32::MAX as u64) as u32
}

/// Whether an excess `d` counts, against `(t, a, b)` at `level`.
#[inline]
pub fn stands_out(d: i32, (t, a, b): (i32, u32, u32), level: i32) -> bool {
    d > t && (d as u32) * (d as u32) > bound(a, b, level)
}

impl Default for DefectPixelParams {
    fn default() -> Self {
        DefectPixelParams {
            enabled: false,
            threshold: 4096,
            sigmas: 6.0,
            map: Vec::new(),
            noise: None,
        }
    }
}

/// Whether pixel `c` is a defect: outside `lo..=hi` (its same-colour
/// neighbours' range) by more than `k` allows ([`stands_out`]), and when
/// bright, not a point of light (`spread` = 2 x the four nearest
/// neighbours - their ring of eight).
#[inline]
pub fn decide(c: i32, lo: i32, hi: i32, k: (i32, u32, u32), spread: i32) -> bool {
    (stands_out(c - hi, k, hi) && spread < c - hi) || stands_out(lo - c, k, lo)
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
    let k = p.resolve();
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
            dst[y * width + x] = if decide(c, lo, hi, k, 2 * near - ring) {
                fixed += 1;
                ((axial.iter().sum::<i32>() + 2) / 4) as u16
            } else {
                c as u16
            };
        }
    }
    for &[x, y] in &p.map {
        let (x, y) = (x as usize, y as usize);
        if x >= width || y >= height {
            continue;
        }
        let at = |dx: isize, dy: isize| -> i32 {
            src[reflect(y as isize + dy, height) * width + reflect(x as isize + dx, width)] as i32
        };
        let mean = ((at(-2, 0) + at(2, 0) + at(0, -2) + at(0, 2) + 2) / 4) as u16;
        if dst[y * width + x] == src[y * width + x] {
            fixed += 1;
        }
        dst[y * width + x] = mean;
    }
    fixed
}

/// The map as a bitmap of `width * height` bits, 32 a word, row-major (the
/// WGSL twin's view of it).
pub fn map_bits(map: &[[u32; 2]], width: usize, height: usize, out: &mut Vec<u32>) {
    out.clear();
    out.resize((width * height).div_ceil(32), 0);
    for &[x, y] in map {
        let (x, y) = (x as usize, y as usize);
        if x < width && y < height {
            let i = y * width + x;
            out[i / 32] |= 1 << (i % 32);
        }
    }
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
            ..Default::default()
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
                ..Default::default()
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
            ..Default::default()
        };
        assert_eq!(apply(&p, w, h, &src, &mut dst), 0);
        assert_eq!(src, dst);
    }

    /// The noise model's threshold against the fixed one (12-bit, 16
    /// units a DN; shot 1 DN² per DN, read 4 DN², unity gain): six sigmas
    /// at 10 DN (the level in steps of 256 units: read noise alone) are 6 x
    /// 2 x 16 = 192 units, at 3000 DN about 6 sqrt(3000) x 16 = 5255. A
    /// pixel 2000 units hot in a shadow is a defect (the fixed 4096 misses
    /// it); one 4500 units up in a highlight is noise (the fixed threshold
    /// takes it).
    #[test]
    fn the_noise_model_sets_the_threshold_by_level() {
        let (w, h) = (16, 16);
        let p0 = crate::stages::PEDESTAL;
        let mut src = vec![0u16; w * h];
        for y in 0..h {
            for x in 0..w {
                src[y * w + x] = if x < w / 2 { p0 + 160 } else { p0 + 48000 };
            }
        }
        let (dark, bright) = (6 * w + 3, 6 * w + 12);
        src[dark] += 2000;
        src[bright] += 4500;
        let fixed = DefectPixelParams {
            enabled: true,
            ..Default::default()
        };
        let noisy = fixed.clone().with_noise(1.0, 4.0, 1.0, 16.0);
        let (mut a, mut b) = (vec![0u16; w * h], vec![0u16; w * h]);
        apply(&fixed, w, h, &src, &mut a);
        apply(&noisy, w, h, &src, &mut b);
        assert_eq!((a[dark], a[bright]), (src[dark], p0 + 48000));
        assert_eq!((b[dark], b[bright]), (p0 + 160, src[bright]));
        // At gain 16 the shadow's sigma is 16 times the read noise's (6
        // sigmas: 3072 units): 2000 is noise there too.
        let gained = fixed.with_noise(1.0, 4.0, 16.0, 16.0);
        apply(&gained, w, h, &src, &mut b);
        assert_eq!((b[dark], b[bright]), (src[dark], src[bright]));
    }

    #[test]
    fn the_static_map_is_replaced_whatever_its_neighbours_say() {
        let (w, h) = (8, 8);
        let src: Vec<u16> = (0..w * h).map(|i| 1000 + (i % 3) as u16).collect();
        let mut src = src;
        src[2 * w + 5] = 1100; // within the threshold, but mapped
        let p = DefectPixelParams {
            enabled: true,
            map: vec![[5, 2], [0, 0], [99, 3]],
            ..Default::default()
        };
        let mut dst = vec![0u16; w * h];
        apply(&p, w, h, &src, &mut dst);
        let at = |x: usize, y: usize| src[y * w + x] as i32;
        assert_eq!(
            dst[2 * w + 5] as i32,
            (at(3, 2) + at(7, 2) + at(5, 0) + at(5, 4) + 2) / 4
        );
        // At the corner the neighbours mirror (reflect: -2 -> 2).
        assert_eq!(dst[0] as i32, (2 * at(2, 0) + 2 * at(0, 2) + 2) / 4);
        let mut bits = Vec::new();
        map_bits(&p.map, w, h, &mut bits);
        assert_eq!(bits, vec![1 | 1 << (2 * 8 + 5), 0]);
    }
}
