use super::*;
use crate::stages::demosaic::mosaic;

use crate::stages::lifted as lift;

fn flat(order: BayerOrder, w: usize, h: usize, rgb: [u16; 3]) -> Vec<u16> {
    let img: Vec<u16> = (0..w * h).flat_map(|_| rgb).collect();
    lift(&mosaic(order, w, h, &img))
}

#[test]
fn a_still_made_brighter_counts_the_zones_it_would_clip_as_saturated() {
    // Left half a bright grey, right half a dim red, 2x2 zones.
    let (w, h) = (64, 32);
    let img: Vec<u16> = (0..w * h)
        .flat_map(|i| {
            if i % w < w / 2 {
                [24000u16, 40000, 24000]
            } else {
                [8000, 4000, 3000]
            }
        })
        .collect();
    let d = lift(&mosaic(BayerOrder::Rggb, w, h, &img));
    let p = StatsParams {
        zones_x: 2,
        zones_y: 2,
        ..Default::default()
    };
    let st = compute(&p, BayerOrder::Rggb, w, h, &d);
    let twice = st.scaled(2.0, p.saturation);
    for (i, (a, b)) in st.zones.iter().zip(&twice.zones).enumerate() {
        if i % 2 == 0 {
            // Green at 80000: those quads would clip.
            assert_eq!((b.quads, b.saturated), (0, a.quads + a.saturated), "{b:?}");
        } else {
            assert_eq!((b.quads, b.saturated), (a.quads, a.saturated));
            assert_eq!(b.mean, a.mean.map(|m| m * 2.0));
        }
    }
    // Darker (or as measured): nothing moves to saturated.
    assert_eq!(
        st.scaled(0.5, p.saturation)
            .zones
            .iter()
            .map(|z| z.quads)
            .sum::<u32>(),
        st.zones.iter().map(|z| z.quads).sum::<u32>()
    );
}

#[test]
fn quads_clipped_at_capture_say_nothing_of_a_stills_exposure() {
    // The left third clipped, the rest a dim grey: at any gain the
    // clipped quads are left out (neither bright nor dark), so AE can
    // bring the grey to its target whatever share is clipped.
    let (w, h) = (96, 32);
    let img: Vec<u16> = (0..w * h)
        .flat_map(|i| {
            if i % w < w / 3 {
                [65535u16; 3]
            } else {
                [3000; 3]
            }
        })
        .collect();
    let d = lift(&mosaic(BayerOrder::Rggb, w, h, &img));
    let p = StatsParams {
        zones_x: 6,
        zones_y: 2,
        ..Default::default()
    };
    let st = compute(&p, BayerOrder::Rggb, w, h, &d);
    assert!(st.zones.iter().any(|z| z.saturated > 0));
    for k in [0.25, 1.0, 4.0] {
        let s = st.scaled(k, p.saturation);
        for (a, b) in st.zones.iter().zip(&s.zones) {
            assert_eq!((b.quads, b.saturated), (a.quads, 0), "k {k}: {b:?}");
        }
    }
}

#[test]
fn shaded_statistics_read_a_shaded_flat_as_flat() {
    use crate::stages::lens_shading::LensShadingParams;
    // A flat whose colour falls off towards the corners, each channel
    // by its own amount (the lens's colour shading), and the grid that
    // undoes it: gain 1 + s r^2 / 2 with r = 1 at the corners.
    let (w, h) = (128, 96);
    let strength = [0.6f32, 0.3, 0.3, 0.1];
    let lsc = LensShadingParams::radial(9, 7, strength);
    let truth = [20000.0f32, 30000.0, 25000.0];
    let img: Vec<u16> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            let dx = x as f32 / (w - 1) as f32 * 2.0 - 1.0;
            let dy = y as f32 / (h - 1) as f32 * 2.0 - 1.0;
            let r2 = (dx * dx + dy * dy) / 2.0;
            let s = [strength[0], strength[1], strength[3]];
            std::array::from_fn::<u16, 3, _>(|c| (truth[c] / (1.0 + s[c] * r2)).round() as u16)
        })
        .collect();
    let d = lift(&mosaic(BayerOrder::Rggb, w, h, &img));
    let mut st = compute(&StatsParams::default(), BayerOrder::Rggb, w, h, &d);
    let ratio = |st: &Stats3A, c: usize| st.mean(c) / st.mean(1);
    let want = [truth[0] / truth[1], 1.0, truth[2] / truth[1]].map(|v| v as f64);
    let before = ratio(&st, 0);
    st.shade(&lsc, BayerOrder::Rggb);
    for c in [0, 2] {
        let e = ratio(&st, c) / want[c] - 1.0;
        assert!(
            e.abs() < 0.005,
            "frame ratio {c}: {} want {}",
            ratio(&st, c),
            want[c]
        );
    }
    assert!(before / want[0] < 0.97, "the fall-off moved R/G: {before}");
    // Zone by zone: what the statistics of the mosaic after the lens
    // shading stage hold (the grid interpolates the fall-off, so not
    // the truth exactly), and near the truth.
    let mut after = d.clone();
    crate::stages::lens_shading::apply(&lsc, BayerOrder::Rggb, w, h, &mut after);
    let direct = compute(&StatsParams::default(), BayerOrder::Rggb, w, h, &after);
    for (zi, (z, t)) in st.zones.iter().zip(&direct.zones).enumerate() {
        for c in 0..3 {
            assert!(
                (z.mean[c] / t.mean[c] - 1.0).abs() < 0.003
                    && (z.mean[c] / truth[c] - 1.0).abs() < 0.02,
                "zone {zi} mean {c} {} after the stage {} truth {}",
                z.mean[c],
                t.mean[c],
                truth[c]
            );
        }
    }
    // Off, nothing moves.
    let off = LensShadingParams {
        enabled: false,
        ..lsc
    };
    let mut same = st.clone();
    same.shade(&off, BayerOrder::Rggb);
    assert_eq!(same, st);
}

#[test]
fn sums_histograms_and_zones_by_hand() {
    for order in BayerOrder::ALL {
        let (w, h) = (32, 24);
        let d = flat(order, w, h, [1000, 2000, 3000]);
        let s = compute(&StatsParams::default(), order, w, h, &d);
        // Above black again, within the 16-bit rounding of the lift.
        let near = |a: f64, b: f64| (a - b).abs() <= 0.6;
        assert_eq!(s.counts, [192, 384, 192]);
        for (c, v) in [1000.0, 2000.0, 3000.0].into_iter().enumerate() {
            assert!(near(s.mean(c), v), "{order} {c}: {}", s.mean(c));
        }
        // Bins of 65536 / 256 above black: 1000 is in bin 3, 3000 in 11.
        assert_eq!(s.histograms[0][3], 192, "{:?}", s.histograms[0]);
        assert_eq!(s.histograms[2][11], 192);
        assert_eq!(s.zones.len(), 16 * 12);
        for z in &s.zones {
            for (c, v) in [1000.0, 2000.0, 3000.0].into_iter().enumerate() {
                assert!(near(z.mean[c] as f64, v), "{z:?}");
            }
            assert_eq!(z.quads, 1);
        }
        assert_eq!(s.focus, 0.0);
    }
}

#[test]
fn saturated_quads_are_left_out_of_zone_means() {
    let (w, h) = (4, 4);
    let mut d = flat(BayerOrder::Rggb, w, h, [100, 100, 100]);
    d[0] = 65535;
    let p = StatsParams {
        zones_x: 1,
        zones_y: 1,
        saturation: 65000,
    };
    let s = compute(&p, BayerOrder::Rggb, w, h, &d);
    assert_eq!(s.zones[0].saturated, 1);
    assert_eq!(s.zones[0].quads, 3);
    assert!(s.zones[0].mean.iter().all(|m| (m - 100.0).abs() <= 0.6));
}

#[test]
fn focus_grows_with_detail() {
    let (w, h) = (64, 64);
    let smooth = flat(BayerOrder::Rggb, w, h, [5000; 3]);
    let sharp: Vec<u16> = lift(
        &(0..w * h)
            .map(|i| {
                if (i % w / 2 + i / w / 2) % 2 == 0 {
                    1000
                } else {
                    9000
                }
            })
            .collect::<Vec<_>>(),
    );
    let p = StatsParams::default();
    let a = compute(&p, BayerOrder::Rggb, w, h, &smooth).focus;
    let b = compute(&p, BayerOrder::Rggb, w, h, &sharp).focus;
    assert!(b > a + 0.05, "{a} {b}");
}
