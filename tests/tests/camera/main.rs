//! The `isp` CLI against the virtual camera, in a test binary of its own:
//! cargo runs test binaries one after the other, so these never run beside
//! the CLI's CPU-loading bench tests, and among themselves one at a time.

// The helpers outside `#[test]` functions fail the test by panicking, as the
// tests themselves do.
#![allow(clippy::unwrap_used)]

mod camera;
#[path = "../cli/common.rs"]
#[allow(dead_code)]
mod common;
