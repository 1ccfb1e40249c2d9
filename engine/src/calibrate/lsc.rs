//! Lens shading from flat fields: per site, the flat's block means
//! (median-smoothed), a local quadratic fitted around each grid point (so the
//! corners are measured, not averaged in from the inside), gains that bring
//! every point to the site's brightest (normalised to 1 there), at most
//! `max_gain`. Several colour temperatures: the tables are averaged and each
//! one's residual reported. The residual is the shading left after the
//! gains, over blocks of the flat.

use super::{Capture, Lit};
use crate::stages::lens_shading::LensShadingParams;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct LscResult {
    #[serde(skip)]
    pub params: LensShadingParams,
    pub grid: (usize, usize),
    /// Per flat: its CT, the shading before (the darkest block relative to
    /// the brightest, per site) and the residual after correction (largest
    /// and RMS relative deviation of blocks from their mean, per site).
    pub flats: Vec<FlatReport>,
    pub max_gain: f32,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlatReport {
    pub name: String,
    pub ct: Option<f32>,
    pub falloff: [f32; 4],
    pub residual_max: [f32; 4],
    pub residual_rms: [f32; 4],
}

/// Blocks across the frame for the residual (the fit takes more for a
/// fine grid: at least four per grid interval).
const BLOCKS_ACROSS: usize = 48;

/// One site's plane as block means: `(bw, bh, means, block size)`.
struct Blocks {
    bw: usize,
    bh: usize,
    v: Vec<f64>,
    /// Block centre -> pixel coordinates: pixel = (i + 0.5) * step.
    step_x: f64,
    step_y: f64,
}

fn blocks(c: &Capture, site: usize, pedestal: f32, across: usize) -> Blocks {
    let (sw, sh) = (c.width / 2, c.height / 2);
    let bs = (sw / across.max(1)).max(1);
    let (bw, bh) = (sw / bs, sh / bs);
    // The site's offset in the 2x2 tile.
    let pos = c
        .cfa
        .tile()
        .iter()
        .position(|t| t.index() == site)
        .unwrap_or(0);
    let (ox, oy) = (pos % 2, pos / 2);
    let mut v = vec![0.0f64; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            let mut s = 0.0;
            for y in by * bs..(by + 1) * bs {
                for x in bx * bs..(bx + 1) * bs {
                    s += (c.data[(2 * y + oy) * c.width + 2 * x + ox] - pedestal) as f64;
                }
            }
            v[by * bw + bx] = s / (bs * bs) as f64;
        }
    }
    // 3x3 median: dust and defects out, the surface kept. Past the edges a
    // neighbour is the point reflection through the block (2 v - the
    // opposite neighbour): on a slope the neighbourhood stays symmetric
    // about the block's own value, so the median does not pull the edge
    // towards the inside.
    let src = v.clone();
    let at = |x: i64, y: i64| -> Option<f64> {
        (x >= 0 && y >= 0 && (x as usize) < bw && (y as usize) < bh)
            .then(|| src[y as usize * bw + x as usize])
    };
    for by in 0..bh {
        for bx in 0..bw {
            let (cx, cy) = (bx as i64, by as i64);
            let c = src[by * bw + bx];
            let mut n = Vec::with_capacity(9);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let value = at(cx + dx, cy + dy)
                        .or_else(|| at(cx - dx, cy - dy).map(|o| 2.0 * c - o))
                        .unwrap_or(c);
                    n.push(value);
                }
            }
            n.sort_by(f64::total_cmp);
            v[by * bw + bx] = n[n.len() / 2];
        }
    }
    Blocks {
        bw,
        bh,
        v,
        step_x: (2 * bs) as f64,
        step_y: (2 * bs) as f64,
    }
}

/// Solve the 6x6 system `a x = b` (Gaussian elimination, partial pivoting).
#[allow(clippy::needless_range_loop)]
fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    for col in 0..6 {
        let piv = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for r in col + 1..6 {
            let f = a[r][col] / a[col][col];
            for c in col..6 {
                a[r][c] -= f * a[col][c];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = [0.0; 6];
    for r in (0..6).rev() {
        let s: f64 = (r + 1..6).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// The surface at pixel (px, py): a quadratic fitted (Gaussian-weighted) to
/// the blocks within `radius` pixels.
fn surface_at(b: &Blocks, px: f64, py: f64, radius: f64) -> f64 {
    let mut a = [[0.0f64; 6]; 6];
    let mut rhs = [0.0f64; 6];
    let s = radius / 2.0;
    for by in 0..b.bh {
        let cy = (by as f64 + 0.5) * b.step_y;
        if (cy - py).abs() > radius {
            continue;
        }
        for bx in 0..b.bw {
            let cx = (bx as f64 + 0.5) * b.step_x;
            if (cx - px).abs() > radius {
                continue;
            }
            let (dx, dy) = ((cx - px) / radius, (cy - py) / radius);
            let w = (-(dx * dx + dy * dy) * radius * radius / (2.0 * s * s)).exp();
            let f = [1.0, dx, dy, dx * dx, dx * dy, dy * dy];
            for i in 0..6 {
                for j in 0..6 {
                    a[i][j] += w * f[i] * f[j];
                }
                rhs[i] += w * f[i] * b.v[by * b.bw + bx];
            }
        }
    }
    // Too few blocks for a quadratic: their weighted mean.
    solve6(a, rhs)
        .map(|x| x[0])
        .unwrap_or(if a[0][0] > 0.0 { rhs[0] / a[0][0] } else { 0.0 })
}

/// The largest lens-shading gain a calibration may write: 1 to 16 (the
/// tuning's range for a lens-shading gain).
pub fn check_max_gain(max_gain: f32) -> Result<(), String> {
    if (1.0..=16.0).contains(&max_gain) {
        Ok(())
    } else {
        Err(format!(
            "the largest lens-shading gain {max_gain} is outside 1..=16"
        ))
    }
}

/// The gains for one flat, per site, on a `gw` x `gh` grid.
fn gains_of(
    c: &Capture,
    pedestal: [f32; 4],
    gw: usize,
    gh: usize,
    max_gain: f32,
) -> ([Vec<f32>; 4], bool) {
    let mut clamped = false;
    let sx = (c.width - 1) as f64 / (gw - 1) as f64;
    let sy = (c.height - 1) as f64 / (gh - 1) as f64;
    let radius = 1.5 * sx.max(sy);
    let g = std::array::from_fn(|site| {
        let b = blocks(c, site, pedestal[site], BLOCKS_ACROSS.max(4 * (gw - 1)));
        let mut v: Vec<f64> = (0..gh)
            .flat_map(|j| (0..gw).map(move |i| (i, j)))
            .map(|(i, j)| surface_at(&b, i as f64 * sx, j as f64 * sy, radius).max(1e-6))
            .collect();
        let peak = v.iter().cloned().fold(0.0, f64::max);
        for x in v.iter_mut() {
            *x = peak / *x;
        }
        v.into_iter()
            .map(|x| {
                if x > max_gain as f64 {
                    clamped = true;
                }
                (x as f32).min(max_gain)
            })
            .collect()
    });
    (g, clamped)
}

/// How flat `c` is under `p`: (falloff before, residual max, residual RMS)
/// per site, over blocks.
pub fn residual(
    c: &Capture,
    pedestal: [f32; 4],
    p: Option<&LensShadingParams>,
) -> ([f32; 4], [f32; 4], [f32; 4]) {
    let mut fall = [0.0f32; 4];
    let mut max = [0.0f32; 4];
    let mut rms = [0.0f32; 4];
    for site in 0..4 {
        let b = blocks(c, site, pedestal[site], BLOCKS_ACROSS);
        let mut corrected = Vec::with_capacity(b.v.len());
        for by in 0..b.bh {
            for bx in 0..b.bw {
                let (x, y) = (
                    ((bx as f64 + 0.5) * b.step_x) as usize,
                    ((by as f64 + 0.5) * b.step_y) as usize,
                );
                let g = p.map_or(1.0, |p| {
                    p.gain_at(
                        site,
                        x.min(c.width - 1),
                        y.min(c.height - 1),
                        c.width,
                        c.height,
                    )
                });
                corrected.push(b.v[by * b.bw + bx] * g as f64);
            }
        }
        let lo = b.v.iter().cloned().fold(f64::MAX, f64::min);
        let hi = b.v.iter().cloned().fold(f64::MIN, f64::max);
        fall[site] = (lo / hi.max(1e-9)) as f32;
        let mean = corrected.iter().sum::<f64>() / corrected.len() as f64;
        let devs: Vec<f64> = corrected.iter().map(|v| v / mean - 1.0).collect();
        max[site] = devs.iter().fold(0.0f64, |a, d| a.max(d.abs())) as f32;
        rms[site] = (devs.iter().map(|d| d * d).sum::<f64>() / devs.len() as f64).sqrt() as f32;
    }
    (fall, max, rms)
}

pub fn lens_shading(
    flats: &[Lit],
    pedestal: [f32; 4],
    grid: (usize, usize),
    max_gain: f32,
) -> Result<LscResult, String> {
    let (gw, gh) = grid;
    if gw < 2 || gh < 2 || gw > 64 || gh > 64 {
        return Err(format!("lens-shading grid {gw}x{gh}: 2x2 to 64x64"));
    }
    check_max_gain(max_gain)?;
    let mut sum: [Vec<f64>; 4] = std::array::from_fn(|_| vec![0.0; gw * gh]);
    let mut warnings = Vec::new();
    for f in flats {
        let c = &f.capture;
        if c.width < 8 * gw || c.height < 8 * gh {
            return Err(format!(
                "{}: {}x{} is too small for a {gw}x{gh} grid",
                c.name, c.width, c.height
            ));
        }
        // A flat with no light on it (a capped lens, a dark frame given as a
        // flat) has no shading to measure: its gains would be noise.
        let above = (0..4)
            .map(|site| blocks(c, site, pedestal[site], BLOCKS_ACROSS))
            .map(|b| b.v.iter().sum::<f64>() / b.v.len().max(1) as f64)
            .fold(f64::MAX, f64::min);
        let range = (c.white_level - pedestal.iter().cloned().fold(0.0, f32::max)).max(1.0);
        if above.is_nan() || above < 0.02 * range as f64 {
            return Err(format!(
                "{}: the flat field is dark ({above:.1} above the black level of a range of \
                 {range:.0}): light it to about half of full scale",
                c.name
            ));
        }
        let peak = c.data.iter().cloned().fold(0.0f32, f32::max);
        if peak >= 0.98 * c.white_level {
            warnings.push(format!(
                "{}: the flat field clips (its brightest sample is at the white level): expose it darker",
                c.name
            ));
        }
        let (g, clamped) = gains_of(c, pedestal, gw, gh, max_gain);
        if clamped {
            warnings.push(format!(
                "{}: gains above {max_gain} were limited to it",
                c.name
            ));
        }
        for (s, gs) in sum.iter_mut().zip(g) {
            for (a, v) in s.iter_mut().zip(gs) {
                *a += v as f64;
            }
        }
    }
    let n = flats.len().max(1) as f64;
    let params = LensShadingParams {
        enabled: true,
        grid_width: gw,
        grid_height: gh,
        gains: sum.map(|s| s.into_iter().map(|v| (v / n) as f32).collect()),
    };
    let reports = flats
        .iter()
        .map(|f| {
            let (falloff, residual_max, residual_rms) =
                residual(&f.capture, pedestal, Some(&params));
            FlatReport {
                name: f.capture.name.clone(),
                ct: f.ct,
                falloff,
                residual_max,
                residual_rms,
            }
        })
        .collect();
    Ok(LscResult {
        params,
        grid,
        flats: reports,
        max_gain,
        warnings,
    })
}
