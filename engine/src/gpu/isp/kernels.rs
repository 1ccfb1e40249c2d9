//! The compute entry points of the shader module.

use super::super::GpuError;
use super::super::uniforms;

/// One compute entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Unpack,
    BlackLevel,
    DefectPixel,
    LensShading,
    WhiteBalance,
    Demosaic,
    Highlights,
    Ccm,
    ToneRgba8,
    ToneRgb16,
    Yuv,
    Stats,
    Scaler,
    FusedPreview,
}

impl Kernel {
    pub const ALL: [Kernel; 14] = [
        Kernel::Unpack,
        Kernel::BlackLevel,
        Kernel::DefectPixel,
        Kernel::LensShading,
        Kernel::WhiteBalance,
        Kernel::Demosaic,
        Kernel::Highlights,
        Kernel::Ccm,
        Kernel::ToneRgba8,
        Kernel::ToneRgb16,
        Kernel::Yuv,
        Kernel::Stats,
        Kernel::Scaler,
        Kernel::FusedPreview,
    ];

    /// The WGSL entry point.
    pub fn entry(self) -> &'static str {
        match self {
            Kernel::Unpack => "unpack",
            Kernel::BlackLevel => "black_level",
            Kernel::DefectPixel => "defect_pixel",
            Kernel::LensShading => "lens_shading",
            Kernel::WhiteBalance => "white_balance",
            Kernel::Demosaic => "demosaic",
            Kernel::Highlights => "highlights",
            Kernel::Ccm => "ccm",
            Kernel::ToneRgba8 => "tone_rgba8",
            Kernel::ToneRgb16 => "tone_rgb16",
            Kernel::Yuv => "yuv",
            Kernel::Stats => "stats_3a",
            Kernel::Scaler => "scaler",
            Kernel::FusedPreview => "fused_preview",
        }
    }

    /// The kernel whose entry point is `entry`.
    pub fn of(entry: &str) -> Result<Kernel, GpuError> {
        Kernel::ALL
            .into_iter()
            .find(|k| k.entry() == entry)
            .ok_or_else(|| GpuError::Input(format!("no kernel `{entry}`")))
    }

    /// Workgroups for a `w` x `h` frame (`ow` x `oh` output for the scaler).
    pub(super) fn workgroups(self, w: u32, h: u32, ow: u32, oh: u32) -> (u32, u32) {
        match self {
            Kernel::Unpack
            | Kernel::BlackLevel
            | Kernel::DefectPixel
            | Kernel::LensShading
            | Kernel::WhiteBalance
            | Kernel::Demosaic => ((w / 2).div_ceil(16), h.div_ceil(16)),
            Kernel::Highlights
            | Kernel::Ccm
            | Kernel::ToneRgba8
            | Kernel::ToneRgb16
            | Kernel::Yuv => {
                let groups = (w * h / 2).div_ceil(256);
                let x = groups.clamp(1, 65535);
                (x, groups.div_ceil(x))
            }
            Kernel::Stats => ((w / 2).div_ceil(16), (h / 2).div_ceil(16)),
            Kernel::Scaler => (ow.div_ceil(16), oh.div_ceil(16)),
            Kernel::FusedPreview => (
                w.div_ceil(32),
                h.div_ceil(32).div_ceil(uniforms::fused_rows(w, h)),
            ),
        }
    }

    /// Bytes this kernel writes for a `w` x `h` frame.
    pub(super) fn output_bytes(self, w: u32, h: u32, ow: u32, oh: u32) -> u64 {
        let px = w as u64 * h as u64;
        match self {
            Kernel::Unpack
            | Kernel::BlackLevel
            | Kernel::DefectPixel
            | Kernel::LensShading
            | Kernel::WhiteBalance => px * 2,
            Kernel::Demosaic
            | Kernel::Highlights
            | Kernel::Ccm
            | Kernel::ToneRgb16
            | Kernel::Yuv => px * 6,
            Kernel::ToneRgba8 | Kernel::FusedPreview => px * 4,
            Kernel::Stats => 0,
            Kernel::Scaler => ow as u64 * oh as u64 * 4,
        }
    }
}
