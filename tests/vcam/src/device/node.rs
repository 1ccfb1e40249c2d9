//! The device node as the file system shows it: its path, `stat`'s
//! character device (major 81) and the sysfs `uevent` that names it, for
//! clients (v4l-utils) that look before they open.

use super::*;

/// The major number of V4L2 device nodes.
pub const MAJOR: u32 = 81;

/// Whether `path` is the device's.
pub fn is_path(path: &[u8]) -> bool {
    path == CONFIG.path.as_slice()
}

/// Whether the device was unplugged.
pub fn vanished() -> bool {
    dev().vanished
}

/// The node's minor number: the digits its name ends with (`video42`: 42).
pub fn minor() -> u32 {
    let (_, base) = split_path();
    let digits: Vec<u8> = base
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    digits.iter().rev().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    })
}

/// The text of `/sys/dev/char/81:MINOR/uevent` when `path` is it: what
/// udev (and v4l-utils) read to learn the node's name.
pub fn uevent(path: &[u8]) -> Option<String> {
    let want = format!("/sys/dev/char/{MAJOR}:{}/uevent", minor());
    if path != want.as_bytes() || vanished() {
        return None;
    }
    let (_, base) = split_path();
    Some(format!(
        "MAJOR={MAJOR}\nMINOR={}\nDEVNAME={}\n",
        minor(),
        String::from_utf8_lossy(base)
    ))
}
