//! The Timeline panel over a million telemetry events: one UI pass
//! (layout + the painter's shapes) and its tessellation, zoomed out over all
//! of them, at 10 s, and at half a second. `cargo bench -p isp-studio`.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use eframe::egui;
use isp_engine::telemetry::{EventKind, TelemetryEvent};
use isp_engine::types::{Lane, Outcome};
use isp_studio::panels::{Panel, Timeline};
use isp_studio::player::PlayerCmd;
use isp_studio::{Options, Studio};

const EVENTS: u64 = 1_000_000;
const STAGES: [&str; 5] = ["raw_isp", "fast_isp", "stats", "fast_algo", "slow_isp"];

/// A studio (player paused) whose telemetry holds `EVENTS` stage events:
/// 1200 events a second on 3 rows, 0.5 ms each (~14 minutes).
fn studio() -> (Studio, u64) {
    let s = Studio::new(
        None,
        Options {
            source: Some("synthetic:checker".into()),
            backend: isp_engine::gpu::Backend::Cpu,
            fps: Some(1.0),
            ..Default::default()
        },
    )
    .unwrap();
    s.state.player.send(PlayerCmd::Pause);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t0 = s
        .state
        .engine
        .telemetry
        .snapshot()
        .iter()
        .map(|e| e.end_ns)
        .max()
        .unwrap_or(0)
        + 1;
    let step = 1_000_000_000 / 1200;
    for i in 0..EVENTS {
        let start = t0 + i * step;
        let (lane, worker) = match i % 3 {
            0 => (Lane::Realtime, 0),
            1 => (Lane::Realtime, 1),
            _ => (Lane::Background, 0),
        };
        s.state.engine.telemetry.append(TelemetryEvent {
            seq: 0,
            kind: EventKind::Stage,
            frame_id: i / 5,
            stage: STAGES[(i % 5) as usize],
            lane: Some(lane),
            worker: Some(worker),
            enqueue_ns: start - 100_000,
            start_ns: start,
            end_ns: start + 500_000,
            buffers: vec![(i % 7) as u32],
            params_version: 1,
            outcome: Outcome::Ok,
            detail: String::new(),
        });
    }
    (s, t0 + EVENTS * step)
}

fn pass(ctx: &egui::Context, tl: &mut Timeline, s: &mut Studio) -> usize {
    let input = egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1280.0, 300.0),
        )),
        ..Default::default()
    };
    let mut out = ctx.run_ui(input, |ui| tl.ui(ui, &mut s.state));
    // No renderer here: the font atlas upload is not applied anywhere.
    out.textures_delta.clear();
    ctx.tessellate(out.shapes, out.pixels_per_point).len()
}

fn bench(c: &mut Criterion) {
    let (mut s, end) = studio();
    assert!(s.state.engine.telemetry.len() as u64 >= EVENTS);
    let ctx = egui::Context::default();
    let mut g = c.benchmark_group("timeline_1m_events");
    for (name, span) in [("all_14min", 600.0), ("10s", 10.0), ("0.5s", 0.5)] {
        let mut tl = Timeline::showing(span, Some(end));
        g.bench_function(name, |b| b.iter(|| pass(&ctx, &mut tl, &mut s)));
    }
    g.bench_function("telemetry_snapshot", |b| {
        b.iter(|| s.state.engine.telemetry.snapshot().len())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
