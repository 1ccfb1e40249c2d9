//! Black level from dark frames: the pedestal per CFA site (a trimmed mean,
//! so hot pixels do not pull it), with warnings when the sites differ or the
//! frames are not dark; and the hot pixels, for the static defect map.

use super::{Capture, trimmed_mean};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct BlackResult {
    /// Pedestal per site `[R, Gr, Gb, B]`, sensor units.
    pub levels: [f32; 4],
    /// Spread of the samples per site (the read noise of one averaged frame).
    pub std: [f32; 4],
    pub frames: usize,
    /// Pixels `[x, y]` whose mean over the darks stands out from their
    /// site's level by more than [`HOT_SIGMAS`] of its spread (and
    /// [`HOT_MIN_DN`]): hot pixels, for `stages.defect_pixel.map`.
    pub hot: Vec<[u32; 2]>,
    pub warnings: Vec<String>,
}

/// How many of a site's spreads above its level a hot pixel is.
pub const HOT_SIGMAS: f32 = 8.0;
/// And at least this far (DN), so a dark of no measurable noise does not
/// map its rounding.
pub const HOT_MIN_DN: f32 = 8.0;
/// A map longer than this share of the pixels is not a few defects: the
/// darks are not dark, or not flat; the worst are kept, with a warning.
pub const HOT_MAX_SHARE: f64 = 0.001;

/// Sites differing by more than this (DN) are worth a warning.
const SITES_DIFFER_DN: f32 = 2.0;

pub fn black_level(darks: &[Capture]) -> Result<BlackResult, String> {
    let first = darks.first().ok_or("no dark frames")?;
    let mut per_site: [Vec<f32>; 4] = Default::default();
    let mut warnings = Vec::new();
    let mut frames = 0;
    for c in darks {
        if (c.width, c.height, c.cfa) != (first.width, first.height, first.cfa) {
            return Err(format!(
                "{}: {}x{} {} differs from {}'s {}x{} {}",
                c.name, c.width, c.height, c.cfa, first.name, first.width, first.height, first.cfa
            ));
        }
        frames += c.frames;
        for y in 0..c.height {
            for x in 0..c.width {
                per_site[c.site(x, y)].push(c.data[y * c.width + x]);
            }
        }
    }
    let mut levels = [0.0f32; 4];
    let mut std = [0.0f32; 4];
    for (s, v) in per_site.iter_mut().enumerate() {
        if v.is_empty() {
            return Err("a dark frame has no samples of every site".into());
        }
        levels[s] = trimmed_mean(v, 0.005);
        // The spread of the middle 98% (hot pixels out).
        let k = v.len() / 100;
        let mid = &v[k..v.len() - k];
        let m = levels[s] as f64;
        let var =
            mid.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / mid.len().max(1) as f64;
        std[s] = var.sqrt() as f32;
    }
    let (lo, hi) = levels
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if hi - lo > SITES_DIFFER_DN {
        warnings.push(format!(
            "black levels differ by {:.1} DN between sites (R {:.1}, Gr {:.1}, Gb {:.1}, B {:.1}): the per-site levels are written",
            hi - lo,
            levels[0],
            levels[1],
            levels[2],
            levels[3]
        ));
    }
    let white = first.white_level.max(1.0);
    if hi > 0.1 * white {
        warnings.push(format!(
            "the dark frames are not dark: their level {hi:.1} is {:.0}% of the white level {white} (a lens cap left off? light leaking?)",
            100.0 * hi / white
        ));
    } else if std.iter().any(|&s| s > 0.02 * white) {
        warnings.push(format!(
            "the dark frames have structure: spread {:.1} DN (over 2% of the white level); a scene or light may be in them",
            std.iter().cloned().fold(0.0, f32::max)
        ));
    }
    // Hot pixels: the per-pixel mean over the darks.
    let (w, h) = (first.width, first.height);
    let mut mean = vec![0.0f32; w * h];
    for c in darks {
        for (m, &v) in mean.iter_mut().zip(&c.data) {
            *m += v / darks.len() as f32;
        }
    }
    let mut hot: Vec<(f32, [u32; 2])> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let s = first.site(x, y);
            let excess = mean[y * w + x] - levels[s];
            if excess > (HOT_SIGMAS * std[s]).max(HOT_MIN_DN) {
                hot.push((excess, [x as u32, y as u32]));
            }
        }
    }
    let most = ((w * h) as f64 * HOT_MAX_SHARE).ceil() as usize;
    if hot.len() > most {
        warnings.push(format!(
            "{} hot pixels in the dark frames ({:.2}% of the frame): the {most} hottest are mapped; are the darks dark?",
            hot.len(),
            100.0 * hot.len() as f64 / (w * h) as f64
        ));
        hot.sort_by(|a, b| b.0.total_cmp(&a.0));
        hot.truncate(most);
    }
    let mut hot: Vec<[u32; 2]> = hot.into_iter().map(|(_, p)| p).collect();
    hot.sort_by_key(|p| (p[1], p[0]));
    Ok(BlackResult {
        levels,
        std,
        frames,
        hot,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BayerOrder;

    /// Two dark frames of read noise (sigma 2 DN about 64) with three hot
    /// pixels (+40, +200, +3000 DN) and one warm by 6 DN (within the
    /// noise's reach of eight sigmas of the mean): the three are mapped, in
    /// row order.
    #[test]
    fn hot_pixels_in_the_darks_make_the_map() {
        let (w, h) = (64, 48);
        let mut seed = 99u32;
        let mut frame = |i: usize| {
            let data: Vec<f32> = (0..w * h)
                .map(|p| {
                    // Sum of four uniforms: roughly normal, sigma 2.
                    let n: f32 = (0..4)
                        .map(|_| {
                            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                        })
                        .sum::<f32>()
                        * 2.0
                        * 3f32.sqrt();
                    let hot = match (p % w, p / w) {
                        (10, 5) => 40.0,
                        (33, 20) => 200.0,
                        (3, 40) => 3000.0,
                        (50, 30) => 6.0,
                        _ => 0.0,
                    };
                    (64.0 + n + hot).round()
                })
                .collect();
            Capture {
                name: format!("dark{i}"),
                width: w,
                height: h,
                cfa: BayerOrder::Rggb,
                data,
                white_level: 4095.0,
                exposure_us: 10000.0,
                analogue_gain: 1.0,
                frames: 1,
                black: None,
            }
        };
        let darks = [frame(0), frame(1)];
        let b = black_level(&darks).unwrap();
        assert_eq!(b.hot, vec![[10, 5], [33, 20], [3, 40]], "{b:?}");
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    }
}
