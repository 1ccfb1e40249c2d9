//! What cameras the machine has: every `/dev/video*` node that captures,
//! with its formats, frame sizes, frame rates and controls, and whether its
//! buffers can be exported as DMA-BUF.

use super::controls::{self, ControlInfo};
use super::formats;
use crate::sources::SourceError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use v4l::video::Capture;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeInfo {
    pub width: u32,
    pub height: u32,
    /// Frames per second offered at this size.
    pub fps: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FormatInfo {
    pub fourcc: String,
    pub description: String,
    /// Whether the ISP reads it (Bayer RAW).
    pub raw: bool,
    pub sizes: Vec<SizeInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceInfo {
    pub path: PathBuf,
    pub card: String,
    pub driver: String,
    pub bus: String,
    pub formats: Vec<FormatInfo>,
    pub controls: Vec<ControlInfo>,
    /// VIDIOC_EXPBUF works on its buffers.
    pub dmabuf: bool,
}

impl DeviceInfo {
    pub fn sizes(&self, fourcc: u32) -> Vec<(u32, u32)> {
        let name = formats::name(fourcc);
        self.formats
            .iter()
            .filter(|f| f.fourcc == name)
            .flat_map(|f| f.sizes.iter().map(|s| (s.width, s.height)))
            .collect()
    }
    pub fn rates(&self, fourcc: u32, w: u32, h: u32) -> Vec<f32> {
        let name = formats::name(fourcc);
        self.formats
            .iter()
            .filter(|f| f.fourcc == name)
            .flat_map(|f| f.sizes.iter())
            .filter(|s| (s.width, s.height) == (w, h))
            .flat_map(|s| s.fps.iter().copied())
            .collect()
    }
    pub fn format_names(&self) -> Vec<String> {
        self.formats.iter().map(|f| f.fourcc.clone()).collect()
    }
    pub fn bayer_format_names(&self) -> Vec<String> {
        let v: Vec<String> = self
            .formats
            .iter()
            .filter(|f| f.raw)
            .map(|f| f.fourcc.clone())
            .collect();
        if v.is_empty() { vec!["none".into()] } else { v }
    }
}

/// The capture devices under `/dev` (sorted by path). Nodes that cannot be
/// opened or do not capture are left out.
pub fn devices() -> Vec<DeviceInfo> {
    let mut paths: Vec<PathBuf> = v4l::context::enum_devices()
        .into_iter()
        .map(|n| n.path().to_path_buf())
        .collect();
    paths.sort_by_key(|p| {
        let s = p.display().to_string();
        let n: String = s.chars().filter(char::is_ascii_digit).collect();
        (n.parse::<u64>().unwrap_or(u64::MAX), s)
    });
    paths.iter().filter_map(|p| describe(p).ok()).collect()
}

/// One device, opened by path.
pub fn describe(path: &Path) -> Result<DeviceInfo, SourceError> {
    let dev = v4l::Device::with_path(path).map_err(|e| super::dev_err(path, "open", e))?;
    let caps = dev
        .query_caps()
        .map_err(|e| super::dev_err(path, "VIDIOC_QUERYCAP", e))?;
    if u32::from(caps.capabilities) & v4l::v4l_sys::V4L2_CAP_VIDEO_CAPTURE == 0 {
        return Err(SourceError::invalid(path, "not a video capture device"));
    }
    describe_open(path, &dev, &caps)
}

pub(super) fn describe_open(
    path: &Path,
    dev: &v4l::Device,
    caps: &v4l::capability::Capabilities,
) -> Result<DeviceInfo, SourceError> {
    let descs = dev
        .enum_formats()
        .map_err(|e| super::dev_err(path, "VIDIOC_ENUM_FMT", e))?;
    let mut fmts = Vec::new();
    for d in descs {
        let code = formats::code(&d.fourcc.repr);
        let mut sizes = Vec::new();
        for s in dev.enum_framesizes(d.fourcc).unwrap_or_default() {
            for disc in s.size.to_discrete() {
                let fps = dev
                    .enum_frameintervals(d.fourcc, disc.width, disc.height)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|i| match i.interval {
                        v4l::frameinterval::FrameIntervalEnum::Discrete(f) if f.numerator > 0 => {
                            Some(f.denominator as f32 / f.numerator as f32)
                        }
                        v4l::frameinterval::FrameIntervalEnum::Stepwise(s)
                            if s.min.numerator > 0 =>
                        {
                            Some(s.min.denominator as f32 / s.min.numerator as f32)
                        }
                        _ => None,
                    })
                    .collect();
                sizes.push(SizeInfo {
                    width: disc.width,
                    height: disc.height,
                    fps,
                });
            }
        }
        fmts.push(FormatInfo {
            fourcc: formats::name(code),
            description: d.description.clone(),
            raw: formats::raw_format(code, 16, 16, 0).is_some(),
            sizes,
        });
    }
    let controls =
        controls::enumerate(dev).map_err(|e| super::dev_err(path, "VIDIOC_QUERY_EXT_CTRL", e))?;
    Ok(DeviceInfo {
        path: path.to_path_buf(),
        card: caps.card.clone(),
        driver: caps.driver.clone(),
        bus: caps.bus.clone(),
        formats: fmts,
        controls,
        dmabuf: probe_expbuf(dev),
    })
}

/// Whether VIDIOC_EXPBUF exports a buffer (the `v4l` crate has no call for
/// it, so the ioctl is issued here). Needs a moment of ownership of the
/// queue: skipped (false) when another program streams from the device.
fn probe_expbuf(dev: &v4l::Device) -> bool {
    use v4l::v4l_sys::*;
    let fd = dev.handle().fd();
    // SAFETY: zeroed plain-data structs for these ioctls on our descriptor.
    unsafe {
        let mut req: v4l2_requestbuffers = std::mem::zeroed();
        req.count = 1;
        req.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        if v4l::v4l2::ioctl(
            fd,
            v4l::v4l2::vidioc::VIDIOC_REQBUFS,
            (&mut req as *mut v4l2_requestbuffers).cast(),
        )
        .is_err()
            || req.count == 0
        {
            return false;
        }
        let mut exp: v4l2_exportbuffer = std::mem::zeroed();
        exp.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        exp.index = 0;
        exp.flags = libc::O_CLOEXEC as u32;
        let ok = v4l::v4l2::ioctl(
            fd,
            v4l::v4l2::vidioc::VIDIOC_EXPBUF,
            (&mut exp as *mut v4l2_exportbuffer).cast(),
        )
        .is_ok();
        if ok && exp.fd >= 0 {
            libc::close(exp.fd);
        }
        req.count = 0;
        let _ = v4l::v4l2::ioctl(
            fd,
            v4l::v4l2::vidioc::VIDIOC_REQBUFS,
            (&mut req as *mut v4l2_requestbuffers).cast(),
        );
        ok
    }
}
