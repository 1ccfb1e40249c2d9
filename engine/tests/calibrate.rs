//! Calibration held to known truth: synthetic captures rendered from the
//! ColorChecker's published values through a known sensor matrix, lens
//! shading, pedestal and noise (`calibrate::synthetic`), calibrated, and
//! the results compared with what was rendered.

#![allow(clippy::unwrap_used)]

use isp_engine::calibrate::synthetic::{Placement, SynthSensor, calibrate_and_measure};
use isp_engine::calibrate::{self, Inputs, Lit, chart, lsc};
use isp_engine::tuning::Tuning;

#[test]
fn lens_shading_gains_match_the_rendered_falloff() {
    let s = SynthSensor::default();
    let flat = s.flat(5000.0, 0.6, 4);
    let r = lsc::lens_shading(
        &[Lit {
            capture: flat,
            ct: Some(5000.0),
        }],
        s.black,
        (17, 13),
        4.0,
    )
    .unwrap();
    let p = &r.params;
    let mut worst = 0.0f64;
    let mut at = (0, 0, 0);
    for site in 0..4 {
        // The site's brightest point is the centre: gains relative to it.
        for j in 0..13 {
            for i in 0..17 {
                let x = i * (s.width - 1) / 16;
                let y = j * (s.height - 1) / 12;
                let want = s.true_gain(site, x, y);
                let got = p.gains[site][j * 17 + i] as f64;
                let e = (got / want - 1.0).abs();
                if e > worst {
                    worst = e;
                    at = (site, i, j);
                }
            }
        }
    }
    eprintln!("worst gain error {worst:.4} at {at:?}");
    assert!(worst < 0.01, "worst gain error {worst} at {at:?}");
}

#[test]
fn a_synthetic_set_calibrates_within_the_targets() {
    let s = SynthSensor::default();
    let (t, rep, acc) = calibrate_and_measure(&s, &Tuning::default()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&acc).unwrap());
    assert!(acc.black_error_dn <= 0.5, "black {}", acc.black_error_dn);
    assert!(
        acc.shading_residual < 0.01,
        "residual shading {}",
        acc.shading_residual
    );
    for (ct, mean, max) in &acc.charts {
        assert!(
            *mean <= 1.0 && *max <= 3.0,
            "{ct} K: dE2000 mean {mean} max {max}"
        );
    }
    assert!(
        acc.shot_error < 0.10 && acc.read_error < 0.10,
        "noise {} {}",
        acc.shot_error,
        acc.read_error
    );
    // Every chart was found on its own, all 24 patches.
    for c in &rep.charts {
        assert!(c.found.method.contains("24 of 24"), "{}", c.found.method);
    }
    // The tuning took it all and is valid.
    assert_eq!(t.stages.ccm.by_ct.len(), 3);
    assert!(
        t.algorithms
            .iter()
            .any(|a| a.name == "awb.ct_curve" && a.enabled)
    );
    assert!(t.noise.is_some());
    assert!(t.check("calibrated").is_ok());
}

#[test]
fn four_corners_measure_what_detection_finds() {
    let s = SynthSensor::default();
    let c = s.chart(5000.0, Placement::default(), 2, 3);
    let found = chart::detect(&c, s.black).unwrap();
    let picked = chart::from_corners(&c, found.corners).unwrap();
    // Corners off the capture are refused, not measured.
    let e =
        chart::from_corners(&c, [[0.0, 0.0], [9e9, 0.0], [0.0, 10.0], [10.0, 10.0]]).unwrap_err();
    assert!(e.contains("outside"), "{e}");
    for (a, b) in found.centres.iter().zip(&picked.centres) {
        assert!(
            (a[0] - b[0]).abs() < 3.0 && (a[1] - b[1]).abs() < 3.0,
            "{a:?} {b:?}"
        );
    }
    // A chart upside down is found in its own order (patch 1 where it is).
    let turned = s.chart(
        5000.0,
        Placement {
            angle_deg: 182.0,
            ..Placement::default()
        },
        2,
        3,
    );
    let f = chart::detect(&turned, s.black).unwrap();
    let (w, h) = (s.width as f32, s.height as f32);
    // Rotated by 180 degrees about the frame's centre-ish: patch 1 is now
    // bottom right of the chart's middle.
    assert!(
        f.centres[0][0] > w / 2.0 && f.centres[0][1] > h / 2.0,
        "{:?}",
        f.centres[0]
    );
}

#[test]
fn a_chart_with_an_edge_row_or_column_out_of_frame_is_placed_right() {
    let s = SynthSensor::default();
    let (w, h) = (s.width as f64, s.height as f64);
    // The chart is 0.62 of the frame wide; a row is about 0.11 of its
    // height, a column about 0.1 of its width. Each placement leaves one
    // whole edge row or column out of the frame.
    let cases = [
        ("bottom row out", 0.5, 0.866),
        ("top row out", 0.5, 0.134),
        ("right column out", 0.8, 0.5),
        ("left column out", 0.2, 0.5),
    ];
    for (what, cx, cy) in cases {
        let place = Placement {
            cx,
            cy,
            angle_deg: 1.0,
            ..Placement::default()
        };
        let c = s.chart(5000.0, place, 2, 7);
        let f = chart::detect(&c, s.black).unwrap_or_else(|e| panic!("{what}: {e}"));
        let truth = s.chart_centres(place);
        let mut seen = 0;
        for (k, (got, want)) in f.centres.iter().zip(&truth).enumerate() {
            let inside = (0.0..w).contains(&want[0]) && (0.0..h).contains(&want[1]);
            seen += inside as usize;
            let d = (got[0] as f64 - want[0]).hypot(got[1] as f64 - want[1]);
            assert!(
                d < 4.0,
                "{what}: patch {} at {got:?}, truly at {want:?}",
                k + 1
            );
        }
        assert!((18..=20).contains(&seen), "{what}: {seen} patches in frame");
        assert!(f.method.contains("of 24"), "{what}: {}", f.method);
    }
}

#[test]
fn bad_captures_are_refused_with_reasons() {
    let s = SynthSensor::default();
    // A flat field where the chart should be: no chart.
    let flat = s.flat(5000.0, 0.5, 1);
    let e = chart::detect(&flat, s.black).unwrap_err();
    assert!(e.contains("patch") && e.contains("corner"), "{e}");
    // A "dark" frame that is lit.
    let e = calibrate::run(
        &Inputs {
            darks: vec![s.flat(5000.0, 0.5, 1)],
            ..Default::default()
        },
        &Tuning::default(),
    )
    .unwrap();
    assert!(
        e.1.warnings.iter().any(|w| w.contains("not dark")),
        "{:?}",
        e.1.warnings
    );
}

#[test]
fn a_fine_lens_shading_grid_is_fitted_to_its_borders() {
    // 32 x 32 (Raspberry Pi 5's tables): every border point measured.
    let s = SynthSensor::default();
    let flat = s.flat(5000.0, 0.6, 4);
    let r = lsc::lens_shading(
        &[Lit {
            capture: flat,
            ct: None,
        }],
        s.black,
        (32, 32),
        4.0,
    )
    .unwrap();
    let mut worst = 0.0f64;
    for site in 0..4 {
        for j in 0..32 {
            for i in 0..32 {
                let (x, y) = (i * (s.width - 1) / 31, j * (s.height - 1) / 31);
                let e =
                    (r.params.gains[site][j * 32 + i] as f64 / s.true_gain(site, x, y) - 1.0).abs();
                worst = worst.max(e);
            }
        }
    }
    assert!(worst < 0.01, "worst gain error {worst}");
}

/// The 3A statistics are taken before lens shading, the CT curve on chart
/// patches after it: the statistics are shaded (`Stats3A::shade`) so that a
/// flat lit at 5000 K reads as 5000 K over the whole frame, not only at its
/// centre (unshaded, the synthetic lens's colour fall-off moved the
/// estimate to about 5280 K and the frame's R/G by -3.6%).
#[test]
fn the_ct_estimate_of_a_calibrated_flat_is_its_lights() {
    use isp_engine::algorithms::{AlgoResult, IpaContext, SensorConfig};
    use isp_engine::stages::{black_level, stats};
    let s = SynthSensor::default();
    let (t, _, _) = calibrate_and_measure(&s, &Tuning::default()).unwrap();
    let st = &t.stages;
    for ct in [3000.0, 5000.0, 6500.0] {
        let flat = s.flat(ct, 0.5, 1);
        let (w, h) = (flat.width, flat.height);
        let raw: Vec<u16> = flat.data.iter().map(|v| v.round() as u16).collect();
        let mut m = vec![0u16; w * h];
        let max = flat.white_level as u16;
        black_level::apply(&st.black_level, max, flat.cfa, w, &raw, &mut m);
        let mut seen = stats::compute(&st.stats, flat.cfa, w, h, &m);
        // The truth: the centre's R/G and B/G (shading gain 1 there).
        let centre = |c: usize| {
            let z = &seen.zones[(st.stats.zones_y / 2) * st.stats.zones_x + st.stats.zones_x / 2];
            z.mean[c] / z.mean[1]
        };
        let (cr, cb) = (centre(0), centre(2));
        seen.shade(&st.lens_shading, flat.cfa);
        let frame = |c: usize| {
            (seen.sums[c] / seen.counts[c] as f64) / (seen.sums[1] / seen.counts[1] as f64)
        };
        let (fr, fb) = (frame(0) as f32, frame(2) as f32);
        assert!(
            (fr / cr - 1.0).abs() < 0.01 && (fb / cb - 1.0).abs() < 0.01,
            "{ct} K: frame R/G {fr} B/G {fb}, centre {cr} {cb}"
        );
        // The estimate the frame gives is the one its centre (where
        // shading is 1) gives: the CT curve's own accuracy is calibration's.
        let algos = t.algorithms(&SensorConfig::default());
        let settle = |seen: &stats::Stats3A| {
            let mut ctx = IpaContext::default();
            for _ in 0..40 {
                let mut r = AlgoResult::new(&ctx);
                for a in algos.iter() {
                    a.process(seen, &mut r);
                }
                ctx = r.next;
            }
            ctx.colour_temperature as f64
        };
        let mut centre_only = seen.clone();
        let keep = (st.stats.zones_y / 2) * st.stats.zones_x + st.stats.zones_x / 2;
        for (i, z) in centre_only.zones.iter_mut().enumerate() {
            if i != keep {
                z.quads = 0;
            }
        }
        let (got, want) = (settle(&seen), settle(&centre_only));
        eprintln!(
            "{ct} K flat: frame {got:.0} K, its centre {want:.0} K; R/G {fr:.4} (centre {cr:.4})"
        );
        assert!(
            (got - want).abs() < 30.0 && (got / ct - 1.0).abs() < 0.03,
            "a {ct} K flat estimated at {got:.0} K, its centre at {want:.0} K"
        );
    }
}
