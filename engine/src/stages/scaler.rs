//! Scaler: resize an RGBA8 image by averaging each output pixel's box of
//! source pixels (integer sums, rounded halves up). Downscaling averages,
//! upscaling repeats; every source pixel counts once per output pixel whose
//! box holds it. Used for preview thumbnails and the viewer's fit-to-window.

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

/// `src` (w x h RGBA8) -> `dst` (ow x oh RGBA8).
pub fn apply(w: usize, h: usize, src: &[u8], ow: usize, oh: usize, dst: &mut [u8]) {
    for oy in 0..oh {
        let (y0, y1) = source_span(oy, h, oh);
        for ox in 0..ow {
            let (x0, x1) = source_span(ox, w, ow);
            let mut s = [0u64; 4];
            for y in y0..y1 {
                for px in src[(y * w + x0) * 4..(y * w + x1) * 4].chunks_exact(4) {
                    for (a, &b) in s.iter_mut().zip(px) {
                        *a += b as u64;
                    }
                }
            }
            let n = ((x1 - x0) * (y1 - y0)) as u64;
            let o = &mut dst[(oy * ow + ox) * 4..(oy * ow + ox) * 4 + 4];
            for (d, a) in o.iter_mut().zip(s) {
                *d = ((a + n / 2) / n) as u8;
            }
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
        assert_eq!(dst[0], 35); // (10+20+50+60)/4
        assert_eq!(dst[4], 55); // (30+40+70+80)/4
        assert_eq!(dst[3], 255);
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
