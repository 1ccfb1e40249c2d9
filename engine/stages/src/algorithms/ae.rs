//! Mean-luminance AE: drive the mean luminance of the AE zones (after white
//! balance, linear) to `target`, moving `speed` of the way per frame within
//! a stop of it (the whole way, up to `max_step`, further off; nothing
//! within `tolerance`), exposure time first, then analogue gain.

use super::{AlgoInitError, AlgoResult, Algorithm, Control, SensorConfig};
use crate::stages::fields::Field;
use crate::stages::stats::Stats3A;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanLuminanceParams {
    /// Target mean luminance, fraction of full scale (linear).
    pub target: f32,
    pub speed: f32,
    /// Largest change of exposure per frame (factor).
    pub max_step: f32,
    /// Within this fraction of the target nothing changes (the sensor's
    /// steps would otherwise make AE hop between the two levels either side
    /// of it).
    pub tolerance: f32,
}

impl MeanLuminanceParams {
    pub const FIELDS: &'static [Field] = &[
        Field::closed("target", 0.0, 1.0).open_min().open_max(),
        Field::closed("speed", 0.0, 1.0),
        Field::closed("max_step", 1.0, f64::INFINITY).slider(1.0, 16.0),
        Field::closed("tolerance", 0.0, 0.5),
    ];
}

impl Default for MeanLuminanceParams {
    fn default() -> Self {
        MeanLuminanceParams {
            target: 0.18,
            speed: 0.5,
            max_step: 4.0,
            tolerance: 0.03,
        }
    }
}

#[derive(Debug, Default)]
pub struct MeanLuminanceAe {
    pub p: MeanLuminanceParams,
    pub sensor: SensorConfig,
}

impl MeanLuminanceAe {
    /// Mean luminance of the zones (0..=1) with the gains `wb`, as the
    /// white balance stage applies them (smallest 1).
    pub fn luminance(stats: &Stats3A, wb: [f32; 3]) -> f32 {
        let wb = crate::stages::white_balance::normalised(wb);
        let mut sum = 0.0f64;
        let mut n = 0u64;
        for z in &stats.zones {
            let q = (z.quads + z.saturated) as f64;
            if q == 0.0 {
                continue;
            }
            // Saturated quads count as full scale.
            let y = 0.2126 * z.mean[0] * wb[0]
                + 0.7152 * z.mean[1] * wb[1]
                + 0.0722 * z.mean[2] * wb[2];
            sum += (y as f64 / 65535.0).min(1.0) * z.quads as f64 + z.saturated as f64;
            n += q as u64;
        }
        (sum / n.max(1) as f64) as f32
    }
}

impl MeanLuminanceAe {
    /// The name tuning files use.
    pub const NAME: &'static str = "ae.mean_luminance";
}

impl Algorithm for MeanLuminanceAe {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn init(&mut self, params: &serde_json::Value) -> Result<(), AlgoInitError> {
        self.p = super::parse_checked(params, MeanLuminanceParams::FIELDS)?;
        Ok(())
    }
    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.p).unwrap_or_default()
    }
    fn configure(&mut self, sensor: &SensorConfig) {
        self.sensor = *sensor;
    }
    fn process(&self, stats: &Stats3A, r: &mut AlgoResult) {
        let y = Self::luminance(stats, r.next.wb_gains).max(1e-4);
        let want = (self.p.target / y).clamp(1.0 / self.p.max_step, self.p.max_step);
        let want = if (y / self.p.target - 1.0).abs() <= self.p.tolerance {
            1.0
        } else {
            want
        };
        // Damped within a stop of the target (noise, a moving scene); further
        // off the whole step at once: frames are paired with the exposure
        // that made them, so a full step does not overshoot.
        let factor = if (0.5..=2.0).contains(&want) {
            1.0 + (want - 1.0) * self.p.speed
        } else {
            want
        };
        let s = &self.sensor;
        let total = (r.next.exposure_us * r.next.analogue_gain * factor).clamp(
            s.min_exposure_us * s.min_gain,
            s.max_exposure_us * s.max_gain,
        );
        let exposure = total.clamp(s.min_exposure_us, s.max_exposure_us);
        let gain = (total / exposure).clamp(s.min_gain, s.max_gain);
        r.next.exposure_us = exposure;
        r.next.analogue_gain = gain;
        r.controls.push(Control::ExposureUs(exposure));
        r.controls.push(Control::AnalogueGain(gain));
        r.metadata.push(("ae_luma".into(), y as f64));
        r.metadata.push(("ae_exposure_us".into(), exposure as f64));
        r.metadata.push(("ae_gain".into(), gain as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::IpaContext;
    use crate::stages::demosaic::mosaic;
    use crate::stages::stats::{StatsParams, compute};
    use crate::types::BayerOrder;

    fn stats_of(v: u16) -> Stats3A {
        let (w, h) = (32, 24);
        let img: Vec<u16> = (0..w * h).flat_map(|_| [v, v, v]).collect();
        compute(
            &StatsParams::default(),
            BayerOrder::Rggb,
            w,
            h,
            &crate::stages::lifted(&mosaic(BayerOrder::Rggb, w, h, &img)),
        )
    }

    #[test]
    fn dark_scene_raises_exposure_then_gain() {
        let mut ae = MeanLuminanceAe::default();
        ae.init(&serde_json::json!({"speed": 1.0, "target": 0.2}))
            .unwrap();
        let ctx = IpaContext {
            wb_gains: [1.0; 3],
            exposure_us: 10_000.0,
            analogue_gain: 1.0,
            ..Default::default()
        };
        let mut r = AlgoResult::new(&ctx);
        ae.process(&stats_of((0.1 * 65535.0) as u16), &mut r);
        assert!((r.next.exposure_us - 20_000.0).abs() < 10.0, "{:?}", r.next);
        let mut r2 = AlgoResult::new(&r.next);
        ae.process(&stats_of((0.05 * 65535.0) as u16), &mut r2);
        assert_eq!(r2.next.exposure_us, 33_000.0);
        assert!((r2.next.analogue_gain - 80_000.0 / 33_000.0).abs() < 0.01);
        assert!(r2.controls.contains(&Control::ExposureUs(33_000.0)));
    }

    #[test]
    fn within_the_tolerance_nothing_moves() {
        let mut ae = MeanLuminanceAe::default();
        ae.init(&serde_json::json!({"target": 0.2, "tolerance": 0.05}))
            .unwrap();
        let ctx = IpaContext {
            wb_gains: [1.0; 3],
            exposure_us: 10_000.0,
            analogue_gain: 1.0,
            ..Default::default()
        };
        for (level, moves) in [(0.195, false), (0.209, false), (0.185, true), (0.215, true)] {
            let mut r = AlgoResult::new(&ctx);
            ae.process(&stats_of((level * 65535.0) as u16), &mut r);
            assert_eq!(
                r.next.exposure_us != 10_000.0,
                moves,
                "{level}: {:?}",
                r.next
            );
        }
    }

    #[test]
    fn bright_scene_lowers_exposure_within_max_step() {
        let mut ae = MeanLuminanceAe::default();
        ae.init(&serde_json::json!({"speed": 1.0, "max_step": 2.0}))
            .unwrap();
        let ctx = IpaContext {
            wb_gains: [1.0; 3],
            ..Default::default()
        };
        let mut r = AlgoResult::new(&ctx);
        ae.process(&stats_of(65000), &mut r);
        assert!((r.next.exposure_us - 5_000.0).abs() < 1.0);
    }
}
