//! The driver's capture buffers, queued and dequeued by index.
//!
//! The `v4l` crate's mmap stream requeues the previous buffer on every
//! `next()`, keeps a dequeued buffer's metadata to itself, and panics in its
//! drop when `REQBUFS 0` fails, which the kernel answers with EBUSY while an
//! exported DMA-BUF of the queue is still open. Buffers lent to the engine
//! for the life of a frame, and given back out of order, need their own
//! queue: this one. Every call still goes through the crate's `ioctl`.
//!
//! Each buffer is mapped through the device (for the copy path) and, where
//! the driver has VIDIOC_EXPBUF, exported as a DMA-BUF descriptor that the
//! source imports into the ResourceManager (the zero-copy path).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use v4l::v4l_sys::*;
use v4l::v4l2::vidioc;

const CAPTURE: u32 = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
const MMAP: u32 = v4l2_memory_V4L2_MEMORY_MMAP;

/// `DMA_BUF_IOCTL_SYNC` (`_IOW('b', 0, struct dma_buf_sync)`) and its flags.
const DMA_BUF_IOCTL_SYNC: libc::c_ulong = 0x4008_6200;
const DMA_BUF_SYNC_READ: u64 = 1;
const DMA_BUF_SYNC_END: u64 = 4;

/// Issue `req` with `arg` on `fd` through the crate's wrapper.
fn xioctl<T>(fd: RawFd, req: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    // SAFETY: `arg` is the plain-data struct `req` takes, borrowed mutably
    // for the call.
    unsafe { v4l::v4l2::ioctl(fd, req, (arg as *mut T).cast()) }
}

fn zeroed_buffer() -> v4l2_buffer {
    // SAFETY: v4l2_buffer is plain data; all-zero is a valid value.
    let mut b: v4l2_buffer = unsafe { std::mem::zeroed() };
    b.type_ = CAPTURE;
    b.memory = MMAP;
    b
}

/// Bracket CPU reads of an exported buffer (`DMA_BUF_IOCTL_SYNC`): caches
/// are made coherent at the start, and the end lets the device write again.
/// Descriptors that are not DMA-BUFs answer ENOTTY, which means there is
/// nothing to do.
pub(crate) fn dma_buf_sync(fd: RawFd, end: bool) -> io::Result<()> {
    let flags: u64 = DMA_BUF_SYNC_READ | if end { DMA_BUF_SYNC_END } else { 0 };
    // SAFETY: the struct dma_buf_sync (one u64) this ioctl takes.
    let r = unsafe { libc::ioctl(fd, DMA_BUF_IOCTL_SYNC as _, &flags as *const u64) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOTTY) => Ok(()),
        _ => Err(e),
    }
}

/// A buffer mapped through the device descriptor.
struct DeviceMap {
    ptr: *mut u8,
    len: usize,
}

/// One dequeued frame: which buffer, and what the driver said of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dequeued {
    pub index: usize,
    pub bytesused: u32,
    pub sequence: u32,
    /// CLOCK_MONOTONIC, ns.
    pub timestamp_ns: u64,
    pub flags: u32,
}

impl Dequeued {
    /// The driver marked the frame as corrupted (V4L2_BUF_FLAG_ERROR).
    pub fn is_error(&self) -> bool {
        self.flags & V4L2_BUF_FLAG_ERROR != 0
    }
}

pub(crate) struct DriverQueue {
    handle: Arc<v4l::device::Handle>,
    maps: Vec<DeviceMap>,
    /// Buffer lengths in bytes.
    pub lengths: Vec<usize>,
    /// DMA-BUF descriptors, until the source takes them; or why there are none.
    exports: Result<Vec<OwnedFd>, String>,
    queued: Vec<bool>,
    streaming: bool,
    timeout_ms: i32,
}

// SAFETY: the device mappings are reached only through `&self`/`&mut self`
// of this value (read-only slices of dequeued buffers), like a Vec's memory.
unsafe impl Send for DriverQueue {}

impl DriverQueue {
    /// Ask the driver for `count` buffers, map each, and try to export each
    /// as a DMA-BUF (a driver without VIDIOC_EXPBUF is not an error).
    pub fn new(dev: &v4l::Device, count: u32, timeout_ms: i32) -> io::Result<DriverQueue> {
        let handle = dev.handle();
        let fd = handle.fd();
        // SAFETY: plain data; all-zero is valid.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.count = count;
        req.type_ = CAPTURE;
        req.memory = MMAP;
        xioctl(fd, vidioc::VIDIOC_REQBUFS, &mut req)?;
        let mut q = DriverQueue {
            handle,
            maps: Vec::new(),
            lengths: Vec::new(),
            exports: Ok(Vec::new()),
            queued: vec![false; req.count as usize],
            streaming: false,
            timeout_ms,
        };
        if req.count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "VIDIOC_REQBUFS gave no buffers",
            ));
        }
        for i in 0..req.count {
            let mut b = zeroed_buffer();
            b.index = i;
            xioctl(fd, vidioc::VIDIOC_QUERYBUF, &mut b)?;
            let len = b.length as usize;
            // SAFETY: mapping the driver's buffer `i` at the offset it gave.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd,
                    b.m.offset as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            q.maps.push(DeviceMap {
                ptr: ptr.cast(),
                len,
            });
            q.lengths.push(len);
        }
        q.exports = (0..req.count).map(|i| export(fd, i)).collect();
        Ok(q)
    }

    /// The DMA-BUF descriptors, one per buffer (once), or why there are none.
    pub fn take_exports(&mut self) -> Result<Vec<OwnedFd>, String> {
        std::mem::replace(&mut self.exports, Err("already taken".into()))
    }

    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Buffers the driver holds (queued, to be filled).
    pub fn queued(&self) -> usize {
        self.queued.iter().filter(|&&q| q).count()
    }

    /// Give buffer `index` to the driver.
    pub fn queue(&mut self, index: usize) -> io::Result<()> {
        let mut b = zeroed_buffer();
        b.index = index as u32;
        xioctl(self.handle.fd(), vidioc::VIDIOC_QBUF, &mut b)?;
        if let Some(q) = self.queued.get_mut(index) {
            *q = true;
        }
        Ok(())
    }

    /// Queue every buffer in `indices` and start streaming.
    pub fn start(&mut self, indices: impl IntoIterator<Item = usize>) -> io::Result<()> {
        for i in indices {
            self.queue(i)?;
        }
        let mut typ = CAPTURE as libc::c_int;
        xioctl(self.handle.fd(), vidioc::VIDIOC_STREAMON, &mut typ)?;
        self.streaming = true;
        Ok(())
    }

    /// Wait (poll, up to the timeout) for a filled buffer and take it.
    pub fn dequeue(&mut self) -> io::Result<Dequeued> {
        let fd = self.handle.fd();
        loop {
            let ready = self.handle.poll(libc::POLLIN, self.timeout_ms)?;
            if ready == 0 {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "VIDIOC_DQBUF"));
            }
            let mut b = zeroed_buffer();
            match xioctl(fd, vidioc::VIDIOC_DQBUF, &mut b) {
                Ok(()) => {}
                // Woken, but another reader took it: wait again.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
            let index = b.index as usize;
            let Some(q) = self.queued.get_mut(index) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("VIDIOC_DQBUF gave buffer {index} of {}", self.maps.len()),
                ));
            };
            *q = false;
            return Ok(Dequeued {
                index,
                bytesused: b.bytesused,
                sequence: b.sequence,
                timestamp_ns: (b.timestamp.tv_sec.max(0) as u64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add((b.timestamp.tv_usec.max(0) as u64).saturating_mul(1000)),
                flags: b.flags,
            });
        }
    }

    /// The bytes of dequeued buffer `index`, through the device's mapping.
    pub fn bytes(&self, index: usize) -> &[u8] {
        match self.maps.get(index) {
            // SAFETY: mapped for `len` bytes while `self` lives; the driver
            // does not write a buffer that is not queued.
            Some(m) => unsafe { std::slice::from_raw_parts(m.ptr, m.len) },
            None => &[],
        }
    }

    /// STREAMOFF: the driver lets go of every buffer.
    pub fn stop(&mut self) -> io::Result<()> {
        if !self.streaming {
            return Ok(());
        }
        self.streaming = false;
        self.queued.iter_mut().for_each(|q| *q = false);
        let mut typ = CAPTURE as libc::c_int;
        xioctl(self.handle.fd(), vidioc::VIDIOC_STREAMOFF, &mut typ)
    }
}

/// VIDIOC_EXPBUF of buffer `index`, read-write (the engine maps it shared).
fn export(fd: RawFd, index: u32) -> Result<OwnedFd, String> {
    // SAFETY: plain data; all-zero is valid.
    let mut e: v4l2_exportbuffer = unsafe { std::mem::zeroed() };
    e.type_ = CAPTURE;
    e.index = index;
    e.flags = (libc::O_CLOEXEC | libc::O_RDWR) as u32;
    match xioctl(fd, vidioc::VIDIOC_EXPBUF, &mut e) {
        // SAFETY: a new descriptor the driver made for us.
        Ok(()) if e.fd >= 0 => Ok(unsafe { OwnedFd::from_raw_fd(e.fd) }),
        Ok(()) => Err(format!("VIDIOC_EXPBUF of buffer {index} gave fd {}", e.fd)),
        Err(err) => Err(format!("VIDIOC_EXPBUF of buffer {index}: {err}")),
    }
}

impl Drop for DriverQueue {
    fn drop(&mut self) {
        let _ = self.stop();
        // Exports nobody took are closed first: open, they keep the
        // buffers busy.
        self.exports = Err("dropped".into());
        for m in &self.maps {
            // SAFETY: mapped in `new`, unmapped once here.
            unsafe { libc::munmap(m.ptr.cast(), m.len) };
        }
        // Free the buffers. While an exported buffer is still held (a frame
        // in flight) the kernel answers EBUSY and frees them when the last
        // descriptor closes, or with the device.
        // SAFETY: plain data; all-zero is valid.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.type_ = CAPTURE;
        req.memory = MMAP;
        let _ = xioctl(self.handle.fd(), vidioc::VIDIOC_REQBUFS, &mut req);
    }
}
