//! Demosaic: Bayer mosaic -> interleaved RGB, bilinear or
//! Malvar-He-Cutler (2004, "High-quality linear interpolation for demosaicing
//! of Bayer-patterned color images"). Integer arithmetic, so the GPU twin can
//! match it exactly. Edges are mirrored (which keeps the Bayer phase).

use super::reflect;
use crate::types::{BayerOrder, CfaColor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DemosaicMethod {
    Bilinear,
    #[default]
    Malvar,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DemosaicParams {
    pub method: DemosaicMethod,
}

impl DemosaicParams {
    pub const FIELDS: &'static [super::fields::Field] = &[super::fields::Field::choice(
        "method",
        &["bilinear", "malvar"],
    )];
}

/// Copy of the mosaic with a 2-pixel mirrored border.
pub fn pad2(width: usize, height: usize, src: &[u16]) -> Vec<i32> {
    let pw = width + 4;
    let mut out = vec![0i32; pw * (height + 4)];
    for py in 0..height + 4 {
        let y = reflect(py as isize - 2, height);
        for px in 0..pw {
            let x = reflect(px as isize - 2, width);
            out[py * pw + px] = src[y * width + x] as i32;
        }
    }
    out
}

#[inline]
fn round16(s: i32) -> u16 {
    (s + 8).div_euclid(16).clamp(0, 65535) as u16
}

/// Malvar-He-Cutler at one site. `p(dx, dy)` reads the mosaic around it.
/// Returns RGB. The weights are the paper's, times 16.
#[inline]
pub fn malvar_at(site: CfaColor, p: impl Fn(isize, isize) -> i32) -> [u16; 3] {
    let c = p(0, 0);
    let axial1 = p(-1, 0) + p(1, 0) + p(0, -1) + p(0, 1);
    let axial2 = p(-2, 0) + p(2, 0) + p(0, -2) + p(0, 2);
    let diag = p(-1, -1) + p(1, -1) + p(-1, 1) + p(1, 1);
    let h1 = p(-1, 0) + p(1, 0);
    let v1 = p(0, -1) + p(0, 1);
    let h2 = p(-2, 0) + p(2, 0);
    let v2 = p(0, -2) + p(0, 2);
    // G at a red or blue site.
    let g_rb = || round16(8 * c + 4 * axial1 - 2 * axial2);
    // The colour to the left/right of a green site, and the one above/below.
    let horiz = || round16(10 * c + 8 * h1 - 2 * h2 - 2 * diag + v2);
    let vert = || round16(10 * c + 8 * v1 - 2 * v2 - 2 * diag + h2);
    // The opposite colour at a red or blue site.
    let cross = || round16(12 * c + 4 * diag - 3 * axial2);
    let v = c.clamp(0, 65535) as u16;
    match site {
        CfaColor::R => [v, g_rb(), cross()],
        CfaColor::B => [cross(), g_rb(), v],
        // Green in a red row: red left/right, blue above/below.
        CfaColor::Gr => [horiz(), v, vert()],
        CfaColor::Gb => [vert(), v, horiz()],
    }
}

/// Bilinear at one site.
#[inline]
pub fn bilinear_at(site: CfaColor, p: impl Fn(isize, isize) -> i32) -> [u16; 3] {
    let c = p(0, 0) as u16;
    let axial = ((p(-1, 0) + p(1, 0) + p(0, -1) + p(0, 1) + 2) / 4) as u16;
    let diag = ((p(-1, -1) + p(1, -1) + p(-1, 1) + p(1, 1) + 2) / 4) as u16;
    let h = ((p(-1, 0) + p(1, 0) + 1) / 2) as u16;
    let v = ((p(0, -1) + p(0, 1) + 1) / 2) as u16;
    match site {
        CfaColor::R => [c, axial, diag],
        CfaColor::B => [diag, axial, c],
        CfaColor::Gr => [h, c, v],
        CfaColor::Gb => [v, c, h],
    }
}

/// Demosaic a whole frame into interleaved RGB (`3 * width * height` samples).
pub fn apply(
    p: &DemosaicParams,
    order: BayerOrder,
    width: usize,
    height: usize,
    src: &[u16],
    dst: &mut [u16],
) {
    let pad = pad2(width, height, src);
    let pw = width + 4;
    for y in 0..height {
        for x in 0..width {
            let base = (y + 2) * pw + x + 2;
            let at = |dx: isize, dy: isize| pad[(base as isize + dy * pw as isize + dx) as usize];
            let site = order.color_at(x, y);
            let rgb = match p.method {
                DemosaicMethod::Malvar => malvar_at(site, at),
                DemosaicMethod::Bilinear => bilinear_at(site, at),
            };
            dst[(y * width + x) * 3..(y * width + x) * 3 + 3].copy_from_slice(&rgb);
        }
    }
}

/// Sample a full-colour image through a Bayer pattern (for tests and synthesis).
pub fn mosaic(order: BayerOrder, width: usize, height: usize, rgb: &[u16]) -> Vec<u16> {
    let mut out = vec![0u16; width * height];
    for y in 0..height {
        for x in 0..width {
            out[y * width + x] = rgb[(y * width + x) * 3 + order.color_at(x, y).rgb()];
        }
    }
    out
}

/// Peak signal-to-noise ratio of two 16-bit images, in dB.
pub fn psnr16(a: &[u16], b: &[u16]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (65535.0f64 * 65535.0 / mse).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_field_stays_flat() {
        for order in BayerOrder::ALL {
            for method in [DemosaicMethod::Bilinear, DemosaicMethod::Malvar] {
                let (w, h) = (8, 6);
                let rgb: Vec<u16> = (0..w * h).flat_map(|_| [1000u16, 2000, 3000]).collect();
                let m = mosaic(order, w, h, &rgb);
                let mut out = vec![0u16; w * h * 3];
                apply(&DemosaicParams { method }, order, w, h, &m, &mut out);
                assert_eq!(out, rgb, "{order} {method:?}");
            }
        }
    }

    #[test]
    fn bilinear_by_hand() {
        // RGGB 4x4 with distinct values; check the interior R site at (2,2).
        let m: Vec<u16> = (0..16).map(|i| (i * 100) as u16).collect();
        let mut out = vec![0u16; 48];
        apply(
            &DemosaicParams {
                method: DemosaicMethod::Bilinear,
            },
            BayerOrder::Rggb,
            4,
            4,
            &m,
            &mut out,
        );
        let px = &out[(2 * 4 + 2) * 3..(2 * 4 + 2) * 3 + 3];
        assert_eq!(px[0], 1000); // R itself
        assert_eq!(px[1], (600 + 1400 + 900 + 1100 + 2) / 4); // G: up, down, left, right
        // B: diagonals (1,1)=500, (3,1)=700, (1,3)=1300, (3,3)=1500
        assert_eq!(px[2], (500 + 700 + 1300 + 1500 + 2) / 4);
    }

    #[test]
    fn malvar_by_hand_on_a_ramp() {
        // On a horizontal linear ramp, Malvar's corrections are exact.
        let (w, h) = (12, 8);
        let rgb: Vec<u16> = (0..w * h)
            .flat_map(|i| {
                let x = (i % w) as u16;
                [1000 + 100 * x, 2000 + 100 * x, 3000 + 100 * x]
            })
            .collect();
        let m = mosaic(BayerOrder::Rggb, w, h, &rgb);
        let mut out = vec![0u16; w * h * 3];
        apply(
            &DemosaicParams::default(),
            BayerOrder::Rggb,
            w,
            h,
            &m,
            &mut out,
        );
        for y in 2..h - 2 {
            for x in 2..w - 2 {
                let i = (y * w + x) * 3;
                assert_eq!(&out[i..i + 3], &rgb[i..i + 3], "({x},{y})");
            }
        }
    }

    #[test]
    fn malvar_beats_bilinear_on_a_known_image() {
        // A colourful image with detail at many frequencies: a zone plate in
        // luminance plus slow colour gradients (like the synthetic scenes).
        let (w, h) = (256, 192);
        let mut rgb = vec![0u16; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - w as f32 / 2.0, y as f32 - h as f32 / 2.0);
                let l = 0.5
                    + 0.35 * (std::f32::consts::PI * (dx * dx + dy * dy) / (2.0 * w as f32)).cos();
                let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
                let c = [l * (0.6 + 0.4 * u), l * 0.9, l * (0.6 + 0.4 * v)];
                for k in 0..3 {
                    rgb[(y * w + x) * 3 + k] = (c[k] * 65535.0) as u16;
                }
            }
        }
        for order in BayerOrder::ALL {
            let m = mosaic(order, w, h, &rgb);
            let mut bil = vec![0u16; w * h * 3];
            let mut mal = vec![0u16; w * h * 3];
            apply(
                &DemosaicParams {
                    method: DemosaicMethod::Bilinear,
                },
                order,
                w,
                h,
                &m,
                &mut bil,
            );
            apply(
                &DemosaicParams {
                    method: DemosaicMethod::Malvar,
                },
                order,
                w,
                h,
                &m,
                &mut mal,
            );
            let (pb, pm) = (psnr16(&rgb, &bil), psnr16(&rgb, &mal));
            assert!(
                pm > pb + 1.0,
                "{order}: Malvar {pm:.2} dB vs bilinear {pb:.2} dB"
            );
        }
    }

    #[test]
    fn clamps_overshoot() {
        let mut m = vec![0u16; 36];
        m[14] = 65535;
        let mut out = vec![0u16; 108];
        apply(
            &DemosaicParams::default(),
            BayerOrder::Rggb,
            6,
            6,
            &m,
            &mut out,
        );
        // The lone bright red site keeps its value; Malvar's negative lobes clamp at 0.
        assert_eq!(out[14 * 3], 65535);
        assert!(out.contains(&0));
    }
}
