use super::*;
use crate::types::{BayerOrder, Packing, RawFormat};

/// A 12-bit RGGB frame of black (256 DN) plus Gaussian noise of sigma
/// 64 DN, as plain little-endian u16 (Box-Muller on a fixed LCG).
fn noisy_black(w: usize, h: usize) -> Vec<u8> {
    let mut seed = 0x2545_f491u64;
    let mut uniform = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..w * h)
        .flat_map(|_| {
            let (u1, u2) = (uniform(), uniform());
            let n = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            ((256.0 + 64.0 * n).round().clamp(0.0, 4095.0) as u16).to_le_bytes()
        })
        .collect()
}

/// Issue 23's shadows: a noisy black frame with white balance 2.0 /
/// 1.0 / 1.6. The demosaiced camera RGB (the highlights tap, before the
/// CCM's one clamp) is black on average in every channel: noise below
/// black kept its sign through lens shading, white balance and the
/// demosaic. With black clamped before the demosaic (as before) each
/// channel sat sigma / sqrt(2 pi) x its gain above black, a magenta cast.
#[test]
fn a_noisy_black_stays_black_until_the_ccm() {
    let (w, h) = (128usize, 96usize);
    let fmt = RawFormat::new(w as u32, h as u32, 12, BayerOrder::Rggb, Packing::Plain);
    let mut t = crate::tuning::Tuning::default();
    t.stages.black_level.levels = [256; 4];
    t.stages.white_balance.gains = [2.0, 1.0, 1.6];
    t.stages.lens_shading.enabled = false;
    let p = FrameParams::from_tuning(&t, fmt);
    let raw = noisy_black(w, h);
    let TapImage::Rgb16(rgb) = reference_tap(&p, &raw, Tap::Highlights).unwrap() else {
        panic!("the highlights tap is RGB16")
    };
    // Sigma in 16-bit units above the pedestal.
    let sigma = 64.0 * (65535.0 - stages::PEDESTAL_F as f64) / (4095.0 - 256.0);
    let gains = [2.0, 1.0, 1.6];
    let n = (w * h) as f64;
    for c in 0..3 {
        let mean = rgb
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| v as f64)
            .sum::<f64>()
            / n
            - stages::PEDESTAL_F as f64;
        // Clamped at black first, it was 0.40 sigma x gain; the standard
        // error of the mean here is about 0.01 sigma x gain.
        assert!(
            mean.abs() < 0.05 * sigma * gains[c],
            "channel {c}: mean {:.3} sigma x gain above black",
            mean / sigma / gains[c]
        );
    }
    // What the render makes of it: the CCM clamps noise at black once,
    // which still lifts it (the denoise stage's to take on); printed for
    // the README's figures.
    let TapImage::Rgba8(out) = reference_tap(&p, &raw, Tap::Tone).unwrap() else {
        panic!("the tone tap is RGBA8")
    };
    let m: Vec<f64> = (0..3)
        .map(|c| {
            out.iter()
                .skip(c)
                .step_by(4)
                .map(|&v| v as f64)
                .sum::<f64>()
                / n
                / 255.0
        })
        .collect();
    eprintln!("noisy black rendered: sRGB {m:.3?}");
}
