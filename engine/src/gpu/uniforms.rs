//! The parameter block every shader reads (`struct Params` in
//! `shaders/common.wgsl`) and the auxiliary tables (tone LUTs, lens shading
//! grid), built from one frame's [`FrameParams`].

use crate::stages::demosaic::DemosaicMethod;
use crate::stages::yuv::YuvRange;
use crate::tuning::FrameParams;

pub const FLAG_DPC: u32 = 1;
pub const FLAG_LSC: u32 = 2;
pub const FLAG_MALVAR: u32 = 4;
pub const FLAG_HL: u32 = 8;

/// Word offsets in the aux buffer (match `LUT8_AT`, `LUT16_AT`, `SCALE_AT`
/// in common.wgsl).
pub const LUT8_WORDS: usize = 16384;
pub const LUT16_WORDS: usize = 32768;
pub const SCALE_WORDS: usize = 65536;
/// The scaler's sRGB tables (`SRGB_DEC_AT`, `SRGB_MID_AT`): 256 words each.
pub const SRGB_AT: usize = LUT8_WORDS + LUT16_WORDS + SCALE_WORDS;
pub const LSC_AT: usize = SRGB_AT + 512;

/// Words of the statistics buffer for a zone grid (see stats.wgsl).
pub const ST_COUNT: usize = 8;
pub const ST_HIST: usize = 9;
pub const ST_ZONES: usize = 777;
pub fn stats_words(zones: usize) -> usize {
    ST_ZONES + zones * 8
}

/// Tiles (32x32) a fused workgroup makes one under the other: more rows,
/// fewer statistics flushes; fewer rows, more workgroups to fill a big GPU.
pub fn fused_rows(width: u32, height: u32) -> u32 {
    let tiles = width.div_ceil(32) * height.div_ceil(32);
    if tiles < 1024 { 8 } else { 4 }
}

/// `struct Params` of `shaders/common.wgsl`, field for field (the layout
/// is checked against naga's reading of the shader in `engine/tests/gpu.rs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Uniforms {
    pub width: u32,
    pub height: u32,
    /// Raw row stride in bytes.
    pub stride: u32,
    /// `FLAG_*`.
    pub flags: u32,
    pub bits: u32,
    /// 0 plain, 1 CSI-2.
    pub packing: u32,
    /// CFA tile: 2 bits per site, the colour index of (0,0),(1,0),(0,1),(1,1).
    pub cfa: u32,
    pub dpc_threshold: u32,
    /// Black level pedestal and scale per site [R, Gr, Gb, B].
    pub bl_ped: [f32; 4],
    pub bl_scale: [f32; 4],
    /// White balance gains (r, g, b, -).
    pub wb: [f32; 4],
    /// Colour correction matrix rows (r, g, b, -).
    pub ccm0: [f32; 4],
    pub ccm1: [f32; 4],
    pub ccm2: [f32; 4],
    /// Lens shading grid size, word offset of the grid in `aux`.
    pub lsc_width: u32,
    pub lsc_height: u32,
    pub lsc_at: u32,
    /// Word offset of the static defect map's bitmap in `aux` (0: none).
    pub dpc_map_at: u32,
    /// Statistics zones, saturation level, red site (x | y << 1).
    pub zones_x: u32,
    pub zones_y: u32,
    pub saturation: u32,
    pub red_pos: u32,
    /// Output size (scaler), RGBA8 row stride in words (fused), tiles per
    /// fused workgroup.
    pub out_width: u32,
    pub out_height: u32,
    pub out_stride: u32,
    pub fused_rows: u32,
    /// YUV: kr, kb, limited range (1.0) or full (0.0).
    pub yuv_kr: f32,
    pub yuv_kb: f32,
    pub yuv_limited: f32,
    pub pad1: f32,
    /// Highlights: where the blend starts and `65535 - threshold`.
    pub hl_threshold: u32,
    pub hl_den: u32,
    /// `defect_pixel::DefectPixelParams::resolve`'s `a` and `b`.
    pub dpc_noise_a: u32,
    pub dpc_noise_b: u32,
}

impl Uniforms {
    /// The block for a `width` x `height` frame (the format's size, or a
    /// stage's own size when a test runs one stage).
    pub fn new(p: &FrameParams, width: u32, height: u32) -> Uniforms {
        let fmt = &p.format;
        let st = &p.stages;
        let mut flags = 0;
        if st.defect_pixel.enabled {
            flags |= FLAG_DPC;
        }
        if st.lens_shading.enabled {
            flags |= FLAG_LSC;
        }
        if st.demosaic.method == DemosaicMethod::Malvar {
            flags |= FLAG_MALVAR;
        }
        let hl = st.highlights.resolve();
        if hl.is_some() {
            flags |= FLAG_HL;
        }
        let (hl_threshold, hl_den) = hl.unwrap_or((65535, 1));
        let tile = fmt.bayer.tile();
        let cfa = tile
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, c)| a | ((c.index() as u32) << (2 * i)));
        let k = st.black_level.resolve(fmt.max_value());
        let dpc = st.defect_pixel.resolve();
        let dpc_map_at = if st.defect_pixel.map.is_empty() {
            0
        } else {
            map_at(p) as u32
        };
        let wb = st.white_balance.effective();
        let m = st.ccm.pipeline_matrix();
        let (rx, ry) = fmt.bayer.red_pos();
        let (kr, kb) = st.yuv.matrix.coefficients();
        let row = |r: [f32; 3]| [r[0], r[1], r[2], 0.0];
        Uniforms {
            width,
            height,
            stride: fmt.stride,
            flags,
            bits: fmt.bits as u32,
            packing: match fmt.packing {
                crate::types::Packing::Plain => 0,
                crate::types::Packing::Csi2 => 1,
            },
            cfa,
            dpc_threshold: dpc.0 as u32,
            bl_ped: k.map(|(b, _)| b),
            bl_scale: k.map(|(_, s)| s),
            wb: [wb[0], wb[1], wb[2], 0.0],
            ccm0: row(m[0]),
            ccm1: row(m[1]),
            ccm2: row(m[2]),
            lsc_width: st.lens_shading.grid_width as u32,
            lsc_height: st.lens_shading.grid_height as u32,
            lsc_at: LSC_AT as u32,
            dpc_map_at,
            zones_x: st.stats.zones_x as u32,
            zones_y: st.stats.zones_y as u32,
            saturation: st.stats.saturation as u32,
            red_pos: (rx | (ry << 1)) as u32,
            out_width: width,
            out_height: height,
            out_stride: width,
            fused_rows: fused_rows(width, height),
            yuv_kr: kr,
            yuv_kb: kb,
            yuv_limited: if st.yuv.range == YuvRange::Limited {
                1.0
            } else {
                0.0
            },
            pad1: 0.0,
            hl_threshold,
            hl_den,
            dpc_noise_a: dpc.1,
            dpc_noise_b: dpc.2,
        }
    }

    /// Every field's name, byte offset and size, in declaration order: what
    /// the layout test compares with the shader's `struct Params`.
    pub fn layout() -> Vec<(&'static str, usize, usize)> {
        macro_rules! fields {
            ($($f:ident),* $(,)?) => {
                vec![$((
                    stringify!($f),
                    std::mem::offset_of!(Uniforms, $f),
                    std::mem::size_of_val(&Uniforms::default().$f),
                )),*]
            };
        }
        fields!(
            width,
            height,
            stride,
            flags,
            bits,
            packing,
            cfa,
            dpc_threshold,
            bl_ped,
            bl_scale,
            wb,
            ccm0,
            ccm1,
            ccm2,
            lsc_width,
            lsc_height,
            lsc_at,
            dpc_map_at,
            zones_x,
            zones_y,
            saturation,
            red_pos,
            out_width,
            out_height,
            out_stride,
            fused_rows,
            yuv_kr,
            yuv_kb,
            yuv_limited,
            pad1,
            hl_threshold,
            hl_den,
            dpc_noise_a,
            dpc_noise_b,
        )
    }
}

/// The aux buffer's words: 8-bit tone table, 16-bit tone table, the tone's
/// scale per largest channel (f32 bits), the scaler's sRGB tables, lens
/// shading grid (4 planes of f32 bits).
pub fn aux_words(p: &FrameParams, out: &mut Vec<u32>) {
    out.clear();
    out.extend(
        p.lut
            .to8
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    out.extend(
        p.lut
            .to16
            .chunks_exact(2)
            .map(|c| c[0] as u32 | (c[1] as u32) << 16),
    );
    out.extend(p.lut.scale.iter().map(|s| s.to_bits()));
    out.extend(crate::stages::scaler::decode_table());
    out.extend(crate::stages::scaler::midpoints());
    for plane in &p.stages.lens_shading.gains {
        out.extend(plane.iter().map(|g| g.to_bits()));
    }
    let map = &p.stages.defect_pixel.map;
    if !map.is_empty() {
        debug_assert_eq!(out.len(), map_at(p));
        let mut bits = Vec::new();
        crate::stages::defect_pixel::map_bits(
            map,
            p.format.width as usize,
            p.format.height as usize,
            &mut bits,
        );
        out.extend(bits);
    }
}

/// Where the static defect map's bitmap starts in `aux`: after the lens
/// shading grid.
pub fn map_at(p: &FrameParams) -> usize {
    LSC_AT
        + p.stages
            .lens_shading
            .gains
            .iter()
            .map(Vec::len)
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `const NAME: u32 = Nu;` of common.wgsl.
    fn shader_const(name: &str) -> usize {
        let src = include_str!("../../../shaders/common.wgsl");
        let line = src
            .lines()
            .find(|l| l.starts_with(&format!("const {name}: u32 = ")))
            .unwrap_or_else(|| panic!("no {name} in common.wgsl"));
        let v = line.rsplit("= ").next().unwrap_or_default();
        v.trim_end_matches(';')
            .trim_end_matches('u')
            .parse()
            .unwrap_or(usize::MAX)
    }

    #[test]
    fn the_aux_offsets_are_the_shaders() {
        assert_eq!(shader_const("LUT8_AT"), 0);
        assert_eq!(shader_const("LUT16_AT"), LUT8_WORDS);
        assert_eq!(shader_const("SCALE_AT"), LUT8_WORDS + LUT16_WORDS);
        assert_eq!(shader_const("SRGB_DEC_AT"), SRGB_AT);
        assert_eq!(shader_const("SRGB_MID_AT"), SRGB_AT + 256);
        assert_eq!(shader_const("FLAG_HL"), FLAG_HL as usize);
        assert_eq!(shader_const("PEDESTAL"), crate::stages::PEDESTAL as usize);
        assert_eq!(
            shader_const("HIST_SCALE"),
            crate::stages::stats::HIST_SCALE as usize
        );
        // And the words are laid out so.
        let t = crate::tuning::Tuning::default();
        let fmt = crate::types::RawFormat::new(
            8,
            8,
            10,
            crate::types::BayerOrder::Rggb,
            crate::types::Packing::Plain,
        );
        let p = crate::tuning::FrameParams::from_tuning(&t, fmt);
        let mut w = Vec::new();
        aux_words(&p, &mut w);
        assert_eq!(
            f32::from_bits(w[SCALE_WORDS / 2 + 49152]),
            p.lut.scale[32768]
        );
        assert_eq!(w[SRGB_AT + 255], crate::stages::scaler::LINEAR_MAX);
        assert_eq!(w[LSC_AT], p.stages.lens_shading.gains[0][0].to_bits());
    }
}
