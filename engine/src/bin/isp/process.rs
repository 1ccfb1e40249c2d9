//! `isp process`: run the pipeline over a source and write its PNGs,
//! telemetry.csv and summary.json.

use crate::{Res, SourceArgs, load_tuning, opts, parse_alloc, parse_backend, parse_path, progress};
use isp_engine::allocator::AllocatorKind;
use isp_engine::bench;
use isp_engine::gpu::Backend;
use isp_engine::image_io;
use isp_engine::pipeline::{Engine, EngineConfig, PathMode};
use isp_engine::sources;
use isp_engine::telemetry::EventKind;
use isp_engine::types::Outcome;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// A session directory, raw:PATH, synthetic:NAME (checker, gradient,
    /// zoneplate, flat), v4l:/dev/videoN (a camera); none for the demo
    /// session.
    source: Option<String>,
    #[command(flatten)]
    geometry: SourceArgs,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Tuning file (JSON); default: the session's tuning.json, else built-in.
    #[arg(long)]
    tuning: Option<PathBuf>,
    /// Frames to process (default: all of a finite source, 30 of a live one).
    #[arg(long)]
    frames: Option<u64>,
    /// fast: realtime preview (8-bit); slow: background capture (16-bit).
    #[arg(long, default_value = "fast", value_parser = parse_path)]
    path: PathMode,
    /// Write 16-bit linear PNGs (the slow path without the tone curve).
    #[arg(long)]
    linear16: bool,
    /// Frame memory: heap, memfd, dmabuf or auto.
    #[arg(long, default_value = "auto", value_parser = parse_alloc)]
    allocator: AllocatorKind,
    /// Preview backend: cpu, gpu (wgpu compute) or auto (the GPU when
    /// there is an adapter; a GPU fault switches to the CPU).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: Backend,
    /// Exit 1 when a frame was lost by the camera or dropped by the engine
    /// (by default both are counted in the summary and said on stderr).
    #[arg(long)]
    no_drops: bool,
}

pub fn run(a: Args) -> Res {
    process(
        a.source.as_deref(),
        &a.geometry,
        &a.out,
        a.tuning.as_deref(),
        a.frames,
        a.path,
        a.linear16,
        a.allocator,
        a.backend,
        a.no_drops,
    )
}

#[allow(clippy::too_many_arguments)]
fn process(
    spec: Option<&str>,
    g: &SourceArgs,
    out: &Path,
    tuning: Option<&Path>,
    frames: Option<u64>,
    path: PathMode,
    linear16: bool,
    allocator: AllocatorKind,
    backend: Backend,
    no_drops: bool,
) -> Res {
    let mut src = sources::open(spec, &opts(g)).map_err(|e| e.to_string())?;
    let tuning = load_tuning(tuning, spec)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let path = if linear16 { PathMode::Slow } else { path };
    let cfg = EngineConfig {
        allocator,
        path,
        linear_output: linear16,
        backend,
        // Older telemetry spills next to the outputs (an unnamed file: it
        // goes when the run ends).
        telemetry_spill_dir: Some(out.to_path_buf()),
        ..Default::default()
    };
    let engine = Engine::new(cfg, tuning).map_err(|e| e.to_string())?;
    if let Some(n) = &engine.allocator_note {
        eprintln!("isp: {n}");
    }
    eprintln!("isp: allocator {}", engine.rm.allocator_name());
    eprintln!("isp: backend {}", engine.backend());
    let limit = frames.or(src.frame_count()).unwrap_or(30);
    let results = engine.subscribe(true);
    let out_dir = out.to_path_buf();
    // A camera stamps frames on CLOCK_MONOTONIC: how long from the driver's
    // timestamp to the preview in hand, seen by a subscriber that does
    // nothing else (the PNG writer lags behind).
    let camera = spec.is_some_and(|s| s.starts_with("v4l:"));
    let latency = camera.then(|| {
        let rx = engine.subscribe(false);
        std::thread::spawn(move || {
            let mut v = Vec::new();
            while let Ok(r) = rx.recv() {
                if r.outcome == Outcome::Ok {
                    let now = sources::camera::monotonic_ns();
                    v.push(now.saturating_sub(r.meta.timestamp_ns) as f64 / 1e6);
                }
            }
            v
        })
    });
    // A frame the realtime lane dropped (drop-oldest, by design, when the
    // machine falls behind a camera) is counted as dropped, not failed.
    let writer = std::thread::spawn(move || -> Result<(u64, u64, u64, Vec<String>), String> {
        let (mut ok, mut bad, mut dropped, mut errors) = (0, 0, 0, Vec::new());
        while let Ok(r) = results.recv() {
            if r.outcome == Outcome::Dropped {
                dropped += 1;
                continue;
            }
            if r.outcome != Outcome::Ok {
                bad += 1;
                errors.push(format!(
                    "frame {}: {} {}",
                    r.frame_id,
                    r.outcome.name(),
                    r.error.clone().unwrap_or_default()
                ));
                continue;
            }
            let (w, h) = (r.format.width as usize, r.format.height as usize);
            if let Some(px) = r.preview_rgba() {
                let p = out_dir.join(format!("frame_{:06}.png", r.meta.sequence));
                image_io::write_rgba8(&p, w, h, &px).map_err(|e| e.to_string())?;
            }
            if let Some(px) = r.capture_rgb16() {
                let p = out_dir.join(format!("frame_{:06}.png", r.meta.sequence));
                image_io::write_rgb16(&p, w, h, &px).map_err(|e| e.to_string())?;
            }
            ok += 1;
        }
        Ok((ok, bad, dropped, errors))
    });
    let pb = progress(Some(limit));
    let fed = engine.feed(src.as_mut(), Some(limit), |_| pb.inc(1));
    engine.flush(Duration::from_secs(600));
    engine.shutdown();
    pb.finish_and_clear();
    let (ok, bad, dropped, errors) = writer
        .join()
        .map_err(|_| "the PNG writer thread panicked".to_string())??;
    let latency = latency.and_then(|t| t.join().ok()).unwrap_or_default();
    // A source that fails mid-stream (a camera unplugged) still leaves the
    // frames made so far, the telemetry and the summary; then the error.
    let (fed, source_error) = match fed {
        Ok(n) => (n, None),
        Err(e) => (engine.frames_submitted(), Some(e.to_string())),
    };
    for e in &errors {
        eprintln!("isp: {e}");
    }
    let csv = out.join("telemetry.csv");
    engine
        .telemetry
        .export_csv(&csv)
        .map_err(|e| e.to_string())?;
    let snap = engine.telemetry.snapshot();
    let mut per: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for e in snap
        .iter()
        .filter(|e| e.kind == EventKind::Stage || e.kind == EventKind::Gpu)
    {
        if e.outcome == Outcome::Ok {
            per.entry(e.stage)
                .or_default()
                .push(e.run_ns() as f64 / 1e6);
        }
    }
    let stages: BTreeMap<&str, serde_json::Value> = per
        .into_iter()
        .map(|(k, v)| {
            let s = bench::Spread::of(v);
            (k, serde_json::json!({"p50_ms": s.p50, "p99_ms": s.p99, "mean_ms": s.mean, "count": s.n}))
        })
        .collect();
    let summary = serde_json::json!({
        "source": src.name(),
        "format": src.format().describe(),
        "path": path,
        "frames": fed,
        "written": ok,
        "failed": bad,
        "frames_dropped_by_engine": dropped,
        "frames_lost_by_camera": engine.device_dropped(),
        "params_version": engine.params.version(),
        "allocator": engine.rm.allocator_name(),
        "backend": engine.backend(),
        "stages": stages,
        "ipa": engine.ipa(),
    });
    let mut summary = summary;
    if camera {
        let l = bench::Spread::of(latency);
        summary["camera"] = serde_json::json!({
            "fps": src.fps(),
            "frames_lent": engine.delivery().lent,
            "frames_copied": engine.delivery().copied,
            "capture_to_preview_ms": {"p50": l.p50, "p99": l.p99, "mean": l.mean, "count": l.n},
            "controls": engine.device_controls(),
        });
    }
    if let Some(e) = &source_error {
        summary["source_error"] = serde_json::json!(e);
    }
    let sp = out.join("summary.json");
    isp_engine::image_io::write_atomic(
        &sp,
        serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n",
    )
    .map_err(|e| format!("{}: {e}", sp.display()))?;
    if let Some(e) = source_error {
        return Err(format!(
            "{e} (stopped after {fed} frames; outputs in {})",
            out.display()
        ));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    if dropped > 0 || engine.device_dropped() > 0 {
        eprintln!(
            "isp: {dropped} frame(s) dropped by the engine, {} lost by the camera",
            engine.device_dropped()
        );
    }
    if bad > 0 {
        return Err(format!("{bad} frame(s) failed"));
    }
    if no_drops && dropped + engine.device_dropped() > 0 {
        return Err(format!(
            "--no-drops: {dropped} frame(s) dropped by the engine, {} lost by the camera",
            engine.device_dropped()
        ));
    }
    Ok(())
}
