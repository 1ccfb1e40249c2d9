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

/// Sizes a driver offers as a range (V4L2_FRMSIZE_TYPE_STEPWISE or
/// CONTINUOUS) rather than a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SizeRange {
    pub min_width: u32,
    pub max_width: u32,
    pub step_width: u32,
    pub min_height: u32,
    pub max_height: u32,
    pub step_height: u32,
}

impl SizeRange {
    /// Whether `w`x`h` is one of the range's sizes.
    pub fn fits(&self, w: u32, h: u32) -> bool {
        let on = |v: u32, min: u32, max: u32, step: u32| {
            (min..=max).contains(&v) && (v - min).is_multiple_of(step.max(1))
        };
        on(w, self.min_width, self.max_width, self.step_width)
            && on(h, self.min_height, self.max_height, self.step_height)
    }

    /// The sizes listed for a range: its smallest and largest and the
    /// common video sizes between that fit (a range may hold millions).
    pub fn listed(&self) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = [
            (self.min_width, self.min_height),
            (640, 480),
            (1280, 720),
            (1920, 1080),
            (2560, 1440),
            (3840, 2160),
            (self.max_width, self.max_height),
        ]
        .into_iter()
        .filter(|&(w, h)| self.fits(w, h))
        .collect();
        v.dedup();
        v
    }
}

impl std::fmt::Display for SizeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{} to {}x{} in steps of {}x{}",
            self.min_width,
            self.min_height,
            self.max_width,
            self.max_height,
            self.step_width.max(1),
            self.step_height.max(1)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FormatInfo {
    pub fourcc: String,
    pub description: String,
    /// Whether the ISP reads it (Bayer RAW).
    pub raw: bool,
    /// Discrete sizes, or the listed sizes of `range`.
    pub sizes: Vec<SizeInfo>,
    /// Where the driver gives a range of sizes rather than a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<SizeRange>,
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
    /// Whether the device takes `w`x`h` in this format (listed, or inside
    /// its range of sizes).
    pub fn has_size(&self, fourcc: u32, w: u32, h: u32) -> bool {
        let name = formats::name(fourcc);
        self.formats.iter().filter(|f| f.fourcc == name).any(|f| {
            f.sizes.iter().any(|s| (s.width, s.height) == (w, h))
                || f.range.is_some_and(|r| r.fits(w, h))
        })
    }
    /// The format's range of sizes, if it has one.
    pub fn size_range(&self, fourcc: u32) -> Option<SizeRange> {
        let name = formats::name(fourcc);
        self.formats
            .iter()
            .find(|f| f.fourcc == name)
            .and_then(|f| f.range)
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
        let mut range = None;
        for s in dev.enum_framesizes(d.fourcc).unwrap_or_default() {
            // A range is not expanded (the crate would list every size in
            // it, and a step of 0 would panic it).
            let listed = match s.size {
                v4l::framesize::FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
                v4l::framesize::FrameSizeEnum::Stepwise(sw) => {
                    let r = SizeRange {
                        min_width: sw.min_width,
                        max_width: sw.max_width,
                        step_width: sw.step_width.max(1),
                        min_height: sw.min_height,
                        max_height: sw.max_height,
                        step_height: sw.step_height.max(1),
                    };
                    range = Some(r);
                    r.listed()
                }
            };
            for (width, height) in listed {
                let fps = dev
                    .enum_frameintervals(d.fourcc, width, height)
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
                sizes.push(SizeInfo { width, height, fps });
            }
        }
        fmts.push(FormatInfo {
            fourcc: formats::name(code),
            description: d.description.clone(),
            raw: formats::raw_format(code, 16, 16, 0).is_some(),
            sizes,
            range,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_range_lists_a_few_sizes_and_fits_its_grid() {
        let r = SizeRange {
            min_width: 64,
            max_width: 4096,
            step_width: 2,
            min_height: 64,
            max_height: 3072,
            step_height: 0,
        };
        assert_eq!(
            r.listed(),
            [
                (64, 64),
                (640, 480),
                (1280, 720),
                (1920, 1080),
                (2560, 1440),
                (3840, 2160),
                (4096, 3072)
            ]
        );
        assert!(r.fits(1000, 999));
        assert!(!r.fits(1001, 1000), "off the 2-pixel grid");
        assert!(!r.fits(4098, 1000) && !r.fits(32, 1000));
        assert_eq!(r.to_string(), "64x64 to 4096x3072 in steps of 2x1");
    }
}
