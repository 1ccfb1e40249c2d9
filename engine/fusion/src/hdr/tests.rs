//! The bracket merge and the tone map on scenes whose answer is known.

use super::*;

#[test]
fn a_bracket_quad_clipped_in_the_reference_comes_from_the_shorter_exposure() {
    // Two quads side by side, black 64, white 1023 (clip at 95%: 975.05).
    // The reference (ratio 1) is clipped in both; the frame at a quarter of
    // its exposure holds 200 in the second quad and is clipped in the first.
    let (w, h) = (4usize, 2usize);
    let reference = vec![1023u16; w * h];
    let short: Vec<u16> = (0..w * h)
        .map(|i| if i % w < 2 { 1023 } else { 200 })
        .collect();
    let noise = NoiseModel {
        shot: 1.0,
        read: 4.0,
    };
    let exposures = [
        Exposure { ratio: 1.0, noise },
        Exposure { ratio: 0.25, noise },
    ];
    let id = Alignment::identity(w / 2, h / 2);
    let (lin, _) = merge_bracket(
        &[&reference, &short],
        w,
        h,
        0,
        &exposures,
        &[id.clone(), id],
        64.0,
        1023.0,
        &|| {},
    );
    // Clipped everywhere: the shortest exposure's clip level, at the
    // reference's exposure; else the short frame's sample brought there.
    let clip = (64.0 + 0.95 * (1023.0 - 64.0) - 64.0) / 0.25;
    for y in 0..h {
        for x in 0..w {
            let want = if x < 2 { clip } else { (200.0 - 64.0) / 0.25 };
            let got = lin[y * w + x];
            assert!((got - want).abs() < 1e-3, "({x}, {y}): {got} vs {want}");
        }
    }
}

#[test]
fn tone_mapping_compresses_the_bases_range_to_the_stops_and_keeps_each_quad() {
    // Quads of luminance 100 on the left half and 100 x 2^n on the right;
    // inside a quad the samples are 0.9, 1.0, 1.1, 1.0 of it.
    let (w, h, black, white) = (256usize, 128usize, 64.0f32, 1023.0f32);
    let f = [0.9f32, 1.0, 1.1, 1.0];
    let scene = |n: i32| -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let l = if x < w / 2 {
                    100.0
                } else {
                    100.0 * 2f32.powi(n)
                };
                l * f[(y & 1) * 2 + (x & 1)]
            })
            .collect()
    };
    // The log2 luminance the tone map works on (eps: 1e-3 of the range).
    let eps = 1e-3 * (white - black);
    let (lo, hi) = ((100.0 + eps).log2(), (100.0 * 4096.0 + eps).log2());
    // 12 stops into 6: the base's range is scaled by 6 over its own.
    let (out, k) = tone_map(&scene(12), w, h, black, white, 6.0);
    let want = 6.0 / (hi - lo);
    assert!((k - want).abs() < 0.01 * want, "k {k} vs {want}");
    // 3 stops fit in 6: left as they are.
    let (_, k3) = tone_map(&scene(3), w, h, black, white, 6.0);
    assert_eq!(k3, 1.0);
    // Each quad is scaled by one gain: its samples keep their ratios (to
    // the output's rounding). Only quads at the edge (where the detail
    // lifts them) may clip.
    let mut clipped = 0;
    for gy in 0..h / 2 {
        for gx in 0..w / 2 {
            let s = |c: usize| out[(2 * gy + (c >> 1)) * w + 2 * gx + (c & 1)] as f32 - black;
            let unit = s(1);
            if s(2) + black >= white {
                clipped += 1;
                continue;
            }
            for (c, fc) in f.iter().enumerate() {
                assert!(
                    (s(c) - fc * unit).abs() <= 1.0,
                    "quad ({gx}, {gy}) sample {c}: {} vs {} x {unit}",
                    s(c),
                    fc
                );
            }
        }
    }
    assert!(clipped <= 8 * h / 2, "{clipped} quads clip");
}
