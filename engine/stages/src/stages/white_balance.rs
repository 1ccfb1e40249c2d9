//! White balance: a gain per colour, applied to the mosaic.

use crate::types::BayerOrder;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhiteBalanceParams {
    pub enabled: bool,
    /// Gains `[R, G, B]`. With AWB on, the algorithm's gains replace these.
    pub gains: [f32; 3],
}

impl Default for WhiteBalanceParams {
    fn default() -> Self {
        WhiteBalanceParams {
            enabled: true,
            gains: [1.8, 1.0, 1.6],
        }
    }
}

impl WhiteBalanceParams {
    /// A gain per colour, at most 16 (four stops).
    pub const FIELDS: &'static [super::fields::Field] =
        &[super::fields::Field::closed("gains", 0.0, 16.0).slider(0.25, 4.0)];

    /// The gains applied: scaled so the smallest is 1 (dcraw's `pre_mul`),
    /// so that a pixel the sensor clipped in every channel stays clipped in
    /// every channel, white, whatever the balance. Brightness is the
    /// exposure's business (AE reads luminance with these gains).
    pub fn effective(&self) -> [f32; 3] {
        if self.enabled {
            normalised(self.gains)
        } else {
            [1.0; 3]
        }
    }
    pub fn check(&self) -> Result<(), String> {
        match self
            .gains
            .iter()
            .find(|g| !g.is_finite() || **g < 0.0 || **g > 16.0)
        {
            Some(g) => Err(format!("gain {g} is outside 0..=16")),
            None => Ok(()),
        }
    }
}

/// `gains` scaled so the smallest is 1 (all 0: unchanged).
pub fn normalised(gains: [f32; 3]) -> [f32; 3] {
    let m = gains.iter().cloned().fold(f32::INFINITY, f32::min);
    if m > 0.0 && m.is_finite() && m != 1.0 {
        gains.map(|g| g / m)
    } else {
        gains
    }
}

/// Apply in place to a 16-bit mosaic (about the pedestal: black stays put).
pub fn apply(p: &WhiteBalanceParams, order: BayerOrder, width: usize, data: &mut [u16]) {
    let g = p.effective();
    for (y, row) in data.chunks_exact_mut(width).enumerate() {
        let k = [g[order.color_at(0, y).rgb()], g[order.color_at(1, y).rgb()]];
        for (x, v) in row.iter_mut().enumerate() {
            *v = super::gain_about_pedestal(*v, k[x & 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let p = WhiteBalanceParams {
            enabled: true,
            gains: [2.0, 1.0, 1.5],
        };
        // About the pedestal P: P + d -> P + g d; below black stays below,
        // down to 0.
        let p0 = crate::stages::PEDESTAL;
        let mut d = vec![
            p0 + 100,
            p0 + 100,
            p0 + 100,
            p0 + 100,
            50000,
            p0 - 7,
            p0 - 9,
            65535,
        ];
        apply(&p, BayerOrder::Grbg, 2, &mut d);
        // GRBG: row 0 = G R, row 1 = B G
        assert_eq!(&d[..4], &[p0 + 100, p0 + 200, p0 + 150, p0 + 100]);
        // -13.5 rounds half up.
        assert_eq!(&d[4..], &[50000, p0 - 14, p0 - 13, 65535]);
        let mut deep = vec![p0, 0, 0, p0];
        apply(&p, BayerOrder::Grbg, 2, &mut deep);
        assert_eq!(deep, [p0, 0, 0, p0]);
    }

    #[test]
    fn disabled_is_identity() {
        let p = WhiteBalanceParams {
            enabled: false,
            gains: [3.0, 3.0, 3.0],
        };
        let mut d = vec![1u16, 2, 3, 4];
        apply(&p, BayerOrder::Rggb, 2, &mut d);
        assert_eq!(d, vec![1, 2, 3, 4]);
    }
}
