//! The `isp` CLI end to end, on real files: every verb, its output and its
//! errors (exit status, the message naming what is wrong, what was written).

// The helpers outside `#[test]` functions fail the test by panicking, as the
// tests themselves do.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod bench;
mod calibrate;
mod capture;
mod colour;
mod common;
mod dng;
mod fuzz;
mod highlights;
mod process;
mod quiet;
mod record_info;
mod tuning;
