//! Measurements behind `isp bench` and the criterion benches: per-stage and
//! end-to-end times of the real engine on pre-rendered frames, the envelope
//! round trip of a no-op stage, and realtime latency with the background lane
//! saturated.

mod runtime;

pub use runtime::{QosBench, qos, roundtrip};

use crate::clock::now_ns;
use crate::envelope::{Envelope, StageId};
use crate::gpu::{Backend, BytesMoved, GpuContext, GpuIsp, TimerKind};
use crate::pipeline::{Engine, EngineConfig, PathMode};
use crate::sources::synthetic::{Scene, SyntheticSource};
use crate::sources::{FrameMeta, FrameSource, SourceError};
use crate::telemetry::EventKind;
use crate::tuning::{FrameParams, Tuning};
use crate::types::{BayerOrder, Lane, Outcome, Packing, RawFormat};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// p-th percentile (0..=100) of `v` (sorted in place), nearest rank.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Spread {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Spread {
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n.max(1) as f64;
        Spread {
            p50: percentile(&mut v, 50.0),
            p90: percentile(&mut v, 90.0),
            p99: percentile(&mut v, 99.0),
            max: v.last().copied().unwrap_or(0.0),
            mean,
            n,
        }
    }
}

/// Frames rendered once, then replayed from memory (the source costs nothing).
#[derive(Debug)]
pub struct MemorySource {
    fmt: RawFormat,
    frames: Vec<Vec<u8>>,
    next: u64,
    limit: u64,
}

impl MemorySource {
    pub fn synthetic(scene: Scene, fmt: RawFormat, distinct: usize, limit: u64) -> Self {
        let mut s = SyntheticSource::new(scene, fmt);
        let frames = (0..distinct)
            .map(|_| {
                let mut b = vec![0u8; fmt.frame_bytes()];
                let _ = s.next_frame(&mut b);
                b
            })
            .collect();
        MemorySource {
            fmt,
            frames,
            next: 0,
            limit,
        }
    }
}

impl FrameSource for MemorySource {
    fn name(&self) -> String {
        "memory".into()
    }
    fn format(&self) -> RawFormat {
        self.fmt
    }
    fn frame_count(&self) -> Option<u64> {
        Some(self.limit)
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        if self.next >= self.limit {
            return Ok(None);
        }
        let f = &self.frames[(self.next as usize) % self.frames.len()];
        dst[..f.len()].copy_from_slice(f);
        self.next += 1;
        Ok(Some(FrameMeta {
            sequence: self.next - 1,
            timestamp_ns: now_ns(),
            exposure_us: 10_000.0,
            analogue_gain: 1.0,
            ..Default::default()
        }))
    }
}

#[derive(Debug, Serialize)]
pub struct PipelineBench {
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub path: PathMode,
    pub frames: u64,
    /// What ran the preview: "cpu (...)" or "gpu: <adapter>".
    pub backend: crate::pipeline::ActiveBackend,
    pub cores: usize,
    /// Run time per stage, ms.
    pub stages_ms: BTreeMap<&'static str, Spread>,
    /// Compute of the preview per frame, ms: raw_isp + fast_isp on the CPU;
    /// on the GPU the fast_isp worker (upload, dispatch, wait, readback).
    pub preview_compute_ms: Spread,
    /// Submit of the frame to its output published, ms.
    pub end_to_end_ms: Spread,
    pub frames_per_s: f64,
    pub dropped: u64,
    pub in_flight: usize,
    pub memory: MemoryReport,
}

/// Memory over a run: the telemetry log's own accounting, and the process's
/// resident set at a mark (frame 10,000, or a tenth of a shorter run) and
/// at the end: what a long run costs per frame once it is warm.
#[derive(Debug, Serialize, Clone, Copy, PartialEq)]
pub struct MemoryReport {
    pub telemetry: crate::telemetry::TelemetryMemory,
    pub telemetry_bytes_per_event: f64,
    pub rss_mark_frame: u64,
    pub rss_at_mark_mb: f64,
    pub rss_end_mb: f64,
    pub rss_growth_mb: f64,
}

/// This process's resident set, MB (Linux: /proc/self/statm).
pub fn rss_mb() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    (pages * page) as f64 / (1024.0 * 1024.0)
}

/// Run the real engine over `frames` pre-rendered frames.
pub fn pipeline(
    width: u32,
    height: u32,
    frames: u64,
    path: PathMode,
) -> Result<PipelineBench, crate::pipeline::EngineError> {
    pipeline_with(width, height, frames, path, 2, Backend::Cpu, None)
}

/// As [`pipeline`], with `in_flight` frames allowed at once (1: every stage
/// has the machine to itself, the per-frame compute time; more: throughput).
pub fn pipeline_with(
    width: u32,
    height: u32,
    frames: u64,
    path: PathMode,
    in_flight: usize,
    backend: Backend,
    telemetry_csv: Option<&std::path::Path>,
) -> Result<PipelineBench, crate::pipeline::EngineError> {
    let fmt = RawFormat::new(width, height, 10, BayerOrder::Rggb, Packing::Plain);
    // Odd or zero sides are no Bayer frame: the engine would refuse every
    // frame and leave an empty measurement.
    fmt.validate().map_err(|error| SourceError::Format {
        source_name: "bench".into(),
        error,
    })?;
    let mut src = MemorySource::synthetic(Scene::Checker, fmt, 4, frames + WARM_UP);
    let cfg = EngineConfig {
        path,
        max_in_flight: in_flight,
        backend,
        ..Default::default()
    };
    let engine = Engine::new(cfg, Tuning::default())?;
    let results = engine.subscribe(true);
    // When each frame was published, by lane (a flat table: the bench's own
    // bookkeeping must not be what a long run's memory measures).
    let drain = std::thread::spawn(move || {
        let mut published: Vec<[u64; 2]> = Vec::new();
        while let Ok(r) = results.recv() {
            let i = r.frame_id as usize;
            if published.len() <= i {
                published.resize((i + 1).next_power_of_two(), [0; 2]);
            }
            published[i][usize::from(r.lane == Lane::Background)] = now_ns();
        }
        published
    });
    // Warm up: pools fill, caches and page tables settle. Frames are
    // numbered from 1, so the measured ones are those after WARM_UP (a
    // warm-up frame's last stage may still finish after the flush).
    const WARM_UP: u64 = 3;
    engine.feed(&mut src, Some(WARM_UP), |_| {})?;
    engine.flush(Duration::from_secs(60));
    let mark = (frames / 10).clamp(1, 10_000);
    let mut rss_at_mark = 0.0;
    let t0 = Instant::now();
    engine.feed(&mut src, Some(frames), |id| {
        if id == WARM_UP + mark {
            rss_at_mark = rss_mb();
        }
    })?;
    engine.flush(Duration::from_secs(600));
    let wall = t0.elapsed().as_secs_f64();
    let rss_end = rss_mb();
    let telemetry = engine.telemetry.memory();
    engine.shutdown();
    if let Some(p) = telemetry_csv {
        engine
            .telemetry
            .export_csv(p)
            .map_err(|e| crate::pipeline::EngineError::Telemetry(e.to_string()))?;
    }
    let published = drain.join().unwrap_or_default();
    let snap = engine.telemetry.snapshot();
    let mut stages: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut first: BTreeMap<u64, u64> = BTreeMap::new();
    let mut preview: BTreeMap<u64, f64> = BTreeMap::new();
    let mut dropped = 0;
    for e in snap
        .iter()
        .filter(|e| e.kind == EventKind::Stage || e.kind == EventKind::Gpu)
        .filter(|e| e.frame_id > WARM_UP)
    {
        if e.outcome == Outcome::Dropped {
            dropped += 1;
        }
        if e.outcome != Outcome::Ok {
            continue;
        }
        stages
            .entry(e.stage)
            .or_default()
            .push(e.run_ns() as f64 / 1e6);
        if e.stage == "raw_isp" || e.stage == "slow_isp" {
            first.insert(e.frame_id, e.enqueue_ns);
        }
        if e.stage == "fast_isp" {
            first.entry(e.frame_id).or_insert(e.enqueue_ns);
        }
        if e.kind == EventKind::Stage && (e.stage == "raw_isp" || e.stage == "fast_isp") {
            *preview.entry(e.frame_id).or_default() += e.run_ns() as f64 / 1e6;
        }
    }
    let lane = if path == PathMode::Slow {
        Lane::Background
    } else {
        Lane::Realtime
    };
    let e2e: Vec<f64> = first
        .iter()
        .filter_map(|(id, t)| {
            published
                .get(*id as usize)
                .map(|p| p[usize::from(lane == Lane::Background)])
                .filter(|p| *p > 0)
                .map(|p| (p.saturating_sub(*t)) as f64 / 1e6)
        })
        .collect();
    Ok(PipelineBench {
        width,
        height,
        format: fmt.describe(),
        path,
        frames,
        backend: engine.backend(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        stages_ms: stages
            .into_iter()
            .map(|(k, v)| (k, Spread::of(v)))
            .collect(),
        preview_compute_ms: Spread::of(
            preview
                .into_values()
                .filter(|_| path != PathMode::Slow)
                .collect(),
        ),
        end_to_end_ms: Spread::of(e2e),
        frames_per_s: frames as f64 / wall,
        dropped,
        in_flight,
        memory: MemoryReport {
            telemetry,
            telemetry_bytes_per_event: telemetry.bytes_per_event(),
            rss_mark_frame: mark,
            rss_at_mark_mb: rss_at_mark,
            rss_end_mb: rss_end,
            rss_growth_mb: rss_end - rss_at_mark,
        },
    })
}

/// The fused preview on the GPU against the CPU, outside the engine.
#[derive(Debug, Serialize)]
pub struct GpuBench {
    pub adapter: String,
    pub width: u32,
    pub height: u32,
    pub format: String,
    /// How `compute_ms` was timed (GPU timestamps, or submit-to-done on the CPU).
    pub timer: TimerKind,
    /// The fused dispatch alone, raw already on the GPU.
    pub compute_ms: Spread,
    /// One whole preview frame: staging copy, upload, dispatch, readback, copy out.
    pub with_transfers_ms: Spread,
    /// Raw bytes into the staging buffer (CPU copy).
    pub upload_ms: Spread,
    /// Submit to the GPU reporting done (upload copy + dispatch + readback copy).
    pub gpu_wall_ms: Spread,
    /// RGBA8 and statistics out of the mapped readback buffer (CPU copy).
    pub readback_ms: Spread,
    /// The CPU's fused path on the same frame (unpack + black level + fused + stats).
    pub cpu_preview_ms: Spread,
    /// Largest difference of any RGBA8 value from the CPU's output (8-bit LSB).
    pub max_diff_vs_cpu: u8,
    pub stats_equal_cpu: bool,
    pub bytes: BytesMoved,
}

/// Measure the GPU preview of a `width` x `height` RAW10 frame, `n` runs each.
pub fn gpu_preview(
    width: u32,
    height: u32,
    n: usize,
    packing: Packing,
) -> Result<GpuBench, String> {
    let fmt = RawFormat::new(width, height, 10, BayerOrder::Rggb, packing);
    fmt.validate().map_err(|e| format!("bench: {e}"))?;
    let ctx = GpuContext::new().map_err(|e| e.to_string())?;
    let g = GpuIsp::new(ctx).map_err(|e| e.to_string())?;
    let mut src = SyntheticSource::new(Scene::Checker, fmt);
    let mut raw = vec![0u8; fmt.frame_bytes()];
    src.next_frame(&mut raw).map_err(|e| e.to_string())?;
    let p = FrameParams::from_tuning(&Tuning::default(), fmt);
    let px = width as usize * height as usize;
    let mut out = vec![0u8; px * 4];
    // Warm up (slot, pipelines' first use).
    let first = g.preview(&p, &raw, &mut out).map_err(|e| e.to_string())?;
    let (compute, timer) = g.bench_compute(&p, &raw, n).map_err(|e| e.to_string())?;
    let (mut whole, mut up, mut wall, mut rb) = (vec![], vec![], vec![], vec![]);
    let mut atomics = first.global_atomics;
    for _ in 0..n {
        let t0 = Instant::now();
        let f = g.preview(&p, &raw, &mut out).map_err(|e| e.to_string())?;
        whole.push(t0.elapsed().as_secs_f64() * 1e3);
        up.push(f.timings.upload_ns as f64 / 1e6);
        wall.push(f.timings.gpu_wall_ns as f64 / 1e6);
        rb.push(f.timings.readback_ns as f64 / 1e6);
        atomics = f.global_atomics;
    }
    // The CPU on the same frame, through the same code the engine runs.
    let env = Envelope::new(
        0,
        StageId::FastIsp,
        Lane::Realtime,
        crate::isp::noop,
        Arc::new(p.clone()),
    );
    let mut cpu_out = vec![0u8; px * 4];
    let mut cpu = Vec::new();
    let mut cpu_stats = None;
    for _ in 0..n.clamp(1, 20) {
        let t0 = Instant::now();
        let st = crate::isp::cpu_preview(&env, "bench", &raw, &mut cpu_out)
            .map_err(|e| e.to_string())?;
        cpu.push(t0.elapsed().as_secs_f64() * 1e3);
        cpu_stats = Some(st);
    }
    let gpu_frame = g.preview(&p, &raw, &mut out).map_err(|e| e.to_string())?;
    let max_diff = out
        .iter()
        .zip(&cpu_out)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let zones = p.stages.stats.zones_x * p.stages.stats.zones_y;
    Ok(GpuBench {
        adapter: g.context().adapter_name(),
        width,
        height,
        format: fmt.describe(),
        timer,
        compute_ms: Spread::of(compute),
        with_transfers_ms: Spread::of(whole),
        upload_ms: Spread::of(up),
        gpu_wall_ms: Spread::of(wall),
        readback_ms: Spread::of(rb),
        cpu_preview_ms: Spread::of(cpu),
        max_diff_vs_cpu: max_diff,
        stats_equal_cpu: cpu_stats.as_ref() == Some(&gpu_frame.stats),
        bytes: GpuIsp::bytes_moved(&fmt, zones, atomics),
    })
}
