//! The tuning loop and the workspace, as a person uses them: edits while
//! paused reach the picture, the docked layout, the keyboard, the viewer's
//! pan and zoom, the status bar, the panels' axes and legends, files.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use eframe::egui;
use egui_kittest::kittest::Queryable;
use isp_engine::gpu::Backend;
use isp_engine::stages::chain::Tap;
use isp_studio::Options;
use isp_studio::workspace::{PaneKind, pane_rects};

#[test]
fn an_edit_while_paused_reaches_the_picture_and_so_does_undo() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.latest.is_some());
    settle(&mut h);
    // The presenter hands the last frame to the screen after it ended: wait
    // for it (the frame made again below is the player's last).
    wait_for(&mut h, "the newest frame on screen", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.frame_id == s.state.engine.frames_submitted())
    });
    let on_screen = h.state().state.shown_source().unwrap();
    let position = h.state().state.player.status().position;
    let before = latest_preview(&h);
    h.get_by_label("white_balance enabled (off: bypass)")
        .click();
    h.step();
    let v1 = h.state().state.engine.params.version();
    // No Step: the same frame is made again with the edit.
    wait_for(&mut h, "the frame on screen made again", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.params_version == v1)
    });
    assert_eq!(h.state().state.shown_source(), Some(on_screen));
    assert_eq!(h.state().state.player.status().position, position);
    let after = latest_preview(&h);
    assert_moved(&before, &after, "white balance off, paused");
    // Exactly that frame under the edited parameters (no 3A ran on it).
    assert!(after == tone_of_last_raw(&h, None));
    // Undo while paused: made again too.
    h.get_by_label("Undo").click();
    h.step();
    let v2 = h.state().state.engine.params.version();
    assert!(v2 > v1);
    wait_for(&mut h, "the undo on screen", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.params_version == v2)
    });
    let undone = latest_preview(&h);
    assert_moved(&after, &undone, "undo, paused");
    assert!(undone == tone_of_last_raw(&h, None));
    assert_eq!(h.state().state.shown_source(), Some(on_screen));
}

#[test]
fn choosing_the_value_already_there_makes_no_version() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.latest.is_some());
    settle(&mut h);
    let v0 = h.state().state.engine.params.version();
    let log0 = h.state().state.log.len();
    // Click into a colour-matrix cell (it becomes a text field showing the
    // value rounded) and leave it with Enter: nothing changed.
    let cell = h
        .get_all_by_role_and_label(egui::accesskit::Role::SpinButton, "matrix")
        .nth(1)
        .unwrap()
        .rect();
    click_at(&mut h, cell.center(), egui::PointerButton::Primary);
    h.run_steps(2);
    h.key_press(egui::Key::Enter);
    h.run_steps(3);
    // A choice picked again: the same.
    assert_eq!(h.state().state.engine.params.version(), v0);
    assert!(!h.state().state.tuning.can_undo());
    assert!(
        !h.state().state.log[log0..]
            .iter()
            .any(|l| l.text.starts_with("parameters v")),
        "a version was logged"
    );
    // A real change still makes one.
    let c = h
        .get_all_by_role_and_label(egui::accesskit::Role::SpinButton, "matrix")
        .nth(1)
        .unwrap();
    c.set_value_accesskit(-0.25);
    h.step();
    assert_eq!(h.state().state.engine.params.version(), v0 + 1);
}

/// Mean of an RGBA8 image's colour channels.
fn mean(px: &[u8]) -> f64 {
    let s: u64 = px
        .chunks_exact(4)
        .map(|p| p[..3].iter().map(|&v| v as u64).sum::<u64>())
        .sum();
    s as f64 / (px.len() / 4 * 3).max(1) as f64
}

#[test]
fn before_after_of_a_stage_compares_that_stage_and_linear_stages_are_not_black() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frame_image.is_some());
    settle(&mut h);
    // View the demosaic's output (linear RGB16), split against the loaded tuning.
    h.get_by_label("stage").click();
    h.run_steps(2);
    h.get_all_by_label("demosaic").last().unwrap().click();
    h.run_steps(2);
    h.get_by_label("before/after").click();
    wait_for(&mut h, "both sides of the demosaic", |s| {
        s.state.taps.iter().all(|t| {
            t.as_ref()
                .is_some_and(|(k, _, _)| k.tap == Some(Tap::Demosaic))
        })
    });
    let (before_key, before, _) = h.state().state.taps[1].clone().unwrap();
    let (after_key, after, _) = h.state().state.taps[0].clone().unwrap();
    assert!(before_key.before && !after_key.before);
    h.get_by_label_contains("before: tuning as loaded");
    // Shown through the display curve, as bright as the final picture is,
    // not nearly black (linear values shifted down to 8 bits).
    let fin = mean(&latest_preview(&h));
    assert!(
        mean(&after) > 0.6 * fin,
        "demosaic {} vs final {fin}",
        mean(&after)
    );
    assert!(mean(&before) > 0.6 * fin);
    // The stage's input as "before": the white balance's output, like with like.
    h.get_by_label("before").click();
    h.run_steps(2);
    h.get_by_label("input (after white_balance)").click();
    wait_for(&mut h, "the demosaic's input", |s| {
        s.state.taps[1]
            .as_ref()
            .is_some_and(|(k, _, _)| k.tap == Some(Tap::WhiteBalance))
    });
    let (_, input, _) = h.state().state.taps[1].clone().unwrap();
    assert!(mean(&input) > 0.3 * fin, "mosaic input {}", mean(&input));
}

/// No two visible panels overlap, and all lie inside the window's middle.
fn assert_tiled(h: &egui_kittest::Harness<'static, isp_studio::Studio>, size: [f32; 2]) {
    let rects = pane_rects(&h.state().tree);
    // Tabs behind others have no place on screen.
    assert!(rects.len() >= 6, "{rects:?}");
    for (i, (a, ra)) in rects.iter().enumerate() {
        assert!(
            ra.min.x >= -0.5
                && ra.min.y >= -0.5
                && ra.max.x <= size[0] + 0.5
                && ra.max.y <= size[1] + 0.5,
            "{a:?} at {ra:?} leaves the window"
        );
        for (b, rb) in &rects[i + 1..] {
            let o = ra.intersect(*rb);
            assert!(
                o.width() <= 0.5 || o.height() <= 0.5,
                "{a:?} {ra:?} overlaps {b:?} {rb:?}"
            );
        }
    }
}

fn rect_of(h: &egui_kittest::Harness<'static, isp_studio::Studio>, k: PaneKind) -> egui::Rect {
    pane_rects(&h.state().tree)
        .into_iter()
        .find(|(p, _)| *p == k)
        .unwrap()
        .1
}

#[test]
fn the_workspace_is_docked_tiles_that_fill_the_window_and_never_overlap() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 3);
    h.run_steps(2);
    assert_tiled(&h, [1280.0, 760.0]);
    let viewer = rect_of(&h, PaneKind::Viewer);
    let timeline = rect_of(&h, PaneKind::Timeline);
    // Zooming in keeps the viewer in its tile: nothing else is covered.
    h.state_mut().state.view_requests.zoom_steps = 12;
    h.run_steps(3);
    assert_eq!(rect_of(&h, PaneKind::Viewer), viewer);
    assert_eq!(rect_of(&h, PaneKind::Timeline), timeline);
    let (img, scale) = h.state().state.viewer_image.unwrap();
    assert!(scale > 4.0 && img.width() > viewer.width());
    let (_, drawn) = h.state().state.viewer_drawn.unwrap();
    assert!(
        viewer.expand(1.0).contains_rect(drawn),
        "{drawn:?} outside {viewer:?}"
    );
    // The layout grows with the window.
    h.set_size(egui::vec2(1600.0, 1000.0));
    h.run_steps(3);
    assert_tiled(&h, [1600.0, 1000.0]);
    let grown = rect_of(&h, PaneKind::Viewer);
    assert!(grown.width() > viewer.width() + 100.0 && grown.height() > viewer.height() + 100.0);
    // Hide a panel from the menu, show it again; reset the layout after a
    // resize: positions and sizes come back.
    h.state_mut().set_panel_visible(PaneKind::Histogram, false);
    h.run_steps(2);
    assert!(
        !pane_rects(&h.state().tree)
            .iter()
            .any(|(k, _)| *k == PaneKind::Histogram)
    );
    h.get_by_label("Panels").click();
    h.run_steps(2);
    h.get_by_label("Histogram").click();
    h.run_steps(2);
    assert!(h.state().panel_visible(PaneKind::Histogram));
    let fresh = rect_of(&h, PaneKind::Parameters);
    let id = h.state().tree.tiles.find_pane(&PaneKind::Viewer).unwrap();
    let parent = h.state().tree.tiles.parent_of(id).unwrap();
    let column = h.state().tree.tiles.parent_of(parent).unwrap();
    if let Some(egui_tiles::Tile::Container(egui_tiles::Container::Linear(l))) =
        h.state_mut().tree.tiles.get_mut(column)
    {
        l.shares.set_share(parent, 0.3);
    }
    h.run_steps(2);
    assert_ne!(rect_of(&h, PaneKind::Viewer).height(), grown.height());
    h.get_by_label("Panels").click();
    h.run_steps(2);
    h.get_by_label("Reset layout").click();
    h.run_steps(3);
    assert_eq!(rect_of(&h, PaneKind::Viewer), grown);
    assert_eq!(rect_of(&h, PaneKind::Parameters), fresh);
}

#[test]
fn layout_source_and_recent_files_come_back_on_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("sess");
    record_session(&sess, 96, 64, 3);
    let kept = {
        let mut h = studio(Backend::Cpu);
        wait_for(&mut h, "frames", |s| s.state.frames_shown >= 2);
        h.state_mut().state.open_source(&sess.display().to_string());
        wait_for(&mut h, "the session", |s| {
            s.state
                .latest
                .as_ref()
                .is_some_and(|r| r.format.width == 96)
        });
        h.state_mut().set_panel_visible(PaneKind::Lanes, false);
        h.run_steps(2);
        h.state().persisted()
    };
    // Through eframe's storage format (RON) and back.
    let text = ron::to_string(&kept).unwrap();
    let back: isp_studio::workspace::Persisted = ron::from_str(&text).unwrap();
    let mut h = studio_with(
        Options {
            backend: Backend::Cpu,
            restore: Some(back),
            ..Default::default()
        },
        [1280.0, 760.0],
    );
    wait_for(&mut h, "the session again", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.format.width == 96)
    });
    h.run_steps(2);
    assert!(!h.state().panel_visible(PaneKind::Lanes));
    assert_eq!(
        h.state().state.recent_files.first().map(String::as_str),
        Some(sess.display().to_string().as_str())
    );
    // And it is in File > Open recent.
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Open recent").hover();
    h.run_steps(3);
    h.get_by_label(&sess.display().to_string());
}

#[test]
fn keyboard_shortcuts_drive_the_player_the_edits_and_the_viewer() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.latest.is_some());
    // Space pauses, and plays again.
    h.key_press(egui::Key::Space);
    wait_for(&mut h, "paused", |s| !s.state.player.status().playing);
    h.key_press(egui::Key::Space);
    wait_for(&mut h, "playing", |s| s.state.player.status().playing);
    settle(&mut h);
    // Right steps one frame; Home goes to the first, End to the last.
    let at = h.state().state.player.status().last_index.unwrap();
    let n = h.state().state.player.status().count.unwrap();
    h.key_press(egui::Key::ArrowRight);
    wait_for(&mut h, "the next frame", |s| {
        s.state.player.status().last_index == Some((at + 1) % n)
    });
    h.key_press(egui::Key::Home);
    wait_for(&mut h, "the first frame", |s| {
        s.state.player.status().last_index == Some(0)
    });
    h.key_press(egui::Key::End);
    wait_for(&mut h, "the last frame", |s| {
        s.state.player.status().last_index == Some(n - 1)
    });
    h.key_press(egui::Key::ArrowLeft);
    wait_for(&mut h, "the frame before", |s| {
        s.state.player.status().last_index == Some(n - 2)
    });
    // Ctrl+Z undoes an edit, Ctrl+Shift+Z redoes it.
    h.state_mut()
        .state
        .edit_tuning(|t| t.stages.tone.contrast = 1.7);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.step();
    assert_ne!(h.state().state.tuning.current.stages.tone.contrast, 1.7);
    h.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    h.step();
    assert_eq!(h.state().state.tuning.current.stages.tone.contrast, 1.7);
    // 1 for 1:1, + and - in steps, F to fit.
    h.key_press(egui::Key::Num1);
    h.run_steps(2);
    assert_eq!(h.state().state.viewer_image.unwrap().1, 1.0);
    h.key_press(egui::Key::Plus);
    h.run_steps(2);
    assert_eq!(h.state().state.viewer_image.unwrap().1, 2f32.powf(0.25));
    h.key_press(egui::Key::Minus);
    h.key_press(egui::Key::Minus);
    h.run_steps(2);
    assert_eq!(h.state().state.viewer_image.unwrap().1, 2f32.powf(-0.25));
    h.key_press(egui::Key::F);
    h.run_steps(2);
    let (img, _) = h.state().state.viewer_image.unwrap();
    let viewer = rect_of(&h, PaneKind::Viewer);
    assert!(
        viewer.expand(1.0).contains_rect(img),
        "fit: {img:?} in {viewer:?}"
    );
    // Help lists them.
    h.get_by_label("Help").click();
    h.run_steps(2);
    h.get_by_label("Keyboard shortcuts").click();
    h.run_steps(2);
    for (k, what) in isp_studio::studio::SHORTCUTS {
        h.get_by_label(k);
        h.get_by_label(what);
    }
}

#[test]
fn the_viewer_pans_by_drag_zooms_about_the_cursor_and_never_shows_blank() {
    let tmp = tempfile::tempdir().unwrap();
    record_session(tmp.path(), 1920, 1080, 2);
    let mut h = studio_with(
        Options {
            source: Some(tmp.path().display().to_string()),
            backend: Backend::Cpu,
            fps: Some(10.0),
            ..Default::default()
        },
        [1280.0, 760.0],
    );
    wait_for(&mut h, "a 1080p frame", |s| s.state.frame_image.is_some());
    settle(&mut h);
    // Fit: the zoom box shows the real scale, not 100%.
    let (_, fit) = h.state().state.viewer_image.unwrap();
    assert!(fit < 0.5, "{fit}");
    let zoom_box = h.get_by_role_and_label(egui::accesskit::Role::SpinButton, "zoom");
    assert_eq!(
        zoom_box.value().unwrap(),
        format!("{:.0}%", fit * 100.0),
        "zoom box in fit mode"
    );
    // The wheel zooms about the cursor: the frame point under it stays.
    let (img, _) = h.state().state.viewer_image.unwrap();
    let at = img.center() + egui::vec2(80.0, 30.0);
    let point = (at - img.min) / fit;
    h.hover_at(at);
    h.step();
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: egui::vec2(0.0, 1.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
    let (img2, z) = h.state().state.viewer_image.unwrap();
    assert!(
        (z / fit - 2f32.powf(0.25)).abs() < 0.05,
        "one step: {fit} -> {z}"
    );
    let under = (at - img2.min) / z;
    assert!(
        (under - point).length() < 1.5,
        "{point:?} moved to {under:?}"
    );
    // 1:1, then drag to pan: the frame follows the mouse.
    h.key_press(egui::Key::Num1);
    h.run_steps(3);
    let (img3, _) = h.state().state.viewer_image.unwrap();
    let from = rect_of(&h, PaneKind::Viewer).center();
    h.drag_at(from);
    h.step();
    for i in 1..=5 {
        h.hover_at(from + egui::vec2(-40.0 * i as f32, -20.0 * i as f32));
        h.step();
    }
    h.drop_at(from + egui::vec2(-200.0, -100.0));
    h.step();
    let (img4, _) = h.state().state.viewer_image.unwrap();
    let moved = img4.min - img3.min;
    assert!(
        (moved - egui::vec2(-200.0, -100.0)).length() < 2.0,
        "{moved:?}"
    );
    // Zoomed in, only a crop is converted; the whole frame, small, lies
    // under it, so a pan never shows a blank area before the next crop.
    wait_for(&mut h, "a cropped image", |s| {
        s.state
            .frame_image
            .as_ref()
            .is_some_and(|i| i.region != [0, 0, 1920, 1080])
    });
    let fi = h.state().state.frame_image.clone().unwrap();
    let back = fi.backdrop.expect("a backdrop under the crop");
    assert!(
        back.size[0] <= 1024 && back.size[0] * 2 >= 960,
        "{:?}",
        back.size
    );
}

#[test]
fn the_status_bar_is_one_line_with_tidy_paths() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 2);
    h.run_steps(2);
    let line = h.get_by_label_contains("fps | CPU | dropped by the engine");
    let r = line.rect();
    assert!(r.height() < 24.0, "wrapped: {r:?}");
    assert!(!line.value().unwrap_or_default().contains("cpu ("));
    let name = h.state().state.player.status().name;
    let shown = isp_studio::state::tidy_path(&name);
    assert!(!shown.contains("/../"), "{shown}");
    assert!(
        h.get_all_by_label(&shown)
            .any(|p| (p.rect().center().y - r.center().y).abs() < 4.0),
        "the source's path on the same line"
    );
    // An error shows there too, not only in the Log.
    h.state_mut()
        .state
        .export_csv(std::path::Path::new("/nonexistent-dir/t.csv"));
    h.run_steps(2);
    h.get_by_label_contains("1 error(s), last: ");
    let e = h.get_by_label_contains("1 error(s), last: ").rect();
    assert!((e.center().y - r.center().y).abs() < 4.0, "same line");
}

#[test]
fn panels_name_their_axes_units_and_colours() {
    let mut h = studio_sized(Backend::Cpu, [1600.0, 1000.0]);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 3);
    // Timeline: a time axis in seconds and a legend of the stage colours.
    h.get_by_label("time axis (s)");
    for stage in ["raw_isp", "raw_algo", "fast_isp", "fast_algo"] {
        h.get_by_label(stage);
    }
    // Lanes: legends as text above the plots, big enough to read.
    h.get_by_label("Lanes").click();
    h.run_steps(3);
    for l in [
        "realtime busy %",
        "background busy %",
        "realtime queue (envelopes)",
        "realtime dropped (frames)",
    ] {
        h.get_by_label(l);
    }
    let lanes = rect_of(&h, PaneKind::Lanes);
    let legend = h.get_by_label("realtime busy %").rect();
    assert!(
        lanes.bottom() - legend.bottom() > 120.0,
        "plot too small under {legend:?} in {lanes:?}"
    );
    // Buffers: the table's headers; paused, no pin is stale.
    settle(&mut h);
    h.get_by_label("Buffers").click();
    h.run_steps(2);
    for header in ["slot", "kind", "state", "owner", "pins", "age ms"] {
        h.get_by_label(header);
    }
    // Paused, every frame ended: the pool's activity clock stands still
    // (ages are measured on it, not on the wall clock: the panel's unit
    // tests hold that), so nothing held is stale however long this waits.
    h.run_steps(2);
    assert!(h.query_by_label_contains("stale pin(s)").is_none());
    h.get_by_label("pin timeline");
}

#[test]
fn without_a_desktop_dialog_files_open_in_the_app() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 2);
    settle(&mut h);
    h.state_mut().state.files.last_dir = Some(tmp.path().to_path_buf());
    h.get_by_label("Export telemetry CSV...").click();
    h.run_steps(3);
    assert_eq!(
        h.state().state.files.in_app_open(),
        Some(isp_studio::files::FileAction::ExportCsv)
    );
    h.get_by_label_contains("Export telemetry as CSV");
    h.get_by_label("Save").click();
    h.run_steps(3);
    let out = tmp.path().join("telemetry.csv");
    assert!(out.exists(), "nothing written to {out:?}");
    assert!(h.state().state.files.in_app_open().is_none());
    assert!(
        h.state()
            .state
            .log
            .iter()
            .any(|l| l.text == format!("telemetry written to {}", out.display()))
    );
}
