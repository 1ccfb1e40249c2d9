//! From 3A results to sensor writes: the Coordinator runs the algorithms'
//! requested controls through a chain of Modifiers (sensor limits, flicker
//! avoidance, manual overrides), and the IoctlApplier schedules the writes so
//! that controls with different sensor latencies land on the same frame
//! (libcamera's DelayedControls). The writes go to the source: V4L2 controls
//! on a camera, the sensor model on a synthetic source.

use crate::algorithms::{Control, SensorConfig};
use std::collections::VecDeque;

/// One step of the chain.
pub trait Modifier: Send + std::fmt::Debug {
    fn name(&self) -> &'static str;
    fn modify(&mut self, controls: &mut Vec<Control>, sensor: &SensorConfig);
}

/// Clamp to the sensor's ranges; exposure in whole line times, gain in
/// whole steps of its control (where it has a step).
#[derive(Debug, Clone, Copy)]
pub struct SensorLimits {
    pub line_time_us: f32,
    pub gain_step: f32,
}

impl SensorLimits {
    pub const NAME: &'static str = "sensor_limits";
}

impl Default for SensorLimits {
    fn default() -> Self {
        SensorLimits {
            line_time_us: 10.0,
            gain_step: 0.0,
        }
    }
}

/// What a sensor allows: ranges, steps and the frames each control takes to
/// land. A camera reports it ([`crate::sources::FrameSource::sensor_caps`]);
/// the Coordinator and the IoctlApplier take it at the start of a feed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SensorCaps {
    pub config: SensorConfig,
    pub exposure_step_us: f32,
    pub gain_step: f32,
    pub delays: ControlDelays,
}

impl Modifier for SensorLimits {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn modify(&mut self, controls: &mut Vec<Control>, s: &SensorConfig) {
        for c in controls.iter_mut() {
            *c = match *c {
                Control::ExposureUs(e) => {
                    let e = e.clamp(s.min_exposure_us, s.max_exposure_us);
                    Control::ExposureUs(
                        ((e / self.line_time_us).floor() * self.line_time_us)
                            .max(self.line_time_us),
                    )
                }
                Control::AnalogueGain(g) => {
                    let g = g.clamp(s.min_gain, s.max_gain);
                    let g = if self.gain_step > 0.0 {
                        let q = s.min_gain
                            + ((g - s.min_gain) / self.gain_step).round() * self.gain_step;
                        q.min(s.max_gain)
                    } else {
                        g
                    };
                    Control::AnalogueGain(g)
                }
            }
        }
    }
}

/// Exposures longer than half a mains period become whole half-periods, so
/// lights on `hz` mains do not beat against the frame.
#[derive(Debug, Clone, Copy)]
pub struct FlickerAvoidance {
    pub hz: f32,
}

impl Modifier for FlickerAvoidance {
    fn name(&self) -> &'static str {
        "flicker_avoidance"
    }
    fn modify(&mut self, controls: &mut Vec<Control>, s: &SensorConfig) {
        let half = 1e6 / (2.0 * self.hz);
        let mut total = None;
        for c in controls.iter() {
            if let Control::ExposureUs(e) = c {
                total = Some(*e);
            }
        }
        let Some(e) = total else { return };
        if e < half {
            return;
        }
        let q = (e / half).floor() * half;
        // Keep the brightness: the lost exposure goes into gain.
        for c in controls.iter_mut() {
            match c {
                Control::ExposureUs(x) => *x = q,
                Control::AnalogueGain(g) => *g = (*g * e / q).clamp(s.min_gain, s.max_gain),
            }
        }
    }
}

/// Values the user fixed by hand win over the algorithms and every other
/// preference (flicker avoidance): only the sensor's own limits apply after
/// it. A manual exposure with automatic gain keeps the algorithm's total
/// exposure (shutter priority): the gain makes up the difference.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ManualOverride {
    pub exposure_us: Option<f32>,
    pub analogue_gain: Option<f32>,
}

impl ManualOverride {
    pub const NAME: &'static str = "manual_override";
}

impl Modifier for ManualOverride {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn modify(&mut self, controls: &mut Vec<Control>, s: &SensorConfig) {
        let asked = controls.iter().find_map(|c| match c {
            Control::ExposureUs(e) => Some(*e),
            _ => None,
        });
        for c in controls.iter_mut() {
            match c {
                Control::ExposureUs(x) => *x = self.exposure_us.unwrap_or(*x),
                Control::AnalogueGain(g) => {
                    *g = match (self.analogue_gain, self.exposure_us, asked) {
                        (Some(m), _, _) => m,
                        (None, Some(e), Some(a)) if e > 0.0 => {
                            (*g * a / e).clamp(s.min_gain, s.max_gain)
                        }
                        _ => *g,
                    }
                }
            }
        }
    }
}

/// Runs the Modifier chain.
#[derive(Debug)]
pub struct Coordinator {
    pub chain: Vec<Box<dyn Modifier>>,
    pub sensor: SensorConfig,
}

impl Coordinator {
    /// Flicker avoidance (50 Hz), then the manual override (it wins over
    /// what comes before it), then the sensor's limits.
    pub fn standard(sensor: SensorConfig) -> Self {
        Coordinator {
            chain: vec![
                Box::new(FlickerAvoidance { hz: 50.0 }),
                Box::new(ManualOverride::default()),
                Box::new(SensorLimits::default()),
            ],
            sensor,
        }
    }

    /// Set the manual values (`None` fields give control back). The
    /// override is found by name; a chain without one gets it just before
    /// the sensor limits (or at the end).
    pub fn set_manual(&mut self, manual: ManualOverride) {
        let named = |n: &str| self.chain.iter().position(|m| m.name() == n);
        match named(ManualOverride::NAME) {
            Some(i) => self.chain[i] = Box::new(manual),
            None => {
                let at = named(SensorLimits::NAME).unwrap_or(self.chain.len());
                self.chain.insert(at, Box::new(manual));
            }
        }
    }

    /// Take a sensor's ranges and steps: the limits modifier (found by name,
    /// added at the end if the chain has none) and the configuration every
    /// modifier sees.
    pub fn configure(&mut self, caps: &SensorCaps) {
        self.sensor = caps.config;
        let limits = SensorLimits {
            line_time_us: caps.exposure_step_us.max(1e-3),
            gain_step: caps.gain_step,
        };
        match self
            .chain
            .iter()
            .position(|m| m.name() == SensorLimits::NAME)
        {
            Some(i) => self.chain[i] = Box::new(limits),
            None => self.chain.push(Box::new(limits)),
        }
    }

    pub fn run(&mut self, controls: Vec<Control>) -> Vec<Control> {
        self.run_traced(controls).0
    }

    /// As [`Coordinator::run`], and what each modifier changed, as
    /// `name: before -> after` (the telemetry note says why AE's request was
    /// not what reached the sensor).
    pub fn run_traced(&mut self, mut controls: Vec<Control>) -> (Vec<Control>, Vec<String>) {
        let mut changes = Vec::new();
        for m in self.chain.iter_mut() {
            let before = controls.clone();
            m.modify(&mut controls, &self.sensor);
            for (b, a) in before.iter().zip(&controls) {
                if b != a {
                    changes.push(format!("{}: {b:?} -> {a:?}", m.name()));
                }
            }
        }
        (controls, changes)
    }
}

/// Frames between writing a control and the first frame it affects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControlDelays {
    pub exposure: u64,
    pub gain: u64,
}

impl Default for ControlDelays {
    fn default() -> Self {
        ControlDelays {
            exposure: 2,
            gain: 1,
        }
    }
}

impl ControlDelays {
    pub fn of(&self, c: &Control) -> u64 {
        match c {
            Control::ExposureUs(_) => self.exposure,
            Control::AnalogueGain(_) => self.gain,
        }
    }
    fn max(&self) -> u64 {
        self.exposure.max(self.gain)
    }
}

/// Schedules control writes so a set of controls takes effect together.
#[derive(Debug, Default)]
pub struct IoctlApplier {
    pub delays: ControlDelays,
    /// (frame at which to write, control).
    queue: VecDeque<(u64, Control)>,
}

impl IoctlApplier {
    pub fn new(delays: ControlDelays) -> Self {
        IoctlApplier {
            delays,
            queue: VecDeque::new(),
        }
    }

    /// Controls decided before frame `frame` is captured; they all take effect
    /// at `frame + max delay`. Returns that frame.
    ///
    /// Sets decided on consecutive frames overlap: the gain of one set is
    /// written a frame after its exposure, when the next set's exposure is
    /// written. A newer set replaces only writes aimed at its own target or
    /// later (none, as targets grow with the frame); the older set's
    /// remaining writes still go out, or it would never land whole.
    pub fn push(&mut self, frame: u64, controls: &[Control]) -> u64 {
        let target = frame + self.delays.max();
        let delays = self.delays;
        self.queue.retain(|(at, c)| at + delays.of(c) < target);
        for c in controls {
            self.queue.push_back((target - self.delays.of(c), *c));
        }
        self.queue.make_contiguous().sort_by_key(|e| e.0);
        target
    }

    /// The writes to issue before capturing frame `frame`.
    pub fn due(&mut self, frame: u64) -> Vec<Control> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|e| e.0 <= frame) {
            if let Some((_, c)) = self.queue.pop_front() {
                out.push(c);
            }
        }
        out
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_clamps_quantises_and_avoids_flicker() {
        let mut c = Coordinator::standard(SensorConfig::default());
        let out = c.run(vec![
            Control::ExposureUs(25_000.0),
            Control::AnalogueGain(1.0),
        ]);
        // 25 ms at 50 Hz -> 20 ms (two half-periods), gain makes up 1.25x.
        assert_eq!(out[0], Control::ExposureUs(20_000.0));
        assert!(matches!(out[1], Control::AnalogueGain(g) if (g - 1.25).abs() < 1e-5));
        // Each modifier says what it changed.
        let (_, why) = c.run_traced(vec![
            Control::ExposureUs(25_000.0),
            Control::AnalogueGain(1.0),
        ]);
        assert_eq!(
            why,
            [
                "flicker_avoidance: ExposureUs(25000.0) -> ExposureUs(20000.0)",
                "flicker_avoidance: AnalogueGain(1.0) -> AnalogueGain(1.25)"
            ]
        );
        let (_, why) = c.run_traced(vec![Control::ExposureUs(1234.5)]);
        assert_eq!(
            why,
            ["sensor_limits: ExposureUs(1234.5) -> ExposureUs(1230.0)"]
        );
        let out = c.run(vec![
            Control::ExposureUs(1234.5),
            Control::AnalogueGain(99.0),
        ]);
        assert_eq!(
            out,
            vec![Control::ExposureUs(1230.0), Control::AnalogueGain(16.0)]
        );
        c.set_manual(ManualOverride {
            exposure_us: Some(5000.0),
            analogue_gain: None,
        });
        assert_eq!(
            c.run_traced(vec![Control::ExposureUs(9000.0)]),
            (
                vec![Control::ExposureUs(5000.0)],
                vec!["manual_override: ExposureUs(9000.0) -> ExposureUs(5000.0)".to_string()]
            )
        );
    }

    #[test]
    fn a_manual_exposure_of_zero_leaves_aes_gain_alone() {
        // No exposure to trade against: the gain stays AE's (the sensor's
        // limits then lift the exposure to its shortest), never a division
        // by zero pinned at the largest gain.
        let mut m = ManualOverride {
            exposure_us: Some(0.0),
            analogue_gain: None,
        };
        let mut cs = vec![Control::ExposureUs(30_000.0), Control::AnalogueGain(2.0)];
        m.modify(&mut cs, &SensorConfig::default());
        assert_eq!(cs, [Control::ExposureUs(0.0), Control::AnalogueGain(2.0)]);
    }

    #[test]
    fn a_manual_exposure_wins_over_flicker_avoidance() {
        let mut c = Coordinator::standard(SensorConfig::default());
        c.set_manual(ManualOverride {
            exposure_us: Some(24_000.0),
            analogue_gain: None,
        });
        // The user fixed 24 ms, which flicker avoidance would make 20 ms;
        // the gain keeps AE's total exposure (30 ms x 1).
        let out = c.run(vec![
            Control::ExposureUs(30_000.0),
            Control::AnalogueGain(1.0),
        ]);
        assert_eq!(out[0], Control::ExposureUs(24_000.0));
        assert!(
            matches!(out[1], Control::AnalogueGain(g) if (g - 1.25).abs() < 1e-5),
            "{out:?}"
        );
        // Setting it again replaces the override, it does not add one.
        c.set_manual(ManualOverride {
            exposure_us: None,
            analogue_gain: Some(2.0),
        });
        assert_eq!(
            c.chain
                .iter()
                .filter(|m| m.name() == ManualOverride::NAME)
                .count(),
            1
        );
        let out = c.run(vec![
            Control::ExposureUs(25_000.0),
            Control::AnalogueGain(1.0),
        ]);
        assert_eq!(
            out,
            [Control::ExposureUs(20_000.0), Control::AnalogueGain(2.0)]
        );
        // Only the sensor's limits come after it.
        c.set_manual(ManualOverride {
            exposure_us: Some(99_000.0),
            analogue_gain: Some(1.0),
        });
        let out = c.run(vec![
            Control::ExposureUs(1000.0),
            Control::AnalogueGain(1.0),
        ]);
        assert_eq!(
            out,
            [Control::ExposureUs(33_000.0), Control::AnalogueGain(1.0)]
        );
        // A chain without an override gets one before the sensor limits.
        let mut bare = Coordinator {
            chain: vec![Box::new(SensorLimits::default())],
            sensor: SensorConfig::default(),
        };
        bare.set_manual(ManualOverride {
            exposure_us: Some(5000.0),
            analogue_gain: None,
        });
        let names: Vec<_> = bare.chain.iter().map(|m| m.name()).collect();
        assert_eq!(names, ["manual_override", "sensor_limits"]);
    }

    #[test]
    fn applier_lines_controls_up_on_one_frame() {
        let mut a = IoctlApplier::new(ControlDelays {
            exposure: 2,
            gain: 1,
        });
        let target = a.push(
            10,
            &[Control::ExposureUs(5000.0), Control::AnalogueGain(2.0)],
        );
        assert_eq!(target, 12);
        assert_eq!(a.pending(), 2);
        assert_eq!(a.due(9), vec![]);
        assert_eq!(a.due(10), vec![Control::ExposureUs(5000.0)]);
        assert_eq!(a.due(11), vec![Control::AnalogueGain(2.0)]);
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn sets_decided_every_frame_all_land() {
        // AE decides every frame: each set's gain still goes out, a frame
        // after its exposure, beside the next set's exposure.
        let mut a = IoctlApplier::new(ControlDelays {
            exposure: 2,
            gain: 1,
        });
        let mut written = Vec::new();
        for f in 0..4u64 {
            let k = f as f32 + 1.0;
            a.push(
                f,
                &[Control::ExposureUs(1000.0 * k), Control::AnalogueGain(k)],
            );
            written.push(a.due(f));
        }
        written.push(a.due(4));
        assert_eq!(
            written,
            [
                vec![Control::ExposureUs(1000.0)],
                vec![Control::AnalogueGain(1.0), Control::ExposureUs(2000.0)],
                vec![Control::AnalogueGain(2.0), Control::ExposureUs(3000.0)],
                vec![Control::AnalogueGain(3.0), Control::ExposureUs(4000.0)],
                vec![Control::AnalogueGain(4.0)],
            ]
        );
    }
}
