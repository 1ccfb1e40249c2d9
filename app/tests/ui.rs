//! The studio driven through egui_kittest: real clicks on real widgets, the
//! engine and player running underneath on the demo session.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use isp_engine::gpu::Backend;
use isp_engine::stages::chain::Tap;
use isp_studio::{Options, Studio};
use std::time::{Duration, Instant};

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
fn bypassing_a_stage_changes_the_frame_and_undo_restores_it() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.latest.is_some());
    // Paused: the 3A state stands still, so one raw frame rendered before
    // and after the edit differs only by the edit.
    settle(&mut h);
    let v0 = h.state().state.engine.params.version();
    let before = tone_of_last_raw(&h, None);
    let mut expected_tuning = h.state().state.tuning.current.clone();
    expected_tuning.stages.white_balance.enabled = false;
    h.get_by_label("white_balance enabled (off: bypass)")
        .click();
    h.step();
    assert!(!h.state().state.tuning.current.stages.white_balance.enabled);
    let v1 = h.state().state.engine.params.version();
    assert!(v1 > v0);
    let after = tone_of_last_raw(&h, None);
    assert_moved(&before, &after, "white balance off");
    // Exactly that edit: the same frame under a tuning edited directly.
    assert!(after == tone_of_last_raw(&h, Some(&expected_tuning)));
    assert_eq!(h.state().state.tuning.diff().len(), 1);
    // The running pipeline gets it too.
    play(&mut h);
    wait_for(&mut h, "a frame with the new parameters", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.params_version == v1)
    });
    settle(&mut h);
    let before_undo = tone_of_last_raw(&h, None);
    h.get_by_label("Undo").click();
    h.step();
    assert!(h.state().state.tuning.current.stages.white_balance.enabled);
    assert!(h.state().state.tuning.diff().is_empty());
    let undone = tone_of_last_raw(&h, None);
    assert_moved(&before_undo, &undone, "undo");
    let loaded = h.state().state.tuning.loaded.clone();
    assert!(undone == tone_of_last_raw(&h, Some(&loaded)));
}

#[test]
fn export_csv_and_open_a_session_through_the_dialog_paths() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 2);
    settle(&mut h);
    let tmp = tempfile::tempdir().unwrap();
    let csv_path = tmp.path().join("t.csv");
    let events = h.state().state.engine.telemetry.snapshot();
    h.state_mut().state.export_csv(&csv_path);
    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    // The columns are the README's (tests/tests/telemetry_csv.rs holds the
    // code's list to the README's table).
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers, isp_engine::telemetry::CSV_COLUMNS);
    // Every event up to the export, in order (later housekeeper rows may follow).
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert!(rows.len() >= events.len());
    for (row, e) in rows.iter().zip(events.iter()) {
        assert_eq!(&row[0], e.seq.to_string());
        assert_eq!(&row[2], e.frame_id.to_string());
        assert_eq!(&row[3], e.stage);
    }
    assert!(
        h.state()
            .state
            .log
            .iter()
            .any(|l| l.text.starts_with("telemetry written to"))
    );
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
            zoom: None,
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
    let (p50, p99, _) = h.state().frame_time();
    eprintln!(
        "UI frame p50 {p50:.2} ms, p99 {p99:.2} ms over {} frames after warm-up",
        h.state().frame_ms.len()
    );
}

#[test]
fn a_ccm_coefficient_edited_in_its_drag_value_changes_the_frame() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.latest.is_some());
    settle(&mut h);
    let before = tone_of_last_raw(&h, None);
    let mut expected_tuning = h.state().state.tuning.current.clone();
    expected_tuning.stages.ccm.matrix[0][0] = 1.0;
    // The CCM grid's cells are labelled by "matrix"; the first is row 0, column 0.
    let cells: Vec<_> = h
        .get_all_by_role_and_label(egui::accesskit::Role::SpinButton, "matrix")
        .collect();
    assert_eq!(cells.len(), 9);
    cells[0].set_value_accesskit(1.0);
    h.step();
    let m = h.state().state.tuning.current.stages.ccm.matrix;
    assert!((m[0][0] - 1.0).abs() < 1e-6, "{m:?}");
    let after = tone_of_last_raw(&h, None);
    assert_moved(&before, &after, "ccm[0][0] = 1");
    assert!(after == tone_of_last_raw(&h, Some(&expected_tuning)));
    assert!(
        h.state()
            .state
            .tuning
            .diff()
            .iter()
            .any(|d| d.contains("ccm.matrix[0][0]"))
    );
    play(&mut h);
    wait_for_current_params(&mut h, "a frame with the new matrix");
}

#[test]
fn any_session_frame_selected_is_made_again_from_the_session() {
    let mut h = studio(Backend::Cpu);
    // Long after frame 2 left the kept previews (the last 8).
    wait_for(&mut h, "twenty frames", |s| s.state.frames_shown >= 20);
    let id = 2;
    let sf = h.state().state.player.source_frame(id).unwrap();
    // What the timeline's click calls.
    h.state_mut().state.select_frame(Some(id));
    wait_for(&mut h, "the frame made again from the session", |s| {
        s.state.latest.as_ref().is_some_and(|r| r.frame_id > id)
            && s.state.shown_source() == Some(sf)
    });
    h.run_steps(2);
    let name = format!("frame {}", sf.index);
    h.get_by_label(&format!("showing {name} (selected in the timeline)"));
    // A person's number for it everywhere: the status bar says so too.
    h.get_by_label_contains(&format!("| selected {name}"));
    // The player paused there: the frame stays on screen once every frame
    // submitted has ended (no later one can still arrive).
    assert!(!h.state().state.player.status().playing);
    wait_for_every_frame(&mut h);
    h.run_steps(5);
    assert_eq!(h.state().state.shown_source(), Some(sf));
    // It is that frame of the session, byte for byte.
    let shown = h.state().state.latest.as_ref().unwrap().frame_id;
    let raw = h.state().state.player.raw_of(shown).unwrap();
    let dir = isp_engine::sources::demo_session_dir().unwrap();
    let mut src = isp_engine::sources::session::SessionSource::open(&dir).unwrap();
    use isp_engine::sources::FrameSource;
    src.seek(sf.index).unwrap();
    let mut want = vec![0u8; src.format().frame_bytes()];
    src.next_frame(&mut want).unwrap().unwrap();
    assert!(
        *raw == want,
        "the frame shown is not session frame {}",
        sf.index
    );
    h.get_by_label("Back to live").click();
    h.step();
    assert_eq!(h.state().state.selected_frame, None);
    wait_for(&mut h, "playing again", |s| s.state.player.status().playing);
}

#[test]
fn clipped_overlay_paints_clipped_pixels() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frame_image.is_some());
    // Push the colour matrix up until highlights clip (AWB owns the gains).
    h.state_mut()
        .state
        .edit_tuning(|t| t.stages.ccm.matrix = [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]]);
    let v = h.state().state.engine.params.version();
    wait_for(&mut h, "a clipped frame", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.params_version >= v)
            && s.state.clipped[0] > 0.05
    });
    h.get_by_label("clipped").click();
    wait_for(&mut h, "an overlay image", |s| {
        s.state.frame_image.as_ref().is_some_and(|d| d.overlay)
    });
    let img = h.state().state.frame_image.clone().unwrap();
    let marked = img
        .image
        .pixels
        .iter()
        .filter(|p| p.to_array() == isp_studio::presenter::CLIP_HIGH)
        .count();
    assert!(
        marked as f32 > 0.02 * img.image.pixels.len() as f32,
        "{marked} of {} pixels marked",
        img.image.pixels.len()
    );
    h.get_by_label_contains("% high");
}

#[test]
fn before_after_split_renders_the_tuning_as_loaded() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frame_image.is_some());
    h.get_by_label("before/after").click();
    wait_for(&mut h, "the before image", |s| s.state.taps[1].is_some());
    h.get_by_label_contains("before: tuning as loaded");
    // Paused, the 3A state stands still.
    settle(&mut h);
    // The presenter hands the last frame to the screen after it ended: wait
    // for it (the before side is made from the frame on screen, and the
    // test's reference below from the player's last frame).
    wait_for(&mut h, "the newest frame on screen", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.frame_id == s.state.engine.frames_submitted())
    });
    // Edit: bypass the colour matrix. The before side keeps the loaded tuning.
    h.state_mut()
        .state
        .edit_tuning(|t| t.stages.ccm.enabled = false);
    let v = h.state().state.engine.params.version();
    wait_for(&mut h, "a before image under the new version", |s| {
        s.state.taps[1]
            .as_ref()
            .is_some_and(|(k, _, _)| k.version == v)
    });
    let (_, before, _) = h.state().state.taps[1].clone().unwrap();
    // The same raw frame with the edited tuning, and with the loaded one.
    let p = h.state().state.player.status();
    let (raw, fmt) = (p.last_raw.unwrap(), p.format.unwrap());
    let e = h.state().state.engine.clone();
    let after = e
        .tap(&raw, fmt, isp_engine::stages::chain::Tap::Tone)
        .unwrap();
    let loaded = h.state().state.tuning.loaded.clone();
    let expect = e
        .tap_with(
            &raw,
            fmt,
            isp_engine::stages::chain::Tap::Tone,
            Some(&loaded),
        )
        .unwrap();
    let (
        isp_engine::stages::chain::TapImage::Rgba8(after),
        isp_engine::stages::chain::TapImage::Rgba8(expect),
    ) = (after, expect)
    else {
        panic!("tone taps are RGBA8");
    };
    // The before side is exactly the loaded tuning's picture of that frame.
    assert!(
        *before == expect,
        "the before side is not the loaded tuning's picture"
    );
    assert_moved(&before, &after, "ccm off");
}

/// The Inspector's header: (x, y), the raw value, the final sRGB text.
fn inspector_header(h: &Harness<'static, Studio>) -> (usize, usize, u16, String) {
    let header = h
        .get_by_label_contains("  raw ")
        .accesskit_node()
        .value()
        .unwrap_or_default();
    let xy: Vec<usize> = header[1..header.find(')').unwrap()]
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect();
    let raw: u16 = header
        .split("  raw ")
        .nth(1)
        .and_then(|t| t.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no raw value in {header:?}"));
    let srgb = header
        .split("final sRGB ")
        .nth(1)
        .unwrap()
        .split("  ")
        .next()
        .unwrap()
        .to_string();
    (xy[0], xy[1], raw, srgb)
}

#[test]
fn pixel_inspector_shows_every_stage_of_the_frame_on_screen() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frame_image.is_some());
    h.run_steps(2);
    h.get_by_label("hover the image to inspect a pixel");
    let (image, _) = h.state().state.viewer_image.unwrap();
    // Hovering does not move or resize the image.
    h.hover_at(image.center() + egui::vec2(13.0, 7.0));
    wait_for(&mut h, "every stage's output", |s| s.state.stages.is_some());
    h.run_steps(2);
    assert_eq!(h.state().state.viewer_image.unwrap().0, image);
    // While playing, the header and the rows are always one frame's.
    let w = h.state().state.latest.as_ref().unwrap().format.width as usize;
    for _ in 0..30 {
        h.step();
        let Some((at, stages)) = h.state().state.stages.clone() else {
            continue;
        };
        let (x, y, raw, srgb) = inspector_header(&h);
        let isp_engine::stages::chain::TapImage::Mosaic(m) = &stages[0].1 else {
            panic!("unpacked is a mosaic");
        };
        assert_eq!(m[y * w + x], raw, "header and rows of frame {}", at.frame);
        let tone = &stages.iter().find(|(t, _)| *t == Tap::Tone).unwrap().1;
        assert_eq!(isp_studio::panels::viewer::stage_value(tone, w, x, y), srgb);
        h.get_by_label(&srgb);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Paused, then a step with the keyboard: the inspection follows the
    // frame on screen without the mouse moving.
    settle(&mut h);
    let before = h.state().state.latest.as_ref().unwrap().frame_id;
    h.key_press(egui::Key::ArrowRight);
    wait_for(&mut h, "the inspector on the next frame", |s| {
        let shown = s.state.latest.as_ref().unwrap().frame_id;
        shown > before
            && s.state
                .stages
                .as_ref()
                .is_some_and(|(k, _)| k.frame == shown)
    });
    // The header is drawn from the inspected stages a step or two later:
    // wait for it to name the shown frame's raw value (a header that kept
    // the previous frame's never does).
    let shown_raw = |h: &Harness<'static, Studio>, x: usize, y: usize| {
        let shown = h.state().state.latest.as_ref().unwrap().frame_id;
        let bytes = h.state().state.player.raw_of(shown).unwrap();
        let fmt = h.state().state.latest.as_ref().unwrap().format;
        let mut row = vec![0u16; w];
        let start = y * fmt.stride as usize;
        isp_engine::stages::unpack::unpack_row(
            &fmt,
            &bytes[start..start + fmt.min_stride() as usize],
            &mut row,
        );
        row[x]
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        h.step();
        let (x, y, raw, _) = inspector_header(&h);
        let want = shown_raw(&h, x, y);
        if raw == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the raw value is the shown frame's: {raw} vs {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    h.get_by_label("unpacked");
}

#[test]
fn tone_curve_editor_adds_drags_and_removes_points_live() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frame_image.is_some());
    h.get_by_label("tone").click();
    h.run_steps(2);
    h.get_by_label("tone curve editor").scroll_to_me();
    h.run_steps(3);
    let r = h.get_by_label("tone curve editor").rect();
    let at = |x: f32, y: f32| egui::pos2(r.left() + x * r.width(), r.bottom() - y * r.height());
    let before = latest_preview(&h);
    // Click empty space: a point there, live on the next frame.
    click_at(&mut h, at(0.3, 0.7), egui::PointerButton::Primary);
    let curve = h.state().state.tuning.current.stages.tone.curve.clone();
    assert_eq!(curve.len(), 1, "{curve:?}");
    assert!((curve[0][0] - 0.3).abs() < 0.02 && (curve[0][1] - 0.7).abs() < 0.02);
    wait_for_current_params(&mut h, "a frame with the curve");
    let after = latest_preview(&h);
    let brighter = after.iter().zip(&before).filter(|(a, b)| a > b).count();
    assert!(
        brighter > after.len() / 4,
        "only {brighter} values brighter"
    );
    // Drag it down: one undo step for the whole drag. (The point's row in the
    // numbers above moved the editor down: measure it again.)
    let r = h.get_by_label("tone curve editor").rect();
    let at = |x: f32, y: f32| egui::pos2(r.left() + x * r.width(), r.bottom() - y * r.height());
    let (x0, y0) = (curve[0][0], curve[0][1]);
    h.hover_at(at(x0, y0));
    h.step();
    h.drag_at(at(x0, y0));
    h.step();
    for k in 1..=5 {
        h.hover_at(at(x0 + 0.02 * k as f32, y0 - 0.08 * k as f32));
        h.step();
    }
    h.drop_at(at(0.4, 0.3));
    h.step();
    let curve = h.state().state.tuning.current.stages.tone.curve.clone();
    assert_eq!(curve.len(), 1);
    assert!((curve[0][1] - (y0 - 0.4)).abs() < 0.02, "{curve:?}");
    // Right-click the point: removed.
    click_at(
        &mut h,
        at(curve[0][0], curve[0][1]),
        egui::PointerButton::Secondary,
    );
    assert!(h.state().state.tuning.current.stages.tone.curve.is_empty());
    // Undo twice: the dragged point back, then the added one.
    h.get_by_label("Undo").click();
    h.step();
    assert_eq!(h.state().state.tuning.current.stages.tone.curve, curve);
    h.get_by_label("Undo").click();
    h.step();
    let c = h.state().state.tuning.current.stages.tone.curve.clone();
    assert!((c[0][1] - 0.7).abs() < 0.02, "{c:?}");
}

#[test]
fn record_the_source_into_a_new_session_and_open_it() {
    use isp_engine::sources::session::SessionSource;
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 1);
    let tmp = tempfile::tempdir().unwrap();
    // A folder with files in it: the recording goes into a new folder inside.
    std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    // What the Record dialog calls with the folder picked.
    h.state_mut().state.start_recording(tmp.path());
    wait_for(&mut h, "6 recorded frames", |s| {
        s.state
            .player
            .status()
            .recording
            .is_some_and(|r| r.frames >= 6)
    });
    h.get_by_label("REC");
    h.get_by_label_contains("Stop recording (").click();
    wait_for(&mut h, "the recording to finish", |s| {
        s.state.player.status().recording.is_none()
    });
    wait_for(&mut h, "the log line", |s| {
        s.state.log.iter().any(|l| l.text.starts_with("recorded "))
    });
    // "recorded N frames into DIR": N, as the person reads it.
    let said: usize = h
        .state()
        .state
        .log
        .iter()
        .find_map(|l| {
            l.text
                .strip_prefix("recorded ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap();
    let dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(dir.join("tuning.json").exists());
    let rec = SessionSource::open(&dir).unwrap();
    let m = rec.manifest();
    assert!(
        m.complete && m.frames.len() >= 6 && m.frames.len() == said,
        "{} frames, the log said {said}",
        m.frames.len()
    );
    // Every recorded frame is one of the demo session's, byte for byte.
    let demo =
        SessionSource::open(&isp_engine::sources::session::demo_session_dir().unwrap()).unwrap();
    let fb = m.format.frame_bytes();
    let demo_frames: Vec<Vec<u8>> = (0..demo.manifest().frames.len())
        .map(|i| {
            let mut b = vec![0u8; fb];
            demo.read_frame(i, &mut b).unwrap();
            b
        })
        .collect();
    // Every recorded frame is a demo frame, and they are consecutive: the
    // demo's frames in order (looping), none skipped or repeated.
    let n = demo_frames.len();
    let mut at: Option<usize> = None;
    for i in 0..m.frames.len() {
        let mut b = vec![0u8; fb];
        rec.read_frame(i, &mut b).unwrap();
        let k = demo_frames
            .iter()
            .position(|d| *d == b)
            .unwrap_or_else(|| panic!("frame {i} is not a demo frame"));
        if let Some(prev) = at {
            assert_eq!(
                k,
                (prev + 1) % n,
                "recorded frame {i} does not follow {}",
                i - 1
            );
        }
        at = Some(k);
    }
    // And it opens like any session.
    h.state_mut().state.open_source(&dir.display().to_string());
    wait_for(&mut h, "the recorded session playing", |s| {
        s.state
            .player
            .status()
            .name
            .contains(&*dir.display().to_string())
    });
}

#[test]
fn clicking_a_span_in_the_timeline_selects_its_frame_everywhere() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 4);
    settle(&mut h);
    // Stop following the newest event (the housekeeper's notes keep coming).
    h.get_by_label("follow").click();
    h.step();
    let r = h.get_by_label("timeline").rect();
    // Where the widest realtime worker 0 span is drawn (0.5 s visible,
    // ending where the view stopped following).
    let snap = h.state().state.engine.telemetry.snapshot();
    let newest = snap
        .iter()
        .filter(|e| e.kind == isp_engine::telemetry::EventKind::Stage)
        .map(|e| e.end_ns)
        .last()
        .unwrap();
    let start = newest.saturating_sub(500_000_000);
    let e = snap
        .iter()
        .filter(|e| {
            e.kind == isp_engine::telemetry::EventKind::Stage
                && e.lane == Some(isp_engine::types::Lane::Realtime)
                && e.worker == Some(0)
                && e.start_ns > start
        })
        .max_by_key(|e| e.run_ns())
        .unwrap();
    let x_of = |t: u64| r.left() + (t - start) as f32 / 5e8 * r.width();
    let x = (x_of(e.start_ns) + x_of(e.end_ns)) / 2.0;
    click_at(
        &mut h,
        egui::pos2(x, r.top() + 8.0),
        egui::PointerButton::Primary,
    );
    let id = h.state().state.selected_frame;
    assert_eq!(id, Some(e.frame_id), "clicked {e:?} at x {x} in {r:?}");
    // Shown to a person as the session's frame number, not the run counter.
    let index = h
        .state()
        .state
        .player
        .source_frame(e.frame_id)
        .unwrap()
        .index;
    h.run_steps(2);
    h.get_by_label(&format!("selected frame {index}"));
    // Every panel follows: the status bar, and the parameters it ran with.
    h.get_by_label_contains(&format!("| selected frame {index}"));
    h.get_by_label_contains(&format!(
        "selected frame {index} ran with parameters v{}",
        e.params_version
    ));
    // The viewer shows it, made again from the session.
    wait_for(&mut h, "the selected frame on screen", |s| {
        s.state.shown_source().map(|f| f.index) == Some(index)
            && s.state
                .latest
                .as_ref()
                .is_some_and(|r| r.frame_id > e.frame_id)
    });
    h.run_steps(2);
    h.get_by_label(&format!("showing frame {index} (selected in the timeline)"));
}

#[test]
fn buffers_panel_draws_pin_lifetimes_and_the_pins_still_held() {
    use isp_engine::resource_manager::{BufferKind, BufferSpec};
    let mut h = studio_sized(Backend::Cpu, [1600.0, 1200.0]);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 3);
    // The pipeline's pins come and go: their lifetimes are kept.
    assert!(!h.state().state.engine.rm.pin_history().is_empty());
    // A pin somebody keeps: drawn up to now. (Paused, so no slot comes or goes.)
    settle(&mut h);
    h.run_steps(3);
    let rm = h.state().state.engine.rm.clone();
    let b = rm
        .allocate(BufferSpec::new(BufferKind::Other, 16, 1), "test")
        .unwrap();
    rm.pin(b.id, "test-holder").unwrap();
    // Bring the panel to the front (a click on its tab).
    h.get_by_label("Buffers").click();
    h.run_steps(3);
    // The pointer goes to the held pin's row at the right end (now), found
    // again each frame: a line of text above the timeline that comes or
    // goes (a reservation's countdown, a warning) moves it down or up.
    let mut slots = rm.snapshot();
    let mut row = 0;
    let mut r = h.get_by_label("pin timeline").rect();
    let mut tip = None;
    let mut at = None;
    let t0 = Instant::now();
    for _ in 0..200 {
        slots = rm.snapshot();
        row = slots.iter().position(|s| s.id == b.id).unwrap();
        r = h.get_by_label("pin timeline").rect();
        let row_h = r.height() / slots.len().clamp(1, 32) as f32;
        // The bar of a pin still held ends at the right edge (now); a few
        // pixels in, clear of the tile border's resize handle.
        let p = egui::pos2(r.right() - 12.0, r.top() + row as f32 * row_h + row_h / 2.0);
        // Moved only when the row moved (a move restarts the tooltip's delay).
        if at != Some(p) {
            h.hover_at(p);
            at = Some(p);
        }
        h.step();
        tip = h
            .query_by_label_contains("still held")
            .and_then(|n| n.accesskit_node().value());
        if tip.is_some() || t0.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let tip = tip.unwrap_or_else(|| {
        for n in h.query_all_by_label_contains("test-holder") {
            eprintln!(
                "{:?} {:?}",
                n.accesskit_node().label(),
                n.accesskit_node().value()
            );
        }
        panic!(
            "no tooltip on the pin still held: row {row} of {} in {r:?}, {} slots now",
            slots.len(),
            rm.snapshot().len()
        )
    });
    assert!(tip.starts_with("test-holder: "), "{tip}");
    // The tooltip names the buffer; the row is labelled with it too.
    assert!(
        tip.contains(&format!("buffer #{} Other 16x1", b.id.index)),
        "{tip}"
    );
    // Lifecycles end on the dispatcher only: hand the buffer back there.
    let id = b.id;
    h.state()
        .state
        .engine
        .call(move |ctx| {
            ctx.unpin(id, "test-holder");
            ctx.release_when_unpinned(id);
        })
        .unwrap();
    assert!(
        !rm.snapshot()
            .iter()
            .any(|s| s.id == id && s.state.name() == "allocated")
    );
    assert!(
        rm.pin_history()
            .iter()
            .any(|p| p.owner == "test-holder" && p.slot == b.id.index)
    );
}

#[test]
fn moving_the_contrast_slider_changes_the_next_frame() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frame_image.is_some());
    h.get_by_label("tone").click();
    h.run_steps(2);
    let slider = h.get_by_role_and_label(egui::accesskit::Role::Slider, "contrast");
    slider.scroll_to_me();
    h.run_steps(2);
    settle(&mut h);
    let before = tone_of_last_raw(&h, None);
    let mut expected_tuning = h.state().state.tuning.current.clone();
    expected_tuning.stages.tone.contrast = 3.0;
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "contrast")
        .set_value_accesskit(3.0);
    h.step();
    let c = h.state().state.tuning.current.stages.tone.contrast;
    assert!((c - 3.0).abs() < 1e-3, "contrast {c}");
    let after = tone_of_last_raw(&h, None);
    assert_moved(&before, &after, "contrast 3");
    assert!(after == tone_of_last_raw(&h, Some(&expected_tuning)));
    play(&mut h);
    wait_for_current_params(&mut h, "a frame with the new contrast");
    assert!(
        h.state()
            .state
            .tuning
            .diff()
            .iter()
            .any(|d| d.starts_with("stages.tone.contrast"))
    );
}

#[test]
fn lens_shading_table_is_edited_per_site_as_a_grid() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 1);
    let before = h.state().state.tuning.current.stages.lens_shading.clone();
    let cells = before.grid_width * before.grid_height;
    assert!(cells > 16, "the demo's table is {cells} cells");
    h.get_by_label("lens_shading").click();
    h.run_steps(2);
    h.get_by_label(&format!("gains R ({cells} values)")).click();
    h.run_steps(2);
    // A cell per grid node, labelled by its site.
    let n = h
        .get_all_by_role_and_label(egui::accesskit::Role::SpinButton, "gains R")
        .count();
    assert_eq!(n, cells);
    h.get_all_by_label("x1.05")
        .next()
        .unwrap()
        .click_accesskit();
    h.run_steps(2);
    let after = &h.state().state.tuning.current.stages.lens_shading;
    for (a, b) in after.gains[0].iter().zip(&before.gains[0]) {
        assert!((a - b * 1.05).abs() < 1e-4, "{a} vs {b}");
    }
    assert_eq!(after.gains[3], before.gains[3]);
    assert!(
        h.state()
            .state
            .tuning
            .diff()
            .iter()
            .any(|d| d.starts_with("stages.lens_shading.gains[0]"))
    );
}

#[test]
fn ae_target_is_shown_with_its_default_and_edited_live() {
    let mut h = studio(Backend::Cpu);
    wait_for(&mut h, "frames", |s| s.state.frames_shown >= 1);
    settle(&mut h);
    // AE on one frame (the session's first) under the default target: what
    // total exposure (exposure x gain) it asks the sensor for.
    let asked = |h: &mut Harness<'static, Studio>| {
        let newest = h.state().state.latest.as_ref().map_or(0, |r| r.frame_id);
        h.state_mut()
            .state
            .player
            .send(isp_studio::player::PlayerCmd::Seek(0));
        wait_for(h, "the first frame again", |s| {
            s.state.latest.as_ref().is_some_and(|r| r.frame_id > newest)
        });
        wait_for_every_frame(h);
        let ipa = h.state().state.engine.ipa();
        (ipa.exposure_us * ipa.analogue_gain, ipa)
    };
    let (at_default, ipa0) = asked(&mut h);
    h.get_by_label("3A: ae.mean_luminance").click();
    h.run_steps(2);
    // The block in the file is empty: the slider shows the default.
    let target = h.get_by_role_and_label(egui::accesskit::Role::Slider, "target");
    assert_eq!(
        target.accesskit_node().numeric_value(),
        Some(0.18_f32 as f64)
    );
    target.set_value_accesskit(0.4);
    h.step();
    let algos = &h.state().state.tuning.current.algorithms;
    let ae = algos
        .iter()
        .find(|a| a.name == "ae.mean_luminance")
        .unwrap();
    // Only what changed is written into the block.
    assert_eq!(ae.params, serde_json::json!({ "target": 0.4 }));
    assert!(
        h.state()
            .state
            .tuning
            .diff()
            .iter()
            .any(|d| d.contains("params.target")),
        "{:?}",
        h.state().state.tuning.diff()
    );
    // The same frame under the new target: AE asks for more light, toward
    // the brighter target.
    let (at_new, ipa1) = asked(&mut h);
    assert!(
        at_new > at_default * 1.2,
        "exposure x gain {at_default} at target 0.18, {at_new} at 0.4 ({ipa0:?} -> {ipa1:?})"
    );
    // And the running pipeline carries the new parameters.
    play(&mut h);
    wait_for_current_params(&mut h, "a frame with the new target");
}

/// The mean RGB of `rect` (points) in a rendered image of `size` pixels.
fn mean_rgb(
    px: impl Fn(u32, u32) -> [u8; 4],
    size: [u32; 2],
    rect: egui::Rect,
    ppp: f32,
) -> [f64; 3] {
    let (x0, y0) = ((rect.min.x * ppp) as u32 + 2, (rect.min.y * ppp) as u32 + 2);
    let (x1, y1) = ((rect.max.x * ppp) as u32 - 2, (rect.max.y * ppp) as u32 - 2);
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    for y in (y0..y1.min(size[1])).step_by(3) {
        for x in (x0..x1.min(size[0])).step_by(3) {
            let p = px(x, y);
            for c in 0..3 {
                sum[c] += p[c] as f64;
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n.max(1.0))
}

/// The mean RGB of a frame's RGBA8 preview.
fn preview_mean(px: &[u8]) -> [f64; 3] {
    let mut sum = [0f64; 3];
    for p in px.chunks_exact(4).step_by(7) {
        for c in 0..3 {
            sum[c] += p[c] as f64;
        }
    }
    let n = (px.len() / 4).div_ceil(7) as f64;
    sum.map(|s| s / n)
}

#[test]
fn a_session_of_another_size_on_the_gpu_shows_its_own_picture() {
    if isp_engine::gpu::context_for_tests().is_none() {
        return;
    }
    // A 1920x1080 session, recorded here: a gradient, nothing like the demo.
    let dir = tempfile::tempdir().unwrap();
    record_session(dir.path(), 1920, 1080, 4);
    let mut h = Harness::builder()
        .with_size([1280.0, 760.0])
        .wgpu()
        .build_eframe(|cc| {
            Studio::new(
                cc.wgpu_render_state.as_ref(),
                Options {
                    backend: Backend::Gpu,
                    fps: Some(60.0),
                    ..Default::default()
                },
            )
            .unwrap()
        });
    let on_gpu_texture = |s: &Studio, size: [usize; 2]| {
        let st = &s.state;
        st.gpu_texture.is_some_and(|(id, sz)| {
            sz == size && st.viewer_drawn.is_some_and(|(drawn, _)| drawn == id)
        }) && st
            .latest
            .as_ref()
            .is_some_and(|r| [r.format.width as usize, r.format.height as usize] == size)
    };
    wait_for(&mut h, "the demo on the GPU texture", |s| {
        on_gpu_texture(s, [640, 360])
    });
    let ppp = h.ctx.pixels_per_point();
    let shown = |h: &mut Harness<'static, Studio>| {
        h.run_steps(2);
        let img = h.render().unwrap();
        let (_, rect) = h.state().state.viewer_drawn.unwrap();
        let latest = h
            .state()
            .state
            .latest
            .as_ref()
            .unwrap()
            .preview_rgba()
            .unwrap();
        (
            mean_rgb(
                |x, y| img.get_pixel(x, y).0,
                [img.width(), img.height()],
                rect,
                ppp,
            ),
            preview_mean(&latest),
        )
    };
    let (demo_shown, demo_frame) = shown(&mut h);
    let close = |a: [f64; 3], b: [f64; 3]| (0..3).all(|c| (a[c] - b[c]).abs() < 12.0);
    assert!(
        close(demo_shown, demo_frame),
        "{demo_shown:?} vs {demo_frame:?}"
    );
    h.state_mut()
        .state
        .open_source(&dir.path().display().to_string());
    wait_for(&mut h, "the 1920x1080 session on the GPU texture", |s| {
        on_gpu_texture(s, [1920, 1080])
            && s.state.engine.gpu().is_some_and(|g| g.display_writes() > 0)
    });
    let (shown_now, frame_now) = shown(&mut h);
    // The picture changed, and it is the new session's frame, not the
    // demo's left in a texture of the old size.
    assert!(!close(frame_now, demo_frame), "the two sessions look alike");
    assert!(
        close(shown_now, frame_now),
        "{shown_now:?} vs {frame_now:?}"
    );
}
