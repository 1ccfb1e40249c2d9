//! What an engine is built from, and how it fails.

use crate::algorithms::SensorConfig;
use crate::allocator::AllocatorKind;
use crate::gpu::{Backend, GpuContext, GpuError};
use crate::housekeeper::HousekeeperConfig;
use crate::resource_manager::{PoolConfig, RmError};
use crate::sources::SourceError;
use crate::threading_manager::ThreadingConfig;
use std::sync::Arc;

/// Which pipeline a frame goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathMode {
    /// Realtime preview (RGBA8).
    Fast,
    /// Background capture (RGB16, full quality).
    Slow,
    /// Both, per frame.
    Both,
}

impl PathMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fast" => Some(Self::Fast),
            "slow" => Some(Self::Slow),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub allocator: AllocatorKind,
    pub pool: PoolConfig,
    pub threading: ThreadingConfig,
    pub housekeeper: HousekeeperConfig,
    pub path: PathMode,
    /// Slow path writes linear RGB16 instead of display-encoded.
    pub linear_output: bool,
    /// Frames allowed in flight before `feed` waits (offline sources).
    pub max_in_flight: usize,
    pub sensor: SensorConfig,
    /// Which backend runs the preview (`Cpu` by default in the library; the
    /// CLI and the app default to `Auto`).
    pub backend: Backend,
    /// A GPU device to adopt instead of creating one (the app's eframe device).
    pub gpu_context: Option<Arc<GpuContext>>,
    /// Sealed telemetry chunks (4096 events each) kept in memory; older ones
    /// are spilled to an unnamed file in `telemetry_spill_dir` (the system's
    /// temporary folder when `None`).
    pub telemetry_memory_chunks: usize,
    pub telemetry_spill_dir: Option<std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            allocator: AllocatorKind::Auto,
            pool: PoolConfig::default(),
            threading: ThreadingConfig::default(),
            housekeeper: HousekeeperConfig::default(),
            path: PathMode::Fast,
            linear_output: false,
            max_in_flight: 3,
            sensor: SensorConfig::default(),
            backend: Backend::Cpu,
            gpu_context: None,
            telemetry_memory_chunks: 16,
            telemetry_spill_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("allocator: {0}")]
    Alloc(#[from] crate::allocator::AllocError),
    #[error("buffers: {0}")]
    Buffer(#[from] RmError),
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("the engine is shut down")]
    Closed,
    #[error("GPU backend: {0}")]
    Gpu(#[from] GpuError),
    #[error("frame plan: {0}")]
    Plan(String),
    #[error("{0}")]
    Stage(String),
    #[error("telemetry: {0}")]
    Telemetry(String),
}

/// What runs the realtime preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveBackend {
    /// The GPU, on this adapter.
    Gpu { adapter: String },
    /// The CPU, and why: asked for, `auto`'s reason, or the GPU fault after
    /// which `auto` moved here.
    Cpu { why: String },
}

impl ActiveBackend {
    pub fn is_gpu(&self) -> bool {
        matches!(self, ActiveBackend::Gpu { .. })
    }
}

impl std::fmt::Display for ActiveBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActiveBackend::Gpu { adapter } => write!(f, "gpu: {adapter}"),
            ActiveBackend::Cpu { why } => write!(f, "cpu ({why})"),
        }
    }
}

impl serde::Serialize for ActiveBackend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
