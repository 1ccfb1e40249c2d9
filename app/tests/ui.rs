//! The studio driven through egui_kittest: real clicks on real widgets, the
//! engine and player running underneath on the demo session.

#![allow(clippy::unwrap_used)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use isp_engine::gpu::Backend;
use isp_studio::{Options, Studio};
use std::time::{Duration, Instant};

fn studio(backend: Backend) -> Harness<'static, Studio> {
    let s = Studio::new(
        None,
        Options {
            source: None,
            backend,
            quit_after: None,
            fps: Some(60.0),
        },
    )
    .unwrap();
    Harness::builder()
        .with_size([1280.0, 760.0])
        .build_ui_state(|ui, s: &mut Studio| s.show(ui), s)
}

/// Step the UI until `cond` holds (the engine and player run on their threads).
fn wait_for(h: &mut Harness<'static, Studio>, what: &str, cond: impl Fn(&Studio) -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        h.step();
        if cond(h.state()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn every_panel_shows_on_the_demo_session() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 3);
    for title in [
        "Viewer",
        "Parameters",
        "Session",
        "Lanes",
        "Buffers",
        "Timeline",
        "Log",
    ] {
        h.get_by_label(title);
    }
    h.get_by_label_contains("RAW10P RGGB 640x360");
}

#[test]
fn bypassing_a_stage_changes_the_next_frame_and_undo_restores_it() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.latest.is_some());
    let v0 = h.state().state.engine.params.version();
    let before = h
        .state()
        .state
        .latest
        .as_ref()
        .unwrap()
        .preview_rgba()
        .unwrap();
    // The open stage blocks, sorted: black_level, ccm, white_balance.
    let boxes = h
        .get_all_by_label("enabled (off: bypass)")
        .collect::<Vec<_>>();
    assert!(boxes.len() >= 3);
    boxes[2].click();
    h.step();
    assert!(!h.state().state.tuning.current.stages.white_balance.enabled);
    let v1 = h.state().state.engine.params.version();
    assert!(v1 > v0);
    wait_for(&mut h, "a frame with the new parameters", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.params_version == v1)
    });
    let after = h
        .state()
        .state
        .latest
        .as_ref()
        .unwrap()
        .preview_rgba()
        .unwrap();
    assert_ne!(before, after, "white balance off must change the picture");
    assert_eq!(h.state().state.tuning.diff().len(), 1);
    h.get_by_label("Undo").click();
    h.step();
    assert!(h.state().state.tuning.current.stages.white_balance.enabled);
    assert!(h.state().state.tuning.diff().is_empty());
}

#[test]
fn export_csv_and_open_a_session_through_the_dialog_paths() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 2);
    let tmp = tempfile::tempdir().unwrap();
    let csv_path = tmp.path().join("t.csv");
    h.state_mut().state.export_csv(&csv_path);
    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers, isp_engine::telemetry::CSV_COLUMNS);
    assert!(r.records().count() > 3);
    // Record a small synthetic session and open it as the folder dialog would.
    let sess = tmp.path().join("sess");
    let fmt = isp_engine::types::RawFormat::new(
        96,
        64,
        10,
        isp_engine::types::BayerOrder::Bggr,
        isp_engine::types::Packing::Csi2,
    );
    let mut src = isp_engine::sources::synthetic::SyntheticSource::new(
        isp_engine::sources::synthetic::Scene::Gradient,
        fmt,
    );
    let mut rec =
        isp_engine::sources::session::SessionRecorder::create(&sess, fmt, "test").unwrap();
    let mut buf = vec![0u8; fmt.frame_bytes()];
    for _ in 0..3 {
        use isp_engine::sources::FrameSource;
        let m = src.next_frame(&mut buf).unwrap().unwrap();
        rec.write_frame(&m, &buf).unwrap();
    }
    rec.finish().unwrap();
    h.state_mut().state.open_source(&sess.display().to_string());
    wait_for(&mut h, "the new session's frames", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.format.width == 96 && r.format.height == 64)
    });
    assert!(h.query_all_by_label_contains("96x64").count() >= 1);
    // A folder that is not a session: a clear error in the log, no crash.
    h.state_mut().state.open_source("/nonexistent/session");
    wait_for(&mut h, "the error", |s| {
        s.state
            .log
            .iter()
            .any(|l| l.error && l.text.contains("/nonexistent/session"))
    });
}

/// The whole app rendered with the wgpu renderer (lavapipe here) to a PNG: a
/// real picture with the panels in it.
#[test]
fn snapshot_of_the_whole_app_is_a_real_picture() {
    if isp_engine::gpu::context_for_tests().is_none() {
        return;
    }
    let s = Studio::new(
        None,
        Options {
            backend: Backend::Cpu,
            fps: Some(60.0),
            ..Default::default()
        },
    )
    .unwrap();
    let mut h = Harness::builder()
        .with_size([1280.0, 760.0])
        .wgpu()
        .build_ui_state(|ui, s: &mut Studio| s.show(ui), s);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 3);
    h.run_steps(3);
    let img = h.render().unwrap();
    assert_eq!((img.width(), img.height()), (1280, 760));
    let px: Vec<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    let distinct: std::collections::HashSet<_> = px.iter().step_by(7).collect();
    assert!(distinct.len() > 200, "{} colours: blank?", distinct.len());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    img.save(dir.join("studio.png")).unwrap();
    for title in ["Viewer", "Parameters", "Timeline"] {
        h.get_by_label(title);
    }
    // UI frame CPU time, for the record (targets live in benchmarks).
    let mut ms: Vec<f64> = h.state().frame_ms.iter().copied().collect();
    ms.sort_by(f64::total_cmp);
    eprintln!(
        "UI frame p50 {:.2} ms over {} frames",
        ms[ms.len() / 2],
        ms.len()
    );
}

#[test]
fn a_ccm_coefficient_edited_in_its_drag_value_changes_the_next_frame() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.latest.is_some());
    let before = h
        .state()
        .state
        .latest
        .as_ref()
        .unwrap()
        .preview_rgba()
        .unwrap();
    // The CCM grid's cells are labelled by "matrix"; the first is row 0, column 0.
    let cells: Vec<_> = h
        .get_all_by_role_and_label(egui::accesskit::Role::SpinButton, "matrix")
        .collect();
    assert_eq!(cells.len(), 9);
    cells[0].set_value_accesskit(1.0);
    h.step();
    let m = h.state().state.tuning.current.stages.ccm.matrix;
    assert!((m[0][0] - 1.0).abs() < 1e-6, "{m:?}");
    let v = h.state().state.engine.params.version();
    wait_for(&mut h, "a frame with the new matrix", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.params_version == v)
    });
    let after = h
        .state()
        .state
        .latest
        .as_ref()
        .unwrap()
        .preview_rgba()
        .unwrap();
    assert_ne!(before, after);
    assert!(
        h.state()
            .state
            .tuning
            .diff()
            .iter()
            .any(|d| d.contains("ccm.matrix[0][0]"))
    );
}

#[test]
fn the_viewer_follows_a_frame_selected_in_the_timeline() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.recent.len() >= 3);
    let (id, px, _) = h.state().state.recent[0].clone();
    // What the timeline's click calls.
    h.state_mut().state.select_frame(Some(id));
    h.run_steps(2);
    h.get_by_label(&format!("showing frame {id} (selected in the timeline)"));
    // Newer frames keep arriving; the viewer stays on the selection.
    wait_for(&mut h, "newer frames", |s| {
        s.state.latest.as_ref().is_some_and(|r| r.frame_id > id + 2)
    });
    h.get_by_label(&format!("showing frame {id} (selected in the timeline)"));
    let kept = h.state().state.selected_preview().unwrap();
    assert_eq!(kept.1, px);
    h.get_by_label("Back to live").click();
    h.step();
    assert_eq!(h.state().state.selected_frame, None);
}
