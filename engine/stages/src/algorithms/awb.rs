//! Grey-world AWB: the average of the usable AWB zones is grey. Zones that are
//! saturated or too dark are left out; gains move towards the estimate at
//! `speed` per frame.

use super::{AlgoInitError, AlgoResult, Algorithm, IpaContext};
use crate::stages::StageParams;
use crate::stages::fields::Field;
use crate::stages::stats::Stats3A;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GreyWorldParams {
    /// 0..=1: fraction of the way to the estimate per frame (1 = at once).
    pub speed: f32,
    pub min_gain: f32,
    pub max_gain: f32,
    /// Zones whose green mean is below this fraction of full scale are ignored.
    pub dark_threshold: f32,
}

impl GreyWorldParams {
    pub const FIELDS: &'static [Field] = &[
        Field::closed("speed", 0.0, 1.0),
        Field::closed("min_gain", 0.0, 64.0)
            .open_min()
            .log()
            .slider(0.1, 16.0),
        Field::closed("max_gain", 0.0, 64.0)
            .open_min()
            .log()
            .slider(0.1, 16.0),
        Field::closed("dark_threshold", 0.0, 1.0).slider(0.0, 0.5),
    ];
}

impl Default for GreyWorldParams {
    fn default() -> Self {
        GreyWorldParams {
            speed: 0.5,
            min_gain: 0.25,
            max_gain: 8.0,
            dark_threshold: 0.01,
        }
    }
}

#[derive(Debug, Default)]
pub struct GreyWorldAwb {
    pub p: GreyWorldParams,
}

impl GreyWorldAwb {
    /// The grey-world gains from statistics, or `None` with no usable zone.
    pub fn estimate(&self, stats: &Stats3A) -> Option<[f32; 3]> {
        let dark = self.p.dark_threshold * 65535.0;
        let mut sum = [0.0f64; 3];
        let mut n = 0;
        for z in &stats.zones {
            if z.quads == 0 || z.saturated > z.quads || z.mean[1] < dark {
                continue;
            }
            for (s, m) in sum.iter_mut().zip(z.mean) {
                *s += m as f64;
            }
            n += 1;
        }
        if n == 0 || sum[0] <= 0.0 || sum[2] <= 0.0 {
            return None;
        }
        let clamp = |g: f64| (g as f32).clamp(self.p.min_gain, self.p.max_gain);
        Some([clamp(sum[1] / sum[0]), 1.0, clamp(sum[1] / sum[2])])
    }
}

impl GreyWorldAwb {
    /// The name tuning files use.
    pub const NAME: &'static str = "awb.grey_world";
}

impl Algorithm for GreyWorldAwb {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn init(&mut self, params: &serde_json::Value) -> Result<(), AlgoInitError> {
        let p: GreyWorldParams = super::parse_checked(params, GreyWorldParams::FIELDS)?;
        super::check_gain_range(p.min_gain, p.max_gain)?;
        self.p = p;
        Ok(())
    }
    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.p).unwrap_or_default()
    }
    fn prepare(&self, ctx: &IpaContext, stages: &mut StageParams) {
        stages.white_balance.gains = ctx.wb_gains;
    }
    fn process(&self, stats: &Stats3A, r: &mut AlgoResult) {
        r.next.awb_active = true;
        let Some(target) = self.estimate(stats) else {
            r.metadata.push(("awb_valid".into(), 0.0));
            return;
        };
        super::approach(&mut r.next.wb_gains, target, self.p.speed);
        r.metadata.push(("awb_r".into(), r.next.wb_gains[0] as f64));
        r.metadata.push(("awb_b".into(), r.next.wb_gains[2] as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::demosaic::mosaic;
    use crate::stages::stats::{StatsParams, compute};
    use crate::types::BayerOrder;

    #[test]
    fn neutralises_a_colour_cast() {
        let (w, h) = (64, 48);
        let img: Vec<u16> = (0..w * h).flat_map(|_| [10000u16, 20000, 12500]).collect();
        let m = crate::stages::lifted(&mosaic(BayerOrder::Gbrg, w, h, &img));
        let stats = compute(&StatsParams::default(), BayerOrder::Gbrg, w, h, &m);
        let mut awb = GreyWorldAwb::default();
        awb.init(&serde_json::json!({"speed": 1.0})).unwrap();
        let mut r = AlgoResult::new(&IpaContext::default());
        awb.process(&stats, &mut r);
        assert!((r.next.wb_gains[0] - 2.0).abs() < 1e-4);
        assert!((r.next.wb_gains[2] - 1.6).abs() < 1e-4);
        let mut sp = StageParams::default();
        awb.prepare(&r.next, &mut sp);
        assert_eq!(sp.white_balance.gains, r.next.wb_gains);
    }

    #[test]
    fn a_brightened_still_leaves_out_the_zones_it_would_clip() {
        use crate::stages::demosaic::mosaic;
        use crate::stages::stats::{StatsParams, compute};
        use crate::types::BayerOrder;
        // Left half a bright grey, right half a dim red, 2x2 zones; made
        // twice as bright, the grey's green would clip.
        let (w, h) = (64, 32);
        let img: Vec<u16> = (0..w * h)
            .flat_map(|i| {
                if i % w < w / 2 {
                    [24000u16, 40000, 24000]
                } else {
                    [8000, 4000, 3000]
                }
            })
            .collect();
        let d = crate::stages::lifted(&mosaic(BayerOrder::Rggb, w, h, &img));
        let p = StatsParams {
            zones_x: 2,
            zones_y: 2,
            ..Default::default()
        };
        let st = compute(&p, BayerOrder::Rggb, w, h, &d);
        // Only the red half is left: its gains, not a blend with a green
        // clipped at full scale.
        let g = GreyWorldAwb::default()
            .estimate(&st.scaled(2.0, p.saturation))
            .unwrap();
        assert!(
            (g[0] - 0.5).abs() < 1e-3 && (g[2] - 4.0 / 3.0).abs() < 1e-3,
            "{g:?}"
        );
    }

    #[test]
    fn bad_params_name_the_field() {
        let mut awb = GreyWorldAwb::default();
        assert_eq!(
            awb.init(&serde_json::json!({"speed": 3.0}))
                .unwrap_err()
                .field,
            ".speed"
        );
        assert_eq!(
            awb.init(&serde_json::json!({"speed": 1e39}))
                .unwrap_err()
                .field,
            ".speed"
        );
        assert_eq!(
            awb.init(&serde_json::json!({"sped": 3.0}))
                .unwrap_err()
                .field,
            ".sped"
        );
    }
}
