//! A userspace V4L2 camera, for machines without one (no camera, no vivid,
//! no v4l2loopback): `LD_PRELOAD` this library and one device path
//! (`/dev/video42`, or `VCAM_DEVICE`) answers `open`, `ioctl` (and
//! `syscall(SYS_ioctl, ..)`, which the `v4l` crate uses), `mmap` and `close`
//! as a kernel driver would, and `/dev` lists it. The descriptor handed out is
//! an `eventfd`, so `poll` works unhooked: it is readable while a filled
//! buffer waits. The same idea as libcamera's `v4l2-compat.so` and PipeWire's
//! `pw-v4l2`, the other way round: here the device itself is in userspace.
//!
//! The device is a Bayer sensor looking at the engine's synthetic scenes
//! (colour checker, zone plate, ...): shot and read noise, exposure in lines
//! (landing two frames after it is written), analogue gain (one frame), digital
//! gain, red/blue balance, flips and a test pattern, frames on the interval
//! asked for with the driver's sequence numbers and monotonic timestamps, a
//! sequence gap when no buffer is queued in time.
//!
//! Environment:
//! - `VCAM_DEVICE` the path it claims (default `/dev/video42`)
//! - `VCAM_SCENE` `checker` (default), `gradient`, `zoneplate`, `flat`
//! - `VCAM_EXPOSURE` the exposure control's value at open, in lines
//! - `VCAM_LIGHT` scene illumination relative to the default (1.0)
//! - `VCAM_FAULTS` comma-separated: `gap@N` (frame N is lost: a sequence
//!   gap), `eio@N` (from frame N every dequeue fails with EIO), `vanish@N`
//!   (at frame N the device is unplugged: ENODEV from then on)
//! - `VCAM_CLOCK` `real` (default: frames on the sensor's clock; a frame
//!   whose time passes with no buffer queued, or while the producer is
//!   starved of CPU, is lost, as on a real sensor) or `virtual` (a sensor
//!   that waits for its client: no frame is lost but those `gap@N` names,
//!   frames come no faster than the interval, timestamps are the ideal
//!   `t0 + (seq + 1) * interval`, and `eio@N` / `vanish@N` strike once the
//!   client has dequeued every frame before N: the frames delivered are a
//!   known set, whatever the machine's load)
//! - `VCAM_LOG` a file each dequeued frame is appended to, one line
//!   `sequence timestamp_ns`: what the device delivered

mod device;
mod hooks;
mod render;

pub use device::{Fault, Faults};

/// The device path claimed unless `VCAM_DEVICE` says otherwise.
pub const DEFAULT_DEVICE: &str = "/dev/video42";

/// A symbol a process can look up to know the virtual camera is loaded.
#[unsafe(no_mangle)]
pub extern "C" fn isp_vcam_loaded() -> i32 {
    1
}
