//! Black level: map the sensor's black per CFA site to [`PEDESTAL`] and its
//! white level to 65535. Below black stays below it (down to 0, two sigma of
//! a noisy sensor), so shadows keep their mean until the CCM clamps once.
//! Disabled, it still scales (black 0), so the stages after always see
//! 16-bit data.
//!
//! [`PEDESTAL`]: super::PEDESTAL

use crate::types::BayerOrder;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlackLevelParams {
    pub enabled: bool,
    /// Pedestal per site `[R, Gr, Gb, B]`, in sensor units.
    pub levels: [u16; 4],
    /// Saturation level in sensor units; `null` means the bit depth's maximum.
    pub white_level: Option<u16>,
}

impl Default for BlackLevelParams {
    fn default() -> Self {
        BlackLevelParams {
            enabled: true,
            levels: [64, 64, 64, 64],
            white_level: None,
        }
    }
}

impl BlackLevelParams {
    /// The pedestals and the white level, in sensor units (16 bits at most).
    pub const FIELDS: &'static [super::fields::Field] = &[
        super::fields::Field::closed("levels", 0.0, 65535.0),
        super::fields::Field::closed("white_level", 1.0, 65535.0),
    ];

    /// `(black, scale)` per site `[R, Gr, Gb, B]` for a sensor whose
    /// largest value is `max_value`: the output is `(v - black) * scale +
    /// PEDESTAL`.
    pub fn resolve(&self, max_value: u16) -> [(f32, f32); 4] {
        let white = self.white_level.unwrap_or(max_value) as f32;
        let mut out = [(0.0, 1.0); 4];
        for (i, o) in out.iter_mut().enumerate() {
            let bl = if self.enabled {
                self.levels[i] as f32
            } else {
                0.0
            };
            let range = (white - bl).max(1.0);
            *o = (bl, (65535.0 - super::PEDESTAL_F) / range);
        }
        out
    }

    /// Problems with these values for a sensor of `max_value`, as text.
    pub fn check(&self, max_value: u16) -> Result<(), String> {
        let white = self.white_level.unwrap_or(max_value);
        if let Some(&bl) = self.levels.iter().find(|&&l| l >= white) {
            return Err(format!(
                "black level {bl} is not below the white level {white}"
            ));
        }
        Ok(())
    }
}

/// `(pedestal, scale)` for the even and odd columns of row `y`.
pub fn row_constants(k: &[(f32, f32); 4], order: BayerOrder, y: usize) -> [(f32, f32); 2] {
    let tile = order.tile();
    [
        k[tile[(y & 1) * 2].index()],
        k[tile[(y & 1) * 2 + 1].index()],
    ]
}

/// One row in place.
#[inline]
pub fn apply_row(row_k: [(f32, f32); 2], row: &mut [u16]) {
    for pair in row.chunks_exact_mut(2) {
        for (v, (bl, scale)) in pair.iter_mut().zip(row_k) {
            *v = super::clamp_u16((*v as f32 - bl) * scale + super::PEDESTAL_F);
        }
    }
}

/// Apply to a whole mosaic.
pub fn apply(
    p: &BlackLevelParams,
    max_value: u16,
    order: BayerOrder,
    width: usize,
    src: &[u16],
    dst: &mut [u16],
) {
    let k = p.resolve(max_value);
    for (y, (si, di)) in src
        .chunks_exact(width)
        .zip(dst.chunks_exact_mut(width))
        .enumerate()
    {
        di.copy_from_slice(si);
        apply_row(row_constants(&k, order, y), di);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // RAW10, black 64: 64 -> P, 1023 -> 65535, 543.5 is the midpoint;
        // below black keeps its distance (scaled) down to 0.
        let p0 = crate::stages::PEDESTAL;
        let p = BlackLevelParams {
            enabled: true,
            levels: [64, 64, 64, 64],
            white_level: None,
        };
        let src = [64u16, 1023, 10, 544, 60, 0];
        let mut dst = [0u16; 6];
        apply(&p, 1023, BayerOrder::Rggb, 2, &src, &mut dst);
        let k = (65535.0 - p0 as f64) / 959.0;
        assert_eq!(dst[0], p0);
        assert_eq!(dst[1], 65535);
        assert_eq!(dst[2], (p0 as f64 - 54.0 * k).round() as u16);
        assert_eq!(dst[3], (p0 as f64 + 480.0 * k).round() as u16);
        assert_eq!(dst[4], (p0 as f64 - 4.0 * k).round() as u16);
        assert_eq!(dst[5], 0); // 64 below: past the pedestal, 0
    }

    #[test]
    fn per_site_levels_follow_the_bayer_order() {
        let p = BlackLevelParams {
            enabled: true,
            levels: [10, 20, 30, 40],
            white_level: Some(1010),
        };
        // BGGR: (0,0) is B, (1,1) is R.
        let src = [40u16, 30, 20, 10];
        let mut dst = [1u16; 4];
        apply(&p, 1023, BayerOrder::Bggr, 2, &src, &mut dst);
        assert_eq!(dst, [crate::stages::PEDESTAL; 4]);
    }

    #[test]
    fn disabled_still_scales() {
        let p = BlackLevelParams {
            enabled: false,
            ..Default::default()
        };
        let mut dst = [0u16; 2];
        apply(&p, 255, BayerOrder::Rggb, 2, &[255, 0], &mut dst);
        assert_eq!(dst, [65535, crate::stages::PEDESTAL]);
    }

    #[test]
    fn check_rejects_pedestal_above_white() {
        let p = BlackLevelParams {
            levels: [64, 64, 2000, 64],
            ..Default::default()
        };
        assert_eq!(
            p.check(1023),
            Err("black level 2000 is not below the white level 1023".to_string())
        );
        assert!(BlackLevelParams::default().check(1023).is_ok());
    }
}
