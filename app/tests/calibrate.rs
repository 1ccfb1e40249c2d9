//! The Calibrate panel as a person uses it: load captures (the synthetic
//! set with known truth), run, read the chart's patch table and the
//! shading, apply the result to the live tuning and undo it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{studio_with, wait_for};
use egui_kittest::kittest::Queryable;
use isp_engine::gpu::Backend;
use isp_studio::Options;
use std::time::{Duration, Instant};

#[test]
fn the_calibrate_panel_runs_shows_and_applies_a_calibration() {
    let mut h = studio_with(
        Options {
            source: Some("synthetic:checker".into()),
            backend: Backend::Cpu,
            ..Default::default()
        },
        [1280.0, 1000.0],
    );
    wait_for(&mut h, "a first frame", |s| s.state.latest.is_some());
    h.get_by_label("Calibrate").click();
    h.run_steps(2);
    h.get_by_label("Synthetic set").click();
    h.run_steps(2);
    // Six captures listed: a dark, two flats, three charts.
    assert_eq!(
        h.query_all_by_label_contains("chart synthetic chart")
            .count(),
        3
    );
    let before = h.state().state.tuning.current.clone();
    h.get_by_label("Run calibration").click();
    let t0 = Instant::now();
    while h.query_by_label("Apply to tuning").is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the calibration did not finish"
        );
        assert!(
            h.query_all_by_label_contains("calibration failed")
                .next()
                .is_none(),
            "the calibration failed"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(2);
    // The chart as found, its patch table and the shading surface.
    assert!(h.query_all_by_label_contains("of 24 patches seen").count() >= 1);
    assert!(h.query_by_label("dark skin").is_some());
    assert!(
        h.query_all_by_label_contains("residual after correction")
            .count()
            >= 2
    );
    // Applied as one undo step.
    h.get_by_label("Apply to tuning").click();
    h.run_steps(2);
    let after = h.state().state.tuning.current.clone();
    assert_ne!(after, before);
    assert_eq!(after.stages.ccm.by_ct.len(), 3);
    assert!(after.noise.is_some());
    assert!(
        after
            .algorithms
            .iter()
            .any(|a| a.name == "awb.ct_curve" && a.enabled)
    );
    wait_for(&mut h, "the engine on the calibrated tuning", |s| {
        *s.state.engine.params.snapshot().tuning == after
    });
    h.state_mut().state.undo();
    h.run_steps(2);
    assert_eq!(h.state().state.tuning.current, before);
}
