//! ISP Studio's lowest layers (ARCHITECTURE.md, layers 0 and 1): raw
//! formats and frames (`types`), the engine clock, the PlatformAllocator,
//! the ResourceManager, the TelemetryManager, and PNG and files written
//! whole (`image_io`). Nothing here knows a stage, a lane or the engine;
//! `isp-engine` re-exports each module under its own name.

#![cfg_attr(
    test,
    allow(
        clippy::needless_range_loop,
        clippy::too_many_arguments,
        clippy::field_reassign_with_default
    )
)]

pub mod allocator;
pub mod clock;
pub mod image_io;
pub mod resource_manager;
pub mod telemetry;
pub mod types;
