//! DNG in and out. [`read`] takes the CFA raw of a DNG (striped or tiled;
//! uncompressed at 1 to 16 bits or lossless JPEG; LinearizationTable,
//! ActiveArea, per-site black levels, colour matrices, as-shot neutral,
//! exposure, ISO and OpcodeList2's GainMaps); [`write`] makes a DNG 1.4 of one
//! frame (16-bit samples, one strip, the camera profile and EXIF exposure).
//! The container is parsed here rather than by a crate: the TIFF crates
//! refuse CFA photometrics, and the complete raw crates are LGPL or AGPL.
//! Values read equal LibRaw's `raw_image_visible` (held by
//! `engine/tests/dng.rs` against `scripts/dng_reference.py`'s files).
//!
//! Its own crate (`isp-dng`, layer 1: it knows only `isp-core`'s raw
//! formats and files written whole); the engine re-exports it as `dng`.

#![cfg_attr(
    test,
    allow(
        clippy::needless_range_loop,
        clippy::too_many_arguments,
        clippy::field_reassign_with_default
    )
)]

pub mod colour;
pub mod lj92;
mod opcodes;
mod read;
pub mod tags;
mod tiff;
mod write;

pub use write::{DngFrame, encode};

use isp_core::types::BayerOrder;
use std::path::Path;

/// A DNG that cannot be read or written; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DngError {
    pub path: String,
    pub message: String,
}

impl DngError {
    fn at(path: &Path, message: impl Into<String>) -> DngError {
        DngError {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// One GainMap opcode (DNG 1.3): gains on a grid over an area of the image
/// for every `row_pitch`-th row and `col_pitch`-th column from (top, left).
#[derive(Clone, Debug, PartialEq)]
pub struct GainMap {
    pub top: u32,
    pub left: u32,
    pub bottom: u32,
    pub right: u32,
    pub plane: u32,
    pub planes: u32,
    pub row_pitch: u32,
    pub col_pitch: u32,
    pub points_v: u32,
    pub points_h: u32,
    pub spacing_v: f64,
    pub spacing_h: f64,
    pub origin_v: f64,
    pub origin_h: f64,
    pub map_planes: u32,
    /// `[v][h][map_planes]`, row major.
    pub gains: Vec<f32>,
}

impl GainMap {
    /// The gain (first map plane) at a position given as fractions of the
    /// map's area (0 = top/left edge, 1 = bottom/right), interpolated
    /// bilinearly and held at the grid's edges, as the DNG SDK does.
    pub fn gain_at(&self, v: f64, h: f64) -> f32 {
        self.sample(v, h, false)
    }

    /// [`GainMap::gain_at`] carried on linearly past the map's edge points
    /// (for a grid whose points lie outside a map's area: a map of the sites
    /// from column 1 on, sampled at column 0).
    pub fn gain_extrapolated(&self, v: f64, h: f64) -> f32 {
        self.sample(v, h, true)
    }

    fn sample(&self, v: f64, h: f64, extrapolate: bool) -> f32 {
        let (nv, nh) = (self.points_v.max(1) as usize, self.points_h.max(1) as usize);
        let coord = |p: f64, origin: f64, spacing: f64, n: usize| -> (usize, usize, f64) {
            if n == 1 || spacing <= 0.0 {
                return (0, 0, 0.0);
            }
            let f = (p - origin) / spacing;
            let f = if extrapolate {
                f
            } else {
                f.clamp(0.0, (n - 1) as f64)
            };
            let i = (f.floor().max(0.0) as usize).min(n - 2);
            (i, i + 1, f - i as f64)
        };
        let (v0, v1, fv) = coord(v, self.origin_v, self.spacing_v, nv);
        let (h0, h1, fh) = coord(h, self.origin_h, self.spacing_h, nh);
        let mp = self.map_planes.max(1) as usize;
        let g = |a: usize, b: usize| *self.gains.get((a * nh + b) * mp).unwrap_or(&1.0) as f64;
        let top = g(v0, h0) * (1.0 - fh) + g(v0, h1) * fh;
        let bot = g(v1, h0) * (1.0 - fh) + g(v1, h1) * fh;
        (top * (1.0 - fv) + bot * fv) as f32
    }
}

/// The CFA raw of a DNG and the tags a tuning needs.
#[derive(Clone, Debug)]
pub struct DngImage {
    /// The visible (ActiveArea) size.
    pub width: usize,
    pub height: usize,
    /// The Bayer order of the visible image's top-left corner.
    pub cfa: BayerOrder,
    /// Linearized samples of the visible image, row major.
    pub data: Vec<u16>,
    pub bits_per_sample: u8,
    pub compression: u16,
    /// Black level per site `[R, Gr, Gb, B]`.
    pub black_level: [f32; 4],
    pub white_level: u32,
    /// ActiveArea as top, left, bottom, right in the stored raw.
    pub active_area: [usize; 4],
    /// DefaultCropOrigin (h, v) and DefaultCropSize (h, v).
    pub default_crop: Option<[f64; 4]>,
    /// (CalibrationIlluminant, ColorMatrix: XYZ -> camera) pairs.
    pub color_matrices: Vec<(u16, [[f64; 3]; 3])>,
    /// ForwardMatrix and CameraCalibration of each of `color_matrices`.
    pub forward_matrices: Vec<Option<[[f64; 3]; 3]>>,
    pub camera_calibrations: Vec<Option<[[f64; 3]; 3]>>,
    pub analog_balance: Option<[f64; 3]>,
    /// Stops.
    pub baseline_exposure: Option<f64>,
    pub as_shot_neutral: Option<[f64; 3]>,
    /// Seconds.
    pub exposure_time: Option<f64>,
    pub iso: Option<f64>,
    pub gain_maps: Vec<GainMap>,
    /// UniqueCameraModel, else Make and Model.
    pub camera: String,
    /// What was in the file but is not applied (opcodes, black deltas).
    pub notes: Vec<String>,
}

impl DngImage {
    /// The smallest bit depth among 8, 10, 12, 14 and 16 that holds the
    /// white level.
    pub fn bit_depth(&self) -> u8 {
        [8u8, 10, 12, 14, 16]
            .into_iter()
            .find(|b| self.white_level < (1u32 << b))
            .unwrap_or(16)
    }

    /// The colour matrix for the illuminant nearest D65 (a tuning's CCM is
    /// for daylight; several matrices become CCMs per colour temperature
    /// with calibration).
    pub fn daylight_matrix(&self) -> Option<[[f64; 3]; 3]> {
        self.color_matrices
            .iter()
            .min_by_key(|(ill, _)| {
                (illuminant_kelvin(*ill).unwrap_or(5000.0) - 6500.0).abs() as u32
            })
            .map(|(_, m)| *m)
    }
}

/// Read the CFA raw of the DNG at `path`.
pub fn read(path: &Path) -> Result<DngImage, DngError> {
    let data = std::fs::read(path).map_err(|e| DngError::at(path, e.to_string()))?;
    read::parse(&data).map_err(|m| DngError::at(path, m))
}

/// The tags of the DNG at `path`: its image with no samples decoded (what a
/// tuning is made from).
pub fn read_tags(path: &Path) -> Result<DngImage, DngError> {
    let data = std::fs::read(path).map_err(|e| DngError::at(path, e.to_string()))?;
    read::parse_tags(&data).map_err(|m| DngError::at(path, m))
}

/// Write `frame` as a DNG at `path` (a temporary file renamed into place).
pub fn write(path: &Path, frame: &DngFrame<'_>) -> Result<(), DngError> {
    let bytes = encode(frame).map_err(|m| DngError::at(path, m))?;
    isp_core::image_io::write_atomic(path, &bytes).map_err(|e| DngError::at(path, e.to_string()))
}

/// The colour temperature of an EXIF LightSource code, where it has one:
/// the DNG SDK's (`dng_camera_profile::IlluminantToTemperature`), which
/// readers that interpolate a camera profile's two matrices use. The
/// fluorescent classes take the middle of the range their tag names.
pub fn illuminant_kelvin(code: u16) -> Option<f64> {
    Some(match code {
        17 | 3 => 2850.0,                  // standard light A, tungsten
        24 => 3200.0,                      // ISO studio tungsten
        23 => 5000.0,                      // D50
        20 | 1 | 9 | 4 | 18 => 5500.0,     // D55, daylight, fine weather, flash, B
        21 | 19 | 10 => 6500.0,            // D65, C, cloudy
        22 | 11 => 7500.0,                 // D75, shade
        12 => (5700.0 + 7100.0) / 2.0,     // daylight fluorescent (D 5700 - 7100K)
        13 => (4600.0 + 5500.0) / 2.0,     // day white fluorescent (N 4600 - 5500K)
        14 | 2 => (3800.0 + 4500.0) / 2.0, // cool white (W 3800 - 4500K), fluorescent
        15 => (3250.0 + 3800.0) / 2.0,     // white fluorescent (WW 3250 - 3800K)
        16 => (2600.0 + 3250.0) / 2.0,     // warm white fluorescent (L 2600 - 3250K)
        _ => return None,
    })
}

/// XYZ of linear sRGB (D65).
pub const XYZ_FROM_SRGB: [[f64; 3]; 3] = [
    [0.412_456_4, 0.357_576_1, 0.180_437_5],
    [0.212_672_9, 0.715_152_2, 0.072_175_0],
    [0.019_333_9, 0.119_192_0, 0.950_304_1],
];

pub fn mat_mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// The inverse of `m`, or `None` when it is singular.
pub fn mat_inv(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let c = |i: usize, j: usize| {
        let (r0, r1) = ((i + 1) % 3, (i + 2) % 3);
        let (c0, c1) = ((j + 1) % 3, (j + 2) % 3);
        m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
    };
    let det: f64 = (0..3).map(|j| m[0][j] * c(0, j)).sum();
    if det.abs() < 1e-12 || !det.is_finite() {
        return None;
    }
    Some(std::array::from_fn(|i| {
        std::array::from_fn(|j| c(j, i) / det)
    }))
}

/// The CCM (white-balanced camera RGB -> linear sRGB, rows summing to 1)
/// of a DNG ColorMatrix (XYZ -> camera), as dcraw and LibRaw derive it.
pub fn ccm_from_color_matrix(cm: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let mut cam_rgb = mat_mul(cm, &XYZ_FROM_SRGB);
    for row in cam_rgb.iter_mut() {
        let s: f64 = row.iter().sum();
        if s.abs() < 1e-12 {
            return None;
        }
        row.iter_mut().for_each(|v| *v /= s);
    }
    mat_inv(&cam_rgb)
}

/// A ColorMatrix (XYZ -> camera) for a CCM and the camera's neutral under
/// D65: [`ccm_from_color_matrix`]'s inverse.
pub fn color_matrix_from_ccm(ccm: &[[f64; 3]; 3], neutral: [f64; 3]) -> Option<[[f64; 3]; 3]> {
    let cam_rgb = mat_inv(ccm)?;
    let srgb_from_xyz = mat_inv(&XYZ_FROM_SRGB)?;
    let m = mat_mul(&cam_rgb, &srgb_from_xyz);
    Some(std::array::from_fn(|i| m[i].map(|v| v * neutral[i])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illuminants_have_their_published_temperatures() {
        // The DNG SDK's temperatures (as colour-hdri's
        // CCT_ILLUMINANTS_ADOBEDNG lists them): daylight and D55 5500 K,
        // fluorescent 4150 K, tungsten and A 2850 K, D65 6500 K.
        for (code, k) in [
            (1, 5500.0),
            (20, 5500.0),
            (2, 4150.0),
            (3, 2850.0),
            (17, 2850.0),
            (23, 5000.0),
            (21, 6500.0),
            (22, 7500.0),
            (12, 6400.0),
        ] {
            assert_eq!(illuminant_kelvin(code), Some(k), "LightSource {code}");
        }
        // 0 is "unknown", 255 "other light source": no temperature.
        assert_eq!(illuminant_kelvin(0), None);
        assert_eq!(illuminant_kelvin(255), None);
    }

    #[test]
    fn ccm_and_color_matrix_are_each_others_inverse() {
        let ccm = [[1.7, -0.5, -0.2], [-0.3, 1.5, -0.2], [0.05, -0.6, 1.55]];
        let cm = color_matrix_from_ccm(&ccm, [0.5, 1.0, 0.7]).unwrap();
        let back = ccm_from_color_matrix(&cm).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                assert!((back[i][j] - ccm[i][j]).abs() < 1e-9, "{back:?}");
            }
        }
    }

    #[test]
    fn a_gain_map_interpolates_and_holds_its_edges() {
        let m = GainMap {
            top: 0,
            left: 0,
            bottom: 10,
            right: 10,
            plane: 0,
            planes: 1,
            row_pitch: 1,
            col_pitch: 1,
            points_v: 2,
            points_h: 3,
            spacing_v: 1.0,
            spacing_h: 0.5,
            origin_v: 0.0,
            origin_h: 0.0,
            map_planes: 1,
            gains: vec![1.0, 2.0, 3.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(m.gain_at(0.0, 0.0), 1.0);
        assert_eq!(m.gain_at(0.0, 1.0), 3.0);
        assert_eq!(m.gain_at(1.0, 1.0), 4.0);
        assert!((m.gain_at(0.5, 0.25) - 2.0).abs() < 1e-6);
        assert_eq!(m.gain_at(-1.0, 2.0), 3.0);
    }
}
