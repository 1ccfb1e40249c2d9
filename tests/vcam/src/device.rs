//! The device: formats, controls, the buffer queue and the sensor's clock.
//! One device per process, shared by every descriptor opened on its path;
//! the first descriptor to request buffers owns the queue (others get
//! EBUSY), as with a kernel vb2 queue.

use crate::hooks::{real_mmap, set_errno};
use crate::render::{self, Look, Pixels};
use isp_engine::sources::camera::formats::{self, code};
use isp_engine::sources::synthetic::Scene;
use libc::{c_int, c_ulong, c_void, off_t, size_t};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use v4l::v4l_sys::*;

mod controls;
mod ioctl;
mod node;
mod stream;

use controls::*;
pub use ioctl::ioctl;
pub use node::{MAJOR, is_path, minor, uevent, vanished};
use stream::*;
use v4l::v4l2::vidioc::*;

/// A fault to inject at a frame (by sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The frame is lost: the next one carries sequence + 2.
    Gap(u64),
    /// From this frame on every dequeue fails with EIO.
    Eio(u64),
    /// The device is unplugged at this frame: ENODEV from then on.
    Vanish(u64),
    /// The frame is delivered marked corrupted (V4L2_BUF_FLAG_ERROR).
    Corrupt(u64),
    /// The driver has no VIDIOC_EXPBUF (ENOTTY): no DMA-BUF export.
    NoExpbuf,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults(pub Vec<Fault>);

impl Faults {
    /// `gap@N,eio@N,vanish@N,corrupt@N,noexpbuf`; unknown words are an
    /// error naming them.
    pub fn parse(s: &str) -> Result<Faults, String> {
        let mut v = Vec::new();
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if w == "noexpbuf" {
                v.push(Fault::NoExpbuf);
                continue;
            }
            let (kind, n) = w
                .split_once('@')
                .ok_or_else(|| format!("VCAM_FAULTS: {w}?"))?;
            let n: u64 = n
                .parse()
                .map_err(|_| format!("VCAM_FAULTS: {w}: not a frame"))?;
            v.push(match kind {
                "gap" => Fault::Gap(n),
                "eio" => Fault::Eio(n),
                "vanish" => Fault::Vanish(n),
                "corrupt" => Fault::Corrupt(n),
                _ => {
                    return Err(format!(
                        "VCAM_FAULTS: {kind}: gap, eio, vanish, corrupt or noexpbuf"
                    ));
                }
            });
        }
        Ok(Faults(v))
    }
    fn has(&self, f: Fault) -> bool {
        self.0.contains(&f)
    }
    /// Whether a fault of this kind is due at or before frame `seq`.
    fn from(&self, seq: u64, kind: impl Fn(&Fault) -> bool) -> bool {
        self.0.iter().any(|f| {
            kind(f)
                && match *f {
                    Fault::Gap(n) | Fault::Eio(n) | Fault::Vanish(n) | Fault::Corrupt(n) => {
                        n <= seq
                    }
                    Fault::NoExpbuf => true,
                }
        })
    }
}

struct Config {
    path: Vec<u8>,
    scene: Scene,
    light: f32,
    exposure: Option<i64>,
    faults: Faults,
    /// `VCAM_CLOCK=virtual`: a sensor that waits for its client (see
    /// `stream::produce`), so a loaded machine changes when frames come,
    /// never which.
    virtual_clock: bool,
    /// `VCAM_LOG`: a file each dequeued frame is appended to as
    /// `sequence timestamp_ns` (what the device delivered, for tests to
    /// hold a recording to).
    log: Option<std::path::PathBuf>,
}

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let env = |k: &str| std::env::var(k).ok();
    let faults = match env("VCAM_FAULTS").map(|s| Faults::parse(&s)) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            eprintln!("isp-vcam: {e}");
            Faults::default()
        }
        None => Faults::default(),
    };
    Config {
        path: env("VCAM_DEVICE")
            .unwrap_or_else(|| crate::DEFAULT_DEVICE.into())
            .into_bytes(),
        scene: env("VCAM_SCENE")
            .and_then(|s| Scene::parse(&s))
            .unwrap_or(Scene::Checker),
        light: env("VCAM_LIGHT")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0),
        exposure: env("VCAM_EXPOSURE").and_then(|s| s.parse().ok()),
        faults,
        virtual_clock: match env("VCAM_CLOCK").as_deref() {
            None | Some("real") => false,
            Some("virtual") => true,
            Some(other) => {
                eprintln!("isp-vcam: VCAM_CLOCK={other}: real or virtual (real used)");
                false
            }
        },
        log: env("VCAM_LOG").map(Into::into),
    }
});

/// Descriptors of the device (-1: free slot). Read without a lock. As
/// many as v4l2-compliance opens at once (100).
static FDS: [AtomicI32; 128] = [const { AtomicI32::new(-1) }; 128];

pub fn owns(fd: c_int) -> bool {
    fd >= 0 && FDS.iter().any(|f| f.load(Ordering::Relaxed) == fd)
}

// ---------------------------------------------------------------- formats

pub const SIZES: [(u32, u32); 3] = [(640, 480), (1280, 720), (1920, 1080)];
/// Frame intervals offered, as (numerator, denominator) seconds.
pub const INTERVALS: [(u32, u32); 3] = [(1, 60), (1, 30), (1, 15)];
pub const FOURCCS: [&[u8; 4]; 8] = [
    b"pRAA", b"RG10", b"pRCC", b"RG12", b"RGGB", b"RG16", b"YUYV", b"GREY",
];
/// Pixels per second: 2200 x 1125 lines at 60 fps (the classic 1080p timing).
pub const PIXEL_RATE: i64 = 148_500_000;
pub const LINE_LENGTH: u32 = 2200;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fmt {
    pub fourcc: u32,
    pub width: u32,
    pub height: u32,
    pub bytesperline: u32,
    pub sizeimage: u32,
}

impl Fmt {
    /// The nearest format the device has (V4L2 adjusts, it does not refuse).
    fn nearest(fourcc: u32, width: u32, height: u32) -> Fmt {
        let fourcc = if FOURCCS.iter().any(|f| code(f) == fourcc) {
            fourcc
        } else {
            code(FOURCCS[0])
        };
        let &(w, h) = SIZES
            .iter()
            .min_by_key(|(w, h)| u64::from(w.abs_diff(width)) + u64::from(h.abs_diff(height)))
            .unwrap_or(&SIZES[2]);
        let row = match formats::raw_format(fourcc, w, h, 0) {
            Some(f) => f.min_stride(),
            None if fourcc == code(formats::YUYV) => w * 2,
            None => w,
        };
        let bytesperline = row.div_ceil(64) * 64;
        Fmt {
            fourcc,
            width: w,
            height: h,
            bytesperline,
            sizeimage: bytesperline * h,
        }
    }
    pub fn pixels(&self) -> Pixels {
        match formats::raw_format(self.fourcc, self.width, self.height, self.bytesperline) {
            Some(f) => Pixels::Bayer(f),
            None if self.fourcc == code(formats::YUYV) => Pixels::Yuyv,
            None => Pixels::Grey,
        }
    }
}

// ------------------------------------------------------------------ state

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BufState {
    Idle,
    Queued,
    Filling,
    Done,
}

/// A buffer's memory: a memfd and the device's own mapping of it, where
/// frames are rendered. The producer holds it while it renders, so a
/// buffer freed meanwhile (REQBUFS 0, close) is unmapped after it.
struct Memory {
    memfd: c_int,
    len: usize,
    map: usize,
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the device's own mapping and memfd, unused from here on.
        unsafe {
            libc::munmap(self.map as *mut c_void, self.len);
            libc::close(self.memfd);
        }
    }
}

struct Buf {
    mem: Arc<Memory>,
    state: BufState,
    /// The frame in it is marked corrupted.
    error: bool,
    seq: u32,
    ts: libc::timeval,
}

struct Dev {
    fmt: Fmt,
    interval: (u32, u32),
    ctrls: Vec<Ctrl>,
    /// Control values in effect for the frame being exposed.
    live: Look,
    /// Writes waiting for their frame: (sequence, id, value).
    pending: VecDeque<(u64, u32, i64)>,
    /// fd -> non-blocking.
    open: Vec<(c_int, bool)>,
    owner: Option<c_int>,
    bufs: Vec<Buf>,
    queued: VecDeque<usize>,
    done: VecDeque<usize>,
    streaming: bool,
    /// Bumped on every STREAMON/STREAMOFF: a producer of an older stream stops.
    generation: u64,
    t0: Instant,
    /// `t0` on CLOCK_MONOTONIC, in ns.
    t0_ns: u64,
    /// The frame being exposed (the next to complete).
    next_seq: u64,
    eio: bool,
    vanished: bool,
    /// Frames being rendered into a buffer right now (by producers of this
    /// stream or an older one).
    rendering: u32,
    base: Option<(render::BaseKey, Arc<Vec<f32>>)>,
}

static DEV: LazyLock<(Mutex<Dev>, Condvar)> = LazyLock::new(|| {
    let fmt = Fmt::nearest(code(FOURCCS[0]), 1920, 1080);
    let interval = (1, 30);
    let ctrls = controls(&fmt, interval, CONFIG.exposure);
    let mut d = Dev {
        fmt,
        interval,
        ctrls,
        live: Look::default(),
        pending: VecDeque::new(),
        open: Vec::new(),
        owner: None,
        bufs: Vec::new(),
        queued: VecDeque::new(),
        done: VecDeque::new(),
        streaming: false,
        generation: 0,
        t0: Instant::now(),
        t0_ns: 0,
        next_seq: 0,
        eio: false,
        vanished: false,
        rendering: 0,
        base: None,
    };
    d.live = d.look_now();
    (Mutex::new(d), Condvar::new())
});

fn dev() -> MutexGuard<'static, Dev> {
    DEV.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wait until no frame is being rendered: STREAMOFF returns once the
/// "DMA" has stopped, so a buffer queued again after it is not written by
/// the old stream's producer.
fn quiesce(mut d: MutexGuard<'static, Dev>) -> MutexGuard<'static, Dev> {
    while d.rendering > 0 {
        d = DEV.1.wait(d).unwrap_or_else(|p| p.into_inner());
    }
    d
}

fn signal(fd: c_int) {
    let one: u64 = 1;
    // SAFETY: writing 8 bytes to our eventfd.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

fn drain(fd: c_int) {
    let mut v: u64 = 0;
    // SAFETY: reading 8 bytes from our non-blocking eventfd.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

impl Dev {
    fn value(&self, id: u32) -> i64 {
        self.ctrls
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.value)
    }
    fn line_us(&self) -> f32 {
        LINE_LENGTH as f32 / PIXEL_RATE as f32 * 1e6
    }
    /// Every control's current value, as if all writes had landed.
    fn look_now(&self) -> Look {
        Look {
            exposure_us: self.value(V4L2_CID_EXPOSURE) as f32 * self.line_us(),
            analogue_gain: self.value(V4L2_CID_ANALOGUE_GAIN) as f32 / 256.0,
            digital_gain: self.value(V4L2_CID_DIGITAL_GAIN) as f32 / 256.0,
            red: self.value(V4L2_CID_RED_BALANCE) as f32 / 256.0,
            blue: self.value(V4L2_CID_BLUE_BALANCE) as f32 / 256.0,
            hflip: self.value(V4L2_CID_HFLIP) != 0,
            vflip: self.value(V4L2_CID_VFLIP) != 0,
            pattern: self.value(V4L2_CID_TEST_PATTERN) as u8,
            light: CONFIG.light,
        }
    }
    fn land(&mut self, id: u32, v: i64) {
        let line_us = self.line_us();
        let l = &mut self.live;
        match id {
            V4L2_CID_EXPOSURE => l.exposure_us = v as f32 * line_us,
            V4L2_CID_ANALOGUE_GAIN => l.analogue_gain = v as f32 / 256.0,
            V4L2_CID_DIGITAL_GAIN => l.digital_gain = v as f32 / 256.0,
            V4L2_CID_RED_BALANCE => l.red = v as f32 / 256.0,
            V4L2_CID_BLUE_BALANCE => l.blue = v as f32 / 256.0,
            V4L2_CID_HFLIP => l.hflip = v != 0,
            V4L2_CID_VFLIP => l.vflip = v != 0,
            V4L2_CID_TEST_PATTERN => l.pattern = v as u8,
            _ => {}
        }
    }
    /// Write a control: the value reads back at once; the picture changes
    /// `delay` frames after the frame being exposed now.
    fn write(&mut self, id: u32, v: i64) -> Result<(), c_int> {
        let c = self
            .ctrls
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or(libc::EINVAL)?;
        if c.read_only {
            return Err(libc::EACCES);
        }
        let v = if c.kind == MENU {
            if !(c.min..=c.max).contains(&v) {
                return Err(libc::EINVAL);
            }
            v
        } else {
            // The kernel clamps to the range and rounds to the step.
            let step = c.step.max(1) as i64;
            let v = v.clamp(c.min, c.max);
            (c.min + ((v - c.min) + step / 2) / step * step).min(c.max)
        };
        c.value = v;
        let delay = c.delay;
        if self.streaming {
            let at = self.exposing() + delay;
            self.pending.push_back((at, id, v));
        } else {
            self.land(id, v);
        }
        Ok(())
    }
    /// The frame being exposed now, by the sensor's clock: frame k is
    /// exposed from `t0 + k * interval` to its end of frame a frame later
    /// (whether or not the producer thread has caught up with it).
    fn exposing(&self) -> u64 {
        let interval_ns = self.interval.0 as f64 / self.interval.1 as f64 * 1e9;
        let wall = (stream::monotonic_ns().saturating_sub(self.t0_ns) as f64 / interval_ns) as u64;
        if CONFIG.virtual_clock {
            // A virtual sensor late for its frame has not exposed the
            // frames whose time passed: the next it makes is next_seq.
            wall.min(self.next_seq)
        } else {
            wall
        }
    }

    /// The noiseless picture for the format, scene, pattern and flips in
    /// effect, made when one of them changed.
    fn base_now(&mut self) -> Arc<Vec<f32>> {
        let key = render::BaseKey {
            fmt: self.fmt,
            scene: CONFIG.scene,
            pattern: self.live.pattern,
            hflip: self.live.hflip,
            vflip: self.live.vflip,
        };
        match &self.base {
            Some((k, b)) if *k == key => b.clone(),
            _ => {
                let b = Arc::new(render::base(&key));
                self.base = Some((key, b.clone()));
                b
            }
        }
    }

    fn free_buffers(&mut self) {
        self.bufs.clear();
        self.queued.clear();
        self.done.clear();
    }
    fn stop(&mut self) {
        self.streaming = false;
        self.generation += 1;
        for b in &mut self.bufs {
            b.state = BufState::Idle;
        }
        self.queued.clear();
        self.done.clear();
        if let Some(o) = self.owner {
            drain(o);
        }
        // Writes still pending land now.
        while let Some((_, id, v)) = self.pending.pop_front() {
            self.land(id, v);
        }
    }
}

// ------------------------------------------------------------------ open/close

pub fn open(path: &[u8], flags: c_int) -> Option<c_int> {
    if path != CONFIG.path.as_slice() {
        return None;
    }
    let mut d = dev();
    if d.vanished {
        set_errno(libc::ENOENT);
        return Some(-1);
    }
    // SAFETY: a new eventfd; its readiness is the device's.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Some(-1);
    }
    let Some(slot) = FDS.iter().find(|s| {
        s.compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }) else {
        // SAFETY: our own descriptor.
        unsafe { libc::close(fd) };
        set_errno(libc::EMFILE);
        return Some(-1);
    };
    let _ = slot;
    d.open.push((fd, flags & libc::O_NONBLOCK != 0));
    Some(fd)
}

/// Descriptors handed out by VIDIOC_EXPBUF and still open: while any is,
/// REQBUFS answers EBUSY (the kernel's "buffers in use"). A lock of its
/// own, taken after the device's or alone, never before it.
static EXPORTS: Mutex<Vec<c_int>> = Mutex::new(Vec::new());
static ANY_EXPORTS: AtomicBool = AtomicBool::new(false);

fn exports() -> std::sync::MutexGuard<'static, Vec<c_int>> {
    EXPORTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A descriptor is being closed: one of our exports, no longer.
pub fn closing(fd: c_int) {
    if ANY_EXPORTS.load(Ordering::Relaxed) {
        let mut e = exports();
        e.retain(|&f| f != fd);
        ANY_EXPORTS.store(!e.is_empty(), Ordering::Relaxed);
    }
}

fn exported(fd: c_int) {
    let mut e = exports();
    e.push(fd);
    ANY_EXPORTS.store(true, Ordering::Relaxed);
}

fn exports_open() -> bool {
    !exports().is_empty()
}

pub fn close(fd: c_int) {
    let mut d = dev();
    if d.owner == Some(fd) {
        d.stop();
        d.free_buffers();
        d.owner = None;
        // The queue is gone; its exports live on as plain memory.
        exports().clear();
        ANY_EXPORTS.store(false, Ordering::Relaxed);
    }
    d.open.retain(|(f, _)| *f != fd);
    for s in &FDS {
        let _ = s.compare_exchange(fd, -1, Ordering::Relaxed, Ordering::Relaxed);
    }
}

pub fn mmap(fd: c_int, len: size_t, prot: c_int, flags: c_int, off: off_t) -> *mut c_void {
    let d = dev();
    let index = (off >> 24) as usize;
    match d.bufs.get(index) {
        Some(b)
            if !d.vanished && d.owner == Some(fd) && len <= b.mem.len && off & 0xff_ffff == 0 =>
        {
            real_mmap(len, prot, flags, b.mem.memfd, 0)
        }
        _ => {
            set_errno(if d.vanished {
                libc::ENODEV
            } else {
                libc::EINVAL
            });
            libc::MAP_FAILED
        }
    }
}

// ------------------------------------------------------------------ listing

/// Directory streams on the device's directory, and whether each has
/// listed the device yet.
static LISTINGS: Mutex<Vec<(usize, Option<Box<libc::dirent64>>)>> = Mutex::new(Vec::new());

fn split_path() -> (&'static [u8], &'static [u8]) {
    let p = CONFIG.path.as_slice();
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i.max(1)], &p[i + 1..]),
        None => (b".", p),
    }
}

pub fn listing_opened(dir: usize, name: &[u8]) {
    let (parent, _) = split_path();
    let name = name.strip_suffix(b"/").unwrap_or(name);
    if name == parent && !dev().vanished {
        let mut l = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
        l.push((dir, None));
    }
}

pub fn listing_extra(dir: usize) -> *mut libc::dirent64 {
    let mut l = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
    let Some(entry) = l.iter_mut().find(|(d, _)| *d == dir) else {
        return std::ptr::null_mut();
    };
    if entry.1.is_some() {
        return std::ptr::null_mut();
    }
    let (_, base) = split_path();
    // SAFETY: dirent64 is plain data.
    let mut e: Box<libc::dirent64> = Box::new(unsafe { std::mem::zeroed() });
    e.d_ino = 0x15b_7d10;
    e.d_type = libc::DT_CHR;
    e.d_reclen = std::mem::size_of::<libc::dirent64>() as u16;
    for (o, &b) in e.d_name.iter_mut().zip(base.iter().take(255)) {
        *o = b as libc::c_char;
    }
    let p: *mut libc::dirent64 = &mut *e;
    entry.1 = Some(e);
    p
}

pub fn listing_closed(dir: usize) {
    let mut l = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
    l.retain(|(d, _)| *d != dir);
}
