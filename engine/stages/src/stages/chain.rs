//! The ISP's pixel chain, declared once: every stage in pipeline order, the
//! image it writes, the file pair that implements it (`engine/stages/src/stages/
//! <file>.rs` and `shaders/<file>.wgsl`), its GPU kernel run on its own, and
//! the per-pixel function the fused schedules inline. The CPU reference chain
//! (`isp::reference_chain`), the taps, the GPU's unfused passes
//! (`GpuIsp::tap`) and the checks on the fused schedules
//! (`engine/tests/chain.rs`) all walk this list; a new stage is a new entry
//! here plus its two files.

use serde::Serialize;

/// What a stage writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    /// One u16 per pixel, the Bayer mosaic.
    Mosaic,
    /// Interleaved RGB, u16 a sample.
    Rgb16,
    /// RGBA, 8 bits a sample (display-encoded).
    Rgba8,
}

/// One pixel stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageDecl {
    pub tap: Tap,
    /// The tap's name (the inspector's, the CLI's).
    pub name: &'static str,
    /// `engine/stages/src/stages/<file>.rs` and `shaders/<file>.wgsl`.
    pub file: &'static str,
    /// The WGSL entry point that runs the stage on its own.
    pub kernel: &'static str,
    /// The WGSL function the fused preview calls for this stage.
    pub fused_fn: &'static str,
    pub output: Image,
}

/// Where a stage's output can be looked at ("tap"), in pipeline order: the
/// stage's index in [`CHAIN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tap {
    Unpacked,
    BlackLevel,
    DefectPixel,
    LensShading,
    WhiteBalance,
    Demosaic,
    Highlights,
    Ccm,
    Tone,
}

const fn decl(
    tap: Tap,
    name: &'static str,
    file: &'static str,
    kernel: &'static str,
    fused_fn: &'static str,
    output: Image,
) -> StageDecl {
    StageDecl {
        tap,
        name,
        file,
        kernel,
        fused_fn,
        output,
    }
}

/// The chain, in pipeline order.
pub const CHAIN: [StageDecl; 9] = [
    decl(
        Tap::Unpacked,
        "unpacked",
        "unpack",
        "unpack",
        "unpack_px",
        Image::Mosaic,
    ),
    decl(
        Tap::BlackLevel,
        "black_level",
        "black_level",
        "black_level",
        "black_level_px",
        Image::Mosaic,
    ),
    decl(
        Tap::DefectPixel,
        "defect_pixel",
        "defect_pixel",
        "defect_pixel",
        "dpc_decide",
        Image::Mosaic,
    ),
    decl(
        Tap::LensShading,
        "lens_shading",
        "lens_shading",
        "lens_shading",
        "lsc_px",
        Image::Mosaic,
    ),
    decl(
        Tap::WhiteBalance,
        "white_balance",
        "white_balance",
        "white_balance",
        "wb_px",
        Image::Mosaic,
    ),
    decl(
        Tap::Demosaic,
        "demosaic",
        "demosaic",
        "demosaic",
        "demosaic_at",
        Image::Rgb16,
    ),
    decl(
        Tap::Highlights,
        "highlights",
        "highlights",
        "highlights",
        "highlights_px",
        Image::Rgb16,
    ),
    decl(Tap::Ccm, "ccm", "ccm", "ccm", "ccm_px", Image::Rgb16),
    decl(
        Tap::Tone,
        "tone",
        "tone",
        "tone_rgba8",
        "rgba8_of",
        Image::Rgba8,
    ),
];

impl Tap {
    /// Every tap, in pipeline order (from [`CHAIN`]).
    pub const ALL: [Tap; CHAIN.len()] = {
        let mut all = [Tap::Unpacked; CHAIN.len()];
        let mut i = 0;
        while i < CHAIN.len() {
            all[i] = CHAIN[i].tap;
            i += 1;
        }
        all
    };

    /// This stage's declaration.
    pub fn decl(self) -> &'static StageDecl {
        // Tap's order is CHAIN's (tested).
        &CHAIN[self as usize]
    }
    pub fn name(self) -> &'static str {
        self.decl().name
    }
    pub fn parse(s: &str) -> Option<Tap> {
        CHAIN.iter().find(|d| d.name == s).map(|d| d.tap)
    }
}

/// A tapped intermediate, read back to the CPU.
#[derive(Clone, Debug, PartialEq)]
pub enum TapImage {
    /// One u16 per pixel (before the demosaic).
    Mosaic(Vec<u16>),
    /// Interleaved RGB u16.
    Rgb16(Vec<u16>),
    Rgba8(Vec<u8>),
}

impl TapImage {
    pub fn kind(&self) -> Image {
        match self {
            TapImage::Mosaic(_) => Image::Mosaic,
            TapImage::Rgb16(_) => Image::Rgb16,
            TapImage::Rgba8(_) => Image::Rgba8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_the_chain() {
        for (i, d) in CHAIN.iter().enumerate() {
            assert_eq!(d.tap as usize, i, "{d:?}");
            assert_eq!(Tap::ALL[i], d.tap);
            assert_eq!(Tap::parse(d.name), Some(d.tap));
        }
        assert_eq!(Tap::parse("nope"), None);
    }
}
