//! `isp export-dng`: every frame of a source as a DNG 1.4, run through the
//! engine so that each file carries the white balance its frame was
//! rendered with (AsShotNeutral), the tuning's colour matrix and levels, and
//! the frame's exposure time and gain (ISO = 100 x gain).

use crate::{Res, SourceArgs, load_tuning, opts};
use isp_engine::algorithms::awb_ct::CtCurveParams;
use isp_engine::dng::{self, DngFrame};
use isp_engine::forward_frame_source;
use isp_engine::pipeline::{Engine, EngineConfig, PathMode};
use isp_engine::sources::{self, FrameMeta, FrameSource, SourceError, SourceOptions};
use isp_engine::stages::unpack;
use isp_engine::tuning::Tuning;
use isp_engine::types::Lane;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A source that keeps a copy of the last frame it read.
struct Keep<'a> {
    inner: &'a mut dyn FrameSource,
    last: Vec<u8>,
}

impl FrameSource for Keep<'_> {
    forward_frame_source!(inner);
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        let m = self.inner.next_frame(dst)?;
        self.last.clear();
        self.last.extend_from_slice(dst);
        Ok(m)
    }
}

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(a: Args) -> Res {
    let t = load_tuning(a.tuning.as_deref(), a.source.as_deref())?;
    export_dng(a.source.as_deref(), &opts(&a.geometry), &a.out, t, a.frames)
}

fn export_dng(
    spec: Option<&str>,
    opts: &SourceOptions,
    out: &Path,
    tuning: Tuning,
    frames: Option<u64>,
) -> Res {
    let mut src = sources::open(spec, opts).map_err(|e| e.to_string())?;
    let limit = frames
        .or(src.frame_count())
        .ok_or("a live source needs --frames")?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let engine = Engine::new(
        EngineConfig {
            backend: isp_engine::gpu::Backend::Cpu,
            path: PathMode::Fast,
            ..Default::default()
        },
        tuning,
    )
    .map_err(|e| e.to_string())?;
    let rx = engine.subscribe(true);
    let fmt = src.format();
    let name = src.name();
    let mut keep = Keep {
        inner: &mut *src,
        last: Vec::new(),
    };
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let mut samples = vec![0u16; w * h];
    let mut written = Vec::new();
    for i in 0..limit {
        let mut id = None;
        let n = engine
            .feed(&mut keep, Some(1), |f| id = Some(f))
            .map_err(|e| format!("{name}: {e}"))?;
        let Some(id) = id.filter(|_| n == 1) else {
            break;
        };
        let t0 = std::time::Instant::now();
        let result = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(r) if r.frame_id == id && r.lane == Lane::Realtime => break r,
                Ok(_) => {}
                Err(_) if t0.elapsed() > Duration::from_secs(60) => {
                    return Err(format!("{name}: frame {i} was not processed in 60 s"));
                }
                Err(_) => {}
            }
        };
        if let Some(e) = &result.error {
            return Err(format!("{name}: frame {i}: {e}"));
        }
        let stride = fmt.stride as usize;
        let row_bytes = fmt.min_stride() as usize;
        for (y, row) in samples.chunks_exact_mut(w).enumerate() {
            unpack::unpack_row(&fmt, &keep.last[y * stride..y * stride + row_bytes], row);
        }
        let set = engine.params.snapshot();
        let st = &set.tuning.stages;
        // The gains the frame was rendered with: AWB's, else the tuning's
        // (a still's digital gain is exposure, not white balance).
        let wb = if result.ipa.awb_active {
            result.ipa.wb_gains
        } else {
            st.white_balance.effective()
        };
        let neutral = [
            (wb[1] / wb[0].max(1e-6)) as f64,
            1.0,
            (wb[1] / wb[2].max(1e-6)) as f64,
        ];
        // The ColorMatrix is the camera's under D65 where the tuning knows
        // it (the CT curve's grey at 6500 K and the CCM there); else the
        // frame's own light's (its CCM and neutral), labelled unknown.
        let (ccm, cm_neutral, illuminant) = match ct_curve(&set.tuning) {
            Some(curve) => {
                let (r, b) = curve.at_ct(6500.0);
                (st.ccm.for_ct(6500.0), [r as f64, 1.0, b as f64], 21)
            }
            None => (st.ccm.for_ct(result.ipa.colour_temperature), neutral, 0),
        };
        let ccm = ccm.map(|r| r.map(f64::from));
        let frame = DngFrame {
            width: w,
            height: h,
            cfa: fmt.bayer,
            samples: &samples,
            white_level: st.black_level.white_level.unwrap_or(fmt.max_value()),
            black_level: if st.black_level.enabled {
                st.black_level.levels
            } else {
                [0; 4]
            },
            color_matrix: dng::color_matrix_from_ccm(&ccm, cm_neutral),
            calibration_illuminant: illuminant,
            as_shot_neutral: neutral,
            exposure_time: (result.meta.exposure_us > 0.0)
                .then(|| result.meta.exposure_us as f64 / 1e6),
            iso: Some(
                (result.meta.analogue_gain * 100.0)
                    .round()
                    .clamp(1.0, 65535.0) as u16,
            ),
            camera: &format!("ISP Studio {}", fmt.describe()),
            description: &format!("{name} frame {}", result.meta.sequence),
        };
        drop(result);
        let p = out.join(format!("frame_{i:06}.dng"));
        dng::write(&p, &frame).map_err(|e| e.to_string())?;
        written.push(p.display().to_string());
    }
    let summary = serde_json::json!({
        "source": name,
        "format": fmt.describe(),
        "files": written,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The curve of the tuning's `awb.ct_curve` block, if it has one (on or
/// off: the curve is the sensor's calibration either way).
fn ct_curve(t: &Tuning) -> Option<CtCurveParams> {
    let b = t
        .algorithms
        .iter()
        .find(|b| b.name == isp_engine::algorithms::awb_ct::CtCurveAwb::NAME)?;
    let p: CtCurveParams = serde_json::from_value(b.params.clone()).ok()?;
    (p.ct_curve.len() >= 2).then_some(p)
}
