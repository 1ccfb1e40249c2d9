//! A still's 3A: before a still (a DNG, a single raw file) is rendered,
//! AWB and AE run on the frame's own statistics until they settle, as a raw
//! developer does. The frame cannot be exposed again, so AE's answer
//! becomes a digital gain after white balance (`IpaContext::digital_gain`).

use super::{Engine, EngineError};
use crate::algorithms::AlgoResult;
use crate::resource_manager::BufferRef;
use crate::sources::FrameMeta;
use crate::stages::stats;
use crate::types::RawFormat;

/// Runs of the algorithms at most; they settle in a handful.
const MAX_ROUNDS: usize = 64;

/// The digital gain's range.
const GAIN_RANGE: (f32, f32) = (1.0 / 16.0, 64.0);

/// What settling a still came to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StillSettle {
    pub wb_gains: [f32; 3],
    pub digital_gain: f32,
    pub rounds: usize,
    pub converged: bool,
}

impl Engine {
    /// Settle AWB and AE on the still in `raw` and make the result the 3A
    /// state its frame is rendered with. A note row says what it came to.
    pub(crate) fn settle_still(
        &self,
        raw: &BufferRef,
        fmt: RawFormat,
        meta: &FrameMeta,
    ) -> Result<StillSettle, EngineError> {
        let (params, start) = self.frame_params(fmt);
        let (w, h) = (fmt.width as usize, fmt.height as usize);
        let mut mosaic = vec![0u16; w * h];
        {
            let bytes = raw.read()?;
            crate::isp::raw_mosaic(&params, "still", bytes.bytes(), &mut mosaic)
                .map_err(|e| EngineError::Stage(e.to_string()))?;
        }
        let mut st = stats::compute(&params.stages.stats, fmt.bayer, w, h, &mosaic);
        st.shade(&params.stages.lens_shading, fmt.bayer);
        // AE works in ratios: it starts from the middle of its own range
        // (the frame's real exposure may lie outside the sensor limits it
        // plans within), and its answer over that start is the gain.
        let mut ctx = start;
        ctx.digital_gain = 1.0;
        ctx.exposure_us = crate::algorithms::IpaContext::default().exposure_us;
        ctx.analogue_gain = 1.0;
        let taken = ctx.exposure_us * ctx.analogue_gain;
        let mut k = 1.0f32;
        let mut rounds = 0;
        let mut converged = false;
        while rounds < MAX_ROUNDS {
            rounds += 1;
            let seen = st.scaled(k, params.stages.stats.saturation);
            let mut r = AlgoResult::new(&ctx);
            for a in params.algorithms.iter() {
                a.process(&seen, &mut r);
            }
            let before = ctx.exposure_us * ctx.analogue_gain;
            let after = r.next.exposure_us * r.next.analogue_gain;
            let wb_moved = (0..3)
                .map(|i| (r.next.wb_gains[i] / ctx.wb_gains[i].max(1e-6) - 1.0).abs())
                .fold(0.0f32, f32::max);
            ctx = r.next;
            k = (after / taken).clamp(GAIN_RANGE.0, GAIN_RANGE.1);
            if (after / before - 1.0).abs() < 1e-3 && wb_moved < 1e-4 {
                converged = true;
                break;
            }
        }
        let out = StillSettle {
            wb_gains: ctx.wb_gains,
            digital_gain: k,
            rounds,
            converged,
        };
        {
            let mut ipa = self.ipa.lock().unwrap_or_else(|p| p.into_inner());
            ipa.wb_gains = ctx.wb_gains;
            ipa.awb_active = ctx.awb_active;
            ipa.digital_gain = k;
            ipa.colour_temperature = ctx.colour_temperature;
            // The sensor did what it did: the context keeps the frame's own
            // exposure, and the gain makes up the rest.
            if meta.exposure_us > 0.0 {
                ipa.exposure_us = meta.exposure_us;
                ipa.analogue_gain = meta.analogue_gain;
            }
        }
        self.telemetry.note(
            "still",
            format!(
                "3A settled on the still's own statistics in {rounds} round(s){}: wb gains {:.3} {:.3} {:.3}, digital gain {k:.3}",
                if converged { "" } else { " (not converged)" },
                ctx.wb_gains[0],
                ctx.wb_gains[1],
                ctx.wb_gains[2],
            ),
        );
        Ok(out)
    }

    /// A source that is not a still renders with no digital gain.
    pub(crate) fn clear_digital_gain(&self) {
        let mut ipa = self.ipa.lock().unwrap_or_else(|p| p.into_inner());
        ipa.digital_gain = 1.0;
    }
}
