//! The fast preview path as one fused CPU schedule (the Halide split: same
//! algorithm as the reference stages, another schedule). From the
//! black-level-corrected mosaic it does lens shading, white balance,
//! demosaic, CCM and the tone curve in one pass over row bands, in parallel,
//! with per-thread scratch reused across frames. It rounds exactly where the
//! reference stages round, so its output is bit-identical to running
//! `lens_shading -> white_balance -> demosaic -> ccm -> tone` one by one.

use super::clamp_u16;
use super::demosaic::{DemosaicMethod, bilinear_at, malvar_at};
use super::lens_shading::LensShadingParams;
use super::reflect;
use super::tone::ToneLut;
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
    pub ccm: [[f32; 3]; 3],
    pub lut: &'a ToneLut,
}

/// Output rows per parallel task.
const BAND: usize = 64;

#[derive(Default)]
struct Scratch {
    rows: Vec<i32>,
    cols: [Vec<f32>; 4],
    xw: Vec<(u32, f32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

const fn site(k: u8) -> CfaColor {
    match k {
        0 => CfaColor::R,
        1 => CfaColor::Gr,
        2 => CfaColor::Gb,
        _ => CfaColor::B,
    }
}

#[allow(clippy::too_many_arguments)]
/// Lens shading + white balance of source row `yy` into `out` (w + 4 wide,
/// mirrored by two on each side).
fn prepare_row(
    p: &FastParams,
    w: usize,
    h: usize,
    yy: usize,
    src: &[u16],
    sc_cols: &mut [Vec<f32>; 4],
    xw: &[(u32, f32)],
    out: &mut [i32],
) {
    let tile = p.order.tile();
    let sites = [tile[(yy & 1) * 2], tile[(yy & 1) * 2 + 1]];
    let wb = [p.wb[sites[0].rgb()], p.wb[sites[1].rgb()]];
    let row = &src[yy * w..yy * w + w];
    let body = &mut out[2..w + 2];
    match p.lsc {
        Some(lsc) => {
            lsc.column_gains(yy, h, sc_cols);
            let c0 = &sc_cols[sites[0].index()];
            let c1 = &sc_cols[sites[1].index()];
            for x in 0..w {
                let (x0, ax) = xw[x];
                let cg = if x & 1 == 0 { c0 } else { c1 };
                let x0 = x0 as usize;
                let g = cg[x0] * (1.0 - ax) + cg[x0 + 1] * ax;
                let v = clamp_u16(row[x] as f32 * g);
                body[x] = clamp_u16(v as f32 * wb[x & 1]) as i32;
            }
        }
        None => {
            for (x, (b, &s)) in body.iter_mut().zip(row).enumerate() {
                *b = clamp_u16(s as f32 * wb[x & 1]) as i32;
            }
        }
    }
    out[0] = out[4];
    out[1] = out[3];
    out[w + 2] = out[w];
    out[w + 3] = out[w - 1];
}

#[inline(always)]
fn finish(p: &FastParams, rgb: [u16; 3], o: &mut [u8]) {
    let m = &p.ccm;
    let c = super::ccm::mul(m, rgb[0] as f32, rgb[1] as f32, rgb[2] as f32);
    o[0] = p.lut.to8[c[0] as usize];
    o[1] = p.lut.to8[c[1] as usize];
    o[2] = p.lut.to8[c[2] as usize];
    o[3] = 255;
}

/// One output row whose two sites are the constants `S0`, `S1`.
#[inline(always)]
fn out_row<const S0: u8, const S1: u8, const MALVAR: bool>(
    p: &FastParams,
    w: usize,
    pw: usize,
    rows: &[i32],
    out: &mut [u8],
) {
    // rows: five padded rows, the output row in the middle.
    let centre = 2 * pw + 2;
    let px = |x: usize, s: CfaColor| {
        let base = centre + x;
        let at = |dx: isize, dy: isize| rows[(base as isize + dy * pw as isize + dx) as usize];
        if MALVAR {
            malvar_at(s, at)
        } else {
            bilinear_at(s, at)
        }
    };
    for (xp, o) in out.chunks_exact_mut(8).enumerate().take(w / 2) {
        let x = xp * 2;
        let a = px(x, site(S0));
        finish(p, a, &mut o[0..4]);
        let b = px(x + 1, site(S1));
        finish(p, b, &mut o[4..8]);
    }
}

fn dispatch_row(p: &FastParams, y: usize, w: usize, pw: usize, rows: &[i32], out: &mut [u8]) {
    let tile = p.order.tile();
    let s = [
        tile[(y & 1) * 2].index() as u8,
        tile[(y & 1) * 2 + 1].index() as u8,
    ];
    let malvar = p.method == DemosaicMethod::Malvar;
    macro_rules! go {
        ($a:literal, $b:literal) => {
            if malvar {
                out_row::<$a, $b, true>(p, w, pw, rows, out)
            } else {
                out_row::<$a, $b, false>(p, w, pw, rows, out)
            }
        };
    }
    match (s[0], s[1]) {
        (0, 1) => go!(0, 1),
        (1, 0) => go!(1, 0),
        (2, 3) => go!(2, 3),
        (3, 2) => go!(3, 2),
        // The other pairs cannot come out of a Bayer tile.
        _ => go!(0, 1),
    }
}

/// The fused preview: 16-bit black-level-corrected mosaic -> RGBA8.
/// Runs on the current rayon pool.
pub fn preview_rgba8(p: &FastParams, w: usize, h: usize, src: &[u16], out: &mut [u8]) {
    use rayon::prelude::*;
    assert!(
        w >= 4 && h >= 4 && src.len() >= w * h && out.len() >= w * h * 4,
        "fused path needs a frame of at least 4x4"
    );
    let pw = w + 4;
    out[..w * h * 4]
        .par_chunks_mut(w * 4 * BAND)
        .enumerate()
        .for_each(|(band, chunk)| {
            SCRATCH.with(|sc| {
                let mut sc = sc.borrow_mut();
                let sc = &mut *sc;
                let y0 = band * BAND;
                let y1 = (y0 + BAND).min(h);
                let nrows = y1 - y0 + 4;
                sc.rows.resize(nrows * pw, 0);
                sc.xw.clear();
                if let Some(lsc) = p.lsc {
                    sc.xw.extend((0..w).map(|x| {
                        let (x0, ax) = lsc.x_weight(x, w);
                        (x0 as u32, ax)
                    }));
                }
                for k in 0..nrows {
                    let yy = reflect(y0 as isize + k as isize - 2, h);
                    let (rows, cols, xw) = (&mut sc.rows, &mut sc.cols, &sc.xw);
                    prepare_row(p, w, h, yy, src, cols, xw, &mut rows[k * pw..(k + 1) * pw]);
                }
                for (k, o) in chunk.chunks_exact_mut(w * 4).enumerate() {
                    let y = y0 + k;
                    dispatch_row(p, y, w, pw, &sc.rows[k * pw..(k + 5) * pw], o);
                }
            })
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::{ccm, demosaic, lens_shading, tone, white_balance};

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
        ccm::apply(
            &ccm::CcmParams {
                enabled: true,
                matrix: m,
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
                            ccm: m,
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
