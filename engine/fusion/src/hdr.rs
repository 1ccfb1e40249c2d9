//! Exposure brackets: frames taken at different exposures merged into one
//! linear HDR raw, then tone mapped for display.
//!
//! Merge: each sample is brought to the reference's exposure (divided by
//! its frame's exposure ratio) and the frames are averaged with the
//! inverse of each one's noise variance at that exposure, so the longest
//! unclipped exposure dominates the shadows; samples whose Bayer quad is
//! near clipping get no weight, so highlights come from the shorter ones.
//! Where the reference is not clipped, a frame that differs from it by more
//! than its noise allows (motion) is left out of that quad.
//!
//! Tone map: a local operator on the quads' log luminance, split into a
//! base (an edge-aware guided filter) and detail; the base's range is
//! compressed to what the output holds, the detail kept. Each quad is
//! scaled by the gain this gives, so the result is again a mosaic that the
//! capture path develops like any frame. The merge is the CPU reference of
//! `shaders/hdr.wgsl` (`gpu::GpuHdr`); the tone map runs on the CPU.

use super::align::{Alignment, STRIDE};
use super::merge::NoiseModel;
use rayon::prelude::*;
use serde::Serialize;

/// One frame of a bracket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Exposure {
    /// Its exposure (time x gain) over the reference's: 4 for +2 EV.
    pub ratio: f32,
    pub noise: NoiseModel,
}

/// Quads with any sample at or above this fraction of the range are clipped.
pub const CLIP: f32 = 0.95;

/// The alignment tile holding grey pixel `(x, y)` (the one whose centre
/// is nearest).
fn tile_of(a: &Alignment, x: usize, y: usize) -> (usize, usize) {
    // Tile k is centred on grey pixel k * STRIDE.
    let kx = ((x + STRIDE / 2) / STRIDE).min(a.tiles_x - 1);
    let ky = ((y + STRIDE / 2) / STRIDE).min(a.tiles_y - 1);
    (kx, ky)
}

/// Merge a bracket into linear samples above black at the reference's
/// exposure (f32: the range exceeds the sensor's); `exposures[reference]`
/// has ratio 1. Returns the mosaic and
/// the share of quads each frame contributed most to.
#[allow(clippy::too_many_arguments)]
pub fn merge_bracket(
    frames: &[&[u16]],
    w: usize,
    h: usize,
    reference: usize,
    exposures: &[Exposure],
    alignments: &[Alignment],
    black: f32,
    white: f32,
    pause: super::Pause,
) -> (Vec<f32>, Vec<f32>) {
    let (gw, gh) = (w / 2, h / 2);
    let clip = black + CLIP * (white - black);
    let mut out = vec![0.0f32; w * h];
    let winners: Vec<Vec<u32>> = out
        .par_chunks_mut(2 * w)
        .enumerate()
        .map(|(gy, rows)| {
            if gy % 64 == 0 {
                pause();
            }
            let mut won = vec![0u32; frames.len()];
            for gx in 0..gw {
                let quad = |f: usize| -> Option<[f32; 4]> {
                    let (dx, dy) = if f == reference {
                        (0, 0)
                    } else {
                        let (kx, ky) = tile_of(&alignments[f], gx, gy);
                        alignments[f].offset(kx, ky)
                    };
                    let x = (gx as i64 + dx as i64).clamp(0, gw as i64 - 1) as usize;
                    let y = (gy as i64 + dy as i64).clamp(0, gh as i64 - 1) as usize;
                    let m = frames[f];
                    let s = [
                        m[2 * y * w + 2 * x],
                        m[2 * y * w + 2 * x + 1],
                        m[(2 * y + 1) * w + 2 * x],
                        m[(2 * y + 1) * w + 2 * x + 1],
                    ];
                    if s.iter().any(|&v| v as f32 >= clip) {
                        return None;
                    }
                    Some(s.map(|v| v as f32 - black))
                };
                let r = quad(reference);
                let mut sum = [0.0f32; 4];
                let mut wsum = [0.0f32; 4];
                let mut best = (0usize, 0.0f32);
                for (f, e) in exposures.iter().enumerate() {
                    let Some(q) = quad(f) else { continue };
                    let mut wq = 0.0f32;
                    let mut ghost = false;
                    let mut wi = [0.0f32; 4];
                    for c in 0..4 {
                        let v = q[c] / e.ratio;
                        let var = e.noise.variance(q[c]) / (e.ratio * e.ratio);
                        if f != reference
                            && let Some(rq) = r
                        {
                            // The reference is at its own exposure (ratio 1).
                            let rv = rq[c];
                            let rvar = exposures[reference].noise.variance(rq[c]);
                            if (v - rv).abs() > 5.0 * (var + rvar).sqrt() {
                                ghost = true;
                            }
                        }
                        wi[c] = 1.0 / var.max(1e-12);
                    }
                    if ghost {
                        continue;
                    }
                    for c in 0..4 {
                        sum[c] += wi[c] * q[c] / e.ratio;
                        wsum[c] += wi[c];
                        wq += wi[c];
                    }
                    if wq > best.1 {
                        best = (f, wq);
                    }
                }
                if best.1 > 0.0 {
                    won[best.0] += 1;
                }
                for c in 0..4 {
                    let v = if wsum[c] > 0.0 {
                        sum[c] / wsum[c]
                    } else {
                        // Clipped in every frame: the shortest exposure's
                        // clip level, the most that is known.
                        let short = exposures.iter().map(|e| e.ratio).fold(f32::MAX, f32::min);
                        (clip - black) / short
                    };
                    rows[(c >> 1) * w + 2 * gx + (c & 1)] = v;
                }
            }
            won
        })
        .collect();
    let mut share = vec![0.0f32; frames.len()];
    let total = (gw * gh).max(1) as f32;
    for won in winners {
        for (s, n) in share.iter_mut().zip(won) {
            *s += n as f32 / total;
        }
    }
    (out, share)
}

/// Box mean of radius `r` (clamped at the edges), separable.
fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let pass = |src: &[f32], w: usize, h: usize| -> Vec<f32> {
        // Along rows.
        let mut out = vec![0.0f32; w * h];
        out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            let s = &src[y * w..(y + 1) * w];
            let mut prefix = vec![0.0f64; w + 1];
            for x in 0..w {
                prefix[x + 1] = prefix[x] + s[x] as f64;
            }
            for (x, o) in row.iter_mut().enumerate() {
                let a = x.saturating_sub(r);
                let b = (x + r + 1).min(w);
                *o = ((prefix[b] - prefix[a]) / (b - a) as f64) as f32;
            }
        });
        out
    };
    let transpose = |src: &[f32], w: usize, h: usize| -> Vec<f32> {
        let mut t = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                t[x * h + y] = src[y * w + x];
            }
        }
        t
    };
    let rows = pass(src, w, h);
    let cols = pass(&transpose(&rows, w, h), h, w);
    transpose(&cols, h, w)
}

/// He et al.'s guided filter of `p` guided by itself: an edge-aware blur.
fn guided_self(p: &[f32], w: usize, h: usize, r: usize, eps: f32) -> Vec<f32> {
    let mean = box_mean(p, w, h, r);
    let sq: Vec<f32> = p.iter().map(|v| v * v).collect();
    let mean_sq = box_mean(&sq, w, h, r);
    let (a, b): (Vec<f32>, Vec<f32>) = mean
        .iter()
        .zip(&mean_sq)
        .map(|(&m, &m2)| {
            let var = (m2 - m * m).max(0.0);
            let a = var / (var + eps);
            (a, m - a * m)
        })
        .unzip();
    let (ma, mb) = (box_mean(&a, w, h, r), box_mean(&b, w, h, r));
    p.iter()
        .zip(ma.iter().zip(&mb))
        .map(|(&v, (&a, &b))| a * v + b)
        .collect()
}

/// Tone map a linear HDR mosaic (`merge_bracket`'s) into `black..=white`
/// samples: the base of log luminance compressed to `stops` of range under
/// the output's top, the detail kept. Returns the mosaic and the base's
/// compression (1: none).
pub fn tone_map(
    hdr: &[f32],
    w: usize,
    h: usize,
    black: f32,
    white: f32,
    stops: f32,
) -> (Vec<u16>, f32) {
    let (gw, gh) = (w / 2, h / 2);
    let range = white - black;
    let eps = 1e-3 * range;
    let lum: Vec<f32> = (0..gw * gh)
        .map(|i| {
            let (x, y) = (i % gw, i / gw);
            let s = hdr[2 * y * w + 2 * x]
                + hdr[2 * y * w + 2 * x + 1]
                + hdr[(2 * y + 1) * w + 2 * x]
                + hdr[(2 * y + 1) * w + 2 * x + 1];
            (s * 0.25).max(0.0) + eps
        })
        .collect();
    let log: Vec<f32> = lum.iter().map(|v| v.log2()).collect();
    let r = (gw.max(gh) / 32).max(2);
    let base = guided_self(&log, gw, gh, r, 0.5);
    let mut sorted = base.clone();
    sorted.sort_by(f32::total_cmp);
    let pct = |q: f32| sorted[((sorted.len() - 1) as f32 * q) as usize];
    let (lo, hi) = (pct(0.005), pct(0.999));
    let k = if hi - lo > stops {
        stops / (hi - lo)
    } else {
        1.0
    };
    // The brightest base lands just under the output's top.
    let top = (0.9 * range).log2();
    let gains: Vec<f32> = (0..gw * gh)
        .map(|i| {
            let out = top + (base[i] - hi) * k + (log[i] - base[i]);
            (out - log[i]).exp2()
        })
        .collect();
    let mut out = vec![0u16; w * h];
    out.par_chunks_mut(2 * w)
        .enumerate()
        .for_each(|(gy, rows)| {
            for gx in 0..gw {
                let g = gains[gy * gw + gx];
                for c in 0..4 {
                    let i = (c >> 1) * w + 2 * gx + (c & 1);
                    let v = hdr[(2 * gy + (c >> 1)) * w + 2 * gx + (c & 1)] * g + black;
                    rows[i] = (v + 0.5).clamp(0.0, white) as u16;
                }
            }
        });
    (out, k)
}

#[cfg(test)]
mod tests;
