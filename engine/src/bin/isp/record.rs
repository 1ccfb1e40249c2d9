//! `isp record`: a source into a new session directory.

use crate::{Res, SourceArgs, camera, opts, progress};
use isp_engine::gpu::Backend;
use isp_engine::pipeline::{Engine, EngineConfig};
use isp_engine::sources::{self, SourceOptions, session::SessionRecorder};
use isp_engine::tuning::Tuning;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(a: Args) -> Res {
    record(
        &a.source,
        &opts(&a.geometry),
        &a.out,
        a.frames,
        a.interval_ms,
    )
}

pub fn record(spec: &str, opts: &SourceOptions, out: &Path, frames: u64, interval_ms: u64) -> Res {
    let mut src = sources::open(Some(spec), opts).map_err(|e| e.to_string())?;
    // A recording gets a directory of its own: a new one, or an empty one.
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .next()
            .is_none();
        if !empty {
            return Err(format!(
                "{}: already exists and is not empty; record into a new or empty directory",
                out.display()
            ));
        }
    }
    let fmt = src.format();
    let rec = SessionRecorder::create(out, fmt, &src.name()).map_err(|e| e.to_string())?;
    if src.is_live() {
        return record_live(src.as_mut(), rec, out, frames);
    }
    let mut rec = rec;
    let mut buf = vec![0u8; fmt.frame_bytes()];
    let pb = progress(Some(frames));
    for _ in 0..frames {
        let Some(meta) = src.next_frame(&mut buf).map_err(|e| e.to_string())? else {
            break;
        };
        rec.write_frame(&meta, &buf).map_err(|e| e.to_string())?;
        pb.inc(1);
        if interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(interval_ms));
        }
    }
    pb.finish_and_clear();
    let n = rec.frames();
    rec.finish().map_err(|e| e.to_string())?;
    println!(
        "recorded {n} frames of {} into {}",
        fmt.describe(),
        out.display()
    );
    Ok(())
}

/// A camera records through the engine, so AE and AWB drive it while it
/// records; each frame's metadata holds the controls that exposed it. A
/// camera that fails mid-stream leaves a finished session of the frames
/// read so far.
fn record_live(
    src: &mut dyn sources::FrameSource,
    rec: SessionRecorder,
    out: &Path,
    frames: u64,
) -> Res {
    let fmt = src.format();
    let engine = Engine::new(
        EngineConfig {
            backend: Backend::Cpu,
            telemetry_spill_dir: Some(out.to_path_buf()),
            ..Default::default()
        },
        Tuning::default(),
    )
    .map_err(|e| e.to_string())?;
    let mut tee = camera::Recording {
        inner: src,
        rec: Some(rec),
        error: None,
    };
    let pb = progress(Some(frames));
    let fed = engine.feed(&mut tee, Some(frames), |_| pb.inc(1));
    engine.flush(Duration::from_secs(60));
    engine.shutdown();
    pb.finish_and_clear();
    let rec = tee.rec.take();
    let n = rec.as_ref().map_or(0, |r| r.frames());
    if let Some(rec) = rec {
        rec.finish().map_err(|e| e.to_string())?;
    }
    if let Some(e) = tee.error {
        return Err(format!("{}: {e} (after {n} frames)", out.display()));
    }
    if let Err(e) = fed {
        return Err(format!(
            "{e} (the {n} frames recorded before it are in {})",
            out.display()
        ));
    }
    println!(
        "recorded {n} frames of {} into {} ({} lost by the camera)",
        fmt.describe(),
        out.display(),
        engine.device_dropped()
    );
    Ok(())
}
