//! `isp`: the headless CLI of ISP Studio.

mod bench;
mod calibrate;
mod camera;
mod capture;
mod export_dng;
mod info;
mod process;
mod record;
mod tuning;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use isp_engine::allocator::AllocatorKind;
use isp_engine::gpu::Backend;
use isp_engine::pipeline::PathMode;
use isp_engine::sources::{self, SourceOptions};
use isp_engine::tuning::Tuning;
use isp_engine::types::BayerOrder;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

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
pub(crate) struct SourceArgs {
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

pub(crate) fn parse_bayer(s: &str) -> Result<BayerOrder, String> {
    BayerOrder::parse(s).ok_or_else(|| format!("`{s}` is not one of RGGB, BGGR, GRBG, GBRG"))
}

pub(crate) fn parse_path(s: &str) -> Result<PathMode, String> {
    match s {
        "fast" => Ok(PathMode::Fast),
        "slow" => Ok(PathMode::Slow),
        _ => Err(format!("`{s}` is not fast or slow")),
    }
}

pub(crate) fn parse_backend(s: &str) -> Result<Backend, String> {
    Backend::parse(s).ok_or_else(|| format!("`{s}` is not cpu, gpu or auto"))
}

pub(crate) fn parse_alloc(s: &str) -> Result<AllocatorKind, String> {
    AllocatorKind::parse(s).ok_or_else(|| format!("`{s}` is not heap, memfd, dmabuf or auto"))
}

/// Each verb's arguments live beside its code (`process.rs`, `record.rs`, ...).
#[derive(Subcommand)]
enum Cmd {
    /// List the cameras (V4L2 capture devices): formats, sizes, frame
    /// rates and controls.
    Devices(camera::DevicesArgs),
    /// Run the pipeline and write PNGs, telemetry.csv and summary.json.
    Process(process::Args),
    /// Record a source into a new session directory (a camera records
    /// through the engine, with AE and AWB running).
    Record(record::Args),
    /// Capture a burst (merged to lower the noise) or an exposure bracket
    /// (merged into HDR, tone mapped) and develop it: merged.png and
    /// reference.png (16-bit), merged.raw, report.json.
    Capture(capture::Args),
    /// Write every frame of a source as a DNG 1.4 (frame_NNNNNN.dng): CFA
    /// pattern, black and white levels and the colour matrix from the
    /// tuning, AsShotNeutral from the frame's white balance, exposure time
    /// and ISO (100 x gain).
    ExportDng(export_dng::Args),
    /// Calibrate a sensor from captures: black level (--dark), lens
    /// shading (--flat SRC[@CT]), CCMs per colour temperature and the CT
    /// curve (--chart SRC@CT: a ColorChecker, found automatically or from
    /// --corners), noise (--burst, else the chart's patches). Writes
    /// tuning.json, report.json and report.html; --synthetic calibrates a
    /// rendered set with known truth and reports the accuracy.
    Calibrate(calibrate::Args),
    /// Describe a source.
    Info(info::Args),
    /// Print the built-in tuning (a starting point for a tuning file), or
    /// check a tuning file and print it normalised; import a libcamera
    /// tuning file onto it, or export it as one.
    Tuning(tuning::Args),
    /// Measure the pipeline: JSON with per-stage and end-to-end ms/frame.
    Bench(bench::Args),
}

pub(crate) fn opts(g: &SourceArgs) -> SourceOptions {
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
        Cmd::Devices(a) => camera::devices(a.json),
        Cmd::Process(a) => process::run(a),
        Cmd::Record(a) => record::run(a),
        Cmd::Capture(a) => capture::run(a),
        Cmd::ExportDng(a) => export_dng::run(a),
        Cmd::Calibrate(a) => calibrate::run(a),
        Cmd::Info(a) => info::run(a),
        Cmd::Tuning(a) => tuning::run(a),
        Cmd::Bench(a) => bench::run(a),
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

pub(crate) fn load_tuning(explicit: Option<&Path>, spec: Option<&str>) -> Result<Tuning, String> {
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

pub(crate) fn progress(total: Option<u64>) -> ProgressBar {
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
