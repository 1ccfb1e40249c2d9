//! Highlights: as a pixel nears clipping its colour is blended towards
//! neutral, so an area the sensor clipped renders white and its edges carry
//! no colour fringe (darktable's "clip highlights" with a soft ramp, the
//! Raspberry Pi ISP's desaturation near saturation). It runs on the
//! demosaiced camera RGB, before the CCM: the white balance's gains are
//! scaled so the smallest is 1, so a pixel clipped in every channel is at
//! full scale in every channel here, and the CCM's rows sum to 1, so it
//! stays white after.
//!
//! A pixel whose largest channel `m` is above the threshold `t` moves each
//! channel the fraction `(m - t) / (65535 - t)` of the way to `m`: at full
//! scale it is `(m, m, m)`. Integer arithmetic, so the WGSL twin matches it
//! exactly.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HighlightsParams {
    pub enabled: bool,
    /// Where the blend starts, a fraction of full scale (above black).
    pub threshold: f32,
}

impl Default for HighlightsParams {
    fn default() -> Self {
        HighlightsParams {
            enabled: true,
            threshold: 0.98,
        }
    }
}

impl HighlightsParams {
    pub const FIELDS: &'static [super::fields::Field] =
        &[super::fields::Field::closed("threshold", 0.5, 1.0).open_max()];

    pub fn check(&self) -> Result<(), String> {
        Self::FIELDS[0]
            .check(self.threshold as f64)
            .map_err(|e| format!("threshold {e}"))
    }

    /// `(threshold, 65535 - threshold)` in 16-bit units about the pedestal;
    /// `None` when off.
    pub fn resolve(&self) -> Option<(u32, u32)> {
        if !self.enabled || !Self::FIELDS[0].admits(self.threshold as f64) {
            return None;
        }
        // A fraction of the range above the pedestal (black).
        let p0 = super::PEDESTAL_F;
        let t = (p0 + self.threshold * (65535.0 - p0)).round() as u32;
        (t < 65535).then_some((t, 65535 - t))
    }
}

/// One pixel.
#[inline(always)]
pub fn px((t, den): (u32, u32), v: [u16; 3]) -> [u16; 3] {
    let m = v[0].max(v[1]).max(v[2]) as u32;
    if m <= t {
        return v;
    }
    let num = m - t;
    v.map(|c| {
        let c = c as u32;
        (c + ((m - c) * num + den / 2) / den) as u16
    })
}

/// Interleaved RGB16, in place.
pub fn apply(p: &HighlightsParams, rgb: &mut [u16]) {
    let Some(k) = p.resolve() else {
        return;
    };
    for c in rgb.chunks_exact_mut(3) {
        let o = px(k, [c[0], c[1], c[2]]);
        c.copy_from_slice(&o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let p = HighlightsParams::default();
        let (t, den) = p.resolve().unwrap();
        // 0.98 of the range above the pedestal (4096 + 0.98 x 61439).
        assert_eq!((t, den), (64306, 1229));
        // Below the threshold: untouched.
        assert_eq!(px((t, den), [64306, 1000, 30000]), [64306, 1000, 30000]);
        // Clipped in one channel: neutral at full scale.
        assert_eq!(px((t, den), [65535, 20000, 40000]), [65535; 3]);
        // Half way up the ramp: half way to the largest.
        let m = t + den / 2;
        let got = px((t, den), [m as u16, 10000, m as u16]);
        let want = 10000 + ((m - 10000) * (den / 2) + den / 2) / den;
        assert_eq!(got, [m as u16, want as u16, m as u16]);
        // (den / 2 is a hair under half of den: within one step of it.)
        let step = (m - 10000) as f64 / den as f64;
        assert!((got[1] as f64 - (10000.0 + m as f64) / 2.0).abs() < step + 1.0);
    }

    #[test]
    fn off_or_at_one_changes_nothing() {
        let mut rgb = vec![65535u16, 0, 0, 60000, 65000, 1];
        let keep = rgb.clone();
        apply(
            &HighlightsParams {
                enabled: false,
                ..Default::default()
            },
            &mut rgb,
        );
        assert_eq!(rgb, keep);
        assert!(
            HighlightsParams {
                threshold: 1.0,
                ..Default::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn the_largest_channel_never_moves_and_none_passes_it() {
        let k = HighlightsParams::default().resolve().unwrap();
        let mut seed = 7u32;
        for _ in 0..10000 {
            let v: [u16; 3] = std::array::from_fn(|_| {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                (seed >> 16) as u16
            });
            let o = px(k, v);
            let m = *v.iter().max().unwrap();
            assert_eq!(*o.iter().max().unwrap(), m, "{v:?} -> {o:?}");
            for (a, b) in v.iter().zip(&o) {
                assert!(b >= a, "{v:?} -> {o:?}");
            }
        }
    }
}
