//! The parameter block every shader reads (`struct Params` in
//! `shaders/common.wgsl`) and the auxiliary tables (tone LUTs, lens shading
//! grid), built from one frame's [`FrameParams`].

use crate::stages::demosaic::DemosaicMethod;
use crate::stages::yuv::YuvRange;
use crate::tuning::FrameParams;

pub const FLAG_DPC: u32 = 1;
pub const FLAG_LSC: u32 = 2;
pub const FLAG_MALVAR: u32 = 4;

/// Word offsets in the aux buffer (match `LUT8_AT`, `LUT16_AT` in common.wgsl).
pub const LUT8_WORDS: usize = 16384;
pub const LUT16_WORDS: usize = 32768;
pub const LSC_AT: usize = LUT8_WORDS + LUT16_WORDS;

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

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Uniforms {
    pub dims: [u32; 4],
    pub fmt: [u32; 4],
    pub bl_ped: [f32; 4],
    pub bl_scale: [f32; 4],
    pub wb: [f32; 4],
    pub ccm: [[f32; 4]; 3],
    pub lsc: [u32; 4],
    pub st: [u32; 4],
    pub outp: [u32; 4],
    pub yuv: [f32; 4],
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
        let tile = fmt.bayer.tile();
        let tile_bits = tile
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, c)| a | ((c.index() as u32) << (2 * i)));
        let k = st.black_level.resolve(fmt.max_value());
        let wb = st.white_balance.effective();
        let m = st.ccm.effective();
        let (rx, ry) = fmt.bayer.red_pos();
        let (kr, kb) = st.yuv.matrix.coefficients();
        Uniforms {
            dims: [width, height, fmt.stride, flags],
            fmt: [
                fmt.bits as u32,
                match fmt.packing {
                    crate::types::Packing::Plain => 0,
                    crate::types::Packing::Csi2 => 1,
                },
                tile_bits,
                st.defect_pixel.threshold as u32,
            ],
            bl_ped: k.map(|(b, _)| b),
            bl_scale: k.map(|(_, s)| s),
            wb: [wb[0], wb[1], wb[2], 0.0],
            ccm: m.map(|r| [r[0], r[1], r[2], 0.0]),
            lsc: [
                st.lens_shading.grid_width as u32,
                st.lens_shading.grid_height as u32,
                LSC_AT as u32,
                0,
            ],
            st: [
                st.stats.zones_x as u32,
                st.stats.zones_y as u32,
                st.stats.saturation as u32,
                (rx | (ry << 1)) as u32,
            ],
            outp: [width, height, width, fused_rows(width, height)],
            yuv: [
                kr,
                kb,
                if st.yuv.range == YuvRange::Limited {
                    1.0
                } else {
                    0.0
                },
                0.0,
            ],
        }
    }
}

/// The aux buffer's words: 8-bit tone table, 16-bit tone table, lens
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
    for plane in &p.stages.lens_shading.gains {
        out.extend(plane.iter().map(|g| g.to_bits()));
    }
}
