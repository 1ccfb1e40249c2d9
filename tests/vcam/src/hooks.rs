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

/// The fortified `open` (`_FORTIFY_SOURCE` with flags not known at compile
/// time, as v4l-utils is built): no mode argument.
macro_rules! hook_open_2 {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// glibc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int) -> c_int {
            // SAFETY: forwarded from the caller.
            if let Some(r) = unsafe { claim(path, flags) } {
                return r;
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe { real!($c, unsafe extern "C" fn(*const c_char, c_int) -> c_int)(path, flags) }
        }
    };
}

/// The fortified `openat`.
macro_rules! hook_openat_2 {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// glibc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(dir: c_int, path: *const c_char, flags: c_int) -> c_int {
            // SAFETY: forwarded from the caller.
            if let Some(r) = unsafe { claim(path, flags) } {
                return r;
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe {
                real!(
                    $c,
                    unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int
                )(dir, path, flags)
            }
        }
    };
}

hook_open_2!(__open_2, c"__open_2");
hook_open_2!(__open64_2, c"__open64_2");
hook_openat_2!(__openat_2, c"__openat_2");
hook_openat_2!(__openat64_2, c"__openat64_2");

// The device node as `stat` shows it: a character device with the major of
// V4L2 (81) and the minor of the path's number (`/dev/video42`: 42). Tools
// such as v4l2-ctl stat the path before they open it, then read
// `/sys/dev/char/81:MINOR/uevent` to learn what it is (see `fopen`).

/// Whether `path` (NUL-terminated, may be null) is the device's.
unsafe fn is_device(path: *const c_char) -> bool {
    // SAFETY: the caller's NUL-terminated path, when not null.
    !path.is_null() && device::is_path(unsafe { CStr::from_ptr(path) }.to_bytes())
}

/// Fill a `stat` for the device node.
unsafe fn device_stat(st: *mut libc::stat) -> c_int {
    if device::vanished() {
        set_errno(libc::ENOENT);
        return -1;
    }
    // SAFETY: the caller's stat buffer.
    unsafe {
        std::ptr::write_bytes(st, 0, 1);
        (*st).st_mode = libc::S_IFCHR | 0o660;
        (*st).st_rdev = libc::makedev(device::MAJOR, device::minor());
        (*st).st_nlink = 1;
        (*st).st_blksize = 4096;
    }
    0
}

type StatFn = unsafe extern "C" fn(*const c_char, *mut libc::stat) -> c_int;
type FstatatFn = unsafe extern "C" fn(c_int, *const c_char, *mut libc::stat, c_int) -> c_int;

/// `stat`, `stat64`, `lstat`, `lstat64` (struct stat and stat64 are one
/// layout on 64-bit Linux).
macro_rules! hook_stat {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// libc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, st: *mut libc::stat) -> c_int {
            // SAFETY: forwarded from the caller.
            if unsafe { is_device(path) } {
                // SAFETY: the caller's buffer.
                return unsafe { device_stat(st) };
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe { real!($c, StatFn)(path, st) }
        }
    };
}

/// `fstatat` and `fstatat64`.
macro_rules! hook_fstatat {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// libc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            dir: c_int,
            path: *const c_char,
            st: *mut libc::stat,
            flags: c_int,
        ) -> c_int {
            // SAFETY: forwarded from the caller.
            if unsafe { is_device(path) } {
                // SAFETY: the caller's buffer.
                return unsafe { device_stat(st) };
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe { real!($c, FstatatFn)(dir, path, st, flags) }
        }
    };
}

hook_stat!(stat, c"stat");
hook_stat!(stat64, c"stat64");
hook_stat!(lstat, c"lstat");
hook_stat!(lstat64, c"lstat64");
hook_fstatat!(fstatat, c"fstatat");
hook_fstatat!(fstatat64, c"fstatat64");

type FopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut libc::FILE;

/// `fopen` and `fopen64`: the device's `uevent` in sysfs is answered from
/// a memfd (a real descriptor, as C++ streams read through `fileno`).
macro_rules! hook_fopen {
    ($name:ident, $c:literal) => {
        /// # Safety
        /// libc's function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            path: *const c_char,
            mode: *const c_char,
        ) -> *mut libc::FILE {
            if !path.is_null() {
                // SAFETY: fopen's contract: a NUL-terminated path.
                let p = unsafe { CStr::from_ptr(path) }.to_bytes();
                if let Some(text) = device::uevent(p) {
                    // SAFETY: a fresh memfd, written and rewound, then
                    // handed to fdopen (which owns it from then on).
                    unsafe {
                        let fd = libc::memfd_create(c"isp-vcam-uevent".as_ptr(), libc::MFD_CLOEXEC);
                        if fd < 0 {
                            return std::ptr::null_mut();
                        }
                        libc::write(fd, text.as_ptr().cast(), text.len());
                        libc::lseek(fd, 0, libc::SEEK_SET);
                        return libc::fdopen(fd, c"r".as_ptr());
                    }
                }
            }
            // SAFETY: the next definition with the caller's arguments.
            unsafe { real!($c, FopenFn)(path, mode) }
        }
    };
}

hook_fopen!(fopen, c"fopen");
hook_fopen!(fopen64, c"fopen64");

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
    // libv4l2 opens, closes and maps through `syscall` too.
    if n == libc::SYS_openat {
        // SAFETY: the caller's path argument.
        if let Some(r) = unsafe { claim(a2 as *const c_char, a3 as c_int) } {
            return r as c_long;
        }
    }
    if n == libc::SYS_close && device::owns(a1 as c_int) {
        // SAFETY: our `close`, which passes the descriptor on.
        return unsafe { close(a1 as c_int) } as c_long;
    }
    if n == libc::SYS_mmap && device::owns(a5 as c_int) {
        let p = device::mmap(
            a5 as c_int,
            a2 as size_t,
            a3 as c_int,
            a4 as c_int,
            a6 as off_t,
        );
        return p as c_long;
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
/// libc's `readdir` (on 64-bit Linux the same function as `readdir64`,
/// exported under both names: binaries use either).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readdir(d: *mut DIR) -> *mut dirent64 {
    // SAFETY: the caller's stream.
    unsafe { readdir64(d) }
}

/// # Safety
/// libc's `closedir`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn closedir(d: *mut DIR) -> c_int {
    device::listing_closed(d as usize);
    // SAFETY: the next `closedir` on the caller's stream.
    unsafe { real!(c"closedir", unsafe extern "C" fn(*mut DIR) -> c_int)(d) }
}
