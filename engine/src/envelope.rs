//! Envelope and CompletionEvent: what travels through the lanes.
//!
//! An envelope names a frame, the stateless worker to run, its pinned buffers,
//! the parameter snapshot (with its version) and the lane. Workers are plain
//! `fn` pointers: `fn(&Envelope) -> Result<StageOutput, StageError>`, so they
//! cannot hold state between calls.

use crate::algorithms::{AlgoResult, IpaContext};
use crate::resource_manager::BufferRef;
use crate::stages::stats::Stats3A;
use crate::tuning::FrameParams;
use crate::types::{Lane, Outcome};
use std::sync::Arc;

/// A stateless stage worker.
pub type WorkerFn = fn(&Envelope) -> Result<StageOutput, StageError>;

/// The seed's component names for the pipeline steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageId {
    RawIsp,
    RawAlgo,
    FastIsp,
    FastAlgo,
    SlowIsp,
    SlowAlgo,
    Fusion,
    Model,
    Noop,
}

impl StageId {
    pub fn name(self) -> &'static str {
        match self {
            StageId::RawIsp => "raw_isp",
            StageId::RawAlgo => "raw_algo",
            StageId::FastIsp => "fast_isp",
            StageId::FastAlgo => "fast_algo",
            StageId::SlowIsp => "slow_isp",
            StageId::SlowAlgo => "slow_algo",
            StageId::Fusion => "fusion",
            StageId::Model => "model",
            StageId::Noop => "noop",
        }
    }
}

/// What a worker hands back besides its output buffers.
#[derive(Debug, Default)]
pub enum StageOutput {
    #[default]
    None,
    Stats(Box<Stats3A>),
    Algo(Box<AlgoResult>),
    /// The GPU preview's statistics, timings, and a note when it fell back.
    Gpu(Box<GpuOutput>),
    /// A multi-frame merge's report (the merged mosaic is in its output).
    Fusion(Box<crate::fusion::FusionDone>),
    /// A model stage's estimate (folded into the 3A context by the router).
    Model(Box<crate::algorithms::ModelEstimate>),
}

/// What the GPU preview worker hands the router besides the image.
#[derive(Debug)]
pub struct GpuOutput {
    pub stats: Stats3A,
    /// `None` when the frame ran on the CPU after a fault.
    pub timings: Option<crate::gpu::GpuTimings>,
    /// Set when this frame switched the engine to the CPU.
    pub switched: Option<String>,
}

/// A worker's failure.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StageError {
    #[error("buffer: {0}")]
    Buffer(#[from] crate::resource_manager::RmError),
    #[error("{stage}: {message}")]
    Invalid {
        stage: &'static str,
        message: String,
    },
}

/// Data a stage needs that is not a frame buffer.
#[derive(Debug, Default, Clone)]
pub enum Payload {
    #[default]
    None,
    Stats(Arc<Stats3A>),
    /// A multi-frame merge: what to merge and whom to tell.
    Fusion(Arc<crate::fusion::FusionJob>),
}

/// One unit of work for a lane.
#[derive(Debug)]
pub struct Envelope {
    pub frame_id: u64,
    pub stage: StageId,
    pub lane: Lane,
    pub worker: WorkerFn,
    /// Pinned buffers the stage reads.
    pub inputs: Vec<BufferRef>,
    /// Pinned buffers the stage writes.
    pub outputs: Vec<BufferRef>,
    /// The owner name under which `inputs` and `outputs` are pinned.
    pub pin_owner: String,
    pub params: Arc<FrameParams>,
    pub ipa: IpaContext,
    pub payload: Payload,
    pub enqueue_ns: u64,
    pub deadline_ns: Option<u64>,
    /// Whether the dispatcher continues the frame's chain after this stage.
    pub continuation: bool,
    /// The GPU this envelope's worker runs on (GPU workers only).
    pub gpu: Option<Arc<crate::gpu::GpuBackend>>,
}

impl Envelope {
    /// An envelope with no buffers, payload, deadline or GPU: what a bench,
    /// a test, or a caller filling in the rest starts from.
    pub fn new(
        frame_id: u64,
        stage: StageId,
        lane: Lane,
        worker: WorkerFn,
        params: Arc<FrameParams>,
    ) -> Self {
        Envelope {
            frame_id,
            stage,
            lane,
            worker,
            inputs: Vec::new(),
            outputs: Vec::new(),
            pin_owner: String::new(),
            params,
            ipa: IpaContext::default(),
            payload: Payload::None,
            enqueue_ns: 0,
            deadline_ns: None,
            continuation: false,
            gpu: None,
        }
    }

    pub fn params_version(&self) -> u64 {
        self.params.version
    }
    /// Ids of every buffer the envelope pins.
    pub fn buffer_indices(&self) -> Vec<u32> {
        self.inputs
            .iter()
            .chain(self.outputs.iter())
            .map(|b| b.id.index)
            .collect()
    }
}

/// The one completion each envelope produces.
#[derive(Debug)]
pub struct CompletionEvent {
    pub envelope: Envelope,
    pub outcome: Outcome,
    pub output: StageOutput,
    pub error: Option<String>,
    pub worker: Option<u16>,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl CompletionEvent {
    /// A completion for an envelope that never ran.
    pub fn unrun(envelope: Envelope, outcome: Outcome, why: &str) -> Self {
        let t = crate::clock::now_ns();
        CompletionEvent {
            envelope,
            outcome,
            output: StageOutput::None,
            error: Some(why.to_string()),
            worker: None,
            start_ns: t,
            end_ns: t,
        }
    }
}

/// Where the lanes hand every finished envelope: the CompletionDispatcher's
/// inbox in the engine, a plain channel in tests. The lanes know nothing of
/// what comes after them.
#[derive(Clone)]
pub struct CompletionSink(Arc<dyn Fn(CompletionEvent) + Send + Sync>);

impl CompletionSink {
    pub fn new(f: impl Fn(CompletionEvent) + Send + Sync + 'static) -> Self {
        CompletionSink(Arc::new(f))
    }

    /// Hand over one completion. Whoever receives them outlives the lanes;
    /// a receiver gone means the whole engine is being torn down, and then
    /// there is nobody to tell.
    pub fn send(&self, ev: CompletionEvent) {
        (self.0)(ev)
    }
}

impl std::fmt::Debug for CompletionSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompletionSink")
    }
}

impl From<crossbeam_channel::Sender<CompletionEvent>> for CompletionSink {
    fn from(tx: crossbeam_channel::Sender<CompletionEvent>) -> Self {
        CompletionSink::new(move |ev| {
            let _ = tx.send(ev);
        })
    }
}
