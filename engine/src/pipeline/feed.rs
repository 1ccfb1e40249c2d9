//! Feeding: frames from a source into the engine, and the sensor controls
//! the algorithms ask for on their way back to the source (Coordinator,
//! IoctlApplier).

use super::{Engine, EngineError};
use crate::algorithms::Control;
use crate::sources::FrameSource;
use crate::sources::camera::controls::ControlInfo;
use std::time::Duration;

/// The feeder's view of a device with controls of its own (a camera): what
/// the user asked to set by hand, the controls as last read, frames lost.
#[derive(Debug, Default)]
pub(crate) struct DeviceSide {
    requests: Vec<(u32, i64)>,
    controls: Vec<ControlInfo>,
    dropped: u64,
    /// Frames lent by the source (no copy) and copied, in this engine.
    delivery: crate::sources::camera::Delivery,
    /// The frame whose 3A results to wait for before the next live frame
    /// is read (kept across feeds: a player feeds one frame at a time).
    algo_target: Option<u64>,
}

impl Engine {
    /// Controls the algorithms asked for since the last call.
    pub fn take_controls(&self) -> Vec<Control> {
        std::mem::take(&mut *self.controls.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Read frames from `source` and submit them, at most `limit`. Offline
    /// sources wait for a free slot (no frame is dropped); live sources never
    /// wait (the realtime lane drops its oldest when it is full). Controls from AE are applied to the source between frames.
    /// `on_submit` sees each frame id. Returns the frames submitted.
    pub fn feed(
        &self,
        source: &mut dyn FrameSource,
        limit: Option<u64>,
        on_submit: impl FnMut(u64),
    ) -> Result<u64, EngineError> {
        self.feed_with(source, limit, false, on_submit)
    }

    /// [`Engine::feed`] of frames made again ([`Engine::submit_replay`]):
    /// no 3A runs on them, the controls pending still reach the source.
    pub fn feed_replay(
        &self,
        source: &mut dyn FrameSource,
        limit: Option<u64>,
        on_submit: impl FnMut(u64),
    ) -> Result<u64, EngineError> {
        self.feed_with(source, limit, true, on_submit)
    }

    fn feed_with(
        &self,
        source: &mut dyn FrameSource,
        limit: Option<u64>,
        replay: bool,
        mut on_submit: impl FnMut(u64),
    ) -> Result<u64, EngineError> {
        let fmt = source.format();
        if let Some(caps) = source.sensor_caps() {
            let mut g = self.controls_out.lock().unwrap_or_else(|p| p.into_inner());
            let (coordinator, applier, _) = &mut *g;
            if coordinator.sensor != caps.config || applier.delays != caps.delays {
                coordinator.configure(&caps);
                applier.delays = caps.delays;
                // AE plans within the sensor's own ranges.
                self.params.set_sensor(caps.config);
                self.telemetry.note(
                    "coordinator",
                    format!("sensor of {}: {caps:?}", source.name()),
                );
            }
        }
        self.device().controls = source.device_controls();
        let stills = source.stills() && !replay;
        if !source.stills() {
            self.clear_digital_gain();
        }
        let mut n = 0;
        // On a live source, 3A's answer to the frame just submitted is
        // worth waiting for (up to half a frame): written during the next
        // frame's exposure it lands a frame sooner than at the next read.
        let wait_for_algo = (source.is_live() && !replay)
            .then(|| Duration::from_secs_f32(0.5 / source.fps().unwrap_or(30.0).max(1.0)));
        while limit.is_none_or(|l| n < l) {
            if let Some(max) = wait_for_algo {
                let target = self.device().algo_target.take();
                if let Some(target) = target {
                    self.wait_for_algo(target, max);
                }
            }
            if !source.is_live() {
                while !self
                    .launcher
                    .in_flight
                    .wait_below(self.config.max_in_flight, Duration::from_millis(200))
                {
                    // Shut down with frames still counted in flight (their
                    // work cancelled): no slot will come, so stop waiting
                    // for one (the studio's exit while its player fed).
                    if self.threading.is_shut_down() {
                        return Err(EngineError::Closed);
                    }
                }
            }
            self.apply_controls(source)?;
            let (buf, meta) = match source.next_lent(&self.rm)? {
                Some(lent) => {
                    self.device().delivery.lent += 1;
                    lent
                }
                None => {
                    let buf = self.acquire_raw(&fmt)?;
                    let meta = {
                        let mut m = buf.write()?;
                        source.next_frame(m.bytes_mut())
                    };
                    match meta {
                        Ok(Some(m)) => {
                            self.device().delivery.copied += 1;
                            (buf, m)
                        }
                        Ok(None) => {
                            self.discard(buf);
                            break;
                        }
                        Err(e) => {
                            self.discard(buf);
                            return Err(e.into());
                        }
                    }
                }
            };
            if meta.dropped_before > 0 {
                self.device().dropped += meta.dropped_before;
                self.telemetry.note(
                    "camera",
                    format!(
                        "{}: {} frame(s) lost before sequence {}",
                        source.name(),
                        meta.dropped_before,
                        meta.sequence
                    ),
                );
            }
            if stills && let Err(e) = self.settle_still(&buf, fmt, &meta) {
                self.discard(buf);
                return Err(e);
            }
            let id = self.start_frame(buf, meta, fmt, replay)?;
            if wait_for_algo.is_some() {
                self.device().algo_target = Some(id);
            }
            on_submit(id);
            n += 1;
        }
        Ok(n)
    }

    /// Run the algorithms' latest controls through the Coordinator's chain,
    /// schedule them with the IoctlApplier and write what is due before the
    /// next frame is captured.
    fn apply_controls(&self, source: &mut dyn FrameSource) -> Result<(), EngineError> {
        let requested = self.take_controls();
        let mut g = self.controls_out.lock().unwrap_or_else(|p| p.into_inner());
        let (coordinator, applier, frame) = &mut *g;
        if !requested.is_empty() {
            let (modified, changes) = coordinator.run_traced(requested);
            let target = applier.push(*frame, &modified);
            let why = if changes.is_empty() {
                String::new()
            } else {
                format!(" ({})", changes.join("; "))
            };
            self.telemetry.note(
                "coordinator",
                format!("{modified:?} take effect at frame {target}{why}"),
            );
        }
        let due = applier.due(*frame);
        *frame += 1;
        drop(g);
        // A refused write (a control grabbed while streaming, one made
        // inactive by an auto mode) is logged; the stream goes on. A device
        // that is gone says so at the next frame.
        if !due.is_empty()
            && let Err(e) = source.set_controls(&due)
        {
            self.telemetry.note("ioctl", format!("refused: {e}"));
        }
        let asked = std::mem::take(&mut self.device().requests);
        for (id, v) in asked {
            if let Err(e) = source.set_device_control(id, v) {
                self.telemetry.note("ioctl", format!("refused: {e}"));
            }
        }
        let applied = source.take_applied();
        if !applied.is_empty() {
            for a in applied {
                self.telemetry
                    .note("ioctl", format!("{}: {a}", source.name()));
            }
            self.device().controls = source.device_controls();
        }
        Ok(())
    }

    /// Wait (polling, at most `max`) until 3A's results of frame `frame`
    /// (or a newer one) are in: not a late result of an older frame.
    fn wait_for_algo(&self, frame: u64, max: Duration) {
        let t0 = std::time::Instant::now();
        while self.ipa().newest_frame < frame && t0.elapsed() < max {
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    fn device(&self) -> std::sync::MutexGuard<'_, DeviceSide> {
        self.device.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set one of the device's own controls (a camera's exposure, test
    /// pattern, flips ...) by hand: written before the next frame is read.
    /// Exposure and gain set this way are overwritten by AE unless they are
    /// also fixed with [`Engine::set_manual_controls`].
    pub fn set_device_control(&self, id: u32, value: i64) {
        self.device().requests.push((id, value));
    }

    /// The device's controls as last read or written (empty for sources
    /// without any).
    pub fn device_controls(&self) -> Vec<ControlInfo> {
        self.device().controls.clone()
    }

    /// Frames the device lost (sequence gaps) in this engine's feeds.
    pub fn device_dropped(&self) -> u64 {
        self.device().dropped
    }

    /// How this engine's frames came from their sources: lent (the source's
    /// own buffer, no copy) or copied into a pooled buffer.
    pub fn delivery(&self) -> crate::sources::camera::Delivery {
        self.device().delivery
    }

    /// Manual exposure/gain that win over AE (None gives control back).
    pub fn set_manual_controls(&self, exposure_us: Option<f32>, analogue_gain: Option<f32>) {
        let mut g = self.controls_out.lock().unwrap_or_else(|p| p.into_inner());
        g.0.set_manual(crate::controls::ManualOverride {
            exposure_us,
            analogue_gain,
        });
    }
}
