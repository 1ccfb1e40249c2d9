//! The CPU reference ISP: one file per stage, its parameters a serde struct
//! beside it. These functions are the definition of correct; the fused fast
//! path (`fused.rs`) and the GPU shaders are held to them.
//!
//! Data: `unpack` turns sensor bytes into one u16 per pixel at the sensor's bit
//! depth; `black_level` subtracts the pedestal and scales to the full 16-bit
//! range; everything after works on 0..=65535 linear values until
//! `tone` encodes for display.

pub mod black_level;
pub mod ccm;
pub mod chain;
pub mod defect_pixel;
pub mod demosaic;
pub mod fields;
pub mod fused;
pub mod highlights;
pub mod lens_shading;
pub mod scaler;
pub mod stats;
pub mod tone;
pub mod unpack;
pub mod white_balance;
pub mod yuv;

use serde::{Deserialize, Serialize};

/// Every stage's parameters: the tuning file's `stages` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StageParams {
    pub black_level: black_level::BlackLevelParams,
    pub defect_pixel: defect_pixel::DefectPixelParams,
    pub lens_shading: lens_shading::LensShadingParams,
    pub white_balance: white_balance::WhiteBalanceParams,
    pub demosaic: demosaic::DemosaicParams,
    pub highlights: highlights::HighlightsParams,
    pub ccm: ccm::CcmParams,
    pub tone: tone::ToneParams,
    pub yuv: yuv::YuvParams,
    pub stats: stats::StatsParams,
}

/// Mirror an index into `0..n` without repeating the edge sample
/// (`-1 -> 1`, `n -> n-2`). Offsets of even size keep the Bayer phase.
#[inline]
pub fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let mut i = i;
    if i < 0 {
        i = -i;
    }
    if i >= n {
        i = 2 * (n - 1) - i;
    }
    i.clamp(0, n - 1) as usize
}

/// Where black sits in the 16-bit mosaic and in the camera RGB up to the
/// CCM: black level maps a sensor's black to this value and its white to
/// 65535, so noise below black keeps its sign through lens shading, white
/// balance, demosaic and highlights (each works about the pedestal), and
/// the CCM takes it off and clamps once (issue 23: a clamp at black lifts a
/// noisy shadow by sigma/sqrt(2 pi) before white balance multiplies it).
/// 4096 holds noise of 1024 (sigma 64 DN at 12 bits) times a gain of 2 to
/// two sigma below black. The statistics take it off too.
pub const PEDESTAL: u16 = 4096;
/// [`PEDESTAL`] as a float.
pub const PEDESTAL_F: f32 = PEDESTAL as f32;
/// 65535 over the range above the pedestal: what the CCM scales by to put
/// white back at full scale.
pub const PEDESTAL_SCALE: f32 = 65535.0 / (65535.0 - PEDESTAL_F);

/// `v` times `g` about the pedestal (black stays black), rounded and
/// clamped: lens shading and white balance.
#[inline(always)]
pub fn gain_about_pedestal(v: u16, g: f32) -> u16 {
    clamp_u16((v as f32 - PEDESTAL_F) * g + PEDESTAL_F)
}

/// A mosaic of values above black (0 black, 65535 white) as the black level
/// stage hands one on: black at the pedestal, white still 65535. For tests
/// and tools that make a mosaic by hand.
pub fn lifted(d: &[u16]) -> Vec<u16> {
    let k = (65535.0 - PEDESTAL_F) / 65535.0;
    d.iter()
        .map(|&v| clamp_u16(v as f32 * k + PEDESTAL_F))
        .collect()
}

/// Round to the nearest 16-bit value (halves up) and clamp. Every stage and
/// the fused path round this one way, so they agree bit for bit.
#[inline(always)]
#[allow(clippy::manual_clamp)] // clamp keeps NaN; max/min turn it into 0
pub fn clamp_u16(v: f32) -> u16 {
    // max/min (not clamp) so NaN becomes 0; the range is then known, and the
    // unchecked conversion vectorises where a saturating `as u16` does not.
    let c = (v + 0.5).max(0.0).min(65535.0);
    // SAFETY: c is finite and within 0..=65535, so it fits an i32.
    unsafe { c.to_int_unchecked::<i32>() as u16 }
}

/// Why a stage refused its input.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum StageInputError {
    #[error("{stage}: buffer holds {got} samples, {width}x{height} needs {need}")]
    Size {
        stage: &'static str,
        width: usize,
        height: usize,
        need: usize,
        got: usize,
    },
}

pub fn check_len(
    stage: &'static str,
    width: usize,
    height: usize,
    per_px: usize,
    got: usize,
) -> Result<(), StageInputError> {
    let need = width * height * per_px;
    if got < need {
        return Err(StageInputError::Size {
            stage,
            width,
            height,
            need,
            got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::reflect;
    #[test]
    fn reflect_keeps_phase() {
        assert_eq!(reflect(-1, 8), 1);
        assert_eq!(reflect(-2, 8), 2);
        assert_eq!(reflect(8, 8), 6);
        assert_eq!(reflect(9, 8), 5);
        assert_eq!(reflect(3, 8), 3);
    }
}
