//! Bursts and brackets from the studio: the player's thread reads the frames
//! (the preview stands still for those few frames), the merge runs on the
//! engine's background lane while the player goes on, and a thread of its
//! own waits for the merged result and the reference to come down the
//! capture path, ready to show side by side.

use super::{PlayerStatus, push_error};
use isp_engine::pipeline::{CaptureReport, CaptureRequest, Engine, FrameResult};
use isp_engine::sources::FrameSource;
use isp_engine::types::Lane;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An RGBA8 image of a capture's result.
#[derive(Clone, Debug)]
pub struct CaptureImage {
    pub rgba: Vec<u8>,
    pub size: [usize; 2],
}

impl CaptureImage {
    /// The display-encoded RGB16 of the capture path, as RGBA8.
    pub fn from_rgb16(rgb: &[u16], size: [usize; 2]) -> CaptureImage {
        let rgba = rgb
            .chunks_exact(3)
            .take(size[0] * size[1])
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8, 255])
            .collect();
        CaptureImage { rgba, size }
    }
}

/// A finished capture: the report and both developed images.
#[derive(Clone, Debug)]
pub struct CaptureShown {
    pub report: CaptureReport,
    pub merged: CaptureImage,
    pub reference: CaptureImage,
    /// When it finished, counting from the player's start (a new one is a
    /// new value).
    pub serial: u64,
}

/// Where the studio's capture stands.
#[derive(Clone, Debug, Default)]
pub enum CaptureState {
    #[default]
    Idle,
    /// What is under way, in words.
    Running(String),
    Done(Arc<CaptureShown>),
    Failed(String),
}

/// How long the images of a merged capture may take to develop.
const DEVELOP_WAIT: Duration = Duration::from_secs(120);

/// Read `req`'s frames from `src` on this (the player's) thread, then leave
/// the merge and the results to a thread of their own.
pub(super) fn start(
    engine: &Arc<Engine>,
    src: &mut dyn FrameSource,
    req: CaptureRequest,
    status: &Arc<Mutex<PlayerStatus>>,
    serial: u64,
) {
    let set = |s: CaptureState| status.lock().unwrap_or_else(|p| p.into_inner()).capture = s;
    set(CaptureState::Running(format!("reading {:?}", req.kind)));
    let pending = match engine.capture_start(src, &req) {
        Ok(p) => p,
        Err(e) => {
            push_error(status, format!("capture: {e}"));
            set(CaptureState::Failed(e.to_string()));
            return;
        }
    };
    set(CaptureState::Running(format!(
        "merging plan {} ({} of {} frames chosen)",
        pending.plan.id,
        pending.selection.chosen.len(),
        pending.plan.frames()
    )));
    let engine = engine.clone();
    let status = status.clone();
    let spawned = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            // Subscribed only just before the results are submitted (the
            // engine does it): the previews meanwhile are not held here.
            let out = engine
                .capture_finish_watched(pending)
                .map_err(|e| e.to_string())
                .and_then(|(report, rx)| develop(&rx, report, serial));
            let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
            match out {
                Ok(shown) => {
                    st.notes.push(format!(
                        "capture: plan {} merged {} frames on {} in {:.0} ms",
                        shown.report.plan.id,
                        shown.report.selection.chosen.len(),
                        shown.report.merged_on,
                        shown.report.total_ms
                    ));
                    st.capture = CaptureState::Done(Arc::new(shown));
                }
                Err(e) => {
                    st.errors.push(format!("capture: {e}"));
                    st.capture = CaptureState::Failed(e);
                }
            }
        });
    if let Err(e) = spawned {
        set(CaptureState::Failed(format!(
            "no thread for the capture: {e}"
        )));
    }
}

/// Wait for the merged frame and the reference on the capture path.
fn develop(
    rx: &crossbeam_channel::Receiver<Arc<FrameResult>>,
    report: CaptureReport,
    serial: u64,
) -> Result<CaptureShown, String> {
    let ids = [report.merged_frame, report.reference_frame];
    let mut images: [Option<CaptureImage>; 2] = [None, None];
    let t0 = Instant::now();
    while images.iter().any(Option::is_none) {
        let left = DEVELOP_WAIT.saturating_sub(t0.elapsed());
        let r = rx.recv_timeout(left).map_err(|_| {
            format!(
                "plan {}: the merged frames were not developed in {DEVELOP_WAIT:?}",
                report.plan.id
            )
        })?;
        let Some(k) = ids.iter().position(|&i| i == r.frame_id) else {
            continue;
        };
        if r.lane != Lane::Background {
            continue;
        }
        let rgb = r.capture_rgb16().ok_or_else(|| {
            format!(
                "plan {}: frame {} came back without an image ({}{})",
                report.plan.id,
                r.frame_id,
                r.outcome.name(),
                r.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        })?;
        let size = [r.format.width as usize, r.format.height as usize];
        images[k] = Some(CaptureImage::from_rgb16(&rgb, size));
    }
    let [Some(merged), Some(reference)] = images else {
        unreachable!("the loop ends with both images")
    };
    Ok(CaptureShown {
        report,
        merged,
        reference,
        serial,
    })
}
