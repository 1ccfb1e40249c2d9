//! What the studio's UI tests share: a studio on the demo session, waits,
//! the player paused and settled, the chain's own picture of a raw frame.

#![allow(dead_code, clippy::unwrap_used)]

use eframe::egui;
use egui_kittest::Harness;
use isp_engine::gpu::Backend;
use isp_studio::{Options, Studio};
use std::time::{Duration, Instant};

pub fn studio(backend: Backend) -> Harness<'static, Studio> {
    studio_sized(backend, [1280.0, 760.0])
}

/// The studio on the demo session in a window of `size` points.
pub fn studio_sized(backend: Backend, size: [f32; 2]) -> Harness<'static, Studio> {
    let s = Studio::new(
        None,
        Options {
            source: None,
            backend,
            quit_after: None,
            fps: Some(60.0),
            zoom: None,
            dialogs: Some(isp_studio::files::DialogKind::InApp),
            ..Default::default()
        },
    )
    .unwrap();
    Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, s: &mut Studio| s.show(ui), s)
}

/// Step the UI until `cond` holds (the engine and player run on their threads).
pub fn wait_for(h: &mut Harness<'static, Studio>, what: &str, cond: impl Fn(&Studio) -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        h.step();
        if cond(h.state()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// The newest frame's preview pixels.
pub fn latest_preview(h: &Harness<'static, Studio>) -> Vec<u8> {
    h.state()
        .state
        .latest
        .as_ref()
        .and_then(|r| r.preview_rgba())
        .expect("a frame with a preview")
}

/// Wait for a frame made with the parameters in effect now; their version.
pub fn wait_for_current_params(h: &mut Harness<'static, Studio>, what: &str) -> u64 {
    let v = h.state().state.engine.params.version();
    wait_for(h, what, |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| r.params_version >= v)
    });
    v
}

/// Pause, and wait until the last frames in flight have finished: the
/// player says it is paused (it reads no frame after that) and the engine's
/// in-flight count reaches zero.
pub fn settle(h: &mut Harness<'static, Studio>) {
    h.state_mut()
        .state
        .player
        .send(isp_studio::player::PlayerCmd::Pause);
    wait_for(h, "the player to pause", |s| {
        !s.state.player.status().playing
    });
    wait_for_every_frame(h);
    h.run_steps(2);
}

/// Wait until every frame submitted so far has ended (its last realtime
/// stage, `fast_algo`, has its telemetry row, or it was dropped or failed):
/// the 3A state stands still after that. (The studio keeps results, so the
/// engine's in-flight count does not fall to zero.)
pub fn wait_for_every_frame(h: &mut Harness<'static, Studio>) {
    use isp_engine::telemetry::EventKind;
    use isp_engine::types::Outcome;
    wait_for(h, "every frame submitted to end", |s| {
        let e = &s.state.engine;
        let n = e.frames_submitted();
        let index = s.state.player.index.lock().unwrap();
        let ended: std::collections::HashSet<u64> = e
            .telemetry
            .snapshot()
            .iter()
            .filter(|r| {
                r.kind == EventKind::Stage
                    && (r.stage == "fast_algo"
                        || r.outcome != Outcome::Ok
                        // A frame made again ends with its preview (no 3A).
                        || (r.stage == "fast_isp" && index.is_replay(r.frame_id)))
            })
            .map(|r| r.frame_id)
            .collect();
        (1..=n).all(|i| ended.contains(&i))
    });
}

pub fn play(h: &mut Harness<'static, Studio>) {
    h.state_mut()
        .state
        .player
        .send(isp_studio::player::PlayerCmd::Play);
}

/// The player's last raw frame through the whole chain (tone tap, RGBA8),
/// with the engine's parameters now or with `tuning`.
pub fn tone_of_last_raw(
    h: &Harness<'static, Studio>,
    tuning: Option<&isp_engine::tuning::Tuning>,
) -> Vec<u8> {
    let p = h.state().state.player.status();
    let (raw, fmt) = (p.last_raw.unwrap(), p.format.unwrap());
    match h
        .state()
        .state
        .engine
        .tap_with(&raw, fmt, isp_engine::stages::chain::Tap::Tone, tuning)
        .unwrap()
    {
        isp_engine::stages::chain::TapImage::Rgba8(v) => v,
        _ => panic!("the tone tap is RGBA8"),
    }
}

/// At least a tenth of the values moved by more than 2.
pub fn assert_moved(a: &[u8], b: &[u8], what: &str) {
    let moved = a.iter().zip(b).filter(|(x, y)| x.abs_diff(**y) > 2).count();
    assert!(
        moved > a.len() / 10,
        "{what}: only {moved} of {} values moved",
        a.len()
    );
}

/// Press and release a mouse button at `pos`.
pub fn click_at(h: &mut Harness<'static, Studio>, pos: egui::Pos2, button: egui::PointerButton) {
    h.hover_at(pos);
    h.step();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        h.step();
    }
}

/// Record `frames` frames of a synthetic gradient at `w` x `h` into `dir`.
pub fn record_session(dir: &std::path::Path, w: u32, h: u32, frames: usize) {
    use isp_engine::sources::FrameSource;
    use isp_engine::sources::session::SessionRecorder;
    use isp_engine::sources::synthetic::{Scene, SyntheticSource};
    use isp_engine::types::{BayerOrder, Packing, RawFormat};
    let fmt = RawFormat::new(w, h, 10, BayerOrder::Rggb, Packing::Plain);
    let mut rec = SessionRecorder::create(dir, fmt, "synthetic:gradient").unwrap();
    let mut src = SyntheticSource::new(Scene::Gradient, fmt);
    let mut buf = vec![0u8; fmt.frame_bytes()];
    for _ in 0..frames {
        let meta = src.next_frame(&mut buf).unwrap().unwrap();
        rec.write_frame(&meta, &buf).unwrap();
    }
    rec.finish().unwrap();
}

/// The studio on `options` (CPU, in-app dialogs unless they say otherwise)
/// in a window of `size` points.
pub fn studio_with(options: Options, size: [f32; 2]) -> Harness<'static, Studio> {
    let s = Studio::new(
        None,
        Options {
            fps: options.fps.or(Some(60.0)),
            dialogs: options
                .dialogs
                .or(Some(isp_studio::files::DialogKind::InApp)),
            ..options
        },
    )
    .unwrap();
    Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, s: &mut Studio| s.show(ui), s)
}
