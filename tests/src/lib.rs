//! Helpers for the end-to-end tests: where the `isp` binary is.

use std::path::PathBuf;

/// The `isp` binary built by this workspace (cargo builds it for the tests).
pub fn isp_bin() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test executable path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("isp");
    if !bin.exists() {
        // Built on demand when only this package's tests were asked for.
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "isp-engine", "--bin", "isp"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the isp binary failed");
    }
    bin
}
