//! The C symbols this library puts in front of libc's. Everything not aimed
//! at the virtual device goes straight to the next definition (`dlsym`
//! `RTLD_NEXT`). The variadic C functions (`open`, `ioctl`, `syscall`) are
//! defined with their fixed register arguments: on the Linux x86-64 and
//! AArch64 ABIs variadic integer arguments travel in the same registers, and
//! stable Rust cannot define a variadic function.
//!
//! Nothing on the pass-through path takes a lock: `syscall` carries every
//! futex wait of the process (std's mutexes among them).

use crate::device;
use libc::{DIR, c_char, c_int, c_long, c_ulong, c_void, dirent64, mode_t, off_t, size_t};
use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The next definition of a symbol, looked up once (racing lookups agree).
fn next(cache: &AtomicUsize, name: &CStr) -> usize {
    let p = cache.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT is valid in a
    // shared object.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    cache.store(p, Ordering::Relaxed);
    p
}

macro_rules! real {
    ($name:literal, $ty:ty) => {{
        static CACHE: AtomicUsize = AtomicUsize::new(0);
        let p = next(&CACHE, $name);
        // SAFETY: the symbol has this C signature in libc.
        #[allow(unused_unsafe)]
        let f = unsafe { std::mem::transmute::<usize, $ty>(p) };
        f
    }};
}

pub(crate) fn set_errno(e: c_int) {
    // SAFETY: errno is thread-local and always valid.
    unsafe { *libc::__errno_location() = e };
}

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, mode_t) -> c_int;
type OpenAtFn = unsafe extern "C" fn(c_int, *const c_char, c_int, mode_t) -> c_int;

unsafe fn claim(path: *const c_char, flags: c_int) -> Option<c_int> {
    if path.is_null() {
        return None;
    }
    // SAFETY: open's contract: a NUL-terminated path.
    let p = unsafe { CStr::from_ptr(path) };
    device::open(p.to_bytes(), flags)
}

/// `open` and `open64`: the device's path claimed, any other passed on.
macro_rules! hook_open {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// libc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
            // SAFETY: forwarded from the caller.
            if let Some(r) = unsafe { claim(path, flags) } {
                return r;
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe { real!($c, OpenFn)(path, flags, mode) }
        }
    };
}

/// `openat` and `openat64`: as `open` (the device's path is absolute).
macro_rules! hook_openat {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// libc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            dir: c_int,
            path: *const c_char,
            flags: c_int,
            mode: mode_t,
        ) -> c_int {
            // SAFETY: forwarded from the caller.
            if let Some(r) = unsafe { claim(path, flags) } {
                return r;
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe { real!($c, OpenAtFn)(dir, path, flags, mode) }
        }
    };
}

hook_open!(open, c"open");
hook_open!(open64, c"open64");
hook_openat!(openat, c"openat");
hook_openat!(openat64, c"openat64");

/// # Safety
/// libc's `close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if device::owns(fd) {
        device::close(fd);
    } else {
        device::closing(fd);
    }
    // SAFETY: the next `close`; our descriptors are real eventfds.
    unsafe { real!(c"close", unsafe extern "C" fn(c_int) -> c_int)(fd) }
}

/// # Safety
/// libc's `ioctl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if device::owns(fd) {
        // SAFETY: the caller's argument for this request.
        return unsafe { device::ioctl(fd, request, arg) };
    }
    // SAFETY: the next `ioctl` with the caller's arguments.
    unsafe {
        real!(
            c"ioctl",
            unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int
        )(fd, request, arg)
    }
}

type SyscallFn =
    unsafe extern "C" fn(c_long, c_long, c_long, c_long, c_long, c_long, c_long) -> c_long;

/// # Safety
/// libc's `syscall`: six argument registers are passed on whatever the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if n == libc::SYS_ioctl && device::owns(a1 as c_int) {
        // SAFETY: the caller's argument for this request.
        return unsafe { device::ioctl(a1 as c_int, a2 as c_ulong, a3 as *mut c_void) } as c_long;
    }
    // SAFETY: the next `syscall`, given the same registers.
    unsafe { real!(c"syscall", SyscallFn)(n, a1, a2, a3, a4, a5, a6) }
}

type MmapFn = unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;

/// `mmap` and `mmap64`: the device's buffers mapped, any other passed on.
macro_rules! hook_mmap {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// libc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            addr: *mut c_void,
            len: size_t,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: off_t,
        ) -> *mut c_void {
            if device::owns(fd) {
                return device::mmap(fd, len, prot, flags, off);
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe { real!($c, MmapFn)(addr, len, prot, flags, fd, off) }
        }
    };
}

hook_mmap!(mmap, c"mmap");
hook_mmap!(mmap64, c"mmap64");

/// The real `mmap`, for the device's own mappings.
pub(crate) fn real_mmap(
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: a fresh mapping of a descriptor the device owns.
    unsafe { real!(c"mmap", MmapFn)(std::ptr::null_mut(), len, prot, flags, fd, off) }
}

// `/dev` lists the device: the directory streams opened on it get one more
// entry at their end.

/// # Safety
/// libc's `opendir`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opendir(name: *const c_char) -> *mut DIR {
    // SAFETY: the next `opendir` with the caller's argument.
    let d = unsafe { real!(c"opendir", unsafe extern "C" fn(*const c_char) -> *mut DIR)(name) };
    if !d.is_null() && !name.is_null() {
        // SAFETY: opendir's contract: a NUL-terminated path.
        let n = unsafe { CStr::from_ptr(name) };
        device::listing_opened(d as usize, n.to_bytes());
    }
    d
}

/// # Safety
/// libc's `readdir64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readdir64(d: *mut DIR) -> *mut dirent64 {
    // SAFETY: the next `readdir64` on the caller's stream.
    let e = unsafe {
        real!(
            c"readdir64",
            unsafe extern "C" fn(*mut DIR) -> *mut dirent64
        )(d)
    };
    if e.is_null() {
        return device::listing_extra(d as usize);
    }
    e
}

/// # Safety
/// libc's `closedir`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn closedir(d: *mut DIR) -> c_int {
    device::listing_closed(d as usize);
    // SAFETY: the next `closedir` on the caller's stream.
    unsafe { real!(c"closedir", unsafe extern "C" fn(*mut DIR) -> c_int)(d) }
}
