//! The ioctls, with V4L2's semantics and errno values.

use super::*;

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

pub(super) fn copy_name(dst: &mut [u8], s: &str) {
    dst.fill(0);
    let n = dst.len() - 1;
    for (o, b) in dst.iter_mut().zip(s.bytes().take(n)) {
        *o = b;
    }
}

pub(super) const CAPTURE: u32 = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;

/// # Safety
/// `arg` points to the structure `request` names.
pub(super) unsafe fn dispatch(fd: c_int, request: c_ulong, arg: *mut c_void) -> Result<(), c_int> {
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
            c.device_caps |= V4L2_CAP_EXT_PIX_FORMAT;
            c.capabilities = c.device_caps | V4L2_CAP_DEVICE_CAPS;
            c.reserved = [0; 3];
        }
        VIDIOC_ENUM_FMT => {
            let f = unsafe { &mut *(arg as *mut v4l2_fmtdesc) };
            let cc = FOURCCS.get(f.index as usize).ok_or(libc::EINVAL)?;
            if f.type_ != CAPTURE {
                return Err(libc::EINVAL);
            }
            f.pixelformat = code(cc);
            f.flags = 0;
            f.reserved = Default::default();
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
            // Exported buffers still open: the kernel will not free them.
            if !d.bufs.is_empty() && exports_open() {
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
            b.memory = v4l2_memory_V4L2_MEMORY_MMAP;
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
            if CONFIG.faults.has(Fault::NoExpbuf) {
                return Err(libc::ENOTTY);
            }
            let e = unsafe { &mut *(arg as *mut v4l2_exportbuffer) };
            let allowed = (libc::O_CLOEXEC | libc::O_ACCMODE) as u32;
            if e.type_ != CAPTURE || e.plane != 0 || e.flags & !allowed != 0 {
                return Err(libc::EINVAL);
            }
            let buf = d.bufs.get(e.index as usize).ok_or(libc::EINVAL)?;
            // SAFETY: duplicating our own memfd for the caller.
            let fd = unsafe { libc::fcntl(buf.mem.memfd, libc::F_DUPFD_CLOEXEC, 0) };
            if fd < 0 {
                return Err(libc::EMFILE);
            }
            exported(fd);
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
            // A virtual sensor may be waiting for this buffer.
            DEV.1.notify_all();
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
            if buf.error {
                b.flags |= V4L2_BUF_FLAG_ERROR;
            }
            b.field = v4l2_field_V4L2_FIELD_NONE;
            b.timestamp = timeval {
                tv_sec: buf.ts.tv_sec,
                tv_usec: buf.ts.tv_usec,
            };
            b.sequence = buf.seq;
            b.m.offset = (i as u32) << 24;
            if let Some(log) = &CONFIG.log {
                let ns = buf.ts.tv_sec as u64 * 1_000_000_000 + buf.ts.tv_usec as u64 * 1000;
                log_delivery(log, buf.seq, ns);
            }
            // A virtual sensor's fault waits for every frame to be taken.
            DEV.1.notify_all();
        }
        VIDIOC_STREAMON => {
            if d.owner != Some(fd) || d.bufs.is_empty() {
                return Err(libc::EINVAL);
            }
            if !d.streaming {
                // The sensor's picture is ready before its clock starts (at
                // 1080p it takes a while, which would lose the first frames).
                d.base_now();
                d.streaming = true;
                d.generation += 1;
                d.t0 = Instant::now();
                d.t0_ns = monotonic_ns();
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
            drop(quiesce(d));
            return Ok(());
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
        // One priority for every descriptor: the default, and setting it
        // is accepted (v4l2-compliance checks that both answer).
        VIDIOC_G_PRIORITY | VIDIOC_S_PRIORITY if arg.is_null() => return Err(libc::EFAULT),
        VIDIOC_G_PRIORITY => {
            // SAFETY: the caller's int for this request.
            unsafe { *(arg as *mut u32) = v4l2_priority_V4L2_PRIORITY_DEFAULT };
        }
        VIDIOC_S_PRIORITY => {
            // SAFETY: the caller's int for this request.
            let p = unsafe { *(arg as *const u32) };
            if p > v4l2_priority_V4L2_PRIORITY_RECORD {
                return Err(libc::EINVAL);
            }
        }
        // Nothing to log beyond what the controls say.
        VIDIOC_LOG_STATUS => {}
        _ => return Err(libc::ENOTTY),
    }
    Ok(())
}

/// `struct v4l2_ext_controls` (the `v4l` crate keeps its copy private).
#[repr(C)]
pub(super) struct ExtControls {
    which: u32,
    count: u32,
    error_idx: u32,
    request_fd: i32,
    reserved: u32,
    controls: *mut v4l2_ext_control,
}

/// Append `sequence timestamp_ns` to the delivery log (`VCAM_LOG`).
fn log_delivery(path: &std::path::Path, seq: u32, ns: u64) {
    use std::io::Write;
    let line = format!("{seq} {ns}\n");
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = r {
        eprintln!("isp-vcam: VCAM_LOG {}: {e}", path.display());
    }
}
