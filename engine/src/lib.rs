//! ISP Studio engine: the pipeline runtime (the seed's ResourceManager,
//! PlatformAllocator, ThreadingManager with two QoS lanes, stateless workers,
//! CompletionDispatcher, TelemetryManager, Housekeeper), the CPU reference
//! ISP stages, 3A algorithms, frame sources and recorded sessions.
//! No GUI dependency; the app and the `isp` CLI both use this API.
//! See ARCHITECTURE.md for the map.

#![cfg_attr(
    test,
    allow(
        clippy::needless_range_loop,
        clippy::too_many_arguments,
        clippy::field_reassign_with_default
    )
)]

// The lowest layers live in their own crate (`engine/core`), re-exported
// under their own names: `crate::types` and `isp_engine::types` as before.
pub use isp_core::{allocator, clock, image_io, resource_manager, telemetry, types};
/// DNG in and out (`engine/dng`, the crate `isp-dng`).
pub use isp_dng as dng;
/// FusionManager, burst and bracket merges (`engine/fusion`, `isp-fusion`).
pub use isp_fusion as fusion;
/// The stages, 3A algorithms, models and tuning (`engine/stages`,
/// `isp-stages`).
pub use isp_stages::{algorithms, models, stages, tuning};

pub mod bench;
pub mod calibrate;
pub mod completion_dispatcher;
pub mod controls;
pub mod envelope;
pub mod gpu;
pub mod housekeeper;
pub mod isp;
pub mod libcamera;
pub mod pipeline;
pub mod sources;
pub mod threading_manager;
pub mod worker_holds;

/// The demo session's files, embedded at build time (see build.rs).
pub mod demo {
    include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));
}

pub use pipeline::{Engine, EngineConfig, FrameResult, PathMode};
pub use tuning::{ParamStore, Tuning};
