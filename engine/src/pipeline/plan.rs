//! The frame plan: how one frame travels through the lanes, declared once.
//!
//! A plan is a list of steps. Each step names its stage, the lane and the
//! stateless worker that run it, the frame buffers it reads and writes (by
//! [`Slot`]), the backend it needs, and whether the lane's result is
//! published after it. The router ([`super::router`]) runs any plan: the
//! steps of one lane run one after another in plan order, the lanes run side
//! by side, a buffer is allocated when the first step that writes it is
//! dispatched and released after the last step that uses it. A new stage
//! (fusion, a model, a denoiser) is a new entry here plus its worker.

use crate::envelope::{StageId, WorkerFn};
use crate::isp;
use crate::resource_manager::{BufferKind, BufferSpec};
use crate::types::{Lane, RawFormat};

/// A frame buffer, by the role it plays in the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The sensor's bytes (given at submit, never allocated by the router).
    Raw,
    /// 16-bit Bayer mosaic after unpack, black level and defect pixels.
    Mosaic,
    /// RGBA8 preview.
    Preview,
    /// RGB16 full-quality capture.
    Capture,
}

impl Slot {
    pub const COUNT: usize = 4;
    pub const ALL: [Slot; Slot::COUNT] = [Slot::Raw, Slot::Mosaic, Slot::Preview, Slot::Capture];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Slot::Raw => "raw",
            Slot::Mosaic => "mosaic",
            Slot::Preview => "preview",
            Slot::Capture => "capture",
        }
    }

    pub fn kind(self) -> BufferKind {
        match self {
            Slot::Raw => BufferKind::Raw,
            Slot::Mosaic => BufferKind::Bayer16,
            Slot::Preview => BufferKind::Rgba8,
            Slot::Capture => BufferKind::Rgb16,
        }
    }

    /// The buffer this slot needs for a frame of `format`.
    pub fn spec(self, format: &RawFormat) -> BufferSpec {
        match self {
            Slot::Raw => BufferSpec::raw(format.width, format.height, format.stride),
            s => BufferSpec::new(s.kind(), format.width, format.height),
        }
    }
}

/// What a step runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepBackend {
    Cpu,
    /// The envelope carries the engine's `GpuBackend`.
    Gpu,
}

/// One step of a frame's plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanStep {
    pub stage: StageId,
    pub lane: Lane,
    pub worker: WorkerFn,
    /// Buffers the worker reads, in the order of `Envelope::inputs`.
    pub reads: &'static [Slot],
    /// Buffers the worker writes, in the order of `Envelope::outputs`.
    pub writes: &'static [Slot],
    pub backend: StepBackend,
    /// After this step the lane's result goes to subscribers, with this
    /// buffer pinned for them (the preview or the capture).
    pub publishes: Option<Slot>,
}

impl PlanStep {
    /// A CPU step that publishes nothing.
    pub const fn cpu(
        stage: StageId,
        lane: Lane,
        worker: WorkerFn,
        reads: &'static [Slot],
        writes: &'static [Slot],
    ) -> Self {
        PlanStep {
            stage,
            lane,
            worker,
            reads,
            writes,
            backend: StepBackend::Cpu,
            publishes: None,
        }
    }

    pub const fn on_gpu(mut self) -> Self {
        self.backend = StepBackend::Gpu;
        self
    }

    pub const fn publishing(mut self, slot: Slot) -> Self {
        self.publishes = Some(slot);
        self
    }

    /// Every slot the step touches (reads, then writes).
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.reads.iter().chain(self.writes.iter()).copied()
    }
}

/// A plan that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("plan {plan}: {stage} appears twice on the {lane} lane")]
    Duplicate {
        plan: &'static str,
        stage: &'static str,
        lane: &'static str,
    },
    #[error("plan {plan}: {stage} reads {slot} before any step of its lane writes it")]
    ReadBeforeWrite {
        plan: &'static str,
        stage: &'static str,
        slot: &'static str,
    },
    #[error("plan {plan}: {stage} writes the raw buffer (it is given, read-only)")]
    WritesRaw {
        plan: &'static str,
        stage: &'static str,
    },
    #[error("plan {plan}: {stage} publishes {slot}, which it does not write or read")]
    PublishesUnknown {
        plan: &'static str,
        stage: &'static str,
        slot: &'static str,
    },
    #[error("plan {plan}: slot {slot} is written on both lanes")]
    SharedWrite {
        plan: &'static str,
        slot: &'static str,
    },
    #[error("plan {plan} has no steps")]
    Empty { plan: &'static str },
    #[error("plan {plan} has more than {max} steps")]
    TooLong { plan: &'static str, max: usize },
}

/// The steps a frame goes through, validated.
#[derive(Debug, Clone)]
pub struct FramePlan {
    name: &'static str,
    steps: Vec<PlanStep>,
}

impl FramePlan {
    /// The most steps one plan may have (a frame's progress is a bit set).
    pub const MAX_STEPS: usize = 32;

    /// Check the steps and build the plan. Steps of one lane run in the
    /// order given; a lane only reads what an earlier step of the same lane
    /// wrote (or the raw buffer), and no slot is written on both lanes.
    pub fn new(name: &'static str, steps: Vec<PlanStep>) -> Result<Self, PlanError> {
        if steps.is_empty() {
            return Err(PlanError::Empty { plan: name });
        }
        if steps.len() > Self::MAX_STEPS {
            return Err(PlanError::TooLong {
                plan: name,
                max: Self::MAX_STEPS,
            });
        }
        let mut writer_lane: [Option<Lane>; Slot::COUNT] = [None; Slot::COUNT];
        for (i, s) in steps.iter().enumerate() {
            if steps[..i]
                .iter()
                .any(|p| p.stage == s.stage && p.lane == s.lane)
            {
                return Err(PlanError::Duplicate {
                    plan: name,
                    stage: s.stage.name(),
                    lane: s.lane.name(),
                });
            }
            for &r in s.reads {
                let written = steps[..i]
                    .iter()
                    .any(|p| p.lane == s.lane && p.writes.contains(&r));
                if r != Slot::Raw && !written {
                    return Err(PlanError::ReadBeforeWrite {
                        plan: name,
                        stage: s.stage.name(),
                        slot: r.name(),
                    });
                }
            }
            for &w in s.writes {
                if w == Slot::Raw {
                    return Err(PlanError::WritesRaw {
                        plan: name,
                        stage: s.stage.name(),
                    });
                }
                match writer_lane[w.index()] {
                    Some(l) if l != s.lane => {
                        return Err(PlanError::SharedWrite {
                            plan: name,
                            slot: w.name(),
                        });
                    }
                    _ => writer_lane[w.index()] = Some(s.lane),
                }
            }
            if let Some(p) = s.publishes
                && !s.slots().any(|x| x == p)
            {
                return Err(PlanError::PublishesUnknown {
                    plan: name,
                    stage: s.stage.name(),
                    slot: p.name(),
                });
            }
        }
        Ok(FramePlan { name, steps })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn steps(&self) -> &[PlanStep] {
        &self.steps
    }

    /// The step that runs `stage` on `lane`.
    pub fn position(&self, stage: StageId, lane: Lane) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.stage == stage && s.lane == lane)
    }

    /// The first step of each lane the plan uses.
    pub fn lane_starts(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.steps.len())
            .filter(|&i| !self.steps[..i].iter().any(|p| p.lane == self.steps[i].lane))
    }

    /// The step after `i` on the same lane.
    pub fn next_on_lane(&self, i: usize) -> Option<usize> {
        let lane = self.steps.get(i)?.lane;
        (i + 1..self.steps.len()).find(|&j| self.steps[j].lane == lane)
    }

    /// How many steps use each slot (read or write): a slot's buffer is
    /// released when that many of them have ended.
    pub fn uses(&self) -> [u8; Slot::COUNT] {
        let mut u = [0u8; Slot::COUNT];
        for s in &self.steps {
            for slot in Slot::ALL {
                if s.slots().any(|x| x == slot) {
                    u[slot.index()] += 1;
                }
            }
        }
        u
    }

    /// Whether any step needs the GPU.
    pub fn needs_gpu(&self) -> bool {
        self.steps.iter().any(|s| s.backend == StepBackend::Gpu)
    }
}

/// The realtime lane on the CPU: RawISP -> RawAlgo -> FastISP (published) -> FastAlgo.
pub const REALTIME_CPU: [PlanStep; 4] = [
    PlanStep::cpu(
        StageId::RawIsp,
        Lane::Realtime,
        isp::raw_isp,
        &[Slot::Raw],
        &[Slot::Mosaic],
    ),
    PlanStep::cpu(
        StageId::RawAlgo,
        Lane::Realtime,
        isp::raw_algo,
        &[Slot::Mosaic],
        &[],
    ),
    PlanStep::cpu(
        StageId::FastIsp,
        Lane::Realtime,
        isp::fast_isp,
        &[Slot::Mosaic],
        &[Slot::Preview],
    )
    .publishing(Slot::Preview),
    PlanStep::cpu(StageId::FastAlgo, Lane::Realtime, isp::fast_algo, &[], &[]),
];

/// The realtime lane on the GPU: raw bytes -> preview + statistics in one
/// dispatch (published), then FastAlgo.
pub const REALTIME_GPU: [PlanStep; 2] = [
    PlanStep::cpu(
        StageId::FastIsp,
        Lane::Realtime,
        isp::gpu_preview,
        &[Slot::Raw],
        &[Slot::Preview],
    )
    .on_gpu()
    .publishing(Slot::Preview),
    PlanStep::cpu(StageId::FastAlgo, Lane::Realtime, isp::fast_algo, &[], &[]),
];

/// The background lane: SlowISP (published) -> SlowAlgo.
pub const BACKGROUND: [PlanStep; 2] = [
    PlanStep::cpu(
        StageId::SlowIsp,
        Lane::Background,
        isp::slow_isp,
        &[Slot::Raw],
        &[Slot::Capture],
    )
    .publishing(Slot::Capture),
    PlanStep::cpu(
        StageId::SlowAlgo,
        Lane::Background,
        isp::slow_algo,
        &[],
        &[],
    ),
];

/// A model stage (the tuning's ONNX model, see `algorithms::awb_model`) on
/// the background lane, from the raw bytes: added to a frame's plan when the
/// tuning enables one, on every n-th frame while that lane is free.
pub const MODEL: PlanStep = PlanStep::cpu(
    StageId::Model,
    Lane::Background,
    isp::model_stage,
    &[Slot::Raw],
    &[],
);

/// The engine's plans, built once: one per path and realtime backend, each
/// also with the [`MODEL`] step, and the replays (a frame made again after an
/// edit: the preview and its statistics, without FastAlgo, so the 3A state
/// stands still).
#[derive(Debug, Clone)]
pub struct StandardPlans {
    plans: [std::sync::Arc<FramePlan>; 14],
}

impl StandardPlans {
    pub fn new() -> Self {
        let build = |name, parts: &[&[PlanStep]]| {
            let steps = parts.iter().flat_map(|p| p.iter().copied()).collect();
            // The standard plans are checked by the tests below.
            std::sync::Arc::new(
                FramePlan::new(name, steps)
                    .unwrap_or_else(|e| unreachable!("the standard plans are valid: {e}")),
            )
        };
        StandardPlans {
            plans: [
                build("fast (cpu)", &[&REALTIME_CPU]),
                build("fast (gpu)", &[&REALTIME_GPU]),
                build("slow", &[&BACKGROUND]),
                build("slow", &[&BACKGROUND]),
                build("both (cpu)", &[&REALTIME_CPU, &BACKGROUND]),
                build("both (gpu)", &[&REALTIME_GPU, &BACKGROUND]),
                build("replay (cpu)", &[&REALTIME_CPU[..3]]),
                build("replay (gpu)", &[&REALTIME_GPU[..1]]),
                build("fast+model (cpu)", &[&REALTIME_CPU, &[MODEL]]),
                build("fast+model (gpu)", &[&REALTIME_GPU, &[MODEL]]),
                build("slow+model", &[&BACKGROUND, &[MODEL]]),
                build("slow+model", &[&BACKGROUND, &[MODEL]]),
                build("both+model (cpu)", &[&REALTIME_CPU, &BACKGROUND, &[MODEL]]),
                build("both+model (gpu)", &[&REALTIME_GPU, &BACKGROUND, &[MODEL]]),
            ],
        }
    }

    /// The plan for `path`, with the realtime lane on the GPU or not.
    pub fn get(&self, path: super::PathMode, gpu: bool) -> &std::sync::Arc<FramePlan> {
        let p = match path {
            super::PathMode::Fast => 0,
            super::PathMode::Slow => 2,
            super::PathMode::Both => 4,
        };
        &self.plans[p + usize::from(gpu)]
    }

    /// [`StandardPlans::get`] with the [`MODEL`] step on the background lane.
    pub fn with_model(&self, path: super::PathMode, gpu: bool) -> &std::sync::Arc<FramePlan> {
        let p = match path {
            super::PathMode::Fast => 8,
            super::PathMode::Slow => 10,
            super::PathMode::Both => 12,
        };
        &self.plans[p + usize::from(gpu)]
    }

    /// The replay plan, with the realtime lane on the GPU or not.
    pub fn replay(&self, gpu: bool) -> &std::sync::Arc<FramePlan> {
        &self.plans[6 + usize::from(gpu)]
    }
}

impl Default for StandardPlans {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PathMode;

    fn stages(p: &FramePlan) -> Vec<(&'static str, Lane)> {
        p.steps().iter().map(|s| (s.stage.name(), s.lane)).collect()
    }

    #[test]
    fn standard_plans_are_the_seed_chains() {
        let sp = StandardPlans::new();
        assert_eq!(
            stages(sp.get(PathMode::Fast, false)),
            [
                ("raw_isp", Lane::Realtime),
                ("raw_algo", Lane::Realtime),
                ("fast_isp", Lane::Realtime),
                ("fast_algo", Lane::Realtime)
            ]
        );
        let gpu = sp.get(PathMode::Fast, true);
        assert!(gpu.needs_gpu());
        assert_eq!(gpu.steps().len(), 2);
        assert!(!sp.get(PathMode::Slow, true).needs_gpu());
        let both = sp.get(PathMode::Both, false);
        assert_eq!(both.lane_starts().collect::<Vec<_>>(), [0, 4]);
        assert_eq!(both.next_on_lane(0), Some(1));
        assert_eq!(both.next_on_lane(3), None);
        assert_eq!(both.next_on_lane(4), Some(5));
        // Raw is read on both lanes, the mosaic by three realtime steps.
        assert_eq!(both.uses(), [2, 3, 1, 1]);
        assert_eq!(both.position(StageId::SlowAlgo, Lane::Background), Some(5));
        assert_eq!(both.position(StageId::SlowAlgo, Lane::Realtime), None);
        // Replays: the preview and its statistics, no 3A, no capture.
        assert_eq!(
            stages(sp.replay(false)),
            [
                ("raw_isp", Lane::Realtime),
                ("raw_algo", Lane::Realtime),
                ("fast_isp", Lane::Realtime),
            ]
        );
        assert_eq!(stages(sp.replay(true)), [("fast_isp", Lane::Realtime)]);
        // The model step joins the background lane, after what is there.
        for path in [PathMode::Fast, PathMode::Slow, PathMode::Both] {
            for gpu in [false, true] {
                let base = stages(sp.get(path, gpu));
                let with = stages(sp.with_model(path, gpu));
                assert_eq!(with[..base.len()], base[..]);
                assert_eq!(with[base.len()..], [("model", Lane::Background)]);
            }
        }
        assert_eq!(
            sp.with_model(PathMode::Fast, false).uses()[Slot::Raw.index()],
            2
        );
        assert!(sp.replay(true).needs_gpu());
    }

    #[test]
    fn invalid_plans_are_refused_with_a_reason() {
        let r = |reads, writes| {
            PlanStep::cpu(
                StageId::Model,
                Lane::Realtime,
                isp::fast_algo,
                reads,
                writes,
            )
        };
        assert!(matches!(
            FramePlan::new("x", vec![]),
            Err(PlanError::Empty { .. })
        ));
        assert!(matches!(
            FramePlan::new("x", vec![r(&[Slot::Mosaic], &[])]),
            Err(PlanError::ReadBeforeWrite { slot: "mosaic", .. })
        ));
        assert!(matches!(
            FramePlan::new("x", vec![r(&[], &[Slot::Raw])]),
            Err(PlanError::WritesRaw { .. })
        ));
        assert!(matches!(
            FramePlan::new("x", vec![r(&[], &[]), r(&[], &[])]),
            Err(PlanError::Duplicate { .. })
        ));
        let mut bg = r(&[], &[Slot::Mosaic]);
        bg.lane = Lane::Background;
        bg.stage = StageId::Fusion;
        assert!(matches!(
            FramePlan::new("x", vec![r(&[], &[Slot::Mosaic]), bg]),
            Err(PlanError::SharedWrite { .. })
        ));
        // A background step cannot read what only the realtime lane writes.
        let mut bg_read = r(&[Slot::Mosaic], &[]);
        bg_read.lane = Lane::Background;
        bg_read.stage = StageId::Fusion;
        assert!(matches!(
            FramePlan::new("x", vec![r(&[], &[Slot::Mosaic]), bg_read]),
            Err(PlanError::ReadBeforeWrite { .. })
        ));
        assert!(matches!(
            FramePlan::new("x", vec![r(&[], &[]).publishing(Slot::Preview)]),
            Err(PlanError::PublishesUnknown { .. })
        ));
        let many = (0..33).map(|_| r(&[], &[])).collect::<Vec<_>>();
        assert!(matches!(
            FramePlan::new("x", many),
            Err(PlanError::TooLong { .. })
        ));
    }
}
