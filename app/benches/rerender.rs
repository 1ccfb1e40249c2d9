//! The tuning loop's latency: paused on a frame of a recorded 1920x1080
//! session (CPU backend), an edit (white balance on/off) until the frame on
//! screen is the one made again with it — the studio's real panels in an
//! egui_kittest harness, each step a whole UI pass. Beside it, in the same
//! run, one preview time: what the engine took for those frames (raw_isp +
//! raw_algo + fast_isp from telemetry), as a ratio. `cargo bench -p
//! isp-studio --bench rerender`.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use egui_kittest::Harness;
use isp_engine::sources::FrameSource;
use isp_engine::sources::session::SessionRecorder;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::telemetry::EventKind;
use isp_engine::types::{BayerOrder, Packing, RawFormat};
use isp_studio::player::PlayerCmd;
use isp_studio::{Options, Studio};
use std::time::{Duration, Instant};

fn step_until(h: &mut Harness<'static, Studio>, cond: impl Fn(&Studio) -> bool) {
    let t0 = Instant::now();
    while !cond(h.state()) {
        assert!(t0.elapsed() < Duration::from_secs(60), "timed out");
        h.step();
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let fmt = RawFormat::new(1920, 1080, 10, BayerOrder::Rggb, Packing::Csi2);
    let mut rec = SessionRecorder::create(dir.path(), fmt, "synthetic:checker").unwrap();
    let mut src = SyntheticSource::new(Scene::Checker, fmt);
    let mut buf = vec![0u8; fmt.frame_bytes()];
    for _ in 0..4 {
        let meta = src.next_frame(&mut buf).unwrap().unwrap();
        rec.write_frame(&meta, &buf).unwrap();
    }
    rec.finish().unwrap();
    let studio = Studio::new(
        None,
        Options {
            source: Some(dir.path().display().to_string()),
            backend: isp_engine::gpu::Backend::Cpu,
            fps: Some(10.0),
            dialogs: Some(isp_studio::files::DialogKind::InApp),
            ..Default::default()
        },
    )
    .unwrap();
    let mut h = Harness::builder()
        .with_size([1600.0, 1000.0])
        .build_ui_state(|ui, s: &mut Studio| s.show(ui), studio);
    step_until(&mut h, |s| s.state.latest.is_some());
    h.state().state.player.send(PlayerCmd::Pause);
    step_until(&mut h, |s| !s.state.player.status().playing);
    std::thread::sleep(Duration::from_millis(500));
    h.run_steps(3);
    let first = h.state().state.engine.frames_submitted();
    let mut g = c.benchmark_group("rerender");
    g.sample_size(20);
    g.bench_function("edit_to_frame_on_screen_1080p_cpu", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                h.state_mut()
                    .state
                    .edit_tuning(|t| t.stages.white_balance.enabled ^= true);
                let v = h.state().state.engine.params.version();
                step_until(&mut h, |s| {
                    s.state
                        .latest
                        .as_ref()
                        .is_some_and(|r| r.params_version == v)
                });
                total += t0.elapsed();
            }
            total
        })
    });
    g.finish();
    // One preview time of the frames made again, from their telemetry.
    let snap = h.state().state.engine.telemetry.snapshot();
    let mut per_frame: std::collections::BTreeMap<u64, u64> = Default::default();
    for e in snap
        .iter()
        .filter(|e| e.kind == EventKind::Stage && e.frame_id > first)
    {
        *per_frame.entry(e.frame_id).or_default() += e.run_ns();
    }
    let mut t: Vec<f64> = per_frame.values().map(|n| *n as f64 / 1e6).collect();
    t.sort_by(f64::total_cmp);
    if !t.is_empty() {
        eprintln!(
            "rerender: one preview time (raw_isp + raw_algo + fast_isp) of the {} frames made again: p50 {:.2} ms",
            t.len(),
            t[t.len() / 2]
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
