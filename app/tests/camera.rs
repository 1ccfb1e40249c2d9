//! The studio on a live camera: the virtual camera (`tests/vcam`, a
//! userspace V4L2 device loaded with LD_PRELOAD) seen through the real `v4l`
//! code. The test re-runs itself in a child started by
//! `scripts/virtual-camera.sh`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use isp_engine::algorithms::ae::MeanLuminanceAe;
use isp_engine::gpu::Backend;
use isp_engine::sources::FrameSource;
use isp_engine::sources::session::SessionSource;
use isp_studio::Options;

#[path = "../../engine/tests/support/vcam.rs"]
mod vcam;
use vcam::in_child;

fn mean(px: &[u8]) -> f64 {
    let s: u64 = px
        .chunks_exact(4)
        .map(|p| p[0] as u64 + p[1] as u64 + p[2] as u64)
        .sum();
    s as f64 / (px.len() / 4 * 3) as f64
}

#[test]
fn the_camera_panel_shows_the_controls_and_its_exposure_slider_brightens_the_picture() {
    // A bright scene: AE settles on a short exposure, so a long one by hand
    // is brighter even with AE's gain at its floor.
    if in_child(
        "the_camera_panel_shows_the_controls_and_its_exposure_slider_brightens_the_picture",
        &[("VCAM_LIGHT", "4")],
    ) {
        return;
    }
    let mut h = studio_with(
        Options {
            source: Some("v4l:/dev/video42".into()),
            backend: Backend::Cpu,
            ..Default::default()
        },
        [1280.0, 900.0],
    );
    wait_for(&mut h, "camera frames and controls", |s| {
        s.state.latest.is_some() && !s.state.engine.device_controls().is_empty()
    });
    // The Camera panel is a tab beside Session.
    h.get_by_label("Camera").click();
    h.run_steps(3);
    for name in [
        "Exposure",
        "Analogue Gain",
        "Digital Gain",
        "Test Pattern",
        "Horizontal Flip",
        "Pixel Rate",
    ] {
        assert!(
            h.query_all_by_label(name).next().is_some(),
            "the Camera panel has no {name}"
        );
    }
    assert!(h.query_all_by_label("AE target").next().is_some());
    assert!(
        h.query_all_by_label("converged").next().is_some()
            || h.query_all_by_label("adjusting").next().is_some()
    );
    // AE settles first.
    wait_for(&mut h, "AE to converge", |s| {
        let Some(r) = &s.state.latest else {
            return false;
        };
        let Some(st) = &r.stats else { return false };
        let y = MeanLuminanceAe::luminance(st, r.ipa.wb_gains);
        r.meta.sequence > 10 && (y / 0.18 - 1.0).abs() < 0.05
    });
    let ae_exposure = h.state().state.latest.as_ref().unwrap().meta.controls["Exposure"];
    let before = mean(&latest_preview(&h));
    let slider = h.get_by_role_and_label(Role::Slider, "Exposure");
    slider.scroll_to_me();
    h.run_steps(2);
    // The slider moved to 2000 lines the way assistive technology (and the
    // Parameters panel's test) sets one: a pointer drag across the tile's
    // slider does not reach it in the kittest harness.
    h.get_by_role_and_label(Role::Slider, "Exposure")
        .set_value_accesskit(2000.0);
    h.run_steps(2);
    let set = h
        .state()
        .state
        .engine
        .device_controls()
        .iter()
        .find(|c| c.name == "Exposure")
        .and_then(|c| c.value);
    wait_for(&mut h, "frames with the manual exposure", |s| {
        let want = s
            .state
            .engine
            .device_controls()
            .iter()
            .find(|c| c.name == "Exposure")
            .and_then(|c| c.value)
            .unwrap_or(0) as f64;
        s.state.latest.as_ref().is_some_and(|r| {
            r.meta.controls.get("Exposure") == Some(&want) && want > ae_exposure * 2.0
        })
    });
    let after = mean(&latest_preview(&h));
    assert!(
        after > before * 1.3,
        "exposure {ae_exposure} -> {set:?} lines: mean {before:.1} -> {after:.1}"
    );
    assert!(
        h.query_by_label("converged (manual exposure)").is_some()
            || h.query_by_label("adjusting (manual exposure)").is_some()
    );
    // "Auto" gives it back to AE.
    h.get_by_label("Auto").click_accesskit();
    h.run_steps(2);
    wait_for(&mut h, "AE to take exposure back", |s| {
        s.state.latest.as_ref().is_some_and(|r| {
            r.meta
                .controls
                .get("Exposure")
                .is_some_and(|e| *e < ae_exposure * 1.5)
        })
    });
    // Recording from the camera: a finished session whose frames carry the
    // controls that exposed them.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    h.state_mut().state.start_recording(&dir);
    wait_for(&mut h, "12 frames recorded", |s| {
        s.state
            .player
            .status()
            .recording
            .is_some_and(|r| r.frames >= 12)
    });
    h.state_mut().state.stop_recording();
    wait_for(&mut h, "the recording to finish", |s| {
        s.state.player.status().recording.is_none()
    });
    let mut session = SessionSource::open(&dir).unwrap();
    assert!(session.frame_count().unwrap() >= 12);
    let mut buf = vec![0u8; session.format().frame_bytes()];
    let m = session.next_frame(&mut buf).unwrap().unwrap();
    assert!(
        m.controls.contains_key("Exposure") && m.exposure_us > 0.0,
        "{m:?}"
    );
}

#[test]
fn a_camera_unplugged_while_recording_says_so_and_keeps_the_session() {
    if in_child(
        "a_camera_unplugged_while_recording_says_so_and_keeps_the_session",
        &[("VCAM_FAULTS", "vanish@45")],
    ) {
        return;
    }
    let mut h = studio_with(
        Options {
            source: Some("v4l:/dev/video42".into()),
            backend: Backend::Cpu,
            ..Default::default()
        },
        [1280.0, 900.0],
    );
    wait_for(&mut h, "camera frames", |s| s.state.latest.is_some());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cut");
    h.state_mut().state.start_recording(&dir);
    wait_for(&mut h, "the camera to vanish", |s| {
        s.state
            .log
            .iter()
            .any(|l| l.text.contains("/dev/video42") && l.text.contains("gone"))
    });
    wait_for(&mut h, "the recording to finish", |s| {
        s.state.player.status().recording.is_none()
    });
    assert!(!h.state().state.player.status().playing);
    let mut session = SessionSource::open(&dir).unwrap();
    let n = session.frame_count().unwrap();
    assert!(n > 0 && n < 45, "{n} frames");
    let mut buf = vec![0u8; session.format().frame_bytes()];
    for _ in 0..n {
        session.next_frame(&mut buf).unwrap().unwrap();
    }
}
