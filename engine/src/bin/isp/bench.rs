//! `isp bench`: measure the pipeline (per-stage and end-to-end ms/frame,
//! optionally the runtime's round trip and lane QoS, the GPU preview alone).

use crate::{Res, parse_backend, parse_path};
use isp_engine::bench;
use isp_engine::gpu::Backend;
use isp_engine::pipeline::PathMode;
use isp_engine::types::{BayerOrder, Packing, RawFormat};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(a: Args) -> Res {
    run_bench(
        a.width,
        a.height,
        a.frames,
        a.path,
        a.runtime.then_some(a.runtime_samples),
        (a.in_flight, a.backend),
        a.telemetry_csv.as_deref(),
    )
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
