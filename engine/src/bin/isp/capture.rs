//! `isp capture`: a burst (denoise) or an exposure bracket (HDR) from a
//! source, merged by the engine's FusionManager on the background lane, the
//! merged result and the reference developed on the capture path.

use crate::{Res, SourceArgs, load_tuning, opts, parse_backend};
use isp_engine::fusion::FusionKind;
use isp_engine::gpu::Backend;
use isp_engine::image_io;
use isp_engine::pipeline::{CaptureRequest, Engine, EngineConfig, FrameResult, PathMode};
use isp_engine::sources::{self, SourceOptions};
use isp_engine::tuning::Tuning;
use isp_engine::types::Lane;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(a: Args) -> Res {
    let ev = a.bracket.as_deref().map(parse_bracket).transpose()?;
    let t = load_tuning(a.tuning.as_deref(), a.source.as_deref())?;
    capture(
        a.source.as_deref(),
        &opts(&a.geometry),
        &a.out,
        t,
        a.burst,
        ev,
        a.backend,
    )
}

/// `-2,0,2` -> [-2, 0, 2].
fn parse_bracket(s: &str) -> Result<Vec<f32>, String> {
    s.split(',')
        .map(|w| {
            w.trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("--bracket {s}: `{}` is not an EV step", w.trim()))
        })
        .collect()
}

/// The capture-path results of frames `ids`, in that order.
fn results(
    rx: &crossbeam_channel::Receiver<Arc<FrameResult>>,
    ids: &[u64],
) -> Result<Vec<Arc<FrameResult>>, String> {
    let mut out: Vec<Option<Arc<FrameResult>>> = vec![None; ids.len()];
    let t0 = std::time::Instant::now();
    while out.iter().any(Option::is_none) {
        if t0.elapsed() > Duration::from_secs(300) {
            return Err("the merged frame was not developed in 300 s".into());
        }
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100))
            && r.lane == Lane::Background
            && let Some(i) = ids.iter().position(|&i| i == r.frame_id)
        {
            if let Some(e) = &r.error {
                return Err(format!("frame {}: {e}", r.frame_id));
            }
            out[i] = Some(r);
        }
    }
    Ok(out.into_iter().flatten().collect())
}

#[allow(clippy::too_many_arguments)]
pub fn capture(
    spec: Option<&str>,
    opts: &SourceOptions,
    out: &Path,
    tuning: Tuning,
    burst: Option<usize>,
    bracket: Option<Vec<f32>>,
    backend: Backend,
) -> Res {
    let kind = match (burst, bracket) {
        (Some(frames), None) => FusionKind::Burst { frames },
        (None, Some(ev)) => FusionKind::Bracket { ev },
        _ => return Err("give one of --burst N or --bracket EV,EV,...".into()),
    };
    let mut src = sources::open(spec, opts).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let engine = Engine::new(
        EngineConfig {
            backend,
            path: PathMode::Fast,
            telemetry_spill_dir: Some(out.to_path_buf()),
            ..Default::default()
        },
        tuning,
    )
    .map_err(|e| e.to_string())?;
    let rx = engine.subscribe(true);
    let report = engine
        .capture(&mut *src, &CaptureRequest::new(kind))
        .map_err(|e| format!("{}: {e}", src.name()))?;
    let got = results(&rx, &[report.merged_frame, report.reference_frame])?;
    let f = report.merged_format;
    let (w, h) = (f.width as usize, f.height as usize);
    let mut files = Vec::new();
    for (r, name) in got.iter().zip(["merged.png", "reference.png"]) {
        let px = r
            .capture_rgb16()
            .ok_or_else(|| format!("frame {}: no capture image", r.frame_id))?;
        let p = out.join(name);
        image_io::write_rgb16(&p, w, h, &px).map_err(|e| format!("{}: {e}", p.display()))?;
        files.push(name.to_string());
    }
    drop(got);
    // The merged mosaic, unpacked (16-bit little-endian samples of
    // `merged_format`): `isp process raw:merged.raw --width W --height H
    // --bits B` develops it again.
    let raw: Vec<u8> = report
        .merged_raw
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let p = out.join("merged.raw");
    isp_engine::image_io::write_atomic(&p, raw).map_err(|e| format!("{}: {e}", p.display()))?;
    files.push("merged.raw".into());
    if let Some(hdr) = &report.hdr {
        // Linear HDR above black at the reference's exposure, f32 LE.
        let bytes: Vec<u8> = hdr.iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = out.join("hdr_linear.f32");
        isp_engine::image_io::write_atomic(&p, bytes)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        files.push("hdr_linear.f32".into());
    }
    let mut json = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    json["source"] = serde_json::json!(src.name());
    json["backend"] = serde_json::json!(engine.backend().to_string());
    json["files"] = serde_json::json!(files);
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    let p = out.join("report.json");
    isp_engine::image_io::write_atomic(&p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
    println!("{text}");
    engine.shutdown();
    Ok(())
}
