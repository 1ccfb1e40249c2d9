//! ISP Studio's pixel side (ARCHITECTURE.md, layers 2 to 4 less fusion and
//! the controls): the CPU reference stages and the pixel chain
//! (`stages`), the 3A algorithms (`algorithms`), ONNX models (`models`,
//! ModelManager) and tuning files with the live parameters (`tuning`).
//! It knows `isp-core`'s formats and files, nothing of lanes, the GPU or
//! the engine; the engine re-exports each module under its own name.

#![cfg_attr(
    test,
    allow(
        clippy::needless_range_loop,
        clippy::too_many_arguments,
        clippy::field_reassign_with_default
    )
)]

// `crate::types` and `crate::image_io` read as in the engine.
use isp_core::{image_io, types};

pub mod algorithms;
pub mod models;
pub mod stages;
pub mod tuning;

pub use tuning::{ParamStore, Tuning};
