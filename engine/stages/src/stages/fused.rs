//! The fast preview path as one fused CPU schedule (the Halide split: same
//! algorithm as the reference stages, another schedule). From the
//! black-level-corrected mosaic it does lens shading, white balance,
//! demosaic, highlights, CCM and the tone curve in one pass over row bands, in parallel,
//! with per-thread scratch reused across frames. It rounds exactly where the
//! reference stages round, so its output is bit-identical to running
//! `lens_shading -> white_balance -> demosaic -> highlights -> ccm -> tone`
//! one by one.

use super::demosaic::DemosaicMethod;
use super::lens_shading::LensShadingParams;
use super::reflect;
use super::tone::ToneLut;
use super::{PEDESTAL_F, clamp_u16, gain_about_pedestal};
use crate::types::{BayerOrder, CfaColor};
use std::cell::RefCell;

/// Everything the fused path needs, resolved for one frame.
#[derive(Debug, Clone, Copy)]
pub struct FastParams<'a> {
    pub order: BayerOrder,
    /// `None` when lens shading is off.
    pub lsc: Option<&'a LensShadingParams>,
    pub wb: [f32; 3],
    pub method: DemosaicMethod,
    /// `highlights::HighlightsParams::resolve`.
    pub highlights: Option<(u32, u32)>,
    /// `ccm::CcmParams::pipeline_matrix`: applied to camera RGB less the
    /// pedestal.
    pub ccm: [[f32; 3]; 3],
    pub lut: &'a ToneLut,
}

impl<'a> FastParams<'a> {
    /// The fused path's view of one frame's stage parameters.
    pub fn of(st: &'a super::StageParams, order: BayerOrder, lut: &'a ToneLut) -> FastParams<'a> {
        FastParams {
            order,
            lsc: st.lens_shading.enabled.then_some(&st.lens_shading),
            wb: st.white_balance.effective(),
            method: st.demosaic.method,
            highlights: st.highlights.resolve(),
            ccm: st.ccm.pipeline_matrix(),
            lut,
        }
    }
}

/// Output rows per parallel task.
const BAND: usize = 64;

/// Per-thread scratch, kept across frames: nothing is allocated per frame
/// once the sizes settle.
#[derive(Default)]
struct Scratch {
    /// The band's source rows after LSC and WB, 2 mirrored pixels each side.
    rows: Vec<i32>,
    /// Lens-shading grid row for the current source row, per CFA site.
    cols: [Vec<f32>; 4],
    /// Per column: grid cell, weight of the right grid point, and 1 - weight.
    x0: Vec<u32>,
    ax: Vec<f32>,
    ax1: Vec<f32>,
    gain: Vec<f32>,
    wb: Vec<f32>,
    row: RowBufs,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Lens shading + white balance of source row `yy` into `out` (w + 4 wide,
/// mirrored by two on each side).
#[inline(always)]
fn prepare_row(
    p: &FastParams,
    w: usize,
    h: usize,
    yy: usize,
    src: &[u16],
    sc: &mut Scratch,
    out: &mut [i32],
) {
    let tile = p.order.tile();
    let sites = [tile[(yy & 1) * 2], tile[(yy & 1) * 2 + 1]];
    let wbp = [p.wb[sites[0].rgb()], p.wb[sites[1].rgb()]];
    let row = &src[yy * w..yy * w + w];
    let body = &mut out[2..w + 2];
    let wb = &mut sc.wb[..w];
    for pair in wb.chunks_exact_mut(2) {
        pair.copy_from_slice(&wbp);
    }
    match p.lsc {
        Some(lsc) => {
            lsc.column_gains(yy, h, &mut sc.cols);
            let c0 = &sc.cols[sites[0].index()];
            let c1 = &sc.cols[sites[1].index()];
            let (x0, ax, ax1, gain) = (&sc.x0[..w], &sc.ax[..w], &sc.ax1[..w], &mut sc.gain[..w]);
            // The grid cell changes rarely along a row: walk the runs of equal
            // cells so the inner loop has no gathers and vectorises.
            let mut x = 0;
            while x < w {
                let i = x0[x] as usize;
                let mut end = x + 1;
                while end < w && x0[end] as usize == i {
                    end += 1;
                }
                let (a0, b0, a1, b1) = (c0[i], c0[i + 1], c1[i], c1[i + 1]);
                for k in x..end {
                    let (a, b) = if k & 1 == 0 { (a0, b0) } else { (a1, b1) };
                    gain[k] = a * ax1[k] + b * ax[k];
                }
                x = end;
            }
            for (((b, &s), &g), &k) in body.iter_mut().zip(row).zip(gain.iter()).zip(wb.iter()) {
                let v = gain_about_pedestal(s, g);
                *b = gain_about_pedestal(v, k) as i32;
            }
        }
        None => {
            for ((b, &s), &k) in body.iter_mut().zip(row).zip(wb.iter()) {
                *b = gain_about_pedestal(s, k) as i32;
            }
        }
    }
    out[0] = out[4];
    out[1] = out[3];
    out[w + 2] = out[w];
    out[w + 3] = out[w - 1];
}

/// Per-thread row buffers for the demosaic of one output row.
#[derive(Default)]
struct RowBufs {
    /// Green at a red/blue site; the colour left/right of a green site; the
    /// colour above/below it; the opposite colour at a red/blue site.
    g_rb: Vec<i32>,
    horiz: Vec<i32>,
    vert: Vec<i32>,
    cross: Vec<i32>,
    rgb: [Vec<u16>; 3],
    out: [Vec<u16>; 3],
}

/// Demosaic one output row into planar RGB. Every candidate value is
/// computed for every column in straight loops the compiler vectorises; the
/// Bayer phase then picks per column. Same integer formulas and rounding as
/// `demosaic::malvar_at` / `bilinear_at`.
#[inline(always)]
fn demosaic_row(p: &FastParams, y: usize, w: usize, pw: usize, rows: &[i32], rb: &mut RowBufs) {
    let r0 = &rows[0..pw];
    let r1 = &rows[pw..2 * pw];
    let r2 = &rows[2 * pw..3 * pw];
    let r3 = &rows[3 * pw..4 * pw];
    let r4 = &rows[4 * pw..5 * pw];
    let (ga, ha, va, xa) = (
        &mut rb.g_rb[..w],
        &mut rb.horiz[..w],
        &mut rb.vert[..w],
        &mut rb.cross[..w],
    );
    let round16 = |s: i32| ((s + 8) >> 4).clamp(0, 65535);
    if p.method == DemosaicMethod::Malvar {
        for x in 0..w {
            let c = r2[x + 2];
            let h1 = r2[x + 1] + r2[x + 3];
            let h2 = r2[x] + r2[x + 4];
            let v1 = r1[x + 2] + r3[x + 2];
            let v2 = r0[x + 2] + r4[x + 2];
            let d = r1[x + 1] + r1[x + 3] + r3[x + 1] + r3[x + 3];
            ga[x] = round16(8 * c + 4 * (h1 + v1) - 2 * (h2 + v2));
            ha[x] = round16(10 * c + 8 * h1 - 2 * h2 - 2 * d + v2);
            va[x] = round16(10 * c + 8 * v1 - 2 * v2 - 2 * d + h2);
            xa[x] = round16(12 * c + 4 * d - 3 * (h2 + v2));
        }
    } else {
        for x in 0..w {
            let h1 = r2[x + 1] + r2[x + 3];
            let v1 = r1[x + 2] + r3[x + 2];
            let d = r1[x + 1] + r1[x + 3] + r3[x + 1] + r3[x + 3];
            ga[x] = (h1 + v1 + 2) >> 2;
            ha[x] = (h1 + 1) >> 1;
            va[x] = (v1 + 1) >> 1;
            xa[x] = (d + 2) >> 2;
        }
    }
    let tile = p.order.tile();
    let sites = [tile[(y & 1) * 2], tile[(y & 1) * 2 + 1]];
    let [rr, gg, bb] = &mut rb.rgb;
    let (rr, gg, bb) = (&mut rr[..w], &mut gg[..w], &mut bb[..w]);
    let c = &r2[2..w + 2];
    let pick = |site: CfaColor| match site {
        CfaColor::R => [&*c, &*ga, &*xa],
        CfaColor::B => [&*xa, &*ga, &*c],
        CfaColor::Gr => [&*ha, &*c, &*va],
        CfaColor::Gb => [&*va, &*c, &*ha],
    };
    let (even, odd) = (pick(sites[0]), pick(sites[1]));
    for (ch, out) in [rr, gg, bb].into_iter().enumerate() {
        let (e, o) = (even[ch], odd[ch]);
        // A select on the column's parity, which vectorises as a blend.
        for x in 0..w {
            out[x] = if x & 1 == 0 { e[x] } else { o[x] } as u16;
        }
    }
}

/// Highlights, CCM and tone curve of one planar row into RGBA8.
#[inline(always)]
fn finish_row(p: &FastParams, w: usize, rb: &mut RowBufs, out: &mut [u8]) {
    let m = &p.ccm;
    if let Some(k) = p.highlights {
        let [rr, gg, bb] = &mut rb.rgb;
        for x in 0..w {
            let v = [rr[x], gg[x], bb[x]];
            // Most pixels are below the threshold: one compare.
            if v[0].max(v[1]).max(v[2]) as u32 > k.0 {
                [rr[x], gg[x], bb[x]] = super::highlights::px(k, v);
            }
        }
    }
    let [rr, gg, bb] = &rb.rgb;
    let [cr, cg, cb] = &mut rb.out;
    let (cr, cg, cb) = (&mut cr[..w], &mut cg[..w], &mut cb[..w]);
    for x in 0..w {
        let (r, g, b) = (
            rr[x] as f32 - PEDESTAL_F,
            gg[x] as f32 - PEDESTAL_F,
            bb[x] as f32 - PEDESTAL_F,
        );
        cr[x] = clamp_u16(m[0][0] * r + m[0][1] * g + m[0][2] * b);
        cg[x] = clamp_u16(m[1][0] * r + m[1][1] * g + m[1][2] * b);
        cb[x] = clamp_u16(m[2][0] * r + m[2][1] * g + m[2][2] * b);
    }
    let lut = &p.lut.to8[..65536];
    let scale = &p.lut.scale[..65536];
    for (x, o) in out.chunks_exact_mut(4).take(w).enumerate() {
        // `ToneLut::scaled`: the largest channel's scale on all three.
        let s = scale[cr[x].max(cg[x]).max(cb[x]) as usize];
        let px = u32::from_le_bytes([
            lut[clamp_u16(cr[x] as f32 * s) as usize],
            lut[clamp_u16(cg[x] as f32 * s) as usize],
            lut[clamp_u16(cb[x] as f32 * s) as usize],
            255,
        ]);
        o.copy_from_slice(&px.to_le_bytes());
    }
}

/// One band of output rows starting at `y0`.
#[inline(always)]
fn band(
    p: &FastParams,
    w: usize,
    h: usize,
    y0: usize,
    src: &[u16],
    chunk: &mut [u8],
    sc: &mut Scratch,
) {
    let pw = w + 4;
    let y1 = (y0 + BAND).min(h);
    let nrows = y1 - y0 + 4;
    sc.rows.resize(nrows * pw, 0);
    for v in [&mut sc.gain, &mut sc.wb, &mut sc.ax, &mut sc.ax1] {
        v.resize(w, 0.0);
    }
    sc.x0.resize(w, 0);
    for v in [
        &mut sc.row.g_rb,
        &mut sc.row.horiz,
        &mut sc.row.vert,
        &mut sc.row.cross,
    ] {
        v.resize(w, 0);
    }
    for v in sc.row.rgb.iter_mut().chain(sc.row.out.iter_mut()) {
        v.resize(w, 0);
    }
    if let Some(lsc) = p.lsc {
        for x in 0..w {
            let (x0, ax) = lsc.x_weight(x, w);
            sc.x0[x] = x0 as u32;
            sc.ax[x] = ax;
            sc.ax1[x] = 1.0 - ax;
        }
    }
    let mut rows = std::mem::take(&mut sc.rows);
    for k in 0..nrows {
        let yy = reflect(y0 as isize + k as isize - 2, h);
        prepare_row(p, w, h, yy, src, sc, &mut rows[k * pw..(k + 1) * pw]);
    }
    for (k, o) in chunk.chunks_exact_mut(w * 4).enumerate() {
        demosaic_row(p, y0 + k, w, pw, &rows[k * pw..(k + 5) * pw], &mut sc.row);
        finish_row(p, w, &mut sc.row, o);
    }
    sc.rows = rows;
}

/// The same band compiled for AVX2 (picked at run time where the CPU has it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn band_avx2(
    p: &FastParams,
    w: usize,
    h: usize,
    y0: usize,
    src: &[u16],
    chunk: &mut [u8],
    sc: &mut Scratch,
) {
    band(p, w, h, y0, src, chunk, sc)
}

fn band_dispatch(
    p: &FastParams,
    w: usize,
    h: usize,
    y0: usize,
    src: &[u16],
    chunk: &mut [u8],
    sc: &mut Scratch,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { band_avx2(p, w, h, y0, src, chunk, sc) };
    }
    band(p, w, h, y0, src, chunk, sc)
}

/// The fused preview: 16-bit black-level-corrected mosaic -> RGBA8.
/// Runs on the current rayon pool.
pub fn preview_rgba8(p: &FastParams, w: usize, h: usize, src: &[u16], out: &mut [u8]) {
    use rayon::prelude::*;
    assert!(
        w >= 4 && h >= 4 && w.is_multiple_of(2) && src.len() >= w * h && out.len() >= w * h * 4,
        "fused path needs an even-width frame of at least 4x4"
    );
    out[..w * h * 4]
        .par_chunks_mut(w * 4 * BAND)
        .enumerate()
        .for_each(|(b, chunk)| {
            SCRATCH.with(|sc| band_dispatch(p, w, h, b * BAND, src, chunk, &mut sc.borrow_mut()))
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::{ccm, demosaic, highlights, lens_shading, tone, white_balance};

    /// The reference stages one after another.
    fn reference(
        order: BayerOrder,
        w: usize,
        h: usize,
        src: &[u16],
        lsc: &LensShadingParams,
        wb: [f32; 3],
        method: DemosaicMethod,
        m: [[f32; 3]; 3],
        lut: &ToneLut,
    ) -> Vec<u8> {
        let mut d = src.to_vec();
        lens_shading::apply(lsc, order, w, h, &mut d);
        white_balance::apply(
            &white_balance::WhiteBalanceParams {
                enabled: true,
                gains: wb,
            },
            order,
            w,
            &mut d,
        );
        let mut rgb = vec![0u16; w * h * 3];
        demosaic::apply(
            &demosaic::DemosaicParams { method },
            order,
            w,
            h,
            &d,
            &mut rgb,
        );
        highlights::apply(&highlights::HighlightsParams::default(), &mut rgb);
        ccm::apply(
            &ccm::CcmParams {
                enabled: true,
                matrix: m,
                by_ct: Vec::new(),
            },
            &mut rgb,
        );
        let mut out = vec![0u8; w * h * 4];
        tone::apply_rgba8(lut, &rgb, &mut out);
        out
    }

    #[test]
    fn fused_equals_reference_bit_for_bit() {
        let lut = ToneLut::build(&tone::ToneParams::default());
        let m = ccm::CcmParams::default().matrix;
        let mut seed = 12345u32;
        for order in BayerOrder::ALL {
            for method in [DemosaicMethod::Malvar, DemosaicMethod::Bilinear] {
                for (w, h) in [(6, 4), (34, 70), (130, 150)] {
                    let src: Vec<u16> = (0..w * h)
                        .map(|_| {
                            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                            (seed >> 16) as u16
                        })
                        .collect();
                    for lsc in [
                        LensShadingParams::radial(9, 7, [0.8, 0.5, 0.5, 0.7]),
                        LensShadingParams {
                            enabled: false,
                            ..Default::default()
                        },
                    ] {
                        let wb = [1.9, 1.0, 1.4];
                        let want = reference(order, w, h, &src, &lsc, wb, method, m, &lut);
                        let p = FastParams {
                            order,
                            lsc: lsc.enabled.then_some(&lsc),
                            wb,
                            method,
                            highlights: highlights::HighlightsParams::default().resolve(),
                            ccm: ccm::for_pipeline(m),
                            lut: &lut,
                        };
                        let mut got = vec![0u8; w * h * 4];
                        preview_rgba8(&p, w, h, &src, &mut got);
                        assert!(
                            got == want,
                            "{order} {method:?} {w}x{h} lsc={}",
                            lsc.enabled
                        );
                    }
                }
            }
        }
    }
}
