//! The ColorChecker in a capture: found automatically (uniform regions of
//! one size on a square lattice, 6 x 4 of them, the chart's orientation the
//! one whose colours fit the reference best) or from four patch centres a
//! person picked; each patch measured as trimmed means per site inside a
//! window away from its edges.

use super::colour::{COLORCHECKER_24, lab_d50_to_linear_srgb};
use super::{Capture, trimmed_mean};
use crate::stages::lens_shading::LensShadingParams;
use serde::Serialize;

/// Where the chart's 24 patches are, in the capture's pixels.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// Patch centres in chart order (1 dark skin .. 24 black).
    pub centres: Vec<[f32; 2]>,
    /// Half the side of the square measured around each centre.
    pub half_window: f32,
    /// The centres of patches 1, 6, 19 and 24.
    pub corners: [[f32; 2]; 4],
    /// "detected" (with how many patches were seen) or "corners".
    pub method: String,
}

/// One patch as measured: camera RGB above black (greens averaged).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Measured {
    pub rgb: [f64; 3],
    pub clipped: bool,
}

/// The lattice's patch centres from four corner centres (bilinear).
fn grid_from_corners(c: [[f32; 2]; 4]) -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(24);
    for row in 0..4 {
        for col in 0..6 {
            let (s, t) = (col as f32 / 5.0, row as f32 / 3.0);
            let top = [
                c[0][0] + (c[1][0] - c[0][0]) * s,
                c[0][1] + (c[1][1] - c[0][1]) * s,
            ];
            let bot = [
                c[2][0] + (c[3][0] - c[2][0]) * s,
                c[2][1] + (c[3][1] - c[2][1]) * s,
            ];
            out.push([
                top[0] + (bot[0] - top[0]) * t,
                top[1] + (bot[1] - top[1]) * t,
            ]);
        }
    }
    out
}

/// The chart from four patch centres (dark skin, bluish green, white,
/// black: the chart's corners in its own order).
pub fn from_corners(c: &Capture, corners: [[f32; 2]; 4]) -> Result<Found, String> {
    if let Some(p) = corners.iter().find(|p| {
        !(p[0].is_finite() && p[1].is_finite())
            || p[0] < 0.0
            || p[1] < 0.0
            || p[0] >= c.width as f32
            || p[1] >= c.height as f32
    }) {
        return Err(format!(
            "corner {p:?} is outside the {}x{} capture",
            c.width, c.height
        ));
    }
    let d = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let pitch = (d(corners[0], corners[1]) / 5.0 + d(corners[0], corners[2]) / 3.0) / 2.0;
    Ok(Found {
        centres: grid_from_corners(corners),
        half_window: (0.2 * pitch).clamp(1.0, 0.25 * c.width.min(c.height) as f32),
        corners,
        method: "corners".into(),
    })
}

/// Measure every patch: trimmed mean (10% off each end) per site in the
/// window, above `pedestal`, times the lens-shading gain where given.
pub fn measure(
    c: &Capture,
    found: &Found,
    pedestal: [f32; 4],
    lsc: Option<&LensShadingParams>,
) -> Vec<Measured> {
    let r = found.half_window.max(1.0) as i64;
    found
        .centres
        .iter()
        .map(|p| {
            let mut v: [Vec<f32>; 4] = Default::default();
            let mut clipped = 0usize;
            let mut n = 0usize;
            for y in (p[1] as i64 - r)..(p[1] as i64 + r) {
                for x in (p[0] as i64 - r)..(p[0] as i64 + r) {
                    if x < 0 || y < 0 || x as usize >= c.width || y as usize >= c.height {
                        continue;
                    }
                    let (x, y) = (x as usize, y as usize);
                    let s = c.site(x, y);
                    let raw = c.data[y * c.width + x];
                    n += 1;
                    if raw >= 0.98 * c.white_level {
                        clipped += 1;
                    }
                    let g = lsc.map_or(1.0, |l| l.gain_at(s, x, y, c.width, c.height));
                    v[s].push((raw - pedestal[s]) * g);
                }
            }
            let m: [f64; 4] = std::array::from_fn(|s| trimmed_mean(&mut v[s], 0.1) as f64);
            Measured {
                rgb: [m[0], (m[1] + m[2]) / 2.0, m[3]],
                // A window cut by the frame's edge may miss a site: not
                // measured, left out like a clipped patch.
                clipped: v.iter().any(Vec::is_empty) || clipped * 100 > n,
            }
        })
        .collect()
}

/// A uniform region of the detection image.
#[derive(Clone, Copy, Debug)]
struct Blob {
    area: usize,
    cx: f64,
    cy: f64,
}

/// 3x3 matrix least squares: `m` with `m * a_i ~ b_i`; the relative residual.
fn fit3(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [[0.0f64; 3]; 3];
    for (x, y) in a.iter().zip(b) {
        for i in 0..3 {
            for j in 0..3 {
                ata[i][j] += x[i] * x[j];
                atb[i][j] += x[i] * y[j];
            }
        }
    }
    let Some(inv) = crate::dng::mat_inv(&ata) else {
        return f64::INFINITY;
    };
    // m^T = (A^T A)^-1 A^T B
    let mt = crate::dng::mat_mul(&inv, &atb);
    let (mut err, mut tot) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        for j in 0..3 {
            let p: f64 = (0..3).map(|i| x[i] * mt[i][j]).sum();
            err += (p - y[j]).powi(2);
            tot += y[j].powi(2);
        }
    }
    err / tot.max(1e-12)
}

/// Find the chart. Errors say how much was found, so a person can pick
/// the corners instead.
pub fn detect(c: &Capture, pedestal: [f32; 4]) -> Result<Found, String> {
    // Quads (R, mean G, B) averaged over `step` x `step`, about 400 across.
    let (qw, qh) = (c.width / 2, c.height / 2);
    let step = (qw / 400).max(1);
    let (dw, dh) = (qw / step, qh / step);
    if dw < 60 || dh < 40 {
        return Err(format!(
            "{}x{} is too small to find a chart in",
            c.width, c.height
        ));
    }
    let tile = c.cfa.tile();
    let mut img = vec![[0.0f32; 3]; dw * dh];
    for y in 0..dh {
        for x in 0..dw {
            let mut acc = [0.0f32; 4];
            for qy in y * step..(y + 1) * step {
                for qx in x * step..(x + 1) * step {
                    for (k, t) in tile.iter().enumerate() {
                        let (px, py) = (2 * qx + k % 2, 2 * qy + k / 2);
                        acc[t.index()] += c.data[py * c.width + px] - pedestal[t.index()];
                    }
                }
            }
            let n = (step * step) as f32;
            img[y * dw + x] =
                [acc[0] / n, (acc[1] + acc[2]) / (2.0 * n), acc[3] / n].map(|v| v.max(0.0));
        }
    }
    // A 3x3 box blur against the noise.
    let src = img.clone();
    for y in 1..dh - 1 {
        for x in 1..dw - 1 {
            let mut s = [0.0f32; 3];
            for dy in 0..3 {
                for dx in 0..3 {
                    let p = src[(y + dy - 1) * dw + x + dx - 1];
                    for k in 0..3 {
                        s[k] += p[k];
                    }
                }
            }
            img[y * dw + x] = s.map(|v| v / 9.0);
        }
    }
    let floor = img.iter().map(|p| p[1]).fold(0.0f32, f32::max) * 0.01 + 1e-3;
    let rel = |a: [f32; 3], b: [f32; 3]| {
        (0..3)
            .map(|k| (a[k] - b[k]).abs() / (a[k] + b[k] + floor))
            .fold(0.0f32, f32::max)
    };
    let mut grad = vec![f32::MAX; dw * dh];
    for y in 1..dh - 1 {
        for x in 1..dw - 1 {
            let p = img[y * dw + x];
            grad[y * dw + x] = rel(p, img[y * dw + x + 1])
                .max(rel(p, img[y * dw + x - 1]))
                .max(rel(p, img[(y + 1) * dw + x]))
                .max(rel(p, img[(y - 1) * dw + x]));
        }
    }
    let mut sorted: Vec<f32> = grad
        .iter()
        .cloned()
        .filter(|g| g.is_finite() && *g < f32::MAX)
        .collect();
    sorted.sort_by(f32::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.02);
    let tau = (3.0 * median).clamp(0.02, 0.15);
    // Connected uniform regions (4-neighbours).
    let mut label = vec![0u32; dw * dh];
    let mut blobs = Vec::new();
    let mut stack = Vec::new();
    for start in 0..dw * dh {
        if label[start] != 0 || grad[start] >= tau {
            continue;
        }
        let id = blobs.len() as u32 + 1;
        label[start] = id;
        stack.push(start);
        let (mut area, mut sx, mut sy) = (0usize, 0.0f64, 0.0f64);
        let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % dw, i / dw);
            area += 1;
            sx += x as f64;
            sy += y as f64;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            for j in [i.wrapping_sub(1), i + 1, i.wrapping_sub(dw), i + dw] {
                if j < dw * dh && label[j] == 0 && grad[j] < tau && (j / dw == y || j % dw == x) {
                    label[j] = id;
                    stack.push(j);
                }
            }
        }
        let (bw, bh) = ((x1 - x0 + 1) as f64, (y1 - y0 + 1) as f64);
        let fill = area as f64 / (bw * bh);
        let aspect = bw / bh;
        if area >= 12 && area * 30 <= dw * dh && fill >= 0.6 && (0.5..=2.0).contains(&aspect) {
            blobs.push(Blob {
                area,
                cx: sx / area as f64,
                cy: sy / area as f64,
            });
        } else {
            blobs.push(Blob {
                area: 0,
                cx: 0.0,
                cy: 0.0,
            });
        }
    }
    let blobs: Vec<Blob> = blobs.into_iter().filter(|b| b.area > 0).collect();
    // The patches: the largest group of regions of one size.
    let count = |a: usize| {
        blobs
            .iter()
            .filter(|b| (b.area as f64) >= 0.5 * a as f64 && (b.area as f64) <= 2.0 * a as f64)
            .count()
    };
    let Some(size) = blobs.iter().map(|b| b.area).max_by_key(|&a| (count(a), a)) else {
        return Err(
            "no uniform patch-like regions found: pick the chart's four corner patches".into(),
        );
    };
    let cands: Vec<Blob> = blobs
        .iter()
        .copied()
        .filter(|b| (b.area as f64) >= 0.5 * size as f64 && (b.area as f64) <= 2.0 * size as f64)
        .collect();
    if cands.len() < 12 {
        return Err(format!(
            "found {} patch-like regions, a chart needs 12 of its 24 visible: pick its four corner patches",
            cands.len()
        ));
    }
    // The lattice: its pitch and angle from nearest neighbours.
    let dist = |a: &Blob, b: &Blob| ((a.cx - b.cx).powi(2) + (a.cy - b.cy).powi(2)).sqrt();
    let mut nn: Vec<f64> = cands
        .iter()
        .map(|a| {
            cands
                .iter()
                .filter(|b| !std::ptr::eq(*b, a))
                .map(|b| dist(a, b))
                .fold(f64::MAX, f64::min)
        })
        .collect();
    nn.sort_by(f64::total_cmp);
    let pitch = nn[nn.len() / 2];
    let (mut cs, mut sn) = (0.0f64, 0.0f64);
    let mut vecs = Vec::new();
    for a in &cands {
        for b in &cands {
            let d = dist(a, b);
            if d > 0.7 * pitch && d < 1.4 * pitch {
                let th = (b.cy - a.cy).atan2(b.cx - a.cx);
                cs += (4.0 * th).cos();
                sn += (4.0 * th).sin();
                vecs.push((b.cx - a.cx, b.cy - a.cy));
            }
        }
    }
    let th = sn.atan2(cs) / 4.0;
    let (u, v) = ((th.cos(), th.sin()), (-th.sin(), th.cos()));
    let along = |axis: (f64, f64)| {
        let mut l: Vec<f64> = vecs
            .iter()
            .map(|d| d.0 * axis.0 + d.1 * axis.1)
            .filter(|p| *p > 0.7 * pitch)
            .collect();
        l.sort_by(f64::total_cmp);
        l.get(l.len() / 2).copied().unwrap_or(pitch)
    };
    let (pu, pv) = (along(u), along(v));
    let mx = cands.iter().map(|b| b.cx).sum::<f64>() / cands.len() as f64;
    let my = cands.iter().map(|b| b.cy).sum::<f64>() / cands.len() as f64;
    let seed = *cands
        .iter()
        .min_by(|a, b| {
            ((a.cx - mx).powi(2) + (a.cy - my).powi(2))
                .total_cmp(&((b.cx - mx).powi(2) + (b.cy - my).powi(2)))
        })
        .ok_or("no patches")?;
    let mut cells = Vec::new();
    for b in &cands {
        let (dx, dy) = (b.cx - seed.cx, b.cy - seed.cy);
        let a1 = (dx * u.0 + dy * u.1) / pu;
        let a2 = (dx * v.0 + dy * v.1) / pv;
        let (i, j) = (a1.round(), a2.round());
        if (a1 - i).abs() < 0.3 && (a2 - j).abs() < 0.3 {
            cells.push((i as i64, j as i64, *b));
        }
    }
    // The 6 x 4 (or 4 x 6) window holding the most of them.
    let (imin, imax) = cells
        .iter()
        .fold((i64::MAX, i64::MIN), |a, c| (a.0.min(c.0), a.1.max(c.0)));
    let (jmin, jmax) = cells
        .iter()
        .fold((i64::MAX, i64::MIN), |a, c| (a.0.min(c.1), a.1.max(c.1)));
    // Every window holding the most: when a whole edge row or column is
    // out of frame, windows one step apart hold the same patches, and the
    // colours decide between them below.
    let mut most = 0usize;
    let mut windows: Vec<(i64, i64, (i64, i64))> = Vec::new();
    for dims in [(6i64, 4i64), (4, 6)] {
        for i0 in imin - dims.0 + 1..=imax {
            for j0 in jmin - dims.1 + 1..=jmax {
                let n = cells
                    .iter()
                    .filter(|c| c.0 >= i0 && c.0 < i0 + dims.0 && c.1 >= j0 && c.1 < j0 + dims.1)
                    .count();
                if n > most {
                    most = n;
                    windows.clear();
                }
                if n == most {
                    windows.push((i0, j0, dims));
                }
            }
        }
    }
    let n = most;
    if n < 12 {
        return Err(format!(
            "only {n} patches line up on a 6x4 lattice (a chart needs 12 of 24 visible): pick its four corner patches"
        ));
    }
    let side = (size as f64).sqrt() * 2.0 * step as f64;
    let half_window = (0.25 * side).max(1.0) as f32;
    // Every orientation of each such lattice; the one whose colours a 3x3
    // matrix maps onto the reference best.
    let reference: Vec<[f64; 3]> = COLORCHECKER_24
        .iter()
        .map(|(_, lab)| lab_d50_to_linear_srgb(*lab))
        .collect();
    let mut best_fit = (f64::INFINITY, Vec::new());
    for &(i0, j0, dims) in &windows {
        // Least squares: centre = o + i U + j V.
        let members: Vec<(f64, f64, Blob)> = cells
            .iter()
            .filter(|c| c.0 >= i0 && c.0 < i0 + dims.0 && c.1 >= j0 && c.1 < j0 + dims.1)
            .map(|c| ((c.0 - i0) as f64, (c.1 - j0) as f64, c.2))
            .collect();
        let mut ata = [[0.0f64; 3]; 3];
        let mut atx = [0.0f64; 3];
        let mut aty = [0.0f64; 3];
        for (i, j, b) in &members {
            let f = [1.0, *i, *j];
            for r in 0..3 {
                for k in 0..3 {
                    ata[r][k] += f[r] * f[k];
                }
                atx[r] += f[r] * b.cx;
                aty[r] += f[r] * b.cy;
            }
        }
        let inv = crate::dng::mat_inv(&ata).ok_or("the patches found do not span a lattice")?;
        let solve = |rhs: [f64; 3]| -> [f64; 3] {
            std::array::from_fn(|r| (0..3).map(|k| inv[r][k] * rhs[k]).sum())
        };
        let (ox, oy) = (solve(atx), solve(aty));
        // Detection pixels -> capture pixels.
        let to_px = |i: f64, j: f64| -> [f32; 2] {
            let x = ox[0] + ox[1] * i + ox[2] * j;
            let y = oy[0] + oy[1] * i + oy[2] * j;
            [
                ((x + 0.5) * 2.0 * step as f64) as f32,
                ((y + 0.5) * 2.0 * step as f64) as f32,
            ]
        };
        for (flip_c, flip_r) in [(false, false), (true, true), (true, false), (false, true)] {
            let centres: Vec<[f32; 2]> = (0..24)
                .map(|k| {
                    let (col, row) = ((k % 6) as f64, (k / 6) as f64);
                    let col = if flip_c { 5.0 - col } else { col };
                    let row = if flip_r { 3.0 - row } else { row };
                    if dims == (6, 4) {
                        to_px(col, row)
                    } else {
                        to_px(row, col)
                    }
                })
                .collect();
            let f = Found {
                corners: [centres[0], centres[5], centres[18], centres[23]],
                centres,
                half_window,
                method: String::new(),
            };
            let m = measure(c, &f, pedestal, None);
            let (a, b): (Vec<[f64; 3]>, Vec<[f64; 3]>) = m
                .iter()
                .zip(&reference)
                .filter(|(p, _)| !p.clipped)
                .map(|(p, r)| (p.rgb, *r))
                .unzip();
            let err = fit3(&a, &b);
            if err < best_fit.0 {
                best_fit = (err, f.centres);
            }
        }
    }
    if !best_fit.0.is_finite() {
        return Err(format!(
            "found {n} patches, but too many of them clip to tell the chart's orientation: expose it darker"
        ));
    }
    let centres = best_fit.1;
    Ok(Found {
        corners: [centres[0], centres[5], centres[18], centres[23]],
        centres,
        half_window,
        method: format!("detected ({n} of 24 patches seen)"),
    })
}
