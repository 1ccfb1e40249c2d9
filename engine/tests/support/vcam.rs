//! Running a test under the virtual camera (`tests/vcam`, a userspace V4L2
//! device loaded with LD_PRELOAD): the test re-runs itself in a child of
//! its own binary started by `scripts/virtual-camera.sh` (the device's
//! settings come from the environment, read once per process). Shared by
//! the engine's and the studio's camera tests (`#[path]`).

use std::path::Path;
use std::process::Command;

/// Whether the virtual camera is loaded in this process.
pub fn vcam_loaded() -> bool {
    // SAFETY: looking a symbol up in the process's global scope.
    unsafe { !libc::dlsym(libc::RTLD_DEFAULT, c"isp_vcam_loaded".as_ptr()).is_null() }
}

/// Run `test` in a child with the virtual camera and `env`. True in the
/// parent (the test ran, and passed, in the child; its output is printed);
/// false in the child, which goes on to run the test's body.
pub fn in_child(test: &str, env: &[(&str, &str)]) -> bool {
    if vcam_loaded() {
        return false;
    }
    // A child without the library (LD_PRELOAD ignored) must not start
    // children of its own.
    assert!(
        std::env::var_os("ISP_VCAM_CHILD").is_none(),
        "the virtual camera is not loaded in the child: is LD_PRELOAD honoured?"
    );
    // One camera test at a time: each wants the machine (1080p at 30 fps on
    // two cores) and the device's timing.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/virtual-camera.sh");
    let out = Command::new(script)
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .env("ISP_VCAM_CHILD", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{test} under the virtual camera:\n{text}"
    );
    assert!(text.contains("1 passed"), "{test} did not run:\n{text}");
    println!("{text}");
    true
}
