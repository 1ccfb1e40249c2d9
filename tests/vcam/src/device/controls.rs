//! The device's controls: ids, ranges, steps, menus and the frames each
//! takes to land.

use super::*;

#[derive(Clone, Debug)]
pub(super) struct Ctrl {
    pub(super) id: u32,
    pub(super) name: &'static str,
    pub(super) kind: u32,
    pub(super) min: i64,
    pub(super) max: i64,
    pub(super) step: u64,
    pub(super) default: i64,
    pub(super) value: i64,
    pub(super) read_only: bool,
    pub(super) menu: &'static [&'static str],
    /// Frames between the write and the first frame it changes.
    pub(super) delay: u64,
}

pub(super) fn ctrl(
    id: u32,
    name: &'static str,
    kind: u32,
    range: (i64, i64, u64, i64),
    delay: u64,
) -> Ctrl {
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

pub(super) const INT: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER;
pub(super) const BOOL: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_BOOLEAN;
pub(super) const MENU: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_MENU;
pub(super) const INT64: u32 = v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER64;
pub const PATTERNS: [&str; 3] = ["Disabled", "Colour Bars", "Solid Grey"];

/// Frame length in lines at this height and interval.
pub(super) fn frame_length(interval: (u32, u32)) -> i64 {
    PIXEL_RATE * interval.0 as i64 / (interval.1 as i64 * LINE_LENGTH as i64)
}

pub(super) fn controls(fmt: &Fmt, interval: (u32, u32), exposure: Option<i64>) -> Vec<Ctrl> {
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
        // A menu's step is 0 here, as drivers that pass a menu skip mask of
        // 0 report it (the `v4l` crate's own enumeration panics on it).
        Ctrl {
            menu: &PATTERNS,
            ..ctrl(V4L2_CID_TEST_PATTERN, "Test Pattern", MENU, (0, 2, 0, 0), 1)
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

pub(super) fn find_ctrl(ctrls: &[Ctrl], id: u32) -> Result<&Ctrl, c_int> {
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
pub(super) fn carry_values(old: &[Ctrl], mut new: Vec<Ctrl>) -> Vec<Ctrl> {
    for c in new.iter_mut().filter(|c| !c.read_only) {
        if let Some(o) = old.iter().find(|o| o.id == c.id) {
            c.value = o.value.clamp(c.min, c.max);
        }
    }
    new
}
