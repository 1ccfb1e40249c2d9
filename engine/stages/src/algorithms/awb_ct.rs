//! CT-curve AWB (`awb.ct_curve`): grey candidates near the sensor's
//! colour-temperature curve. Each AWB zone's colour ratios (R/G, B/G of the
//! raw) are compared with the curve a calibration measured from grey patches
//! under known illuminants (`ct_curve`: `[ct, r, b]` points); zones within the
//! transverse limits of the curve are taken as grey, their mean is put on the
//! curve, and the gains are that point's `1/r, 1, 1/b`. The colour
//! temperature goes into the context (matrices per CT are interpolated at
//! it). With no candidate, the mean of every usable zone is put on the curve.

use super::{AlgoInitError, AlgoResult, Algorithm, IpaContext};
use crate::stages::StageParams;
use crate::stages::fields::Field;
use crate::stages::stats::Stats3A;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CtCurveParams {
    /// `[ct (K), r = R/G, b = B/G]` of a grey under each illuminant, CT
    /// rising (at least two).
    pub ct_curve: Vec<[f32; 3]>,
    /// 0..=1: fraction of the way to the estimate per frame.
    pub speed: f32,
    /// How far off the curve (in r, b units) a zone may be and still be
    /// taken as grey, on each side of it (positive: towards magenta, more
    /// red and blue for the green; negative: towards green).
    pub transverse_pos: f32,
    pub transverse_neg: f32,
    /// Zones whose green mean is below this fraction of full scale are ignored.
    pub dark_threshold: f32,
}

impl CtCurveParams {
    pub const FIELDS: &'static [Field] = &[
        Field::closed("speed", 0.0, 1.0),
        Field::closed("transverse_pos", 0.0, 1.0).slider(0.0, 0.2),
        Field::closed("transverse_neg", 0.0, 1.0).slider(0.0, 0.2),
        Field::closed("dark_threshold", 0.0, 1.0).slider(0.0, 0.5),
    ];
}

impl Default for CtCurveParams {
    fn default() -> Self {
        // A generic sensor's curve: a starting point, not a calibration
        // (`isp calibrate` measures the sensor's own).
        CtCurveParams {
            ct_curve: vec![
                [2800.0, 0.75, 0.40],
                [4000.0, 0.60, 0.55],
                [5000.0, 0.53, 0.63],
                [6500.0, 0.46, 0.74],
            ],
            speed: 0.5,
            transverse_pos: 0.04,
            transverse_neg: 0.04,
            dark_threshold: 0.01,
        }
    }
}

/// A point on the curve: its CT, ratios and where a point lies from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnCurve {
    pub ct: f32,
    pub r: f32,
    pub b: f32,
    /// Signed distance from the curve (positive on the magenta side).
    pub transverse: f32,
}

impl CtCurveParams {
    /// The curve's `(r, b)` (R/G and B/G of a grey) at colour temperature
    /// `ct`: linear in mired between its points, held at its ends.
    pub fn at_ct(&self, ct: f32) -> (f32, f32) {
        let c = &self.ct_curve;
        let i = c.partition_point(|p| p[0] < ct);
        if i == 0 || i == c.len() {
            let p = c[i.min(c.len() - 1)];
            return (p[1], p[2]);
        }
        let (p, q) = (c[i - 1], c[i]);
        let f = (1.0 / ct - 1.0 / p[0]) / (1.0 / q[0] - 1.0 / p[0]);
        (p[1] + f * (q[1] - p[1]), p[2] + f * (q[2] - p[2]))
    }

    /// The nearest point of the curve (its segments, held at its ends) to
    /// the ratios `(r, b)`.
    pub fn project(&self, r: f32, b: f32) -> OnCurve {
        let c = &self.ct_curve;
        let mut best = OnCurve {
            ct: c[0][0],
            r: c[0][1],
            b: c[0][2],
            transverse: f32::INFINITY,
        };
        let mut best_d = f32::INFINITY;
        for w in c.windows(2) {
            let (p, q) = (w[0], w[1]);
            let (dr, db) = (q[1] - p[1], q[2] - p[2]);
            let len2 = (dr * dr + db * db).max(1e-12);
            let t = (((r - p[1]) * dr + (b - p[2]) * db) / len2).clamp(0.0, 1.0);
            let (cr, cb) = (p[1] + t * dr, p[2] + t * db);
            let d = ((r - cr).powi(2) + (b - cb).powi(2)).sqrt();
            if d < best_d {
                best_d = d;
                // The side: along the normal (db, -dr), towards higher
                // r and b (less green: magenta) is positive.
                let side = (r - cr) * db - (b - cb) * dr;
                best = OnCurve {
                    // Linear in mired (1e6 / CT) along the segment.
                    ct: 1.0 / (1.0 / p[0] + t * (1.0 / q[0] - 1.0 / p[0])),
                    r: cr,
                    b: cb,
                    transverse: if side >= 0.0 { d } else { -d },
                };
            }
        }
        best
    }

    fn check(&self) -> Result<(), AlgoInitError> {
        let bad = |m: String| AlgoInitError {
            field: ".ct_curve".into(),
            message: m,
        };
        if self.ct_curve.len() < 2 {
            return Err(bad(format!(
                "needs at least 2 points, has {}",
                self.ct_curve.len()
            )));
        }
        let mut last = 0.0;
        for p in &self.ct_curve {
            if !(p[0] > last && p[1] > 0.0 && p[2] > 0.0 && p.iter().all(|v| v.is_finite())) {
                return Err(bad(format!(
                    "point {p:?}: colour temperatures must rise and ratios be > 0"
                )));
            }
            last = p[0];
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct CtCurveAwb {
    pub p: CtCurveParams,
}

/// What one frame's zones say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CtEstimate {
    pub on: OnCurve,
    /// Zones taken as grey (0: the mean of every usable zone was used).
    pub candidates: usize,
}

impl CtCurveAwb {
    /// The name tuning files use.
    pub const NAME: &'static str = "awb.ct_curve";

    pub fn estimate(&self, stats: &Stats3A) -> Option<CtEstimate> {
        let dark = self.p.dark_threshold * 65535.0;
        let (mut grey, mut all) = ([0.0f64; 3], [0.0f64; 3]);
        let mut n = 0;
        for z in &stats.zones {
            if z.quads == 0 || z.saturated > z.quads || z.mean[1] < dark || z.mean[1] <= 0.0 {
                continue;
            }
            let w = z.quads as f64;
            let (r, b) = (z.mean[0] / z.mean[1], z.mean[2] / z.mean[1]);
            for (a, m) in all.iter_mut().zip(z.mean) {
                *a += m as f64 * w;
            }
            let on = self.p.project(r, b);
            if on.transverse <= self.p.transverse_pos && on.transverse >= -self.p.transverse_neg {
                for (g, m) in grey.iter_mut().zip(z.mean) {
                    *g += m as f64 * w;
                }
                n += 1;
            }
        }
        let pick = if n > 0 { grey } else { all };
        if pick[1] <= 0.0 {
            return None;
        }
        let on = self
            .p
            .project((pick[0] / pick[1]) as f32, (pick[2] / pick[1]) as f32);
        Some(CtEstimate { on, candidates: n })
    }
}

impl Algorithm for CtCurveAwb {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn init(&mut self, params: &serde_json::Value) -> Result<(), AlgoInitError> {
        let p: CtCurveParams = super::parse_checked(params, CtCurveParams::FIELDS)?;
        p.check()?;
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
        let Some(e) = self.estimate(stats) else {
            r.metadata.push(("awb_valid".into(), 0.0));
            return;
        };
        let target = [1.0 / e.on.r, 1.0, 1.0 / e.on.b];
        let s = self.p.speed;
        super::approach(&mut r.next.wb_gains, target, s);
        let ct = &mut r.next.colour_temperature;
        *ct = if *ct > 0.0 {
            *ct + (e.on.ct - *ct) * s
        } else {
            e.on.ct
        };
        r.metadata
            .push(("awb_ct".into(), r.next.colour_temperature as f64));
        r.metadata.push(("awb_r".into(), r.next.wb_gains[0] as f64));
        r.metadata.push(("awb_b".into(), r.next.wb_gains[2] as f64));
        r.metadata
            .push(("awb_candidates".into(), e.candidates as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::awb::GreyWorldAwb;
    use crate::stages::demosaic::mosaic;
    use crate::stages::stats::{StatsParams, compute};
    use crate::types::BayerOrder;

    #[test]
    fn a_point_projects_onto_the_curve_with_its_side() {
        let p = CtCurveParams::default();
        let on = p.project(0.53, 0.63);
        assert!(
            (on.ct - 5000.0).abs() < 1.0 && on.transverse.abs() < 1e-6,
            "{on:?}"
        );
        let above = p.project(0.56, 0.70);
        let below = p.project(0.50, 0.56);
        assert!(
            above.transverse > 0.0 && below.transverse < 0.0,
            "{above:?} {below:?}"
        );
        // Past the ends, held there.
        assert_eq!(p.project(0.9, 0.3).ct, 2800.0);
        assert_eq!(p.project(0.3, 0.9).ct, 6500.0);
    }

    #[test]
    fn grey_zones_near_the_curve_win_over_coloured_ones() {
        // Half the frame a grey under 4000 K (r 0.60, b 0.55 on the
        // curve), half a saturated green: grey world is pulled off, the
        // curve's candidates are not.
        let (w, h) = (64, 48);
        let g = 20000.0f32;
        let img: Vec<u16> = (0..w * h)
            .flat_map(|i| {
                if (i % w) < w / 2 {
                    [(0.60 * g) as u16, g as u16, (0.55 * g) as u16]
                } else {
                    [3000, 30000, 4000]
                }
            })
            .collect();
        let m = crate::stages::lifted(&mosaic(BayerOrder::Rggb, w, h, &img));
        let stats = compute(&StatsParams::default(), BayerOrder::Rggb, w, h, &m);
        let mut awb = CtCurveAwb::default();
        awb.init(&serde_json::json!({"speed": 1.0})).unwrap();
        let mut r = AlgoResult::new(&IpaContext::default());
        awb.process(&stats, &mut r);
        let wb = r.next.wb_gains;
        assert!(
            (wb[0] - 1.0 / 0.60).abs() < 0.01 && (wb[2] - 1.0 / 0.55).abs() < 0.01,
            "{wb:?}"
        );
        assert!(
            (r.next.colour_temperature - 4000.0).abs() < 20.0,
            "{}",
            r.next.colour_temperature
        );
        let gw = GreyWorldAwb::default().estimate(&stats).unwrap();
        assert!(
            (gw[0] - 1.0 / 0.60).abs() > 0.3,
            "grey world is not pulled: {gw:?}"
        );
        // A curve that is not one is refused, naming the field.
        let e = CtCurveAwb::default()
            .init(&serde_json::json!({"ct_curve": [[5000, 0.5, 0.6]]}))
            .unwrap_err();
        assert_eq!(e.field, ".ct_curve");
    }
}
