//! The library as `LD_PRELOAD` loads it: a shared object that exports
//! every libc entry point the virtual camera answers (a symbol missing here
//! lets a client reach the real libc and miss the device). Building this
//! test also builds the `cdylib` in the same cargo run as every other test
//! (`scripts/test.sh` points `ISP_VCAM_LIB` at it), so the engine is not
//! compiled a second time for the camera.

#![allow(clippy::unwrap_used)]

use std::ffi::CString;
use std::path::PathBuf;

/// The shared object cargo built beside this test (`target/debug/deps`).
fn library() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    dir.join("libisp_vcam.so")
}

#[test]
fn the_shared_object_exports_every_hook() {
    let lib = library();
    assert!(lib.exists(), "{} was not built", lib.display());
    let path = CString::new(lib.to_str().unwrap()).unwrap();
    // SAFETY: loading our own library with RTLD_LOCAL: its symbols are
    // looked up by handle, not put in front of this process's libc.
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null(), "dlopen {}", lib.display());
    let hooks = [
        "open",
        "open64",
        "openat",
        "openat64",
        "__open_2",
        "__open64_2",
        "__openat_2",
        "__openat64_2",
        "close",
        "ioctl",
        "syscall",
        "mmap",
        "mmap64",
        "stat",
        "stat64",
        "lstat",
        "lstat64",
        "fstatat",
        "fstatat64",
        "fopen",
        "fopen64",
        "opendir",
        "readdir",
        "readdir64",
        "closedir",
        "isp_vcam_loaded",
    ];
    let missing: Vec<&str> = hooks
        .iter()
        .copied()
        .filter(|name| {
            let c = CString::new(*name).unwrap();
            // SAFETY: a symbol lookup in the handle just opened (which also
            // searches the library's own dependencies, libc among them),
            // then which object the address lies in.
            unsafe {
                let p = libc::dlsym(h, c.as_ptr());
                let mut info: libc::Dl_info = std::mem::zeroed();
                p.is_null()
                    || libc::dladdr(p, &mut info) == 0
                    || info.dli_fname.is_null()
                    || !std::ffi::CStr::from_ptr(info.dli_fname)
                        .to_string_lossy()
                        .ends_with("libisp_vcam.so")
            }
        })
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}
