// common.wgsl: what every stage shader shares. The host (engine/src/gpu/)
// prepends this file to each module, so the parameter block, the bindings and
// the rounding rule are defined once.
//
// Data on the GPU, all in `array<u32>`:
//   raw bytes       4 bytes a word, little-endian, rows `stride` bytes apart
//   mosaic (u16)    2 samples a word, rows `width` samples long (width is even)
//   RGB16           interleaved R,G,B u16, 2 samples a word (3 words = 2 pixels)
//   RGBA8           1 pixel a word
//   YUV16           three planes of u16 one after the other, 2 samples a word

struct Params {
    width: u32,
    height: u32,
    // raw row stride in bytes
    stride: u32,
    // FLAG_*
    flags: u32,
    bits: u32,
    // 0 plain, 1 CSI-2
    packing: u32,
    // CFA tile: 2 bits per site, the CfaColor index of (0,0),(1,0),(0,1),(1,1)
    cfa: u32,
    dpc_threshold: u32,
    // black level pedestal and scale per site [R, Gr, Gb, B]
    bl_ped: vec4<f32>,
    bl_scale: vec4<f32>,
    // white balance gains (r, g, b, -)
    wb: vec4<f32>,
    // colour correction matrix rows (r, g, b, -)
    ccm0: vec4<f32>,
    ccm1: vec4<f32>,
    ccm2: vec4<f32>,
    // lens shading grid size, word offset of the grid in `aux`; word offset
    // of the static defect map's bitmap in `aux` (0: none)
    lsc_width: u32,
    lsc_height: u32,
    lsc_at: u32,
    dpc_map_at: u32,
    // statistics zones, saturation level, red site (x | y << 1)
    zones_x: u32,
    zones_y: u32,
    saturation: u32,
    red_pos: u32,
    // output size (scaler), RGBA8 row stride in words (fused), tiles per
    // fused workgroup
    out_width: u32,
    out_height: u32,
    out_stride: u32,
    fused_rows: u32,
    // yuv: kr, kb, limited range (1.0) or full (0.0)
    yuv_kr: f32,
    yuv_kb: f32,
    yuv_limited: f32,
    pad1: f32,
    // highlights: where the blend starts, 65535 minus that
    hl_threshold: u32,
    hl_den: u32,
    // defect pixels by the noise model: variance a * (level >> 8) + b
    dpc_noise_a: u32,
    dpc_noise_b: u32,
};

const FLAG_DPC: u32 = 1u;
const FLAG_LSC: u32 = 2u;
const FLAG_MALVAR: u32 = 4u;
const FLAG_HL: u32 = 8u;

// Where black sits in the mosaic and in camera RGB up to the CCM
// (`stages::PEDESTAL`): lens shading and white balance work about it, the
// CCM takes it off and clamps once. HIST_SCALE: `stats::HIST_SCALE`.
const PEDESTAL: u32 = 4096u;
const PEDESTAL_F: f32 = 4096.0;
const HIST_SCALE: u32 = 69905u;

// Word offsets in `aux`: the 8-bit tone table (4 entries a word), then the
// 16-bit one (2 a word), then the tone's scale per largest channel (f32
// bits, 65536), the scaler's sRGB tables (256 linear values, 256
// midpoints), then the lens shading grid (f32 bits, 4 planes).
const LUT8_AT: u32 = 0u;
const LUT16_AT: u32 = 16384u;
const SCALE_AT: u32 = 49152u;
const SRGB_DEC_AT: u32 = 114688u;
const SRGB_MID_AT: u32 = 114944u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read> aux: array<u32>;
@group(0) @binding(4) var<storage, read_write> stats: array<atomic<u32>>;

// Round to the nearest 16-bit value, halves up, and clamp: the CPU's
// `stages::clamp_u16`.
fn clamp_u16(v: f32) -> u32 {
    return u32(min(max(v + 0.5, 0.0), 65535.0));
}

// `v` times `g` about the pedestal: `stages::gain_about_pedestal`.
fn gain_about_pedestal(v: u32, g: f32) -> u32 {
    return clamp_u16((f32(v) - PEDESTAL_F) * g + PEDESTAL_F);
}

// Mirror an index into 0..n without repeating the edge sample: the CPU's
// `stages::reflect`.
fn reflect_i(i: i32, n: i32) -> i32 {
    var j = abs(i);
    if (j >= n) {
        j = 2 * (n - 1) - j;
    }
    return clamp(j, 0, n - 1);
}

// CfaColor index (R 0, Gr 1, Gb 2, B 3) of the site at (x, y).
fn site_at(x: u32, y: u32) -> u32 {
    return (P.cfa >> (2u * ((y & 1u) * 2u + (x & 1u)))) & 3u;
}

// RGB channel of a CfaColor index.
fn site_rgb(site: u32) -> u32 {
    return select(select(1u, 2u, site == 3u), 0u, site == 0u);
}

// Sample i of a u16 array held two a word in `src`.
fn src16(i: u32) -> u32 {
    return (src[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
}

fn pack2(lo: u32, hi: u32) -> u32 {
    return (lo & 0xffffu) | (hi << 16u);
}
