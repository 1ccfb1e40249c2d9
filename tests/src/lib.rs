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

/// The Python with the reference tools (`scripts/pyref.sh`: rawpy, LibRaw):
/// `$ISP_REF_PYTHON`, else the workspace's `target/pyref`. `None` when
/// neither is there, which fails the calling test in CI (`CI=true`).
pub fn reference_python() -> Option<PathBuf> {
    let p = std::env::var_os("ISP_REF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyref/bin/python")
        });
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{}: no reference Python (run scripts/pyref.sh)",
        p.display()
    );
    eprintln!(
        "skipped: no reference Python at {} (run scripts/pyref.sh)",
        p.display()
    );
    None
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
