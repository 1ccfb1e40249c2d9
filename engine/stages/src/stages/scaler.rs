//! Scaler: resize an RGBA8 image by averaging each output pixel's box of
//! source pixels. Downscaling averages, upscaling repeats; every source
//! pixel counts once per output pixel whose box holds it. Used for preview
//! thumbnails and the viewer's fit-to-window.
//!
//! The colour channels are sRGB-encoded, so they are averaged in linear
//! light (averaging the codes darkens fine detail: a black and white
//! checker would become code 128 instead of 188): each code is decoded to a
//! 14-bit linear value ([`decode_table`]), the box's sum is rounded to its
//! mean (halves up) and encoded back to the code whose interval holds it
//! ([`midpoints`]: the boundaries half way between neighbouring codes'
//! linear values). Alpha is averaged as it is. Integer throughout, so the
//! WGSL twin matches exactly; a code in a box of its own comes back
//! unchanged.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ScalerParams {
    /// Output size; 0 keeps the input's.
    pub width: u32,
    pub height: u32,
}

impl ScalerParams {
    /// The output size for a `w` x `h` input.
    pub fn output_size(&self, w: u32, h: u32) -> (u32, u32) {
        (
            if self.width == 0 { w } else { self.width },
            if self.height == 0 { h } else { self.height },
        )
    }
}

/// The source box `[start, end)` of output index `o` along an axis.
#[inline]
pub fn source_span(o: usize, n_in: usize, n_out: usize) -> (usize, usize) {
    let a = o * n_in / n_out;
    let b = ((o + 1) * n_in / n_out).max(a + 1);
    (a, b)
}

/// Full scale of the linear values the colour channels are averaged in.
pub const LINEAR_MAX: u32 = 16383;

/// Each sRGB code's linear value, 0..=[`LINEAR_MAX`] (strictly rising).
pub fn decode_table() -> &'static [u32; 256] {
    static T: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        std::array::from_fn(|c| {
            (super::tone::srgb_eotf(c as f32 / 255.0) as f64 * LINEAR_MAX as f64).round() as u32
        })
    })
}

/// `m[c]`: the smallest linear value that encodes to code `c` (half way
/// between codes `c - 1` and `c`, rounded up; `m[0] = 0`).
pub fn midpoints() -> &'static [u32; 256] {
    static T: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let d = decode_table();
        std::array::from_fn(|c| {
            if c == 0 {
                0
            } else {
                (d[c - 1] + d[c]).div_ceil(2)
            }
        })
    })
}

/// The code of linear value `v`: the last code whose midpoint is at most
/// `v` (the same binary search as the shader's).
#[inline]
pub fn encode(v: u32) -> u8 {
    let m = midpoints();
    let mut lo = 0usize;
    let mut step = 128;
    while step > 0 {
        if m[lo + step] <= v {
            lo += step;
        }
        step /= 2;
    }
    lo as u8
}

/// `src` (w x h RGBA8) -> `dst` (ow x oh RGBA8).
pub fn apply(w: usize, h: usize, src: &[u8], ow: usize, oh: usize, dst: &mut [u8]) {
    let dec = decode_table();
    for oy in 0..oh {
        let (y0, y1) = source_span(oy, h, oh);
        for ox in 0..ow {
            let (x0, x1) = source_span(ox, w, ow);
            let mut s = [0u64; 4];
            for y in y0..y1 {
                for px in src[(y * w + x0) * 4..(y * w + x1) * 4].chunks_exact(4) {
                    for (a, &b) in s[..3].iter_mut().zip(px) {
                        *a += dec[b as usize] as u64;
                    }
                    s[3] += px[3] as u64;
                }
            }
            let n = ((x1 - x0) * (y1 - y0)) as u64;
            let o = &mut dst[(oy * ow + ox) * 4..(oy * ow + ox) * 4 + 4];
            for (d, a) in o[..3].iter_mut().zip(s) {
                *d = encode(((a + n / 2) / n) as u32);
            }
            o[3] = ((s[3] + n / 2) / n) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_2x2_boxes() {
        // 4x2 -> 2x1
        let src: Vec<u8> = [10u8, 20, 30, 40, 50, 60, 70, 80]
            .iter()
            .flat_map(|&v| [v, v, v, 255])
            .collect();
        let mut dst = vec![0u8; 8];
        apply(4, 2, &src, 2, 1, &mut dst);
        // The boxes' means in linear light, by the sRGB definition (IEC
        // 61966-2-1) in f64: codes 10, 20, 50, 60 -> 42; 30, 40, 70, 80 -> 60.
        let srgb = |c: f64| {
            let v = c / 255.0;
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let code = |l: f64| {
            let v = if l <= 0.0031308 {
                12.92 * l
            } else {
                1.055 * l.powf(1.0 / 2.4) - 0.055
            };
            (v * 255.0).round() as u8
        };
        let want = |cs: [f64; 4]| code(cs.iter().map(|&c| srgb(c)).sum::<f64>() / 4.0);
        assert_eq!(dst[0], want([10.0, 20.0, 50.0, 60.0]));
        assert_eq!(dst[4], want([30.0, 40.0, 70.0, 80.0]));
        assert_eq!(dst[3], 255);
    }

    #[test]
    fn a_fine_checker_keeps_its_brightness() {
        // Black and white pixels halved: half the light, code 188, not 128.
        let src: Vec<u8> = (0..16)
            .flat_map(|i| {
                let v = if (i % 4 + i / 4) % 2 == 0 { 0 } else { 255 };
                [v, v, v, 255]
            })
            .collect();
        let mut dst = vec![0u8; 16];
        apply(4, 4, &src, 2, 2, &mut dst);
        for px in dst.chunks_exact(4) {
            assert_eq!(px, [188, 188, 188, 255]);
        }
    }

    #[test]
    fn every_code_in_a_box_of_its_own_comes_back() {
        for c in 0..=255u8 {
            let src = [c, c, c, c].repeat(4);
            let mut dst = [0u8; 4];
            apply(2, 2, &src, 1, 1, &mut dst);
            assert_eq!(dst, [c; 4]);
        }
        let d = decode_table();
        assert!(d.windows(2).all(|w| w[1] > w[0]));
        assert_eq!((d[0], d[255]), (0, LINEAR_MAX));
    }

    #[test]
    fn identity_and_upscale() {
        let src: Vec<u8> = (0..36).map(|i| i as u8).collect();
        let mut same = vec![0u8; 36];
        apply(3, 3, &src, 3, 3, &mut same);
        assert_eq!(same, src);
        let mut up = vec![0u8; 6 * 6 * 4];
        apply(3, 3, &src, 6, 6, &mut up);
        assert_eq!(&up[0..4], &src[0..4]);
        assert_eq!(&up[4..8], &src[0..4]);
        assert_eq!(ScalerParams::default().output_size(7, 5), (7, 5));
    }
}
