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
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use v4l::v4l_sys::*;
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
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults(pub Vec<Fault>);

impl Faults {
    /// `gap@N,eio@N,vanish@N`; unknown words are an error naming them.
    pub fn parse(s: &str) -> Result<Faults, String> {
        let mut v = Vec::new();
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
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
                _ => return Err(format!("VCAM_FAULTS: {kind}: gap, eio or vanish")),
            });
        }
        Ok(Faults(v))
    }
    fn has(&self, f: Fault) -> bool {
        self.0.contains(&f)
    }
}

struct Config {
    path: Vec<u8>,
    scene: Scene,
    light: f32,
    exposure: Option<i64>,
    faults: Faults,
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
    }
});

/// Descriptors of the device (-1: free slot). Read without a lock.
static FDS: [AtomicI32; 32] = [const { AtomicI32::new(-1) }; 32];

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
            .min_by_key(|(w, h)| w.abs_diff(width) + h.abs_diff(height))
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

// ---------------------------------------------------------------- controls

#[derive(Clone, Debug)]
struct Ctrl {
    id: u32,
    name: &'static str,
    kind: u32,
    min: i64,
    max: i64,
    step: u64,
    default: i64,
    value: i64,
    read_only: bool,
    menu: &'static [&'static str],
    /// Frames between the write and the first frame it changes.
    delay: u64,
}

fn ctrl(id: u32, name: &'static str, kind: u32, range: (i64, i64, u64, i64), delay: u64) -> Ctrl {
    Ctrl {
        id,
        name,
        kind,
        min: range.0,
        max: range.1,
        step: range.2,
        default: range.3,
        value: range.3,
        read_only: false,
        menu: &[],
        delay,
    }
}

const INT: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER;
const BOOL: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_BOOLEAN;
const MENU: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_MENU;
const INT64: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER64;
pub const PATTERNS: [&str; 3] = ["Disabled", "Colour Bars", "Solid Grey"];

/// Frame length in lines at this height and interval.
fn frame_length(interval: (u32, u32)) -> i64 {
    PIXEL_RATE * interval.0 as i64 / (interval.1 as i64 * LINE_LENGTH as i64)
}

fn controls(fmt: &Fmt, interval: (u32, u32), exposure: Option<i64>) -> Vec<Ctrl> {
    let fl = frame_length(interval);
    let lines_10ms = (10_000.0 * PIXEL_RATE as f64 / 1e6 / LINE_LENGTH as f64).round() as i64;
    let exp = ctrl(
        V4L2_CID_EXPOSURE,
        "Exposure",
        INT,
        (1, fl - 4, 1, lines_10ms.min(fl - 4)),
        2,
    );
    let mut v = vec![
        ctrl(
            V4L2_CID_RED_BALANCE,
            "Red Balance",
            INT,
            (64, 1023, 1, 256),
            1,
        ),
        ctrl(
            V4L2_CID_BLUE_BALANCE,
            "Blue Balance",
            INT,
            (64, 1023, 1, 256),
            1,
        ),
        Ctrl {
            value: exposure.unwrap_or(exp.default).clamp(exp.min, exp.max),
            ..exp
        },
        ctrl(V4L2_CID_HFLIP, "Horizontal Flip", BOOL, (0, 1, 1, 0), 1),
        ctrl(V4L2_CID_VFLIP, "Vertical Flip", BOOL, (0, 1, 1, 0), 1),
        Ctrl {
            read_only: true,
            ..ctrl(
                V4L2_CID_VBLANK,
                "Vertical Blanking",
                INT,
                (
                    fl - fmt.height as i64,
                    fl - fmt.height as i64,
                    1,
                    fl - fmt.height as i64,
                ),
                0,
            )
        },
        Ctrl {
            read_only: true,
            ..ctrl(
                V4L2_CID_HBLANK,
                "Horizontal Blanking",
                INT,
                {
                    let hb = (LINE_LENGTH - fmt.width) as i64;
                    (hb, hb, 1, hb)
                },
                0,
            )
        },
        ctrl(
            V4L2_CID_ANALOGUE_GAIN,
            "Analogue Gain",
            INT,
            (256, 4096, 16, 256),
            1,
        ),
        Ctrl {
            read_only: true,
            ..ctrl(
                V4L2_CID_PIXEL_RATE,
                "Pixel Rate",
                INT64,
                (PIXEL_RATE, PIXEL_RATE, 1, PIXEL_RATE),
                0,
            )
        },
        Ctrl {
            menu: &PATTERNS,
            ..ctrl(V4L2_CID_TEST_PATTERN, "Test Pattern", MENU, (0, 2, 1, 0), 1)
        },
        ctrl(
            V4L2_CID_DIGITAL_GAIN,
            "Digital Gain",
            INT,
            (256, 4095, 1, 256),
            1,
        ),
    ];
    v.sort_by_key(|c| c.id);
    v
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
    /// The frame being exposed (the next to complete).
    next_seq: u64,
    eio: bool,
    vanished: bool,
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
        next_seq: 0,
        eio: false,
        vanished: false,
        base: None,
    };
    d.live = d.look_now();
    (Mutex::new(d), Condvar::new())
});

fn dev() -> MutexGuard<'static, Dev> {
    DEV.0.lock().unwrap_or_else(|p| p.into_inner())
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
            self.pending.push_back((self.next_seq + delay, id, v));
        } else {
            self.land(id, v);
        }
        Ok(())
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

pub fn close(fd: c_int) {
    let mut d = dev();
    if d.owner == Some(fd) {
        d.stop();
        d.free_buffers();
        d.owner = None;
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

// ------------------------------------------------------------------ ioctl

/// # Safety
/// `arg` points to the structure `request` names.
pub unsafe fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let r = if arg.is_null() {
        Err(libc::EFAULT)
    } else {
        // SAFETY: forwarded.
        unsafe { dispatch(fd, request, arg) }
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

fn copy_name(dst: &mut [u8], s: &str) {
    dst.fill(0);
    let n = dst.len() - 1;
    for (o, b) in dst.iter_mut().zip(s.bytes().take(n)) {
        *o = b;
    }
}

const CAPTURE: u32 = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;

/// # Safety
/// `arg` points to the structure `request` names.
unsafe fn dispatch(fd: c_int, request: c_ulong, arg: *mut c_void) -> Result<(), c_int> {
    let mut d = dev();
    if d.vanished {
        return Err(libc::ENODEV);
    }
    match request {
        VIDIOC_QUERYCAP => {
            // SAFETY: the caller's struct for this request (and below).
            let c = unsafe { &mut *(arg as *mut v4l2_capability) };
            copy_name(&mut c.driver, "isp-vcam");
            copy_name(&mut c.card, "ISP Studio virtual camera");
            copy_name(&mut c.bus_info, "platform:isp-vcam");
            c.version = 0x0006_0100;
            c.device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
            c.capabilities = c.device_caps | V4L2_CAP_DEVICE_CAPS;
        }
        VIDIOC_ENUM_FMT => {
            let f = unsafe { &mut *(arg as *mut v4l2_fmtdesc) };
            let cc = FOURCCS.get(f.index as usize).ok_or(libc::EINVAL)?;
            if f.type_ != CAPTURE {
                return Err(libc::EINVAL);
            }
            f.pixelformat = code(cc);
            f.flags = 0;
            copy_name(&mut f.description, &formats::describe(code(cc)));
        }
        VIDIOC_ENUM_FRAMESIZES => {
            let f = unsafe { &mut *(arg as *mut v4l2_frmsizeenum) };
            if !FOURCCS.iter().any(|c| code(c) == f.pixel_format) {
                return Err(libc::EINVAL);
            }
            let &(w, h) = SIZES.get(f.index as usize).ok_or(libc::EINVAL)?;
            f.type_ = v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE;
            f.__bindgen_anon_1.discrete = v4l2_frmsize_discrete {
                width: w,
                height: h,
            };
        }
        VIDIOC_ENUM_FRAMEINTERVALS => {
            let f = unsafe { &mut *(arg as *mut v4l2_frmivalenum) };
            if !FOURCCS.iter().any(|c| code(c) == f.pixel_format)
                || !SIZES.contains(&(f.width, f.height))
            {
                return Err(libc::EINVAL);
            }
            let &(n, den) = INTERVALS.get(f.index as usize).ok_or(libc::EINVAL)?;
            f.type_ = v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE;
            f.__bindgen_anon_1.discrete = v4l2_fract {
                numerator: n,
                denominator: den,
            };
        }
        VIDIOC_G_FMT | VIDIOC_S_FMT | VIDIOC_TRY_FMT => {
            let f = unsafe { &mut *(arg as *mut v4l2_format) };
            if f.type_ != CAPTURE {
                return Err(libc::EINVAL);
            }
            let pix = unsafe { &mut f.fmt.pix };
            let new = if request == VIDIOC_G_FMT {
                d.fmt
            } else {
                Fmt::nearest(pix.pixelformat, pix.width, pix.height)
            };
            if request == VIDIOC_S_FMT && new != d.fmt {
                if d.owner.is_some_and(|o| o != fd) || !d.bufs.is_empty() {
                    return Err(libc::EBUSY);
                }
                d.fmt = new;
                let exposure = Some(d.value(V4L2_CID_EXPOSURE));
                d.ctrls = carry_values(&d.ctrls, controls(&new, d.interval, exposure));
                d.base = None;
            }
            pix.width = new.width;
            pix.height = new.height;
            pix.pixelformat = new.fourcc;
            pix.field = v4l2_field_V4L2_FIELD_NONE;
            pix.bytesperline = new.bytesperline;
            pix.sizeimage = new.sizeimage;
            pix.colorspace = v4l2_colorspace_V4L2_COLORSPACE_RAW;
        }
        VIDIOC_G_PARM | VIDIOC_S_PARM => {
            let p = unsafe { &mut *(arg as *mut v4l2_streamparm) };
            if p.type_ != CAPTURE {
                return Err(libc::EINVAL);
            }
            let cap = unsafe { &mut p.parm.capture };
            if request == VIDIOC_S_PARM {
                let t = cap.timeperframe;
                let want = t.numerator as f64 / t.denominator.max(1) as f64;
                let &best = INTERVALS
                    .iter()
                    .min_by(|a, b| {
                        let da = (a.0 as f64 / a.1 as f64 - want).abs();
                        let db = (b.0 as f64 / b.1 as f64 - want).abs();
                        da.total_cmp(&db)
                    })
                    .unwrap_or(&(1, 30));
                if best != d.interval {
                    if d.streaming {
                        return Err(libc::EBUSY);
                    }
                    d.interval = best;
                    let exposure = Some(d.value(V4L2_CID_EXPOSURE));
                    d.ctrls = carry_values(&d.ctrls, controls(&d.fmt, best, exposure));
                    d.live = d.look_now();
                }
            }
            *cap = unsafe { std::mem::zeroed() };
            cap.capability = V4L2_CAP_TIMEPERFRAME;
            cap.timeperframe = v4l2_fract {
                numerator: d.interval.0,
                denominator: d.interval.1,
            };
            cap.readbuffers = 4;
        }
        VIDIOC_ENUMINPUT => {
            let i = unsafe { &mut *(arg as *mut v4l2_input) };
            if i.index != 0 {
                return Err(libc::EINVAL);
            }
            copy_name(&mut i.name, "Camera 1");
            i.type_ = V4L2_INPUT_TYPE_CAMERA;
        }
        VIDIOC_G_INPUT => unsafe { *(arg as *mut c_int) = 0 },
        VIDIOC_S_INPUT => {
            if unsafe { *(arg as *mut c_int) } != 0 {
                return Err(libc::EINVAL);
            }
        }
        VIDIOC_REQBUFS => {
            let r = unsafe { &mut *(arg as *mut v4l2_requestbuffers) };
            if r.type_ != CAPTURE || r.memory != v4l2_memory_V4L2_MEMORY_MMAP {
                return Err(libc::EINVAL);
            }
            if d.owner.is_some_and(|o| o != fd) {
                return Err(libc::EBUSY);
            }
            d.stop();
            d.free_buffers();
            r.capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP;
            if r.count == 0 {
                d.owner = None;
                return Ok(());
            }
            let n = r.count.clamp(2, 32);
            let len = (d.fmt.sizeimage as usize).div_ceil(4096) * 4096;
            for _ in 0..n {
                let b = new_buffer(len)?;
                d.bufs.push(b);
            }
            r.count = n;
            d.owner = Some(fd);
        }
        VIDIOC_QUERYBUF | VIDIOC_QBUF | VIDIOC_EXPBUF if d.owner != Some(fd) => {
            return Err(if d.owner.is_some() {
                libc::EBUSY
            } else {
                libc::EINVAL
            });
        }
        VIDIOC_QUERYBUF => {
            let b = unsafe { &mut *(arg as *mut v4l2_buffer) };
            let i = b.index as usize;
            let buf = d.bufs.get(i).ok_or(libc::EINVAL)?;
            b.length = d.fmt.sizeimage;
            b.m.offset = (i as u32) << 24;
            b.flags = V4L2_BUF_FLAG_MAPPED
                | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
                | match buf.state {
                    BufState::Queued | BufState::Filling => V4L2_BUF_FLAG_QUEUED,
                    BufState::Done => V4L2_BUF_FLAG_DONE,
                    BufState::Idle => 0,
                };
        }
        VIDIOC_EXPBUF => {
            let e = unsafe { &mut *(arg as *mut v4l2_exportbuffer) };
            let buf = d.bufs.get(e.index as usize).ok_or(libc::EINVAL)?;
            // SAFETY: duplicating our own memfd for the caller.
            let fd = unsafe { libc::fcntl(buf.mem.memfd, libc::F_DUPFD_CLOEXEC, 0) };
            if fd < 0 {
                return Err(libc::EMFILE);
            }
            e.fd = fd;
        }
        VIDIOC_QBUF => {
            let b = unsafe { &mut *(arg as *mut v4l2_buffer) };
            let i = b.index as usize;
            if d.eio {
                return Err(libc::EIO);
            }
            let buf = d.bufs.get_mut(i).ok_or(libc::EINVAL)?;
            if buf.state != BufState::Idle || b.memory != v4l2_memory_V4L2_MEMORY_MMAP {
                return Err(libc::EINVAL);
            }
            buf.state = BufState::Queued;
            d.queued.push_back(i);
            b.flags |= V4L2_BUF_FLAG_QUEUED;
        }
        VIDIOC_DQBUF => {
            if d.owner != Some(fd) {
                return Err(libc::EINVAL);
            }
            let nonblock = d.open.iter().any(|&(f, nb)| f == fd && nb);
            loop {
                if d.vanished {
                    return Err(libc::ENODEV);
                }
                if d.eio {
                    return Err(libc::EIO);
                }
                if !d.streaming {
                    return Err(libc::EINVAL);
                }
                if !d.done.is_empty() {
                    break;
                }
                if nonblock {
                    return Err(libc::EAGAIN);
                }
                d = DEV.1.wait(d).unwrap_or_else(|p| p.into_inner());
            }
            let i = d.done.pop_front().ok_or(libc::EAGAIN)?;
            if d.done.is_empty() {
                drain(fd);
            }
            let sizeimage = d.fmt.sizeimage;
            let buf = &mut d.bufs[i];
            buf.state = BufState::Idle;
            let b = unsafe { &mut *(arg as *mut v4l2_buffer) };
            b.index = i as u32;
            b.bytesused = sizeimage;
            b.length = sizeimage;
            b.flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
            b.field = v4l2_field_V4L2_FIELD_NONE;
            b.timestamp = timeval {
                tv_sec: buf.ts.tv_sec,
                tv_usec: buf.ts.tv_usec,
            };
            b.sequence = buf.seq;
            b.m.offset = (i as u32) << 24;
        }
        VIDIOC_STREAMON => {
            if d.owner != Some(fd) || d.bufs.is_empty() {
                return Err(libc::EINVAL);
            }
            if !d.streaming {
                d.streaming = true;
                d.generation += 1;
                d.t0 = Instant::now();
                d.next_seq = 0;
                let generation = d.generation;
                std::thread::Builder::new()
                    .name("isp-vcam".into())
                    .spawn(move || produce(generation))
                    .map_err(|_| libc::ENOMEM)?;
            }
        }
        VIDIOC_STREAMOFF => {
            if d.owner != Some(fd) {
                return Err(libc::EINVAL);
            }
            d.stop();
            d.eio = false;
            DEV.1.notify_all();
        }
        VIDIOC_QUERY_EXT_CTRL => {
            let q = unsafe { &mut *(arg as *mut v4l2_query_ext_ctrl) };
            let c = find_ctrl(&d.ctrls, q.id)?;
            *q = unsafe { std::mem::zeroed() };
            q.id = c.id;
            q.type_ = c.kind;
            for (o, b) in q.name.iter_mut().zip(c.name.bytes()) {
                *o = b as libc::c_char;
            }
            q.minimum = c.min;
            q.maximum = c.max;
            q.step = c.step;
            q.default_value = c.default;
            q.flags = if c.read_only {
                V4L2_CTRL_FLAG_READ_ONLY
            } else {
                0
            };
            q.elem_size = if c.kind == INT64 { 8 } else { 4 };
            q.elems = 1;
        }
        VIDIOC_QUERYCTRL => {
            let q = unsafe { &mut *(arg as *mut v4l2_queryctrl) };
            let c = find_ctrl(&d.ctrls, q.id)?;
            *q = unsafe { std::mem::zeroed() };
            q.id = c.id;
            q.type_ = c.kind;
            copy_name(&mut q.name, c.name);
            q.minimum = c.min.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            q.maximum = c.max.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            q.step = c.step as i32;
            q.default_value = c.default.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            q.flags = if c.read_only {
                V4L2_CTRL_FLAG_READ_ONLY
            } else {
                0
            };
        }
        VIDIOC_QUERYMENU => {
            let q = unsafe { &mut *(arg as *mut v4l2_querymenu) };
            let c = d.ctrls.iter().find(|c| c.id == q.id).ok_or(libc::EINVAL)?;
            let item = c.menu.get(q.index as usize).ok_or(libc::EINVAL)?;
            let mut name = [0u8; 32];
            copy_name(&mut name, item);
            q.__bindgen_anon_1.name = name;
        }
        VIDIOC_G_CTRL => {
            let c = unsafe { &mut *(arg as *mut v4l2_control) };
            let k = d.ctrls.iter().find(|k| k.id == c.id).ok_or(libc::EINVAL)?;
            c.value = k.value as i32;
        }
        VIDIOC_S_CTRL => {
            let c = unsafe { &mut *(arg as *mut v4l2_control) };
            d.write(c.id, c.value as i64)?;
            c.value = d.value(c.id) as i32;
        }
        VIDIOC_G_EXT_CTRLS | VIDIOC_S_EXT_CTRLS | VIDIOC_TRY_EXT_CTRLS => {
            let x = unsafe { &mut *(arg as *mut ExtControls) };
            if x.count > 64 || (x.count > 0 && x.controls.is_null()) {
                return Err(libc::EINVAL);
            }
            let list = if x.count == 0 {
                &mut [][..]
            } else {
                unsafe { std::slice::from_raw_parts_mut(x.controls, x.count as usize) }
            };
            // Validate every control before changing any (the kernel's rule).
            for (i, c) in list.iter().enumerate() {
                let k = d.ctrls.iter().find(|k| k.id == c.id);
                let bad = match k {
                    None => Some(libc::EINVAL),
                    Some(k) if request != VIDIOC_G_EXT_CTRLS && k.read_only => Some(libc::EACCES),
                    _ => None,
                };
                if let Some(e) = bad {
                    x.error_idx = if request == VIDIOC_S_EXT_CTRLS {
                        x.count
                    } else {
                        i as u32
                    };
                    return Err(e);
                }
            }
            for c in list.iter_mut() {
                let is64 = d.ctrls.iter().any(|k| k.id == c.id && k.kind == INT64);
                if request == VIDIOC_S_EXT_CTRLS {
                    let v = unsafe {
                        if is64 {
                            c.__bindgen_anon_1.value64
                        } else {
                            c.__bindgen_anon_1.value as i64
                        }
                    };
                    d.write(c.id, v)?;
                }
                let v = d.value(c.id);
                if is64 {
                    c.__bindgen_anon_1.value64 = v;
                } else {
                    c.__bindgen_anon_1.value = v as i32;
                }
            }
        }
        _ => return Err(libc::ENOTTY),
    }
    Ok(())
}

/// `struct v4l2_ext_controls` (the `v4l` crate keeps its copy private).
#[repr(C)]
struct ExtControls {
    which: u32,
    count: u32,
    error_idx: u32,
    request_fd: i32,
    reserved: u32,
    controls: *mut v4l2_ext_control,
}

fn find_ctrl(ctrls: &[Ctrl], id: u32) -> Result<&Ctrl, c_int> {
    let next = id & (V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND) != 0;
    let id = id & V4L2_CTRL_ID_MASK;
    let found = if next {
        ctrls.iter().find(|c| c.id > id)
    } else {
        ctrls.iter().find(|c| c.id == id)
    };
    found.ok_or(libc::EINVAL)
}

/// New ranges with the old values kept where they still fit.
fn carry_values(old: &[Ctrl], mut new: Vec<Ctrl>) -> Vec<Ctrl> {
    for c in new.iter_mut().filter(|c| !c.read_only) {
        if let Some(o) = old.iter().find(|o| o.id == c.id) {
            c.value = o.value.clamp(c.min, c.max);
        }
    }
    new
}

fn new_buffer(len: usize) -> Result<Buf, c_int> {
    // SAFETY: a fresh anonymous file, sized and mapped here.
    unsafe {
        let memfd = libc::memfd_create(c"isp-vcam-buffer".as_ptr(), libc::MFD_CLOEXEC);
        if memfd < 0 || libc::ftruncate(memfd, len as off_t) != 0 {
            return Err(libc::ENOMEM);
        }
        let map = real_mmap(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            memfd,
            0,
        );
        if map == libc::MAP_FAILED {
            libc::close(memfd);
            return Err(libc::ENOMEM);
        }
        Ok(Buf {
            mem: Arc::new(Memory {
                memfd,
                len,
                map: map as usize,
            }),
            state: BufState::Idle,
            seq: 0,
            ts: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        })
    }
}

fn monotonic() -> libc::timeval {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    libc::timeval {
        tv_sec: t.tv_sec,
        tv_usec: t.tv_nsec / 1000,
    }
}

/// The sensor: one frame per interval while streaming. A frame with no
/// buffer queued for it is lost (the sequence number moves on).
fn produce(generation: u64) {
    let mut scratch = Vec::new();
    loop {
        let deadline = {
            let d = dev();
            if !d.streaming || d.generation != generation {
                return;
            }
            let interval = Duration::from_secs_f64(d.interval.0 as f64 / d.interval.1 as f64);
            d.t0 + interval * (d.next_seq as u32 + 1)
        };
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        let job = {
            let mut d = dev();
            if !d.streaming || d.generation != generation {
                return;
            }
            let seq = d.next_seq;
            d.next_seq += 1;
            // Writes land in the order they were made, each at its own frame
            // (a gain written after an exposure may land before it).
            let due: Vec<(u32, i64)> = d
                .pending
                .iter()
                .filter(|p| p.0 <= seq)
                .map(|p| (p.1, p.2))
                .collect();
            d.pending.retain(|p| p.0 > seq);
            for (id, v) in due {
                d.land(id, v);
            }
            let faults = &CONFIG.faults;
            if faults.has(Fault::Vanish(seq)) {
                d.vanished = true;
                for &(fd, _) in &d.open {
                    signal(fd);
                }
                DEV.1.notify_all();
                return;
            }
            if faults.has(Fault::Eio(seq)) {
                d.eio = true;
                if let Some(o) = d.owner {
                    signal(o);
                }
                DEV.1.notify_all();
                return;
            }
            if faults.has(Fault::Gap(seq)) {
                None
            } else if let Some(i) = d.queued.pop_front() {
                d.bufs[i].state = BufState::Filling;
                let key = render::BaseKey {
                    fmt: d.fmt,
                    scene: CONFIG.scene,
                    pattern: d.live.pattern,
                    hflip: d.live.hflip,
                    vflip: d.live.vflip,
                };
                let base = match &d.base {
                    Some((k, b)) if *k == key => b.clone(),
                    _ => {
                        let b = Arc::new(render::base(&key));
                        d.base = Some((key, b.clone()));
                        b
                    }
                };
                Some((i, seq, d.bufs[i].mem.clone(), d.fmt, d.live, base))
            } else {
                None
            }
        };
        let Some((i, seq, mem, fmt, look, base)) = job else {
            continue;
        };
        // SAFETY: the buffer is Filling: nothing else writes it until it is
        // Done (the caller may read it only after a dequeue), and `mem`
        // keeps the mapping alive if the buffers are freed meanwhile.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(mem.map as *mut u8, fmt.sizeimage as usize) };
        render::frame(&fmt, &base, &look, seq, dst, &mut scratch);
        let mut d = dev();
        if !d.streaming || d.generation != generation {
            return;
        }
        let ts = monotonic();
        let b = &mut d.bufs[i];
        b.state = BufState::Done;
        b.seq = seq as u32;
        b.ts = ts;
        d.done.push_back(i);
        if let Some(o) = d.owner {
            signal(o);
        }
        DEV.1.notify_all();
    }
}
