//! Black level from dark frames: the pedestal per CFA site (a trimmed mean,
//! so hot pixels do not pull it), with warnings when the sites differ or the
//! frames are not dark.

use super::{Capture, trimmed_mean};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct BlackResult {
    /// Pedestal per site `[R, Gr, Gb, B]`, sensor units.
    pub levels: [f32; 4],
    /// Spread of the samples per site (the read noise of one averaged frame).
    pub std: [f32; 4],
    pub frames: usize,
    pub warnings: Vec<String>,
}

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
    Ok(BlackResult {
        levels,
        std,
        frames,
        warnings,
    })
}
