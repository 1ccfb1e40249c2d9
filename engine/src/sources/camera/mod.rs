//! Live V4L2 cameras through the `v4l` crate: the device's formats, sizes,
//! rates and controls (`list`), and [`V4l2Source`], a [`FrameSource`] that
//! streams mmap buffers (six; `bytesperline` kept as the frame's
//! stride), keeps the driver's sequence numbers and timestamps, finds lost
//! frames from sequence gaps, and writes sensor controls, pairing each frame
//! with the controls that really exposed it (libcamera's DelayedControls:
//! a write lands `delay` frames after the frame being exposed when it is
//! issued).
//!
//! A frame is copied once, from the driver's buffer into the engine's pooled
//! one. (Whether the driver could export its buffers as DMA-BUF is probed
//! with VIDIOC_EXPBUF and reported by `list`.)

pub mod controls;
pub mod formats;
pub mod list;

use super::{FrameMeta, FrameSource, SourceError};
use crate::algorithms::Control;
use crate::controls::SensorCaps;
use crate::types::RawFormat;
use controls::{ControlInfo, SensorMap};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
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

pub struct V4l2Source {
    path: PathBuf,
    device: v4l::Device,
    stream: Option<v4l::io::mmap::Stream<'static>>,
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
        if sizes.is_empty() {
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
            (None, None) if sizes.contains(&(want.width, want.height)) => (want.width, want.height),
            (None, None) => sizes
                .iter()
                .copied()
                .max_by_key(|s| s.0 * s.1)
                .unwrap_or((0, 0)),
        };
        if !sizes.contains(&(w, h)) {
            let list: Vec<String> = sizes.iter().map(|(w, h)| format!("{w}x{h}")).collect();
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

    fn stop(&mut self) {
        if let Some(mut s) = self.stream.take() {
            use v4l::io::traits::Stream;
            // STREAMOFF now; the stream's drop issues it again (a no-op) and
            // releases the buffers. The crate panics in that drop if
            // STREAMOFF fails with anything but ENODEV, so a stream that
            // refused it is leaked rather than dropped.
            match s.stop() {
                Err(e) if e.raw_os_error() != Some(libc::ENODEV) => std::mem::forget(s),
                _ => drop(s),
            }
        }
        self.stopped = true;
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
        if self.stream.is_none() {
            let mut s =
                v4l::io::mmap::Stream::with_buffers(&self.device, Type::VideoCapture, BUFFERS)
                    .map_err(|e| dev_err(&self.path, "VIDIOC_REQBUFS", e))?;
            s.set_timeout(Duration::from_secs_f64((self.interval_s * 8.0).max(2.0)));
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let r = stream.next();
        let (bytes, m) = match r {
            Ok(v) => v,
            Err(e) => {
                let what = if e.kind() == std::io::ErrorKind::TimedOut {
                    format!("no frame in {:.1} s", self.interval_s * 8.0)
                } else {
                    "VIDIOC_DQBUF".to_string()
                };
                let err = dev_err(&self.path, &what, e);
                self.stop();
                return Err(err);
            }
        };
        let need = self.fmt.frame_bytes();
        if (m.bytesused as usize) < need || bytes.len() < need || dst.len() < need {
            let err = SourceError::invalid(
                &self.path,
                format!("short frame: {} bytes, {need} expected", m.bytesused),
            );
            self.stop();
            return Err(err);
        }
        dst[..need].copy_from_slice(&bytes[..need]);
        // The driver's sequence is a u32 that wraps: extend it past the last.
        let seq = match self.last {
            Some((last, _)) => last + (m.sequence.wrapping_sub(last as u32)) as u64,
            None => m.sequence as u64,
        };
        let ts = (m.timestamp.sec.max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(m.timestamp.usec.max(0) as u64 * 1000);
        let dropped_before = match self.last {
            Some((last, _)) if seq > last + 1 => seq - last - 1,
            _ => 0,
        };
        self.dropped += dropped_before;
        self.last = Some((seq, ts));
        // Each write lands at its own frame (a gain written after an
        // exposure may land before it), in the order they were made.
        for &(_, id, v) in self.landing.iter().filter(|l| l.0 <= seq) {
            self.effective.insert(id, v);
        }
        self.landing.retain(|l| l.0 > seq);
        let value = |c: &Option<(ControlInfo, f32)>| {
            c.as_ref()
                .and_then(|(c, _)| self.effective.get(&c.id).copied())
        };
        let exposure_us = value(&self.map.exposure)
            .and_then(|v| self.map.exposure_us(v))
            .unwrap_or(0.0);
        let analogue_gain = value(&self.map.gain)
            .and_then(|v| self.map.gain(v))
            .unwrap_or(1.0);
        let controls = self
            .controls
            .iter()
            .filter(|c| !c.read_only)
            .filter_map(|c| Some((c.name.clone(), *self.effective.get(&c.id)? as f64)))
            .collect();
        Ok(Some(FrameMeta {
            sequence: seq,
            timestamp_ns: ts,
            exposure_us,
            analogue_gain,
            controls,
            dropped_before,
        }))
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
