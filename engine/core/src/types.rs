//! Shared vocabulary: pixel formats, Bayer orders, lanes, outcomes and images.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Position of the colours in the 2x2 Bayer tile, named by its top-left row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum BayerOrder {
    #[default]
    #[serde(rename = "RGGB", alias = "rggb")]
    Rggb,
    #[serde(rename = "BGGR", alias = "bggr")]
    Bggr,
    #[serde(rename = "GRBG", alias = "grbg")]
    Grbg,
    #[serde(rename = "GBRG", alias = "gbrg")]
    Gbrg,
}

/// One of the four sites of a Bayer tile. `index()` is the order used by every
/// per-CFA parameter array: `[R, Gr, Gb, B]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CfaColor {
    R,
    Gr,
    Gb,
    B,
}

impl CfaColor {
    /// Index into `[R, Gr, Gb, B]` arrays.
    pub fn index(self) -> usize {
        match self {
            CfaColor::R => 0,
            CfaColor::Gr => 1,
            CfaColor::Gb => 2,
            CfaColor::B => 3,
        }
    }
    /// Index into `[R, G, B]` arrays.
    pub fn rgb(self) -> usize {
        match self {
            CfaColor::R => 0,
            CfaColor::Gr | CfaColor::Gb => 1,
            CfaColor::B => 2,
        }
    }
}

impl BayerOrder {
    pub const ALL: [BayerOrder; 4] = [
        BayerOrder::Rggb,
        BayerOrder::Bggr,
        BayerOrder::Grbg,
        BayerOrder::Gbrg,
    ];

    /// The colours of the tile in raster order: (0,0), (1,0), (0,1), (1,1).
    pub fn tile(self) -> [CfaColor; 4] {
        use CfaColor::*;
        match self {
            BayerOrder::Rggb => [R, Gr, Gb, B],
            BayerOrder::Bggr => [B, Gb, Gr, R],
            BayerOrder::Grbg => [Gr, R, B, Gb],
            BayerOrder::Gbrg => [Gb, B, R, Gr],
        }
    }

    /// Colour of the site at pixel (x, y).
    #[inline]
    pub fn color_at(self, x: usize, y: usize) -> CfaColor {
        self.tile()[(y & 1) * 2 + (x & 1)]
    }

    /// The tile position (0..4, raster order) holding the red site.
    pub fn red_pos(self) -> (usize, usize) {
        match self {
            BayerOrder::Rggb => (0, 0),
            BayerOrder::Bggr => (1, 1),
            BayerOrder::Grbg => (1, 0),
            BayerOrder::Gbrg => (0, 1),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BayerOrder::Rggb => "RGGB",
            BayerOrder::Bggr => "BGGR",
            BayerOrder::Grbg => "GRBG",
            BayerOrder::Gbrg => "GBRG",
        }
    }

    pub fn parse(s: &str) -> Option<BayerOrder> {
        BayerOrder::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for BayerOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How samples are laid out in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Packing {
    /// RAW8 in bytes, RAW10/12/14/16 in 16-bit little-endian words.
    #[default]
    Plain,
    /// MIPI CSI-2 packed: RAW10P (4 pixels in 5 bytes) or RAW12P (2 pixels in 3 bytes).
    Csi2,
}

/// Geometry and layout of a RAW frame as it comes off a sensor or a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RawFormat {
    pub width: u32,
    pub height: u32,
    /// Significant bits per sample: 8, 10, 12, 14 or 16.
    pub bits: u8,
    pub bayer: BayerOrder,
    #[serde(default)]
    pub packing: Packing,
    /// Bytes from the start of one row to the next (>= the packed row size).
    pub stride: u32,
}

/// Why a [`RawFormat`] cannot describe a frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("width and height must be non-zero and even (got {0}x{1})")]
    Geometry(u32, u32),
    #[error(
        "unsupported bit depth {bits} for {packing:?} packing (plain: 8, 10, 12, 14, 16; csi2: 10, 12)"
    )]
    Bits { bits: u8, packing: Packing },
    #[error("stride {stride} is smaller than the {min} bytes a row of {width} pixels needs")]
    Stride { stride: u32, min: u32, width: u32 },
    #[error("frame of {width}x{height} is larger than 65536x65536")]
    TooLarge { width: u32, height: u32 },
}

impl RawFormat {
    /// A format with the tightest stride for its packing.
    pub fn new(width: u32, height: u32, bits: u8, bayer: BayerOrder, packing: Packing) -> Self {
        let mut f = RawFormat {
            width,
            height,
            bits,
            bayer,
            packing,
            stride: 0,
        };
        f.stride = f.min_stride();
        f
    }

    /// Bytes a row of `width` pixels occupies without padding.
    pub fn min_stride(&self) -> u32 {
        let w = self.width;
        match (self.packing, self.bits) {
            (Packing::Plain, 8) => w,
            (Packing::Plain, _) => w * 2,
            (Packing::Csi2, 10) => w.div_ceil(4) * 5,
            (Packing::Csi2, _) => w.div_ceil(2) * 3,
        }
    }

    pub fn validate(&self) -> Result<(), FormatError> {
        if self.width == 0 || self.height == 0 || self.width % 2 == 1 || self.height % 2 == 1 {
            return Err(FormatError::Geometry(self.width, self.height));
        }
        if self.width > 65536 || self.height > 65536 {
            return Err(FormatError::TooLarge {
                width: self.width,
                height: self.height,
            });
        }
        let ok = match self.packing {
            Packing::Plain => matches!(self.bits, 8 | 10 | 12 | 14 | 16),
            Packing::Csi2 => matches!(self.bits, 10 | 12),
        };
        if !ok {
            return Err(FormatError::Bits {
                bits: self.bits,
                packing: self.packing,
            });
        }
        if self.stride < self.min_stride() {
            return Err(FormatError::Stride {
                stride: self.stride,
                min: self.min_stride(),
                width: self.width,
            });
        }
        Ok(())
    }

    /// Bytes of one whole frame (stride times height).
    pub fn frame_bytes(&self) -> usize {
        self.stride as usize * self.height as usize
    }

    pub fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Largest sample value.
    pub fn max_value(&self) -> u16 {
        ((1u32 << self.bits) - 1) as u16
    }

    /// A short name such as `RAW10P RGGB 1920x1080`.
    pub fn describe(&self) -> String {
        let p = if self.packing == Packing::Csi2 {
            "P"
        } else {
            ""
        };
        format!(
            "RAW{}{} {} {}x{} stride {}",
            self.bits, p, self.bayer, self.width, self.height, self.stride
        )
    }
}

/// The two QoS lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Realtime,
    Background,
}

impl Lane {
    pub fn name(self) -> &'static str {
        match self {
            Lane::Realtime => "realtime",
            Lane::Background => "background",
        }
    }
}

/// How an envelope ended. Every submitted envelope ends exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Dropped,
    Cancelled,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Dropped => "dropped",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// A Bayer mosaic of 16-bit samples, one per pixel, rows packed.
#[derive(Clone, Debug, PartialEq)]
pub struct BayerImage {
    pub width: usize,
    pub height: usize,
    pub order: BayerOrder,
    pub data: Vec<u16>,
}

impl BayerImage {
    pub fn new(width: usize, height: usize, order: BayerOrder) -> Self {
        BayerImage {
            width,
            height,
            order,
            data: vec![0; width * height],
        }
    }
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> u16 {
        self.data[y * self.width + x]
    }
}

/// Interleaved RGB with 16-bit samples.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage16 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u16>,
}

impl RgbImage16 {
    pub fn new(width: usize, height: usize) -> Self {
        RgbImage16 {
            width,
            height,
            data: vec![0; width * height * 3],
        }
    }
    #[inline]
    pub fn px(&self, x: usize, y: usize) -> [u16; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// Interleaved RGBA with 8-bit samples (sRGB encoded), the preview format.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbaImage8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbaImage8 {
    pub fn new(width: usize, height: usize) -> Self {
        RgbaImage8 {
            width,
            height,
            data: vec![0; width * height * 4],
        }
    }
}
