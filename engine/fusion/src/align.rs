//! Burst alignment in the spirit of HDR+ (Hasinoff et al. 2016): each
//! frame's Bayer quads are averaged into a grey image (half the raw size in
//! each direction, so offsets found on it keep the CFA phase), a pyramid is
//! built over it, and every tile of the reference finds its match in the
//! other frame coarse to fine: at each level a tile starts from the offsets
//! of the nearest coarser tiles (its own and its neighbours', the best by
//! the cost at this level) and searches a small window around it.
//!
//! Tiles are [`TILE`] grey pixels square and overlap by half
//! ([`STRIDE`]); tile `k` starts at `k * STRIDE - STRIDE`, so every pixel
//! lies in two tiles each way (the merge's raised-cosine windows sum to one
//! over them). Its WGSL twin is `shaders/align.wgsl` (`gpu::GpuAlign`: the
//! tile search of every level; the pyramid is built here), held to it in
//! `engine/tests/gpu_fusion.rs`.

use rayon::prelude::*;
use serde::Serialize;

/// Tile size on the grey image (a quad per pixel): 32 raw pixels.
pub const TILE: usize = 16;
/// Tile step: half a tile.
pub const STRIDE: usize = TILE / 2;

/// Pyramid levels below the grey image: each level's size divisor relative
/// to the one above, its tile size and its search radius (HDR+'s schedule).
const LEVELS: [(usize, usize, i32); 4] = [(1, TILE, 1), (2, 16, 4), (4, 16, 4), (4, 8, 4)];

/// The cost added per pixel of motion, relative (see `align`).
pub const MOTION_PENALTY: f32 = 0.05;

/// A single-channel image.
#[derive(Clone, Debug, PartialEq)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub px: Vec<f32>,
}

impl Grey {
    fn at(&self, x: isize, y: isize) -> f32 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = y.clamp(0, self.height as isize - 1) as usize;
        self.px[y * self.width + x]
    }

    /// The mean of each 2x2 Bayer quad above `black`, times `scale`, no
    /// higher than `ceiling` (for brackets: frames brought to one exposure,
    /// each clipped where the brightest of them clips).
    pub fn from_mosaic(
        mosaic: &[u16],
        width: usize,
        height: usize,
        black: f32,
        scale: f32,
        ceiling: f32,
    ) -> Grey {
        let (w, h) = (width / 2, height / 2);
        let mut px = vec![0.0f32; w * h];
        px.par_chunks_mut(w.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                let r0 = &mosaic[2 * y * width..];
                let r1 = &mosaic[(2 * y + 1) * width..];
                for (x, o) in row.iter_mut().enumerate() {
                    let s = r0[2 * x] as f32
                        + r0[2 * x + 1] as f32
                        + r1[2 * x] as f32
                        + r1[2 * x + 1] as f32;
                    *o = ((s * 0.25 - black).max(0.0) * scale).min(ceiling);
                }
            });
        Grey {
            width: w,
            height: h,
            px,
        }
    }

    /// Box-averaged by `f` in each direction (edges: the partial boxes).
    pub fn downsample(&self, f: usize) -> Grey {
        if f == 1 {
            return self.clone();
        }
        let (w, h) = (self.width.div_ceil(f), self.height.div_ceil(f));
        let mut px = vec![0.0f32; w * h];
        px.par_chunks_mut(w.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                for (x, o) in row.iter_mut().enumerate() {
                    let (mut s, mut n) = (0.0f32, 0u32);
                    for yy in y * f..((y + 1) * f).min(self.height) {
                        for xx in x * f..((x + 1) * f).min(self.width) {
                            s += self.px[yy * self.width + xx];
                            n += 1;
                        }
                    }
                    *o = s / n.max(1) as f32;
                }
            });
        Grey {
            width: w,
            height: h,
            px,
        }
    }
}

/// Tiles across an image of `n` pixels with tiles of `tile`, step `tile/2`.
pub fn tiles(n: usize, tile: usize) -> usize {
    n.div_ceil(tile / 2) + 1
}

/// Per-tile offsets of one frame against the reference, in grey pixels
/// (raw pixels are twice these): the reference's tile at `(x, y)` matches
/// the frame's at `(x + dx, y + dy)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alignment {
    pub tiles_x: usize,
    pub tiles_y: usize,
    pub offsets: Vec<(i32, i32)>,
    /// Each tile's cost at the finest level (mean absolute difference).
    #[serde(skip)]
    pub costs: Vec<f32>,
}

impl Alignment {
    /// No motion: every offset zero.
    pub fn identity(grey_w: usize, grey_h: usize) -> Alignment {
        let (tx, ty) = (tiles(grey_w, TILE), tiles(grey_h, TILE));
        Alignment {
            tiles_x: tx,
            tiles_y: ty,
            offsets: vec![(0, 0); tx * ty],
            costs: vec![0.0; tx * ty],
        }
    }

    pub fn offset(&self, tx: usize, ty: usize) -> (i32, i32) {
        self.offsets[ty * self.tiles_x + tx]
    }

    /// The offsets' spread: (mean |offset|, the largest |offset|), in raw
    /// pixels.
    pub fn stats(&self) -> (f32, i32) {
        let n = self.offsets.len().max(1) as f32;
        let mean = self
            .offsets
            .iter()
            .map(|&(x, y)| 2.0 * ((x * x + y * y) as f32).sqrt())
            .sum::<f32>()
            / n;
        let max = self
            .offsets
            .iter()
            .map(|&(x, y)| 2 * x.abs().max(y.abs()))
            .max()
            .unwrap_or(0);
        (mean, max)
    }
}

/// Cost of matching the reference's tile at `(x0, y0)` with the frame's
/// shifted by `(dx, dy)`: sum of absolute (`l1`) or squared differences,
/// over the tile's pixels inside the image.
#[allow(clippy::too_many_arguments)]
fn cost(r: &Grey, f: &Grey, x0: isize, y0: isize, tile: usize, dx: i32, dy: i32, l1: bool) -> f32 {
    let mut s = 0.0f32;
    let mut n = 0u32;
    for y in y0.max(0)..(y0 + tile as isize).min(r.height as isize) {
        for x in x0.max(0)..(x0 + tile as isize).min(r.width as isize) {
            let d =
                r.px[y as usize * r.width + x as usize] - f.at(x + dx as isize, y + dy as isize);
            s += if l1 { d.abs() } else { d * d };
            n += 1;
        }
    }
    s / n.max(1) as f32
}

/// One pyramid level's tile grid and offsets.
#[derive(Default)]
struct LevelOffsets {
    tiles_x: usize,
    tiles_y: usize,
    tile: usize,
    offsets: Vec<(i32, i32)>,
}

/// The alignment pyramid of a grey image: level 0 is the image, each next
/// one box-averaged by `LEVELS`' factor, down to 4 pixels across.
pub fn pyramid(g: &Grey) -> Vec<Grey> {
    let mut p = vec![g.clone()];
    for &(f, _, _) in &LEVELS[1..] {
        let Some(next) = p.last().map(|g| g.downsample(f)) else {
            break;
        };
        if next.width < 4 || next.height < 4 {
            break;
        }
        p.push(next);
    }
    p
}

/// Level `level`'s search: tile size, search radius, the factor from this
/// level to the next coarser one, and whether its cost is L1 (the finest)
/// or L2.
pub fn level_search(level: usize) -> (usize, i32, i32, bool) {
    let (_, tile, radius) = LEVELS[level];
    let up = LEVELS.get(level + 1).map_or(1, |l| l.0) as i32;
    (tile, radius, up, level == 0)
}

/// Align `frame` to `reference` (grey images of one size).
pub fn align(reference: &Grey, frame: &Grey) -> Alignment {
    align_pausing(reference, frame, &|| {})
}

/// [`align`], calling `pause` at the start of every row of tiles (the
/// background lane steps aside there while realtime work runs).
pub fn align_pausing(reference: &Grey, frame: &Grey, pause: super::Pause) -> Alignment {
    let (pr, pf) = (pyramid(reference), pyramid(frame));
    // Coarsest first: the offsets of the coarser level, in its pixels.
    let mut coarse: Option<LevelOffsets> = None;
    let mut last_costs = Vec::new();
    for level in (0..pr.len()).rev() {
        let (tile, radius, up, l1) = level_search(level);
        let (r, f) = (&pr[level], &pf[level]);
        let (tx, ty) = (tiles(r.width, tile), tiles(r.height, tile));
        let step = tile / 2;
        let results: Vec<((i32, i32), f32)> = (0..tx * ty)
            .into_par_iter()
            .map(|i| {
                let (kx, ky) = (i % tx, i / tx);
                if kx == 0 {
                    pause();
                }
                let x0 = (kx * step) as isize - step as isize;
                let y0 = (ky * step) as isize - step as isize;
                // Candidates: no motion, the coarser tile nearest this
                // one's centre and its four neighbours, scaled to this level.
                let mut cands = vec![(0, 0)];
                if let Some(LevelOffsets {
                    tiles_x: ctx,
                    tiles_y: cty,
                    tile: ctile,
                    offsets: offs,
                }) = &coarse
                {
                    let cstep = (*ctile / 2) as f32;
                    let cx = (x0 as f32 + tile as f32 / 2.0) / up as f32;
                    let cy = (y0 as f32 + tile as f32 / 2.0) / up as f32;
                    let kx = ((cx + cstep) / cstep - 1.0)
                        .round()
                        .clamp(0.0, *ctx as f32 - 1.0) as i64;
                    let ky = ((cy + cstep) / cstep - 1.0)
                        .round()
                        .clamp(0.0, *cty as f32 - 1.0) as i64;
                    for (ox, oy) in [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)] {
                        let (nx, ny) = (kx + ox, ky + oy);
                        if nx >= 0 && ny >= 0 && (nx as usize) < *ctx && (ny as usize) < *cty {
                            let (dx, dy) = offs[ny as usize * ctx + nx as usize];
                            cands.push((dx * up, dy * up));
                        }
                    }
                    cands.dedup();
                }
                // Motion costs a little (MOTION_PENALTY per pixel of this
                // level): where a tile is flat and any offset matches as
                // well as the noise allows, it stays put.
                let penalised = |dx: i32, dy: i32| {
                    cost(r, f, x0, y0, tile, dx, dy, l1)
                        * (1.0 + MOTION_PENALTY * (dx.abs() + dy.abs()) as f32)
                };
                let start = cands
                    .iter()
                    .map(|&(dx, dy)| ((dx, dy), penalised(dx, dy)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or(((0, 0), f32::MAX));
                let mut best = start;
                for sy in -radius..=radius {
                    for sx in -radius..=radius {
                        let (dx, dy) = (start.0.0 + sx, start.0.1 + sy);
                        let c = penalised(dx, dy);
                        if c < best.1 {
                            best = ((dx, dy), c);
                        }
                    }
                }
                best
            })
            .collect();
        last_costs = results.iter().map(|r| r.1).collect();
        coarse = Some(LevelOffsets {
            tiles_x: tx,
            tiles_y: ty,
            tile,
            offsets: results.into_iter().map(|r| r.0).collect(),
        });
    }
    let LevelOffsets {
        tiles_x,
        tiles_y,
        offsets,
        ..
    } = coarse.unwrap_or_default();
    Alignment {
        tiles_x,
        tiles_y,
        offsets,
        costs: last_costs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_averages_each_box_and_the_partial_ones_at_the_edges() {
        // 5x3, values 0..15: boxes of 2 are the means of 4, 4, 2 samples
        // on the first row of boxes, and of 2, 2, 1 on the last.
        let g = Grey {
            width: 5,
            height: 3,
            px: (0..15).map(|v| v as f32).collect(),
        };
        let d = g.downsample(2);
        assert_eq!((d.width, d.height), (3, 2));
        let want = [
            (0.0 + 1.0 + 5.0 + 6.0) / 4.0,
            (2.0 + 3.0 + 7.0 + 8.0) / 4.0,
            (4.0 + 9.0) / 2.0,
            (10.0 + 11.0) / 2.0,
            (12.0 + 13.0) / 2.0,
            14.0,
        ];
        assert_eq!(d.px, want);
    }

    #[test]
    fn stats_are_the_mean_and_largest_offset_in_raw_pixels() {
        // Grey offsets (3, 4) and (0, 0): 5 and 0 grey pixels, 10 and 0 raw.
        let a = Alignment {
            tiles_x: 2,
            tiles_y: 1,
            offsets: vec![(3, -4), (0, 0)],
            costs: vec![0.0; 2],
        };
        assert_eq!(a.stats(), (5.0, 8));
    }

    /// A textured image shifted by a known amount is found at that shift,
    /// in every tile away from the borders, including shifts beyond the
    /// finest level's search (the pyramid finds them).
    #[test]
    fn a_shifted_texture_is_found_at_its_shift() {
        let (w, h) = (256usize, 192usize);
        let tex = |x: isize, y: isize| -> f32 {
            let (x, y) = (x as f32, y as f32);
            // Detail at every scale, as photographs have: fine texture
            // down to shapes a quarter of the image across.
            150.0
                + 60.0 * (x * 0.013).sin() * (y * 0.017).cos()
                + 40.0 * ((x + 2.0 * y) * 0.008).sin()
                + 40.0 * (x * 0.37).sin() * (y * 0.23).cos()
                + 30.0 * ((x * 0.11 + y * 0.07).sin())
                + 20.0 * ((x * 0.05 - y * 0.13).cos())
        };
        for &(sx, sy) in &[(0i32, 0i32), (3, -2), (-17, 11), (24, 20)] {
            let reference = Grey {
                width: w,
                height: h,
                px: (0..w * h)
                    .map(|i| tex((i % w) as isize, (i / w) as isize))
                    .collect(),
            };
            let frame = Grey {
                width: w,
                height: h,
                px: (0..w * h)
                    .map(|i| {
                        tex(
                            (i % w) as isize - sx as isize,
                            (i / w) as isize - sy as isize,
                        )
                    })
                    .collect(),
            };
            let a = align(&reference, &frame);
            assert_eq!((a.tiles_x, a.tiles_y), (tiles(w, TILE), tiles(h, TILE)));
            let margin = 5;
            let mut wrong = 0;
            for ty in margin..a.tiles_y - margin {
                for tx in margin..a.tiles_x - margin {
                    if a.offset(tx, ty) != (sx, sy) {
                        wrong += 1;
                    }
                }
            }
            assert_eq!(wrong, 0, "shift ({sx}, {sy}): {:?}", a.offsets);
        }
    }
}
