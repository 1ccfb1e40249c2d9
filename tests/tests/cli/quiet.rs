//! On the CPU backend nothing but `isp` speaks: no wgpu instance, so no Mesa
//! or Vulkan loader lines on a machine without a display; with `auto` the
//! GPU probe stays quiet too.

use crate::common::*;

/// Every stderr line is the CLI's own.
#[track_caller]
fn only_isp_lines(r: &Run) {
    for l in r.stderr.lines() {
        assert!(
            l.starts_with("isp: "),
            "isp {:?}: a foreign stderr line {l:?} in:\n{}",
            r.args,
            r.stderr
        );
    }
}

#[test]
fn the_cpu_backend_never_touches_the_gpu_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // XDG_RUNTIME_DIR unset is what makes Mesa's device-select layer
    // complain; wgpu at debug level logs as soon as an instance is created,
    // so any instance shows, whether or not that layer is quiet.
    let quiet = |args: &[&str]| {
        isp_env(
            args,
            &["XDG_RUNTIME_DIR", "WGPU_BACKEND"],
            &[("ISP_LOG", "warn,wgpu=debug,wgpu_core=debug,wgpu_hal=debug")],
        )
    };
    let r = quiet(&[
        "process",
        "--backend",
        "cpu",
        "--frames",
        "2",
        "--out",
        &s(&out),
    ])
    .ok();
    assert!(
        r.stderr.contains("isp: backend cpu (asked for)"),
        "{}",
        r.stderr
    );
    only_isp_lines(&r);
    let r = quiet(&[
        "process",
        "synthetic:flat",
        "--width",
        "32",
        "--height",
        "16",
        "--frames",
        "1",
        "--path",
        "slow",
        "--backend",
        "cpu",
        "--out",
        &s(&tmp.path().join("slow")),
    ])
    .ok();
    only_isp_lines(&r);
    let r = quiet(&[
        "bench",
        "--backend",
        "cpu",
        "--width",
        "32",
        "--height",
        "16",
        "--frames",
        "2",
    ])
    .ok();
    only_isp_lines(&r);
    let sess = tmp.path().join("s");
    let r = quiet(&[
        "record",
        "synthetic:flat",
        "--width",
        "32",
        "--height",
        "16",
        "--frames",
        "1",
        "--out",
        &s(&sess),
    ])
    .ok();
    only_isp_lines(&r);
    only_isp_lines(&quiet(&["info", &s(&sess)]).ok());
    only_isp_lines(&quiet(&["tuning"]).ok());
}

/// `auto` (the default) looks for an adapter, so it creates a wgpu instance:
/// the CLI keeps Mesa's device-select layer from probing for a display.
#[test]
fn auto_probes_the_gpu_without_display_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let r = isp_env(
        &[
            "process",
            "synthetic:flat",
            "--width",
            "32",
            "--height",
            "16",
            "--frames",
            "1",
            "--out",
            &s(&out),
        ],
        &[
            "XDG_RUNTIME_DIR",
            "WGPU_BACKEND",
            "NODEVICE_SELECT",
            "MESA_VK_DEVICE_SELECT",
        ],
        &[],
    )
    .ok();
    assert!(r.stderr.contains("isp: backend "), "{}", r.stderr);
    assert!(!r.stderr.contains("XDG_RUNTIME_DIR"), "{}", r.stderr);
    only_isp_lines(&r);
}
