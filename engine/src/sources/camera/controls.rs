//! A camera's controls: enumerated with VIDIOC_QUERY_EXT_CTRL and QUERYMENU
//! (issued here on the crate's `ioctl`: the crate's own loop panics on a
//! menu whose step is 0 and on a menu name it cannot convert), read and written with the EXT_CTRLS ioctls, and
//! the map from the engine's sensor controls (exposure in microseconds,
//! analogue gain as a factor) to the device's own units.

use crate::algorithms::SensorConfig;
use crate::controls::{ControlDelays, SensorCaps};
use serde::Serialize;
use v4l::control::Value;
use v4l::v4l_sys;

/// What kind of value a control takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ControlKind {
    Integer,
    Integer64,
    Boolean,
    Menu,
    IntegerMenu,
    Button,
    /// Strings, compound and class controls: listed, not edited.
    Other,
}

/// One control as the device describes it, with its current value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ControlInfo {
    pub id: u32,
    pub name: String,
    pub kind: ControlKind,
    pub min: i64,
    pub max: i64,
    pub step: u64,
    pub default: i64,
    /// `None` where the value cannot be read (write-only, compound).
    pub value: Option<i64>,
    pub read_only: bool,
    pub inactive: bool,
    /// Menu entries: (index, name or value).
    pub menu: Vec<(u32, String)>,
}

impl ControlInfo {
    /// Whether a person can set it (qv4l2 shows the rest greyed out).
    pub fn editable(&self) -> bool {
        !self.read_only && !matches!(self.kind, ControlKind::Other)
    }

    /// The value the kernel would keep for `v`: clamped to the range and,
    /// for integers, a whole number of steps from the minimum.
    pub fn quantise(&self, v: i64) -> i64 {
        let v = v.clamp(self.min, self.max);
        match self.kind {
            ControlKind::Integer | ControlKind::Integer64 => {
                let step = self.step.max(1) as i64;
                (self.min + (v - self.min + step / 2) / step * step).min(self.max)
            }
            _ => v,
        }
    }

    /// "Exposure: 675 [1..2246 step 1] default 675".
    pub fn describe(&self) -> String {
        let value = self.value.map_or("-".to_string(), |v| v.to_string());
        let mut s = match self.kind {
            ControlKind::Boolean => {
                format!("{} (bool): {value} default {}", self.name, self.default)
            }
            ControlKind::Menu | ControlKind::IntegerMenu => {
                let items: Vec<String> =
                    self.menu.iter().map(|(i, n)| format!("{i}={n}")).collect();
                format!(
                    "{} (menu): {value} default {} [{}]",
                    self.name,
                    self.default,
                    items.join(", ")
                )
            }
            _ => format!(
                "{}: {value} [{}..{} step {}] default {}",
                self.name, self.min, self.max, self.step, self.default
            ),
        };
        if self.read_only {
            s.push_str(" read-only");
        }
        s
    }
}

fn kind_of(t: u32) -> ControlKind {
    match t {
        v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER => ControlKind::Integer,
        v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER64 => ControlKind::Integer64,
        v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_BOOLEAN => ControlKind::Boolean,
        v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_MENU => ControlKind::Menu,
        v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER_MENU => ControlKind::IntegerMenu,
        v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_BUTTON => ControlKind::Button,
        _ => ControlKind::Other,
    }
}

/// A NUL-terminated name from a driver (lossy: drivers are not always UTF-8).
fn c_name(raw: &[std::os::raw::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Menus longer than this are cut (a driver's range is its word).
const MAX_MENU: i64 = 256;

/// A menu's entries by VIDIOC_QUERYMENU, index by index from `min` to `max`
/// (indices a driver skips answer EINVAL and are left out).
fn menu(fd: std::os::raw::c_int, q: &v4l_sys::v4l2_query_ext_ctrl) -> Vec<(u32, String)> {
    let mut items = Vec::new();
    let last = q.maximum.min(q.minimum.saturating_add(MAX_MENU - 1));
    for i in q.minimum.max(0)..=last.max(-1) {
        // SAFETY: plain data; all-zero is valid.
        let mut m: v4l_sys::v4l2_querymenu = unsafe { std::mem::zeroed() };
        m.id = q.id;
        m.index = i as u32;
        // SAFETY: the struct this ioctl takes, on our descriptor.
        let ok = unsafe {
            v4l::v4l2::ioctl(
                fd,
                v4l::v4l2::vidioc::VIDIOC_QUERYMENU,
                (&mut m as *mut v4l_sys::v4l2_querymenu).cast(),
            )
        }
        .is_ok();
        if !ok {
            continue;
        }
        // SAFETY: the driver filled the union member this menu type uses.
        let text = unsafe {
            if q.type_ == v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER_MENU {
                { m.__bindgen_anon_1.value }.to_string()
            } else {
                let name = m.__bindgen_anon_1.name;
                c_name(&name.map(|b| b as std::os::raw::c_char))
            }
        };
        items.push((i as u32, text));
    }
    items
}

/// Every control of an open device, with current values.
pub fn enumerate(dev: &v4l::Device) -> std::io::Result<Vec<ControlInfo>> {
    let fd = dev.handle().fd();
    let mut out = Vec::new();
    // SAFETY: plain data; all-zero is valid.
    let mut q: v4l_sys::v4l2_query_ext_ctrl = unsafe { std::mem::zeroed() };
    let mut last_id = 0u32;
    for _ in 0..4096 {
        q.id |= v4l_sys::V4L2_CTRL_FLAG_NEXT_CTRL | v4l_sys::V4L2_CTRL_FLAG_NEXT_COMPOUND;
        // SAFETY: the struct this ioctl takes, on our descriptor.
        let r = unsafe {
            v4l::v4l2::ioctl(
                fd,
                v4l::v4l2::vidioc::VIDIOC_QUERY_EXT_CTRL,
                (&mut q as *mut v4l_sys::v4l2_query_ext_ctrl).cast(),
            )
        };
        match r {
            Ok(()) => {}
            // EINVAL ends the enumeration (no controls at all, or no more).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
        // Ids rise; a driver that repeats one would never say "no more".
        if q.id <= last_id {
            break;
        }
        last_id = q.id;
        let kind = kind_of(q.type_);
        let flags = q.flags;
        if flags & v4l_sys::V4L2_CTRL_FLAG_DISABLED != 0
            || q.type_ == v4l_sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_CTRL_CLASS
        {
            continue;
        }
        let readable = matches!(
            kind,
            ControlKind::Integer
                | ControlKind::Integer64
                | ControlKind::Boolean
                | ControlKind::Menu
                | ControlKind::IntegerMenu
        ) && flags & v4l_sys::V4L2_CTRL_FLAG_WRITE_ONLY == 0;
        let value = if readable {
            match dev.control(q.id).map(|c| c.value) {
                Ok(Value::Integer(v)) => Some(v),
                Ok(Value::Boolean(b)) => Some(b as i64),
                _ => None,
            }
        } else {
            None
        };
        let menu = if matches!(kind, ControlKind::Menu | ControlKind::IntegerMenu) {
            menu(fd, &q)
        } else {
            Vec::new()
        };
        out.push(ControlInfo {
            id: q.id,
            name: c_name(&q.name),
            kind,
            min: q.minimum,
            max: q.maximum,
            step: q.step,
            default: q.default_value,
            value,
            read_only: flags & v4l_sys::V4L2_CTRL_FLAG_READ_ONLY != 0,
            inactive: flags & v4l_sys::V4L2_CTRL_FLAG_INACTIVE != 0,
            menu,
        });
    }
    Ok(out)
}

/// Write controls, one VIDIOC_S_EXT_CTRLS per control class (the ioctl
/// takes one class at a time).
pub fn write(dev: &v4l::Device, values: &[(u32, i64)]) -> std::io::Result<()> {
    let mut classes: Vec<u32> = values.iter().map(|(id, _)| id & 0xffff_0000).collect();
    classes.dedup();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let batch: Vec<v4l::control::Control> = values
            .iter()
            .filter(|(id, _)| id & 0xffff_0000 == class)
            .map(|&(id, v)| v4l::control::Control {
                id,
                value: Value::Integer(v),
            })
            .collect();
        dev.set_controls(batch)?;
    }
    Ok(())
}

/// Frames between writing a control and the first frame it changes, as
/// libcamera assumes for a sensor it has no table for: exposure and vertical
/// blanking 2, everything else 1.
pub fn delay_of(id: u32) -> u64 {
    match id {
        v4l_sys::V4L2_CID_EXPOSURE
        | v4l_sys::V4L2_CID_EXPOSURE_ABSOLUTE
        | v4l_sys::V4L2_CID_VBLANK => 2,
        _ => 1,
    }
}

/// The engine's sensor controls on this device.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorMap {
    /// (control, microseconds per unit).
    pub exposure: Option<(ControlInfo, f32)>,
    /// (control, the value that means a gain of 1).
    pub gain: Option<(ControlInfo, f32)>,
}

impl SensorMap {
    /// Exposure: V4L2_CID_EXPOSURE in lines (the line time from the pixel
    /// rate and horizontal blanking, else the frame interval over the
    /// height), or V4L2_CID_EXPOSURE_ABSOLUTE in 100 us. Gain:
    /// V4L2_CID_ANALOGUE_GAIN, else V4L2_CID_GAIN, its default value taken as
    /// unity (there is no standard gain code; libcamera keeps a helper per
    /// sensor model for it).
    pub fn new(controls: &[ControlInfo], width: u32, height: u32, interval_s: f64) -> SensorMap {
        let by = |id: u32| {
            controls
                .iter()
                .find(|c| c.id == id && !c.read_only && !c.inactive)
                .cloned()
        };
        let ro = |id: u32| controls.iter().find(|c| c.id == id).and_then(|c| c.value);
        let line_us = match (
            ro(v4l_sys::V4L2_CID_PIXEL_RATE),
            ro(v4l_sys::V4L2_CID_HBLANK),
        ) {
            (Some(rate), Some(hblank)) if rate > 0 => {
                ((width as i64 + hblank) as f64 / rate as f64 * 1e6) as f32
            }
            _ => (interval_s * 1e6 / height.max(1) as f64) as f32,
        };
        let exposure = by(v4l_sys::V4L2_CID_EXPOSURE)
            .map(|c| (c, line_us))
            .or_else(|| by(v4l_sys::V4L2_CID_EXPOSURE_ABSOLUTE).map(|c| (c, 100.0)));
        let gain = by(v4l_sys::V4L2_CID_ANALOGUE_GAIN)
            .or_else(|| by(v4l_sys::V4L2_CID_GAIN))
            .map(|c| {
                let unity = if c.default > 0 {
                    c.default
                } else {
                    c.min.max(1)
                };
                (c, unity as f32)
            });
        SensorMap { exposure, gain }
    }

    /// The device value for an exposure in microseconds.
    pub fn exposure_value(&self, us: f32) -> Option<(u32, i64)> {
        let (c, unit) = self.exposure.as_ref()?;
        Some((c.id, c.quantise((us / unit).round() as i64)))
    }

    pub fn gain_value(&self, gain: f32) -> Option<(u32, i64)> {
        let (c, unity) = self.gain.as_ref()?;
        Some((c.id, c.quantise(((gain * unity).round() as i64).max(1))))
    }

    pub fn exposure_us(&self, value: i64) -> Option<f32> {
        self.exposure.as_ref().map(|(_, unit)| value as f32 * unit)
    }

    pub fn gain(&self, value: i64) -> Option<f32> {
        self.gain.as_ref().map(|(_, unity)| value as f32 / unity)
    }

    /// The ranges, steps and delays the Coordinator's limits use.
    pub fn caps(&self) -> SensorCaps {
        let d = SensorConfig::default();
        let (min_e, max_e, line) = match &self.exposure {
            Some((c, unit)) => (
                c.min.max(1) as f32 * unit,
                c.max as f32 * unit,
                c.step.max(1) as f32 * unit,
            ),
            None => (d.min_exposure_us, d.max_exposure_us, 1.0),
        };
        let (min_g, max_g, step) = match &self.gain {
            Some((c, unity)) => (
                // A code of 0 is not a gain of 0 (it is the sensor's
                // smallest): the range starts at the first code above it.
                c.min.max(1) as f32 / unity,
                c.max.max(1) as f32 / unity,
                c.step.max(1) as f32 / unity,
            ),
            None => (1.0, 1.0, 0.0),
        };
        SensorCaps {
            config: SensorConfig {
                min_exposure_us: min_e,
                max_exposure_us: max_e,
                min_gain: min_g,
                max_gain: max_g,
            },
            exposure_step_us: line,
            gain_step: step,
            delays: ControlDelays {
                exposure: self.exposure.as_ref().map_or(2, |(c, _)| delay_of(c.id)),
                gain: self.gain.as_ref().map_or(1, |(c, _)| delay_of(c.id)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(id: u32, min: i64, max: i64, step: u64, default: i64) -> ControlInfo {
        ControlInfo {
            id,
            name: format!("{id:#x}"),
            kind: ControlKind::Integer,
            min,
            max,
            step,
            default,
            value: Some(default),
            read_only: false,
            inactive: false,
            menu: vec![],
        }
    }

    #[test]
    fn exposure_in_lines_and_gain_codes() {
        let mut rate = int(v4l_sys::V4L2_CID_PIXEL_RATE, 0, i64::MAX, 1, 148_500_000);
        rate.read_only = true;
        let mut hblank = int(v4l_sys::V4L2_CID_HBLANK, 280, 280, 1, 280);
        hblank.read_only = true;
        let controls = vec![
            int(v4l_sys::V4L2_CID_EXPOSURE, 1, 2246, 1, 675),
            int(v4l_sys::V4L2_CID_ANALOGUE_GAIN, 256, 4096, 16, 256),
            rate,
            hblank,
        ];
        let m = SensorMap::new(&controls, 1920, 1080, 1.0 / 30.0);
        // 2200 pixels a line at 148.5 MHz: 14.81 us.
        let line = 2200.0 / 148.5;
        assert_eq!(
            m.exposure_value(10_000.0),
            Some((v4l_sys::V4L2_CID_EXPOSURE, 675))
        );
        assert!((m.exposure_us(675).unwrap() - 675.0 * line).abs() < 0.01);
        // Gain quantised to the step of 16/256.
        assert_eq!(
            m.gain_value(2.02),
            Some((v4l_sys::V4L2_CID_ANALOGUE_GAIN, 512))
        );
        assert_eq!(
            m.gain_value(2.04),
            Some((v4l_sys::V4L2_CID_ANALOGUE_GAIN, 528))
        );
        assert_eq!(m.gain_value(99.0).unwrap().1, 4096);
        let caps = m.caps();
        assert!((caps.config.max_exposure_us - 2246.0 * line).abs() < 0.1);
        assert_eq!((caps.config.min_gain, caps.config.max_gain), (1.0, 16.0));
        assert_eq!(caps.gain_step, 0.0625);
        assert_eq!((caps.delays.exposure, caps.delays.gain), (2, 1));
        // Without timing controls the line is the frame interval over the height.
        let m = SensorMap::new(&controls[..2], 1920, 1080, 1.0 / 30.0);
        assert!((m.exposure_us(1).unwrap() - 1e6 / 30.0 / 1080.0).abs() < 0.01);
    }
}
