//! Burst merge in the raw domain, in the spirit of HDR+: the reference and
//! each aligned frame are compared tile by tile (the tiles of
//! [`super::align`], each of the four Bayer planes at once), and each frame
//! is weighted by a Wiener-style shrinkage of its difference to the
//! reference against the noise the frames' noise model predicts: a tile
//! that differs no more than noise would averages in fully; one that
//! differs more (motion the alignment could not follow, an occlusion) fades
//! out, so it does not ghost. The merged tiles are windowed with a raised
//! cosine and overlap-added. The result is a raw mosaic in the frames' own
//! format. Its WGSL twin is `shaders/merge.wgsl` (`gpu::GpuMerge`), held to it in
//! `engine/tests/gpu_fusion.rs`.

use super::align::{Alignment, STRIDE, TILE};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A sensor's noise: the variance of a sample at `signal` DN above black
/// is `shot * signal + read` (DN²). Shot noise grows with the analogue gain,
/// read noise (after the gain) with its square.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseModel {
    pub shot: f32,
    pub read: f32,
}

impl NoiseModel {
    pub fn variance(&self, signal: f32) -> f32 {
        self.shot * signal.max(0.0) + self.read
    }
}

/// What the merge needs besides the frames.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeParams {
    pub black: f32,
    /// The largest sample value (2^bits - 1).
    pub white: f32,
    pub noise: NoiseModel,
    /// How hard differences beyond noise are rejected: the weight of a
    /// tile whose squared difference exceeds the noise's by `e` is
    /// `k n / (e + k n)` with `n` the noise of the difference.
    pub robustness: f32,
}

/// The raised-cosine window over a tile: the windows of tiles a stride
/// apart sum to one.
pub fn window(i: usize) -> f32 {
    0.5 - 0.5 * (std::f32::consts::TAU * (i as f32 + 0.5) / TILE as f32).cos()
}

/// Per-frame weights the merge used, for the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MergeStats {
    /// Mean weight of each frame (the reference's is 1).
    pub mean_weight: Vec<f32>,
    /// Tiles where a frame's weight fell below one half (motion rejected).
    pub rejected_tiles: Vec<usize>,
}

/// The per-frame summary of tile weights (`flat[tile * frames + f]`).
pub fn stats_from_weights(flat: &[f32], frames: usize) -> MergeStats {
    let tiles = flat.len() / frames.max(1);
    let mut stats = MergeStats {
        mean_weight: vec![0.0; frames],
        rejected_tiles: vec![0; frames],
    };
    for ws in flat.chunks_exact(frames.max(1)) {
        for (f, &v) in ws.iter().enumerate() {
            stats.mean_weight[f] += v / tiles.max(1) as f32;
            if v < 0.5 {
                stats.rejected_tiles[f] += 1;
            }
        }
    }
    stats
}

/// The sample of plane `(qx, qy)` (the quad position) at grey pixel
/// `(x, y)` of a mosaic, clamped to the image.
#[inline]
fn sample(m: &[u16], w: usize, h: usize, qx: usize, qy: usize, x: isize, y: isize) -> f32 {
    let x = x.clamp(0, (w / 2) as isize - 1) as usize;
    let y = y.clamp(0, (h / 2) as isize - 1) as usize;
    m[(2 * y + qy) * w + 2 * x + qx] as f32
}

/// One alternate frame's weight for the reference tile at `(x0, y0)`.
#[allow(clippy::too_many_arguments)]
fn tile_weight(
    reference: &[u16],
    frame: &[u16],
    w: usize,
    h: usize,
    x0: isize,
    y0: isize,
    d: (i32, i32),
    p: &MergeParams,
) -> f32 {
    // Squared difference per quarter of the tile (a small moving object
    // in one corner is not averaged away by the rest), and the signal.
    let half = TILE / 2;
    let mut worst = 0.0f32;
    let mut signal = 0.0f32;
    for by in 0..2 {
        for bx in 0..2 {
            let (mut s, mut sig) = (0.0f32, 0.0f32);
            for y in 0..half {
                for x in 0..half {
                    let gx = x0 + (bx * half + x) as isize;
                    let gy = y0 + (by * half + y) as isize;
                    for q in 0..4 {
                        let (qx, qy) = (q & 1, q >> 1);
                        let r = sample(reference, w, h, qx, qy, gx, gy);
                        let f = sample(frame, w, h, qx, qy, gx + d.0 as isize, gy + d.1 as isize);
                        s += (f - r) * (f - r);
                        sig += r;
                    }
                }
            }
            let n = (half * half * 4) as f32;
            worst = worst.max(s / n);
            signal += sig / n;
        }
    }
    // A noise model of zero would make every weight 0/0.
    let noise = (2.0 * p.noise.variance(signal / 4.0 - p.black)).max(1e-6);
    let excess = (worst - noise).max(0.0);
    p.robustness * noise / (excess + p.robustness * noise)
}

/// Merge `frames` (Bayer16 mosaics of `w`x`h`, values in DN) onto frame
/// `reference`, each other frame aligned by its entry of `alignments`
/// (indexed like `frames`; the reference's is ignored).
pub fn merge_burst(
    frames: &[&[u16]],
    w: usize,
    h: usize,
    reference: usize,
    alignments: &[Alignment],
    p: &MergeParams,
    pause: super::Pause,
) -> (Vec<u16>, MergeStats) {
    let (gw, gh) = (w / 2, h / 2);
    let reff = frames[reference];
    let a0 = &alignments[reference];
    let (tx, ty) = (a0.tiles_x, a0.tiles_y);
    // Each tile's weights, frame by frame.
    let weights: Vec<Vec<f32>> = (0..tx * ty)
        .into_par_iter()
        .map(|i| {
            let (kx, ky) = (i % tx, i / tx);
            if kx == 0 {
                pause();
            }
            let x0 = (kx * STRIDE) as isize - STRIDE as isize;
            let y0 = (ky * STRIDE) as isize - STRIDE as isize;
            frames
                .iter()
                .enumerate()
                .map(|(f, m)| {
                    if f == reference {
                        1.0
                    } else {
                        let d = alignments[f].offset(kx, ky);
                        tile_weight(reff, m, w, h, x0, y0, d, p)
                    }
                })
                .collect()
        })
        .collect();
    // Overlap-add, one row of tiles at a time into its band of rows: each
    // grey row is written by the two tile rows covering it, so rows are
    // accumulated per tile row and then summed.
    let mut acc = vec![0.0f32; w * h];
    let band = |ky: usize| -> Vec<(usize, Vec<f32>)> {
        pause();
        let y0 = (ky * STRIDE) as isize - STRIDE as isize;
        let mut rows = Vec::new();
        for y in 0..TILE {
            let gy = y0 + y as isize;
            if gy < 0 || gy >= gh as isize {
                continue;
            }
            let wy = window(y);
            let mut line = vec![0.0f32; 2 * w];
            for kx in 0..tx {
                let x0 = (kx * STRIDE) as isize - STRIDE as isize;
                let ws = &weights[ky * tx + kx];
                let total: f32 = ws.iter().sum();
                for x in 0..TILE {
                    let gx = x0 + x as isize;
                    if gx < 0 || gx >= gw as isize {
                        continue;
                    }
                    let win = wy * window(x) / total;
                    for q in 0..4 {
                        let (qx, qy) = (q & 1, q >> 1);
                        let mut v = 0.0f32;
                        for (f, m) in frames.iter().enumerate() {
                            if ws[f] == 0.0 {
                                continue;
                            }
                            let d = if f == reference {
                                (0, 0)
                            } else {
                                alignments[f].offset(kx, ky)
                            };
                            v += ws[f]
                                * sample(m, w, h, qx, qy, gx + d.0 as isize, gy + d.1 as isize);
                        }
                        line[qy * w + 2 * gx as usize + qx] += v * win;
                    }
                }
            }
            rows.push((gy as usize, line));
        }
        rows
    };
    let bands: Vec<Vec<(usize, Vec<f32>)>> = (0..ty).into_par_iter().map(band).collect();
    for rows in bands {
        for (gy, line) in rows {
            let dst = &mut acc[2 * gy * w..2 * gy * w + 2 * w];
            for (a, v) in dst.iter_mut().zip(&line) {
                *a += v;
            }
        }
    }
    let out = acc
        .iter()
        .map(|&v| (v + 0.5).clamp(0.0, p.white) as u16)
        .collect();
    let flat: Vec<f32> = weights.iter().flatten().copied().collect();
    let stats = stats_from_weights(&flat, frames.len());
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_merge_yields_once_per_row_of_tiles_in_each_pass() {
        // The background merge gives way to the realtime lane at each row of
        // tiles, in the weights pass and in the overlap-add: not per tile (a
        // wasted check each), not less (a realtime frame would wait longer).
        let (w, h) = (96usize, 64usize);
        let frame = vec![100u16; w * h];
        let id = Alignment::identity(w / 2, h / 2);
        let p = MergeParams {
            black: 64.0,
            white: 1023.0,
            noise: NoiseModel {
                shot: 1.0,
                read: 4.0,
            },
            robustness: 1.0,
        };
        let pauses = std::sync::atomic::AtomicUsize::new(0);
        let (out, _) = merge_burst(
            &[&frame, &frame],
            w,
            h,
            0,
            &[id.clone(), id.clone()],
            &p,
            &|| {
                pauses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        );
        assert!(
            id.tiles_x > 1 && id.tiles_y > 1,
            "{}x{}",
            id.tiles_x,
            id.tiles_y
        );
        assert_eq!(
            pauses.load(std::sync::atomic::Ordering::Relaxed),
            2 * id.tiles_y
        );
        // Two equal frames merge to themselves.
        assert!(out.iter().all(|&v| v == 100), "{:?}", &out[..8]);
    }
}
