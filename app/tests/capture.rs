//! A burst from the studio: triggered from the Capture panel, merged on the
//! background lane while the preview goes on, the merged result shown in the
//! viewer beside the reference, the report in the panel; the plan's buffers
//! in the Buffers panel.

#![allow(clippy::unwrap_used)]

mod common;

use common::{studio_with, wait_for};
use egui_kittest::kittest::Queryable;
use isp_engine::gpu::Backend;
use isp_engine::resource_manager::{BufferKind, BufferSpec};
use isp_engine::telemetry::EventKind;
use isp_engine::types::Lane;
use isp_studio::Options;

fn options() -> Options {
    Options {
        source: Some("synthetic:checker".into()),
        backend: Backend::Cpu,
        ..Default::default()
    }
}

/// Mean absolute difference between horizontally neighbouring pixels of a
/// flat patch's green channel: the noise an image shows.
fn roughness(rgba: &[u8], w: usize, x0: usize, y0: usize, n: usize) -> f64 {
    let mut sum = 0.0;
    for y in y0..y0 + n {
        for x in x0..x0 + n {
            let a = rgba[(y * w + x) * 4 + 1] as f64;
            let b = rgba[(y * w + x + 1) * 4 + 1] as f64;
            sum += (a - b).abs();
        }
    }
    sum / (n * n) as f64
}

#[test]
fn a_burst_from_the_capture_panel_shows_beside_its_reference() {
    let mut h = studio_with(options(), [1280.0, 800.0]);
    wait_for(&mut h, "a first frame", |s| s.state.latest.is_some());
    h.get_by_label("Capture").click();
    h.run_steps(2);
    h.get_by_label("Capture burst").click();
    wait_for(&mut h, "the capture to finish", |s| {
        s.state.capture_view.is_some()
            || matches!(
                s.state.player.status().capture,
                isp_studio::player::CaptureState::Failed(_)
            )
    });
    h.run_steps(2);
    let s = h.state();
    let view = s.state.capture_view.as_ref().expect("a finished capture");
    assert!(view.visible, "the viewer shows it");
    let r = &view.shown.report;
    assert_eq!(r.plan.frames(), 8);
    assert!(r.selection.chosen.len() >= 4, "{:?}", r.selection);
    let fmt = s.state.player.status().format.unwrap();
    let size = [fmt.width as usize, fmt.height as usize];
    assert_eq!(view.shown.merged.size, size);
    assert_eq!(view.shown.reference.size, size);
    for t in &view.textures {
        assert_eq!(t.size(), size);
    }
    // The merge took the noise down: inside the first colour patch.
    let (w, hgt) = (size[0], size[1]);
    let (x0, y0, n) = (w * 6 / 100, hgt * 12 / 100, (w / 16).min(hgt / 12));
    let merged = roughness(&view.shown.merged.rgba, w, x0, y0, n);
    let reference = roughness(&view.shown.reference.rgba, w, x0, y0, n);
    eprintln!("roughness merged {merged:.3} vs reference {reference:.3}");
    assert!(merged < reference * 0.8, "{merged} vs {reference}");
    // The viewer's two halves and the panel's report.
    h.get_by_label_contains("merged (");
    h.get_by_label_contains("reference (frame");
    h.get_by_label("reference");
    // Its steps on the timeline's background lane.
    let rows: Vec<_> = h
        .state()
        .state
        .engine
        .telemetry
        .snapshot()
        .iter()
        .filter(|e| e.kind == EventKind::Stage && e.stage == "fusion")
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].lane, Some(Lane::Background));
    // The preview went on: frames after the capture's.
    let merged_id = h
        .state()
        .state
        .capture_view
        .as_ref()
        .unwrap()
        .shown
        .report
        .merged_frame;
    wait_for(&mut h, "previews after the capture", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|l| l.frame_id > merged_id)
    });
    // Back to live.
    h.get_by_label("Back to live").click();
    h.run_steps(2);
    assert!(!h.state().state.capture_view.as_ref().unwrap().visible);
    // And back from the panel.
    h.get_by_label("Show in viewer").click();
    h.run_steps(2);
    assert!(h.state().state.capture_view.as_ref().unwrap().visible);
}

#[test]
fn the_buffers_panel_lists_a_plans_reservation() {
    let mut h = studio_with(options(), [1280.0, 800.0]);
    wait_for(&mut h, "a first frame", |s| s.state.latest.is_some());
    let rm = h.state().state.engine.rm.clone();
    rm.reserve_for_plan(
        4242,
        3,
        BufferSpec::new(BufferKind::Bayer16, 64, 64),
        60_000_000_000,
    )
    .unwrap();
    h.get_by_label("Buffers").click();
    h.run_steps(3);
    h.get_by_label_contains("plan 4242: 3 buffers reserved, expire in");
}
