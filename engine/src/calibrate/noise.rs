//! The sensor's noise: variance against mean per site, a line `var = shot *
//! mean + read` fitted (weighted least squares), from the temporal variance
//! of a burst (binned by level) or from the spatial variance inside the
//! chart's patches. Given at unity gain: shot / g, read / g².

use super::Capture;
use super::chart::Found;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct NoiseResult {
    /// Per site `[R, Gr, Gb, B]`, unity gain, sensor DN.
    pub shot: [f32; 4],
    pub read: [f32; 4],
    /// The (mean, variance) points fitted, per site, at the capture's gain.
    pub points: [Vec<[f32; 2]>; 4],
    pub gain: f32,
    pub source: String,
    pub warnings: Vec<String>,
}

/// Weighted least squares of `var = a * mean + b`.
fn fit_line(points: &[[f32; 2]], weights: &[f64]) -> Option<(f64, f64)> {
    let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (p, &w) in points.iter().zip(weights) {
        let (x, y) = (p[0] as f64, p[1] as f64);
        sw += w;
        sx += w * x;
        sy += w * y;
        sxx += w * x * x;
        sxy += w * x * y;
    }
    let d = sw * sxx - sx * sx;
    if d.abs() < 1e-12 {
        return None;
    }
    let a = (sw * sxy - sx * sy) / d;
    Some((a, (sy - a * sx) / sw))
}

fn finish(
    points: [Vec<[f32; 2]>; 4],
    weights: [Vec<f64>; 4],
    gain: f32,
    source: String,
) -> Result<NoiseResult, String> {
    let mut shot = [0.0f32; 4];
    let mut read = [0.0f32; 4];
    let mut warnings = Vec::new();
    let g = gain.max(1e-3) as f64;
    for s in 0..4 {
        if points[s].len() < 3 {
            return Err(format!(
                "{source}: only {} levels to fit the noise of site {s} (needs 3 or more)",
                points[s].len()
            ));
        }
        let (a, b) = fit_line(&points[s], &weights[s]).ok_or_else(|| {
            format!("{source}: the levels are all alike; the noise cannot be fitted")
        })?;
        if a <= 0.0 {
            warnings.push(format!(
                "{source}: site {s}'s variance does not grow with the level (slope {a:.4}): no shot noise measured"
            ));
        }
        if b < 0.0 {
            warnings.push(format!(
                "{source}: site {s}'s read noise came out below zero ({b:.3} DN²); taken as 0"
            ));
        }
        shot[s] = (a.max(0.0) / g) as f32;
        read[s] = (b.max(0.0) / (g * g)) as f32;
    }
    Ok(NoiseResult {
        shot,
        read,
        points,
        gain,
        source,
        warnings,
    })
}

/// From a burst of one still scene: each sample's temporal variance against
/// its mean, binned by level (64 bins over the range seen).
pub fn from_burst(burst: &[Capture], pedestal: [f32; 4]) -> Result<NoiseResult, String> {
    let first = &burst[0];
    let n = burst.len() as f64;
    let (w, h) = (first.width, first.height);
    for c in burst {
        if (c.width, c.height) != (w, h) {
            return Err(format!("{}: the burst's frames differ in size", c.name));
        }
    }
    const BINS: usize = 64;
    let top = first.white_level as f64;
    let mut acc: [Vec<(f64, f64, f64)>; 4] = std::array::from_fn(|_| vec![(0.0, 0.0, 0.0); BINS]);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let s = first.site(x, y);
            let (mut m, mut m2) = (0.0f64, 0.0f64);
            for c in burst {
                let v = (c.data[i] - pedestal[s]) as f64;
                m += v;
                m2 += v * v;
            }
            let mean = m / n;
            let var = (m2 - n * mean * mean) / (n - 1.0);
            // Clipped samples vary less than they should: left out.
            if mean + pedestal[s] as f64 >= 0.95 * top || mean < 0.0 {
                continue;
            }
            let b = ((mean / top) * BINS as f64) as usize;
            let e = &mut acc[s][b.min(BINS - 1)];
            e.0 += 1.0;
            e.1 += mean;
            e.2 += var;
        }
    }
    let mut points: [Vec<[f32; 2]>; 4] = Default::default();
    let mut weights: [Vec<f64>; 4] = Default::default();
    for s in 0..4 {
        for &(k, m, v) in &acc[s] {
            if k >= 16.0 {
                points[s].push([(m / k) as f32, (v / k) as f32]);
                weights[s].push(k);
            }
        }
    }
    finish(
        points,
        weights,
        first.analogue_gain,
        format!("a burst of {} frames ({})", burst.len(), first.name),
    )
}

/// From the chart's patches in one capture: the spatial variance inside
/// each patch's measuring window against its mean.
pub fn from_patches(c: &Capture, found: &Found, pedestal: [f32; 4]) -> Result<NoiseResult, String> {
    let mut points: [Vec<[f32; 2]>; 4] = Default::default();
    let mut weights: [Vec<f64>; 4] = Default::default();
    let r = (found.half_window as usize).max(2);
    for p in &found.centres {
        let (cx, cy) = (p[0] as usize, p[1] as usize);
        if cx < r || cy < r || cx + r >= c.width || cy + r >= c.height {
            continue;
        }
        let mut sums = [(0.0f64, 0.0f64, 0.0f64, false); 4];
        for y in cy - r..cy + r {
            for x in cx - r..cx + r {
                let s = c.site(x, y);
                let raw = c.data[y * c.width + x];
                let v = (raw - pedestal[s]) as f64;
                let e = &mut sums[s];
                e.0 += 1.0;
                e.1 += v;
                e.2 += v * v;
                e.3 |= raw >= 0.95 * c.white_level;
            }
        }
        for (s, &(k, m, m2, clipped)) in sums.iter().enumerate() {
            if k < 8.0 || clipped {
                continue;
            }
            let mean = m / k;
            // Frames averaged into the capture divide the variance.
            let var = (m2 - k * mean * mean) / (k - 1.0) * c.frames.max(1) as f64;
            points[s].push([mean as f32, var as f32]);
            weights[s].push(k);
        }
    }
    finish(
        points,
        weights,
        c.analogue_gain,
        format!("the chart's patches in {}", c.name),
    )
}
