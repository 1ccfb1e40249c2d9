//! Live V4L2 cameras through the `v4l` crate: the device's formats, sizes,
//! rates and controls (`list`), and [`V4l2Source`], a [`FrameSource`] that
//! streams mmap buffers (six; `bytesperline` kept as the frame's
//! stride), keeps the driver's sequence numbers and timestamps, finds lost
//! frames from sequence gaps, and writes sensor controls, pairing each frame
//! with the controls that really exposed it (libcamera's DelayedControls:
//! a write lands `delay` frames after the frame being exposed when it is
//! issued).
//!
//! Frames are not copied where the driver exports its buffers
//! (VIDIOC_EXPBUF): each DMA-BUF is imported into the ResourceManager once,
//! and a dequeued buffer is lent to the engine as the frame's raw buffer
//! ([`FrameSource::next_lent`]); its release queues it to the driver again.
//! A frame is copied into a pooled buffer instead when the driver has no
//! EXPBUF, and when lending it would leave the driver fewer than
//! [`MIN_QUEUED`] buffers to fill (a slow consumer must not starve the
//! sensor).

pub mod controls;
mod delivery;
pub mod formats;
pub mod list;
mod stream;

use super::{FrameMeta, FrameSource, SourceError};
use crate::algorithms::Control;
use crate::allocator::{AllocatorKind, Memory};
use crate::controls::SensorCaps;
use crate::resource_manager::{BufferRef, BufferSpec, ResourceManager};
use crate::types::RawFormat;
use controls::{ControlInfo, SensorMap};
pub use delivery::Delivery;
use delivery::Lending;
use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use stream::{Dequeued, DriverQueue};
use v4l::video::Capture;

/// What to ask the device for; `None` keeps the device's current choice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CameraRequest {
    /// A fourcc such as `pRAA` or `RG10`.
    pub fourcc: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f32>,
}

/// Buffers requested from the driver: the engine holds one while it copies,
/// and a frame needs a buffer queued before it starts, so six leave room for
/// a few frames of lag (a loaded machine) before the driver loses one.
pub const BUFFERS: u32 = 6;

/// Buffers a lend must leave with the driver: below this a frame is copied
/// and its buffer queued again at once.
pub const MIN_QUEUED: usize = 2;

pub struct V4l2Source {
    path: PathBuf,
    device: v4l::Device,
    stream: Option<DriverQueue>,
    /// Import of the driver's buffers: not tried yet (None), done, or why not.
    lending: Option<Result<Lending, String>>,
    /// A frame dequeued by `next_lent` that is to be copied by `next_frame`.
    pending: Option<(usize, FrameMeta)>,
    /// Corrupted frames (V4L2_BUF_FLAG_ERROR) skipped since the last delivered.
    skipped: u64,
    delivery: Delivery,
    fmt: RawFormat,
    fourcc: u32,
    interval_s: f64,
    controls: Vec<ControlInfo>,
    map: SensorMap,
    /// Control values in effect for the next frame delivered.
    effective: BTreeMap<u32, i64>,
    /// Writes not yet landed: (first frame they change, id, value).
    landing: VecDeque<(u64, u32, i64)>,
    /// The last frame delivered: (sequence, timestamp in ns, CLOCK_MONOTONIC).
    last: Option<(u64, u64)>,
    dropped: u64,
    applied: Vec<String>,
    stopped: bool,
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("path", &self.path)
            .field("fmt", &self.fmt)
            .finish()
    }
}

pub(crate) fn dev_err(path: &Path, what: &str, e: std::io::Error) -> SourceError {
    let hint = match e.raw_os_error() {
        Some(libc::ENOENT) => " (no such device: `isp devices` lists the cameras)",
        Some(libc::EBUSY) => " (the device is in use by another program)",
        Some(libc::EACCES) | Some(libc::EPERM) => {
            " (no permission: is the user in the `video` group?)"
        }
        Some(libc::ENODEV) => " (the device is gone: unplugged?)",
        _ => "",
    };
    SourceError::Invalid {
        path: path.display().to_string(),
        message: format!("{what}: {e}{hint}"),
    }
}

/// Nanoseconds on CLOCK_MONOTONIC (the clock of V4L2 timestamps).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl V4l2Source {
    /// Open `path`, negotiate the format, size and rate asked for (an
    /// unsupported one is an error listing what the device has), read its
    /// controls. Streaming starts with the first frame read.
    pub fn open(path: &Path, req: &CameraRequest) -> Result<V4l2Source, SourceError> {
        let device = v4l::Device::with_path(path).map_err(|e| dev_err(path, "open", e))?;
        let caps = device
            .query_caps()
            .map_err(|e| dev_err(path, "VIDIOC_QUERYCAP", e))?;
        let flags = u32::from(caps.capabilities);
        if flags & v4l::v4l_sys::V4L2_CAP_VIDEO_CAPTURE == 0 {
            return Err(SourceError::invalid(
                path,
                format!("{} is not a capture device", caps.card),
            ));
        }
        let info = list::describe_open(path, &device, &caps)?;
        let mut want = device
            .format()
            .map_err(|e| dev_err(path, "VIDIOC_G_FMT", e))?;
        if let Some(cc) = &req.fourcc {
            let bytes: [u8; 4] = cc.as_bytes().try_into().map_err(|_| {
                SourceError::Spec(format!(
                    "--format {cc}: a fourcc is four characters (e.g. pRAA, RG10)"
                ))
            })?;
            want.fourcc = v4l::FourCC::new(&bytes);
        }
        let cur_cc = formats::code(&want.fourcc.repr);
        // Pick a size the device lists for this format: the one asked for,
        // else keep the current size if listed, else the largest.
        let sizes = info.sizes(cur_cc);
        let range = info.size_range(cur_cc);
        if sizes.is_empty() && range.is_none() {
            return Err(SourceError::invalid(
                path,
                format!(
                    "format {} is not supported; the device has: {}",
                    formats::name(cur_cc),
                    info.format_names().join(", ")
                ),
            ));
        }
        let (w, h) = match (req.width, req.height) {
            (Some(w), Some(h)) => (w, h),
            (Some(w), None) => (w, sizes.iter().find(|s| s.0 == w).map_or(0, |s| s.1)),
            (None, Some(h)) => (sizes.iter().find(|s| s.1 == h).map_or(0, |s| s.0), h),
            (None, None) if info.has_size(cur_cc, want.width, want.height) => {
                (want.width, want.height)
            }
            (None, None) => sizes
                .iter()
                .copied()
                .max_by_key(|s| s.0 as u64 * s.1 as u64)
                .unwrap_or((0, 0)),
        };
        if !info.has_size(cur_cc, w, h) {
            let mut list: Vec<String> = sizes.iter().map(|(w, h)| format!("{w}x{h}")).collect();
            if let Some(r) = range {
                list = vec![format!("any size from {r}")];
            }
            return Err(SourceError::invalid(
                path,
                format!(
                    "{}x{} is not a size of {}; it has: {}",
                    w,
                    h,
                    formats::name(cur_cc),
                    list.join(", ")
                ),
            ));
        }
        want.width = w;
        want.height = h;
        let got = device
            .set_format(&want)
            .map_err(|e| dev_err(path, "VIDIOC_S_FMT", e))?;
        let fourcc = formats::code(&got.fourcc.repr);
        if (fourcc, got.width, got.height) != (cur_cc, w, h) {
            return Err(SourceError::invalid(
                path,
                format!(
                    "asked for {} {w}x{h}, the driver set {} {}x{}",
                    formats::name(cur_cc),
                    formats::name(fourcc),
                    got.width,
                    got.height
                ),
            ));
        }
        let Some(fmt) = formats::raw_format(fourcc, got.width, got.height, got.stride) else {
            return Err(SourceError::invalid(
                path,
                format!(
                    "{} ({}) is not RAW: the ISP takes Bayer formats; the device's Bayer formats: {}",
                    formats::name(fourcc),
                    formats::describe(fourcc),
                    info.bayer_format_names().join(", ")
                ),
            ));
        };
        fmt.validate().map_err(|error| SourceError::Format {
            source_name: path.display().to_string(),
            error,
        })?;
        if let Some(fps) = req.fps {
            let rates = info.rates(fourcc, w, h);
            if !rates.is_empty() && !rates.iter().any(|r| (r - fps).abs() < 0.05) {
                let list: Vec<String> = rates.iter().map(|r| format!("{r:.3}")).collect();
                return Err(SourceError::invalid(
                    path,
                    format!(
                        "{fps} fps is not offered at {w}x{h}; rates: {}",
                        list.join(", ")
                    ),
                ));
            }
            let frac = v4l::Fraction::new(1000, (fps * 1000.0).round() as u32);
            device
                .set_params(&v4l::video::capture::Parameters::new(frac))
                .map_err(|e| dev_err(path, "VIDIOC_S_PARM", e))?;
        }
        // Capture nodes without VIDIOC_G_PARM (many CSI receivers) run at
        // the sensor's rate: assume 30 fps for the timing estimates.
        let interval_s = match device.params() {
            Ok(p) if p.interval.numerator > 0 && p.interval.denominator > 0 => {
                p.interval.numerator as f64 / p.interval.denominator as f64
            }
            _ => 1.0 / 30.0,
        }
        .clamp(1e-3, 10.0);
        let controls =
            controls::enumerate(&device).map_err(|e| dev_err(path, "VIDIOC_QUERY_EXT_CTRL", e))?;
        let map = SensorMap::new(&controls, w, h, interval_s);
        let effective = controls
            .iter()
            .filter_map(|c| Some((c.id, c.value?)))
            .collect();
        Ok(V4l2Source {
            path: path.to_path_buf(),
            device,
            stream: None,
            lending: None,
            pending: None,
            skipped: 0,
            delivery: Delivery::default(),
            fmt,
            fourcc,
            interval_s,
            controls,
            map,
            effective,
            landing: VecDeque::new(),
            last: None,
            dropped: 0,
            applied: Vec::new(),
            stopped: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn fourcc(&self) -> u32 {
        self.fourcc
    }
    /// Frames the device lost so far (sequence gaps).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
    pub fn sensor_map(&self) -> &SensorMap {
        &self.map
    }

    /// The frame being exposed now, by sequence number: the one after the
    /// last delivered, plus the frame intervals gone since its timestamp.
    fn exposing_now(&self) -> u64 {
        match self.last {
            None => 0,
            Some((seq, ts)) => {
                let gone = monotonic_ns().saturating_sub(ts) as f64 / 1e9;
                seq + 1 + (gone / self.interval_s).floor().max(0.0) as u64
            }
        }
    }

    /// Write device controls now; each lands `delay` frames after the frame
    /// being exposed (at once if the stream has not started).
    fn write(&mut self, values: &[(u32, i64)]) -> Result<(), SourceError> {
        if values.is_empty() {
            return Ok(());
        }
        // The frame being exposed when the write goes out.
        let now = self.exposing_now();
        controls::write(&self.device, values)
            .map_err(|e| dev_err(&self.path, "VIDIOC_S_EXT_CTRLS", e))?;
        for &(id, v) in values {
            let name = self
                .controls
                .iter()
                .find(|c| c.id == id)
                .map_or_else(|| format!("{id:#x}"), |c| c.name.clone());
            if let Some(c) = self.controls.iter_mut().find(|c| c.id == id) {
                c.value = Some(v);
            }
            if self.stream.is_none() {
                self.effective.insert(id, v);
                self.applied
                    .push(format!("{name} = {v} (before streaming)"));
            } else {
                let at = now + controls::delay_of(id);
                self.landing.push_back((at, id, v));
                self.applied
                    .push(format!("{name} = {v}, lands at sequence {at}"));
            }
        }
        Ok(())
    }

    /// How the frames so far reached the engine.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// Stop streaming (STREAMOFF), take the buffers back from the
    /// ResourceManager (one lent to a frame still in flight stays mapped
    /// until that frame is done), free them.
    fn stop(&mut self) {
        if let Some(Ok(l)) = self.lending.take()
            && let Some(rm) = l.rm.upgrade()
        {
            for &slot in &l.slots {
                rm.retire(slot);
            }
        }
        if let Some(mut q) = self.stream.take() {
            let _ = q.stop();
        }
        self.pending = None;
        self.stopped = true;
    }

    /// Fail the stream: stop it and say why, naming the device.
    fn fail(&mut self, what: &str, e: std::io::Error) -> SourceError {
        let err = dev_err(&self.path, what, e);
        self.stop();
        err
    }
}

impl FrameSource for V4l2Source {
    fn name(&self) -> String {
        format!("v4l:{}", self.path.display())
    }
    fn format(&self) -> RawFormat {
        self.fmt
    }
    fn frame_count(&self) -> Option<u64> {
        None
    }
    fn is_live(&self) -> bool {
        true
    }
    fn fps(&self) -> Option<f32> {
        Some((1.0 / self.interval_s) as f32)
    }

    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        if self.stopped {
            return Ok(None);
        }
        let (index, meta) = match self.pending.take() {
            Some(p) => p,
            None => self.dequeue()?,
        };
        let need = self.fmt.frame_bytes();
        let q = self.streaming()?;
        if dst.len() < need {
            let err = SourceError::invalid(
                &self.path,
                format!("a {}-byte buffer for a {need}-byte frame", dst.len()),
            );
            self.stop();
            return Err(err);
        }
        dst[..need].copy_from_slice(&q.bytes(index)[..need]);
        if let Err(e) = q.queue(index) {
            return Err(self.fail("VIDIOC_QBUF", e));
        }
        self.delivery.copied += 1;
        Ok(Some(meta))
    }

    fn next_lent(
        &mut self,
        rm: &Arc<ResourceManager>,
    ) -> Result<Option<(BufferRef, FrameMeta)>, SourceError> {
        // A frame left to copy (a feed that failed before it read it)
        // goes first: a new dequeue would lose its buffer.
        if self.stopped || self.pending.is_some() {
            return Ok(None);
        }
        self.streaming()?;
        if self.lending.is_none() {
            self.import_into(rm);
        }
        let (index, meta) = self.dequeue()?;
        let queued = self.stream.as_ref().map_or(0, |q| q.queued());
        let lend = match &mut self.lending {
            Some(Ok(l))
                if queued >= MIN_QUEUED && l.rm.upgrade().is_some_and(|r| Arc::ptr_eq(&r, rm)) =>
            {
                Some(l)
            }
            _ => None,
        };
        let Some(l) = lend else {
            // Copied by `next_frame` (no exports, another pool, or too few
            // buffers left with the driver).
            self.pending = Some((index, meta));
            return Ok(None);
        };
        if let Some(&fd) = l.fds.get(index)
            && let Err(e) = stream::dma_buf_sync(fd, false)
        {
            return Err(self.fail("DMA_BUF_IOCTL_SYNC", e));
        }
        match rm.lend(l.slots[index], "source") {
            Ok(buf) => {
                l.out[index] = true;
                self.delivery.lent += 1;
                Ok(Some((buf, meta)))
            }
            Err(e) => Err(self.fail(
                "lending a buffer to the engine",
                std::io::Error::other(e.to_string()),
            )),
        }
    }

    fn set_controls(&mut self, controls: &[Control]) -> Result<(), SourceError> {
        let values: Vec<(u32, i64)> = controls
            .iter()
            .filter_map(|c| match *c {
                Control::ExposureUs(us) => self.map.exposure_value(us),
                Control::AnalogueGain(g) => self.map.gain_value(g),
            })
            .collect();
        self.write(&values)
    }

    fn sensor_caps(&self) -> Option<SensorCaps> {
        Some(self.map.caps())
    }

    fn take_applied(&mut self) -> Vec<String> {
        std::mem::take(&mut self.applied)
    }

    fn device_controls(&self) -> Vec<ControlInfo> {
        self.controls.clone()
    }

    fn set_device_control(&mut self, id: u32, value: i64) -> Result<(), SourceError> {
        let Some(c) = self.controls.iter().find(|c| c.id == id) else {
            return Err(SourceError::invalid(
                &self.path,
                format!("no control {id:#x}"),
            ));
        };
        if !c.editable() {
            return Err(SourceError::invalid(
                &self.path,
                format!("{} is read-only", c.name),
            ));
        }
        let v = c.quantise(value);
        self.write(&[(id, v)])
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        self.stop();
    }
}
