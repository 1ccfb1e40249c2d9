//! A capture's read phase: the plan's frames from the source into its
//! reserved buffers (a bracket's exposures set and waited for), unpacked and
//! measured on the background lane's threads.

use super::plan_err;
use crate::algorithms::Control;
use crate::fusion::{Candidate, FrameInfo, FusionKind, FusionPlan};
use crate::pipeline::{Engine, EngineError};
use crate::resource_manager::BufferRef;
use crate::sources::{FrameMeta, FrameSource};
use crate::stages::{stats, unpack};

impl Engine {
    /// Read the plan's frames into its buffers (committed at the first
    /// frame's arrival). A bracket sets each step's exposure first and waits
    /// for a frame made with it.
    #[allow(clippy::type_complexity)]
    pub(super) fn read_frames(
        &self,
        source: &mut dyn FrameSource,
        plan: &FusionPlan,
        committed: &mut Vec<BufferRef>,
    ) -> Result<(Vec<FrameMeta>, Vec<Vec<u8>>, Vec<Candidate>), EngineError> {
        let fmt = plan.format;
        let (w, h) = (fmt.width as usize, fmt.height as usize);
        let mut raw = vec![0u8; fmt.frame_bytes()];
        let read =
            |source: &mut dyn FrameSource, raw: &mut Vec<u8>| -> Result<FrameMeta, EngineError> {
                match source.next_frame(raw)? {
                    Some(m) => Ok(m),
                    None => Err(plan_err(format!(
                        "plan {}: {} ended before the frames were in",
                        plan.id,
                        source.name()
                    ))),
                }
            };
        // A bracket's steps: the exposure metered now, times 2^EV.
        let targets: Vec<Option<f32>> = match &plan.kind {
            FusionKind::Burst { frames } => vec![None; *frames],
            FusionKind::Bracket { ev } => {
                let m = read(source, &mut raw)?;
                let metered = m.exposure_us * m.analogue_gain.max(1e-3);
                if metered <= 0.0 {
                    return Err(plan_err(format!(
                        "{}: reports no exposure, so it cannot bracket",
                        source.name()
                    )));
                }
                ev.iter().map(|e| Some(metered * e.exp2())).collect()
            }
        };
        let sensor = self.params.sensor();
        let restore = targets.first().copied().flatten().map(|_| {
            let ipa = self.ipa();
            (ipa.exposure_us, ipa.analogue_gain)
        });
        let mut metas = Vec::new();
        let mut raws = Vec::new();
        let mut cands = Vec::new();
        let result = (|| {
            for target in &targets {
                let meta = match target {
                    None => read(source, &mut raw)?,
                    Some(t) => {
                        let exposure = t.min(sensor.max_exposure_us).max(sensor.min_exposure_us);
                        let gain = (t / exposure).clamp(sensor.min_gain, sensor.max_gain);
                        source.set_controls(&[
                            Control::ExposureUs(exposure),
                            Control::AnalogueGain(gain),
                        ])?;
                        let mut landed = None;
                        for _ in 0..12 {
                            let m = match source.next_frame(&mut raw)? {
                                Some(m) => m,
                                None => break,
                            };
                            let got = m.exposure_us * m.analogue_gain;
                            if (got / t - 1.0).abs() < 0.1 {
                                landed = Some(m);
                                break;
                            }
                        }
                        landed.ok_or_else(|| {
                            plan_err(format!(
                                "plan {}: {} did not take an exposure of {:.0} us in 12 frames \
                                 (a recorded session keeps the exposures it was recorded with)",
                                plan.id,
                                source.name(),
                                t
                            ))
                        })?
                    }
                };
                if committed.is_empty() {
                    *committed = self.fusion.commit(&self.rm, plan)?;
                }
                let i = metas.len();
                // Unpacked and measured on the background lane's threads: the
                // caller waits, the realtime lane does not.
                let buf = &committed[i];
                let focus = self.threading.on_background_pool(|| {
                    {
                        let mut m = buf.write()?;
                        unpack::unpack_par(&fmt, &raw, &mut m.u16s_mut()[..w * h])
                            .map_err(|e| plan_err(format!("plan {}: {e}", plan.id)))?;
                    }
                    let m = buf.read()?;
                    Ok::<f64, EngineError>(
                        stats::compute(
                            &stats::StatsParams::default(),
                            fmt.bayer,
                            w,
                            h,
                            &m.u16s()[..w * h],
                        )
                        .focus,
                    )
                })?;
                cands.push(Candidate {
                    meta: FrameInfo {
                        sequence: meta.sequence,
                        dropped_before: meta.dropped_before,
                        exposure_us: meta.exposure_us,
                        analogue_gain: meta.analogue_gain,
                    },
                    focus,
                });
                raws.push(raw.clone());
                metas.push(meta);
            }
            Ok::<(), EngineError>(())
        })();
        if let Some((e, g)) = restore {
            let _ = source.set_controls(&[Control::ExposureUs(e), Control::AnalogueGain(g)]);
        }
        result.map(|()| (metas, raws, cands))
    }
}
