//! Criterion benches of FusionManager's merges at 1080p: an 8-frame burst
//! (alignment of 7 frames, then the merge) beside a plain 8-frame average
//! (the least any merge must do: the ratio says what the noise-aware,
//! motion-robust merge costs over it), and the merge on the GPU adapter
//! (`shaders/merge.wgsl`, with its transfers). Then, once,
//! the realtime lane's frame latency (p50, p99) with no merge and while an
//! 8-frame 1080p burst merges on the background lane, as a ratio.
//! Figures are in the closing notes.

use criterion::{Criterion, criterion_group, criterion_main};
use isp_engine::bench::MemorySource;
use isp_engine::fusion::merge::NoiseModel;
use isp_engine::fusion::{FrameInfo, FusionKind, FusionManager, Selection};
use isp_engine::gpu::Backend;
use isp_engine::pipeline::{CaptureRequest, Engine, EngineConfig, PathMode};
use isp_engine::sources::FrameSource;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::stages::unpack;
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Packing, RawFormat};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NOISE: NoiseModel = NoiseModel {
    shot: 959.0 / 12000.0,
    read: 1.44,
};

fn frames(fmt: RawFormat, n: usize) -> Vec<Vec<u16>> {
    let mut src = SyntheticSource::new(Scene::ZonePlate, fmt);
    let mut raw = vec![0u8; fmt.frame_bytes()];
    (0..n)
        .map(|_| {
            src.next_frame(&mut raw).expect("a frame");
            let mut px = vec![0u16; fmt.pixels()];
            unpack::unpack(&fmt, &raw, &mut px).expect("unpack");
            px
        })
        .collect()
}

fn burst(c: &mut Criterion) {
    let fmt = RawFormat::new(1920, 1080, 10, BayerOrder::Rggb, Packing::Plain);
    let (w, h) = (1920usize, 1080usize);
    let mosaics = frames(fmt, 8);
    let refs: Vec<&[u16]> = mosaics.iter().map(|m| m.as_slice()).collect();
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(FusionKind::Burst { frames: 8 }, fmt)
        .expect("a plan");
    let sel = Selection {
        chosen: (0..8).collect(),
        reference: 0,
        rejected: vec![],
    };
    let infos = vec![
        FrameInfo {
            exposure_us: 10_000.0,
            analogue_gain: 1.0,
            ..Default::default()
        };
        8
    ];
    let spec = fm
        .build_merge_spec(&plan, &sel, &refs, &infos, 64.0, NOISE, &|| {}, None)
        .expect("a spec");
    let mut g = c.benchmark_group("burst_1080p_8_frames_cpu");
    g.sample_size(10);
    g.bench_function("align_7_frames", |b| {
        b.iter(|| fm.build_merge_spec(&plan, &sel, &refs, &infos, 64.0, NOISE, &|| {}, None))
    });
    g.bench_function("merge", |b| {
        b.iter(|| FusionManager::merge(&spec, &refs, w, h, &|| {}))
    });
    // The same merge on the GPU adapter (alignment on the CPU), when there
    // is one: upload of the 8 frames, both kernels, readback.
    match isp_engine::gpu::GpuContext::new().and_then(isp_engine::gpu::GpuMerge::new) {
        Ok(gpu) => {
            g.bench_function("merge_gpu_with_transfers", |b| {
                b.iter(|| {
                    gpu.merge(&refs, w, h, spec.reference, &spec.alignments, &spec.params)
                        .expect("the GPU merge")
                })
            });
        }
        Err(e) => eprintln!("no GPU merge: {e}"),
    }
    match isp_engine::gpu::GpuContext::new().and_then(isp_engine::gpu::GpuAlign::new) {
        Ok(gpu) => {
            use isp_engine::fusion::align::Grey;
            let greys: Vec<Grey> = refs
                .iter()
                .map(|m| Grey::from_mosaic(m, w, h, 64.0, 1.0, f32::MAX))
                .collect();
            g.bench_function("align_7_frames_gpu", |b| {
                b.iter(|| {
                    for f in &greys[1..] {
                        gpu.align(&greys[0], f).expect("the GPU alignment");
                    }
                })
            });
        }
        Err(e) => eprintln!("no GPU alignment: {e}"),
    }
    g.bench_function("plain_average_reference", |b| {
        b.iter(|| {
            let mut out = vec![0u16; w * h];
            out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
                for (x, o) in row.iter_mut().enumerate() {
                    let s: u32 = refs.iter().map(|m| m[y * w + x] as u32).sum();
                    *o = ((s + 4) / 8) as u16;
                }
            });
            out
        })
    });
    g.finish();
}

/// Whether this is a measurement (`cargo bench` passes `--bench`). Under
/// `cargo test --all-targets` criterion runs each bench once as a test; the
/// realtime measurements then run a few frames each, to show they work,
/// not what they measure.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Realtime frame latency (submit to result) while feeding 1080p at 30 fps:
/// alone, then while an 8-frame 1080p burst merges on the background lane.
fn realtime_under_merge(_c: &mut Criterion) {
    let fmt = RawFormat::new(1920, 1080, 10, BayerOrder::Rggb, Packing::Csi2);
    let engine = Engine::new(
        EngineConfig {
            backend: Backend::Cpu,
            path: PathMode::Fast,
            ..Default::default()
        },
        Tuning::default(),
    )
    .expect("an engine");
    // Results are taken (and dropped) as they come, on their own thread:
    // a lossless subscriber that lags holds frames in flight.
    let rx = engine.subscribe(true);
    let arrived: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let taker = {
        let arrived = arrived.clone();
        std::thread::spawn(move || {
            for r in rx.iter() {
                arrived
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(r.frame_id, Instant::now());
            }
        })
    };
    // Frames rendered beforehand: what is measured is the engine, not the
    // synthetic sensor's rendering.
    let started: Mutex<Option<Instant>> = Mutex::new(None);
    let measure = |engine: &Engine, frames: u64, until: &Mutex<Option<Instant>>| -> Vec<f64> {
        let mut src = MemorySource::synthetic(Scene::Checker, fmt, 4, u64::MAX);
        let mut submitted: HashMap<u64, Instant> = HashMap::new();
        for _ in 0..frames {
            let t = Instant::now();
            engine
                .feed(&mut src, Some(1), |id| {
                    submitted.insert(id, Instant::now());
                })
                .expect("a frame");
            let left = Duration::from_millis(33).saturating_sub(t.elapsed());
            std::thread::sleep(left);
        }
        engine.flush(Duration::from_secs(10));
        let arrived = arrived.lock().unwrap_or_else(|p| p.into_inner());
        // Only frames submitted before `until` (while the merge ran), if set.
        let end = *until.lock().unwrap_or_else(|p| p.into_inner());
        let mut lat: Vec<f64> = submitted
            .iter()
            .filter(|(_, t0)| end.is_none_or(|e| **t0 < e))
            .filter_map(|(id, t0)| Some(arrived.get(id)?.duration_since(*t0).as_secs_f64() * 1e3))
            .collect();
        // The slowest frames, with when they were submitted (ms after the
        // capture started, when one ran): which phase of it they met.
        if let Some(s0) = *started.lock().unwrap_or_else(|p| p.into_inner()) {
            let mut slow: Vec<(f64, f64)> = submitted
                .iter()
                .filter(|(_, t0)| end.is_none_or(|e| **t0 < e))
                .filter_map(|(id, t0)| {
                    let l = arrived.get(id)?.duration_since(*t0).as_secs_f64() * 1e3;
                    Some((l, t0.saturating_duration_since(s0).as_secs_f64() * 1e3))
                })
                .collect();
            slow.sort_by(|a, b| b.0.total_cmp(&a.0));
            slow.truncate(5);
            println!("slowest (latency ms, submitted at ms after the capture started): {slow:.1?}");
        }
        lat.sort_by(f64::total_cmp);
        lat
    };
    let pct = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    let never = Mutex::new(None);
    let full = measuring();
    let idle = measure(&engine, if full { 150 } else { 15 }, &never);
    let merge_done: Mutex<Option<Instant>> = Mutex::new(None);
    // The burst's frames are rendered before anything is measured: the
    // synthetic sensor's rendering is the bench's work, not the engine's.
    // Three bursts one after the other: about 90 frames meet a merge, so the
    // p99 is not just the slowest frame.
    let bursts: u64 = if full { 3 } else { 1 };
    let mut src = MemorySource::synthetic(Scene::ZonePlate, fmt, 8, 8 * bursts);
    let busy = std::thread::scope(|s| {
        let merging = s.spawn(|| {
            let t = Instant::now();
            *started.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
            let mut r = Vec::new();
            for _ in 0..bursts {
                r.push(
                    engine
                        .capture(
                            &mut src,
                            &CaptureRequest::new(FusionKind::Burst { frames: 8 }),
                        )
                        .map(|r| (r.read_ms, r.align_ms, r.merge_ms)),
                );
            }
            *merge_done.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            (t.elapsed(), r)
        });
        // Feed while the capture reads, aligns and merges; only the frames
        // submitted before it finished count.
        let lat = measure(&engine, if full { 240 } else { 30 }, &merge_done);
        let (took, r) = merging.join().expect("the merge thread");
        println!("merge while feeding: {took:?} ({r:?})");
        lat
    });
    println!(
        "realtime latency 1080p CPU: idle p50 {:.1} ms p99 {:.1} ms ({} frames); during {bursts} 8-frame merges p50 {:.1} ms p99 {:.1} ms ({} frames); p99 ratio {:.2} (target <= 1.25)",
        pct(&idle, 0.5),
        pct(&idle, 0.99),
        idle.len(),
        pct(&busy, 0.5),
        pct(&busy, 0.99),
        busy.len(),
        pct(&busy, 0.99) / pct(&idle, 0.99)
    );
    engine.shutdown();
    let _ = taker.join();
}

/// Realtime frame latency at 1080p, 30 fps, with grey-world AWB, then with
/// the ONNX model stage (`awb.model`, the shipped model) on every frame the
/// background lane is free for: what the model costs the realtime lane.
fn realtime_with_model(_c: &mut Criterion) {
    let fmt = RawFormat::new(1920, 1080, 10, BayerOrder::Rggb, Packing::Csi2);
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/models/awb_shades_of_grey.onnx");
    let run = |with_model: bool| -> (Vec<f64>, usize) {
        let mut tuning = Tuning::default();
        if with_model {
            tuning
                .algorithms
                .retain(|b| b.name != isp_engine::algorithms::awb::GreyWorldAwb::NAME);
            tuning.algorithms.insert(
                0,
                isp_engine::tuning::AlgorithmBlock {
                    name: "awb.model".into(),
                    enabled: true,
                    params: serde_json::json!({"model": model, "every": 1}),
                },
            );
        }
        let engine = Engine::new(
            EngineConfig {
                backend: Backend::Cpu,
                path: PathMode::Fast,
                ..Default::default()
            },
            tuning,
        )
        .expect("an engine");
        let rx = engine.subscribe(true);
        let arrived: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let taker = {
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                for r in rx.iter() {
                    if r.lane == isp_engine::types::Lane::Realtime {
                        arrived
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(r.frame_id, Instant::now());
                    }
                }
            })
        };
        let mut src = MemorySource::synthetic(Scene::Checker, fmt, 4, u64::MAX);
        let mut submitted: HashMap<u64, Instant> = HashMap::new();
        for _ in 0..if measuring() { 240 } else { 20 } {
            let t = Instant::now();
            engine
                .feed(&mut src, Some(1), |id| {
                    submitted.insert(id, Instant::now());
                })
                .expect("a frame");
            std::thread::sleep(Duration::from_millis(33).saturating_sub(t.elapsed()));
        }
        engine.flush(Duration::from_secs(10));
        let runs = engine
            .telemetry
            .snapshot()
            .iter()
            .filter(|e| e.stage == "model")
            .count();
        engine.shutdown();
        let _ = taker.join();
        let arrived = arrived.lock().unwrap_or_else(|p| p.into_inner());
        let mut lat: Vec<f64> = submitted
            .iter()
            .filter_map(|(id, t0)| Some(arrived.get(id)?.duration_since(*t0).as_secs_f64() * 1e3))
            .collect();
        lat.sort_by(f64::total_cmp);
        (lat, runs)
    };
    let pct = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    // Alternated, twice each: the machine's drift shows as a spread.
    for round in 0..if measuring() { 2 } else { 1 } {
        let (off, _) = run(false);
        let (on, runs) = run(true);
        println!(
            "round {round}: realtime latency 1080p CPU: grey world p50 {:.1} ms p99 {:.1} ms; model stage ({runs} runs in {} frames) p50 {:.1} ms p99 {:.1} ms; p99 ratio {:.2}",
            pct(&off, 0.5),
            pct(&off, 0.99),
            on.len(),
            pct(&on, 0.5),
            pct(&on, 0.99),
            pct(&on, 0.99) / pct(&off, 0.99)
        );
    }
}

criterion_group!(benches, burst, realtime_under_merge, realtime_with_model);
criterion_main!(benches);
