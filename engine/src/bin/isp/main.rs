//! `isp`: the headless CLI of ISP Studio.

mod calibrate;
mod camera;
mod capture;
mod export_dng;
mod record;
mod tuning;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use isp_engine::allocator::AllocatorKind;
use isp_engine::bench;
use isp_engine::gpu::Backend;
use isp_engine::image_io;
use isp_engine::pipeline::{Engine, EngineConfig, PathMode};
use isp_engine::sources::{self, SourceOptions};
use isp_engine::telemetry::EventKind;
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Outcome, Packing, RawFormat};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "isp",
    version,
    about = "ISP Studio engine: process, record, inspect and benchmark RAW camera frames"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone, Default)]
struct SourceArgs {
    /// Width in pixels (raw: and synthetic: sources).
    #[arg(long)]
    width: Option<u32>,
    /// Height in pixels (raw: and synthetic: sources).
    #[arg(long)]
    height: Option<u32>,
    /// Bits per sample: 8, 10, 12, 14 or 16.
    #[arg(long)]
    bits: Option<u8>,
    /// Bayer order: RGGB, BGGR, GRBG or GBRG.
    #[arg(long, value_parser = parse_bayer)]
    bayer: Option<BayerOrder>,
    /// MIPI CSI-2 packed samples (RAW10P/RAW12P).
    #[arg(long)]
    packed: bool,
    /// Bytes per row, when rows are padded.
    #[arg(long)]
    stride: Option<u32>,
    /// A camera's pixel format, as a fourcc: pRAA (RAW10 CSI-2 packed),
    /// RG10, RG12, ... (`isp devices` lists them).
    #[arg(long = "format")]
    fourcc: Option<String>,
    /// A camera's frame rate.
    #[arg(long)]
    fps: Option<f32>,
}

fn parse_bayer(s: &str) -> Result<BayerOrder, String> {
    BayerOrder::parse(s).ok_or_else(|| format!("`{s}` is not one of RGGB, BGGR, GRBG, GBRG"))
}

fn parse_path(s: &str) -> Result<PathMode, String> {
    match s {
        "fast" => Ok(PathMode::Fast),
        "slow" => Ok(PathMode::Slow),
        _ => Err(format!("`{s}` is not fast or slow")),
    }
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    Backend::parse(s).ok_or_else(|| format!("`{s}` is not cpu, gpu or auto"))
}

fn parse_alloc(s: &str) -> Result<AllocatorKind, String> {
    AllocatorKind::parse(s).ok_or_else(|| format!("`{s}` is not heap, memfd, dmabuf or auto"))
}

#[derive(Subcommand)]
enum Cmd {
    /// List the cameras (V4L2 capture devices): formats, sizes, frame
    /// rates and controls.
    Devices {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the pipeline and write PNGs, telemetry.csv and summary.json.
    Process {
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
    },
    /// Record a source into a new session directory (a camera records
    /// through the engine, with AE and AWB running).
    Record {
        source: String,
        #[command(flatten)]
        geometry: SourceArgs,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        frames: u64,
        /// Milliseconds to wait between frames (for tests of interrupted recordings).
        #[arg(long, hide = true, default_value_t = 0)]
        interval_ms: u64,
    },
    /// Capture a burst (merged to lower the noise) or an exposure bracket
    /// (merged into HDR, tone mapped) and develop it: merged.png and
    /// reference.png (16-bit), merged.raw, report.json.
    Capture {
        source: Option<String>,
        #[command(flatten)]
        geometry: SourceArgs,
        #[arg(long)]
        out: PathBuf,
        /// Frames of a burst (2 to 16).
        #[arg(long, conflicts_with = "bracket")]
        burst: Option<usize>,
        /// EV steps of a bracket, e.g. -2,0,2.
        #[arg(long, allow_hyphen_values = true)]
        bracket: Option<String>,
        #[arg(long)]
        tuning: Option<PathBuf>,
        #[arg(long, default_value = "auto", value_parser = parse_backend)]
        backend: Backend,
    },
    /// Write every frame of a source as a DNG 1.4 (frame_NNNNNN.dng): CFA
    /// pattern, black and white levels and the colour matrix from the
    /// tuning, AsShotNeutral from the frame's white balance, exposure time
    /// and ISO (100 x gain).
    ExportDng {
        source: Option<String>,
        #[command(flatten)]
        geometry: SourceArgs,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        tuning: Option<PathBuf>,
        /// Frames to write (default: all of a finite source).
        #[arg(long)]
        frames: Option<u64>,
    },
    /// Calibrate a sensor from captures: black level (--dark), lens
    /// shading (--flat SRC[@CT]), CCMs per colour temperature and the CT
    /// curve (--chart SRC@CT: a ColorChecker, found automatically or from
    /// --corners), noise (--burst, else the chart's patches). Writes
    /// tuning.json, report.json and report.html; --synthetic calibrates a
    /// rendered set with known truth and reports the accuracy.
    Calibrate {
        #[command(flatten)]
        geometry: SourceArgs,
        /// Dark frames (a source; its frames averaged). Repeatable.
        #[arg(long = "dark")]
        darks: Vec<String>,
        /// A flat field, optionally with its colour temperature: SRC@5000.
        #[arg(long = "flat")]
        flats: Vec<String>,
        /// A ColorChecker capture and its light's colour temperature: SRC@6500.
        #[arg(long = "chart")]
        charts: Vec<String>,
        /// Frames of one still scene, for the temporal noise.
        #[arg(long)]
        burst: Option<String>,
        /// The centres of patches 1, 6, 19, 24 of the n-th --chart, in
        /// pixels: x1,y1,x6,y6,x19,y19,x24,y24.
        #[arg(long)]
        corners: Vec<String>,
        /// The lens-shading grid, WxH (default: the base tuning's).
        #[arg(long)]
        grid: Option<String>,
        /// The largest lens-shading gain (default 4).
        #[arg(long)]
        max_gain: Option<f32>,
        /// The base tuning (default: built in).
        #[arg(long)]
        tuning: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Calibrate a rendered set with known truth and report the accuracy.
        #[arg(long)]
        synthetic: bool,
    },
    /// Describe a source.
    Info {
        source: Option<String>,
        #[command(flatten)]
        geometry: SourceArgs,
    },
    /// Print the built-in tuning (a starting point for a tuning file), or
    /// check a tuning file and print it normalised; import a libcamera
    /// tuning file onto it, or export it as one.
    Tuning {
        /// A tuning file to check (the base of an import or an export).
        file: Option<PathBuf>,
        /// Lens-shading grid matching a radial fall-off of this strength (17x13).
        #[arg(long)]
        radial_lsc: Option<f32>,
        /// A libcamera tuning file (Raspberry Pi JSON 2.0, rkisp1 or simple
        /// YAML) to map onto the tuning; what maps and what has no
        /// counterpart is said on stderr.
        #[arg(long)]
        import: Option<PathBuf>,
        /// Write the tuning as a libcamera tuning file: rpi, rkisp1 or simple.
        #[arg(long)]
        export: Option<String>,
        /// The libcamera format of --import, where detection should not decide.
        #[arg(long)]
        format: Option<String>,
        /// The sensor's bit depth (libcamera writes black levels in 16-bit units).
        #[arg(long, default_value_t = 10)]
        bits: u8,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure the pipeline: JSON with per-stage and end-to-end ms/frame.
    Bench {
        #[arg(long, default_value_t = 1920)]
        width: u32,
        #[arg(long, default_value_t = 1080)]
        height: u32,
        #[arg(long, default_value_t = 60)]
        frames: u64,
        #[arg(long, default_value = "fast", value_parser = parse_path)]
        path: PathMode,
        /// Also measure the envelope round trip and the lane QoS.
        #[arg(long)]
        runtime: bool,
        /// Frames in flight: 1 gives each frame the machine (per-frame
        /// compute), 2 or more overlap frames (throughput).
        #[arg(long, default_value_t = 2)]
        in_flight: usize,
        /// Preview backend of the engine run: cpu, gpu or auto. With gpu or
        /// auto (and an adapter) the fused GPU preview is also measured on its
        /// own: compute alone, with transfers, upload and readback, bytes moved.
        #[arg(long, default_value = "auto", value_parser = parse_backend)]
        backend: Backend,
        /// Samples of the `--runtime` measurements (the round trip takes 5x
        /// as many); smaller is quicker and coarser (for tests).
        #[arg(long, hide = true, default_value_t = 1000)]
        runtime_samples: usize,
        /// Also write the run's telemetry as CSV to this file (every row of
        /// a long run, the spilled ones read back).
        #[arg(long)]
        telemetry_csv: Option<PathBuf>,
    },
}

fn opts(g: &SourceArgs) -> SourceOptions {
    SourceOptions {
        width: g.width,
        height: g.height,
        bits: g.bits,
        bayer: g.bayer,
        packed: g.packed,
        stride: g.stride,
        fourcc: g.fourcc.clone(),
        fps: g.fps,
    }
}

/// Mesa's Vulkan device-select layer, an implicit layer every Vulkan
/// instance loads, connects to Wayland and X to find the default GPU; on a
/// machine without a display it prints "error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment." twice. The engine ranks adapters itself
/// (`GpuContext::new`), so the CLI turns the layer off unless the user picks
/// a device through it. (`--backend cpu` never creates a wgpu instance.)
fn quiet_vulkan_device_select() {
    if std::env::var_os("NODEVICE_SELECT").is_none()
        && std::env::var_os("MESA_VK_DEVICE_SELECT").is_none()
    {
        // SAFETY: the first thing `main` does, while no other thread exists
        // to read the environment.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

fn main() -> ExitCode {
    quiet_vulkan_device_select();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISP_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Devices { json } => camera::devices(json),
        Cmd::Process {
            source,
            geometry,
            out,
            tuning,
            frames,
            path,
            linear16,
            allocator,
            backend,
        } => process(
            source.as_deref(),
            &geometry,
            &out,
            tuning.as_deref(),
            frames,
            path,
            linear16,
            allocator,
            backend,
        ),
        Cmd::Record {
            source,
            geometry,
            out,
            frames,
            interval_ms,
        } => record::record(&source, &opts(&geometry), &out, frames, interval_ms),
        Cmd::Capture {
            source,
            geometry,
            out,
            burst,
            bracket,
            tuning,
            backend,
        } => bracket
            .as_deref()
            .map(capture::parse_bracket)
            .transpose()
            .and_then(|ev| Ok((ev, load_tuning(tuning.as_deref(), source.as_deref())?)))
            .and_then(|(ev, t)| {
                capture::capture(
                    source.as_deref(),
                    &opts(&geometry),
                    &out,
                    t,
                    burst,
                    ev,
                    backend,
                )
            }),
        Cmd::ExportDng {
            source,
            geometry,
            out,
            tuning,
            frames,
        } => load_tuning(tuning.as_deref(), source.as_deref()).and_then(|t| {
            export_dng::export_dng(source.as_deref(), &opts(&geometry), &out, t, frames)
        }),
        Cmd::Calibrate {
            geometry,
            darks,
            flats,
            charts,
            burst,
            corners,
            grid,
            max_gain,
            tuning,
            out,
            synthetic,
        } => match &tuning {
            Some(p) => Tuning::load(p).map_err(|e| e.to_string()),
            None => Ok(Tuning::default()),
        }
        .and_then(|t| {
            calibrate::calibrate(
                calibrate::Args {
                    darks,
                    flats,
                    charts,
                    burst,
                    corners,
                    grid,
                    max_gain,
                    synthetic,
                },
                &opts(&geometry),
                &out,
                t,
            )
        }),
        Cmd::Info { source, geometry } => info(source.as_deref(), &geometry),
        Cmd::Tuning {
            file,
            radial_lsc,
            import,
            export,
            format,
            bits,
            out,
        } => tuning::tuning_cmd(tuning::Args {
            file: file.as_deref(),
            radial_lsc,
            import: import.as_deref(),
            export: export.as_deref(),
            format: format.as_deref(),
            bits,
            out: out.as_deref(),
        }),
        Cmd::Bench {
            width,
            height,
            frames,
            path,
            runtime,
            in_flight,
            backend,
            runtime_samples,
            telemetry_csv,
        } => run_bench(
            width,
            height,
            frames,
            path,
            runtime.then_some(runtime_samples),
            (in_flight, backend),
            telemetry_csv.as_deref(),
        ),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isp: error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) type Res = Result<(), String>;

fn load_tuning(explicit: Option<&Path>, spec: Option<&str>) -> Result<Tuning, String> {
    if let Some(p) = explicit {
        return Tuning::load(p).map_err(|e| e.to_string());
    }
    // A session may carry the tuning it was recorded with; a DNG's tags
    // make one (what they could not give is said).
    match sources::session_tuning(spec) {
        Some(r) => {
            for n in sources::source_notes(spec) {
                eprintln!("isp: note: {n}");
            }
            r.map_err(|e| e.to_string())
        }
        None => Ok(Tuning::default()),
    }
}

fn progress(total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} frames [{elapsed_precise}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
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
    let writer = std::thread::spawn(move || -> Result<(u64, u64, Vec<String>), String> {
        let (mut ok, mut bad, mut errors) = (0, 0, Vec::new());
        while let Ok(r) = results.recv() {
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
        Ok((ok, bad, errors))
    });
    let pb = progress(Some(limit));
    let fed = engine.feed(src.as_mut(), Some(limit), |_| pb.inc(1));
    engine.flush(Duration::from_secs(600));
    engine.shutdown();
    pb.finish_and_clear();
    let (ok, bad, errors) = writer
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
    let mut drops = 0u64;
    for e in snap
        .iter()
        .filter(|e| e.kind == EventKind::Stage || e.kind == EventKind::Gpu)
    {
        if e.outcome == Outcome::Dropped {
            drops += 1;
        }
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
        "drops": drops,
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
            "dropped": engine.device_dropped(),
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
    std::fs::write(
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
    if bad > 0 {
        return Err(format!("{bad} frame(s) failed"));
    }
    Ok(())
}

fn info(spec: Option<&str>, g: &SourceArgs) -> Res {
    let mut src = sources::open(spec, &opts(g)).map_err(|e| e.to_string())?;
    let fmt = src.format();
    // A session or raw file is read through once: every frame's size (and a
    // session's CRC-32) is checked, so a corrupt one is named here.
    if let (Some(n), false) = (src.frame_count(), src.is_live()) {
        let mut buf = vec![0u8; fmt.frame_bytes()];
        for _ in 0..n {
            if src
                .next_frame(&mut buf)
                .map_err(|e| e.to_string())?
                .is_none()
            {
                break;
            }
        }
    }
    let v = serde_json::json!({
        "source": src.name(),
        "format": fmt,
        "describe": fmt.describe(),
        "frame_bytes": fmt.frame_bytes(),
        "frames": src.frame_count(),
        "live": src.is_live(),
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(())
}

fn run_bench(
    width: u32,
    height: u32,
    frames: u64,
    path: PathMode,
    runtime: Option<usize>,
    (in_flight, backend): (usize, Backend),
    telemetry_csv: Option<&Path>,
) -> Res {
    // The bench renders RGGB RAW10 frames: a Bayer mosaic is made of whole
    // 2x2 tiles, so both sides must be even and non-zero.
    let fmt = RawFormat::new(width, height, 10, BayerOrder::Rggb, Packing::Plain);
    fmt.validate().map_err(|e| {
        format!(
            "bench: --width {width} --height {height} is not a frame size the bench can run: {e}"
        )
    })?;
    if frames == 0 {
        return Err("bench: --frames 0 measures nothing; give at least 1".into());
    }
    if runtime == Some(0) {
        return Err("bench: --runtime-samples 0 measures nothing; give at least 1".into());
    }
    let p = bench::pipeline_with(
        width,
        height,
        frames,
        path,
        in_flight.max(1),
        backend,
        telemetry_csv,
    )
    .map_err(|e| e.to_string())?;
    let on_gpu = p.backend.is_gpu();
    let mut v = serde_json::to_value(&p).map_err(|e| e.to_string())?;
    if on_gpu {
        let g = bench::gpu_preview(width, height, frames as usize, Packing::Plain)?;
        v["gpu_preview"] = serde_json::to_value(&g).unwrap_or_default();
    }
    if let Some(n) = runtime {
        v["roundtrip_us"] = serde_json::to_value(bench::roundtrip(5 * n)).unwrap_or_default();
        v["qos"] = serde_json::to_value(bench::qos(n)).unwrap_or_default();
    }
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(())
}
