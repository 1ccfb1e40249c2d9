//! FusionManager: multi-frame plans on the background lane. A plan is made
//! (`create_plan`: a burst to merge for denoise, or an exposure bracket for
//! HDR), reserves its buffers up front (`reserve_for_plan`: one Bayer16
//! buffer per frame and one for the result, with an expiry the
//! Housekeeper enforces if the frames never arrive), picks its frames
//! (`select_frames`: the reference by sharpness, frames after a sequence gap
//! or blurred by motion left out), works out how to merge them
//! (`build_merge_spec`: per-tile alignment and the noise model) and merges
//! (`merge`, scheduled on the background lane by the engine). The
//! reservation either commits into the merge or is cancelled or expires; it
//! never leaks.
//!
//! | file | what |
//! |---|---|
//! | `align.rs` (+ `shaders/align.wgsl`, run by `gpu::GpuAlign`) | coarse-to-fine tile alignment |
//! | `merge.rs` (+ `shaders/merge.wgsl`, run by `gpu::GpuMerge`) | the burst merge: noise-aware, robust to motion |
//! | `hdr.rs` | bracket merge into linear HDR, local tone map |
//!
//! The bracket merge and the tone map are CPU code so far. The engine's
//! background lane aligns and merges bursts on its GPU when it has one.
//!
//! Its own crate (`isp-fusion`, layer 2: it knows only `isp-core`'s
//! buffers and formats); the engine re-exports it as `fusion`.

#![cfg_attr(
    test,
    allow(
        clippy::needless_range_loop,
        clippy::too_many_arguments,
        clippy::field_reassign_with_default
    )
)]

pub mod align;
pub mod hdr;
mod job;
pub mod merge;

pub use job::{
    AlignWith, BracketMerge, BurstMerge, FusionDone, FusionJob, FusionReply, GpuOps, Pause,
};

use align::{Alignment, Grey};
use isp_core::resource_manager::{
    BufferKind, BufferRef, BufferSpec, Lifecycle, PlanId, ResourceManager, RmError,
};
use isp_core::types::RawFormat;
use merge::{MergeParams, MergeStats, NoiseModel};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a plan merges.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FusionKind {
    /// `frames` frames of one exposure, merged to lower the noise.
    Burst { frames: usize },
    /// One frame per EV step (relative to the metered exposure), merged
    /// into one HDR frame.
    Bracket { ev: Vec<f32> },
}

impl FusionKind {
    pub fn frames(&self) -> usize {
        match self {
            FusionKind::Burst { frames } => *frames,
            FusionKind::Bracket { ev } => ev.len(),
        }
    }
}

/// A multi-frame plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FusionPlan {
    pub id: PlanId,
    pub kind: FusionKind,
    pub format: RawFormat,
}

impl FusionPlan {
    /// Frames it captures.
    pub fn frames(&self) -> usize {
        self.kind.frames()
    }
    /// The spec of each of its buffers: an unpacked mosaic.
    pub fn spec(&self) -> BufferSpec {
        BufferSpec::new(BufferKind::Bayer16, self.format.width, self.format.height)
    }
}

/// What a plan needs to know of a frame (from its metadata).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FrameInfo {
    pub sequence: u64,
    /// Frames the source lost just before it.
    pub dropped_before: u64,
    pub exposure_us: f32,
    pub analogue_gain: f32,
}

/// A frame offered to a plan: what it is and its sharpness (the
/// statistics' focus measure).
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub meta: FrameInfo,
    pub focus: f64,
}

/// The frames a plan merges.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Selection {
    /// Indices into the candidates, in capture order.
    pub chosen: Vec<usize>,
    /// The reference: an index into the candidates (one of `chosen`).
    pub reference: usize,
    /// Left out, and why.
    pub rejected: Vec<(usize, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FusionError {
    #[error("plan {0}: {1}")]
    Plan(PlanId, String),
    #[error(transparent)]
    Buffers(#[from] RmError),
}

/// How a plan's frames are merged: computed from the frames themselves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeSpec {
    pub plan: PlanId,
    pub kind: FusionKind,
    /// Index into the merged frames (the chosen ones, in order).
    pub reference: usize,
    /// Per merged frame (the reference's is the identity).
    pub alignments: Vec<Alignment>,
    pub params: MergeParams,
    /// Per merged frame, for a bracket.
    pub exposures: Vec<hdr::Exposure>,
    /// Frames aligned by the `align_with` given (the GPU's); the rest here.
    pub aligned_elsewhere: usize,
}

/// What a merge made.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOutput {
    /// A mosaic in the frames' format (for a bracket: the tone-mapped one).
    pub mosaic: Vec<u16>,
    /// A bracket's linear HDR mosaic (above black, at the reference's
    /// exposure).
    pub hdr: Option<Vec<f32>>,
    pub stats: MergeStats,
}

#[derive(Debug, Default)]
pub struct FusionManager {
    next: AtomicU64,
}

/// Frames whose focus is below this share of the sharpest are blurred.
pub const BLUR_SHARE: f64 = 0.6;

impl FusionManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// A plan of `kind` for frames of `format`.
    pub fn create_plan(
        &self,
        kind: FusionKind,
        format: RawFormat,
    ) -> Result<FusionPlan, FusionError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let n = kind.frames();
        match &kind {
            FusionKind::Burst { frames } if !(2..=16).contains(frames) => {
                return Err(FusionError::Plan(
                    id,
                    format!("a burst is 2 to 16 frames, not {frames}"),
                ));
            }
            FusionKind::Bracket { ev } if !(2..=9).contains(&n) => {
                return Err(FusionError::Plan(
                    id,
                    format!("a bracket is 2 to 9 exposures, not {}", ev.len()),
                ));
            }
            FusionKind::Bracket { ev } if ev.iter().any(|e| !e.is_finite() || e.abs() > 8.0) => {
                return Err(FusionError::Plan(
                    id,
                    format!("bracket steps are -8 to 8 EV: {ev:?}"),
                ));
            }
            _ => {}
        }
        if !format.width.is_multiple_of(2)
            || !format.height.is_multiple_of(2)
            || format.width < 64
            || format.height < 64
        {
            return Err(FusionError::Plan(
                id,
                format!(
                    "{}x{}: merges need even sizes of at least 64x64",
                    format.width, format.height
                ),
            ));
        }
        Ok(FusionPlan { id, kind, format })
    }

    /// Reserve the plan's buffers (one per frame and the result) for
    /// `ttl_ns`: committed when the frames arrive, else freed by the
    /// Housekeeper's sweep when the time runs out.
    pub fn reserve_for_plan(
        &self,
        rm: &ResourceManager,
        plan: &FusionPlan,
        ttl_ns: u64,
    ) -> Result<(), RmError> {
        rm.reserve_for_plan(plan.id, plan.frames() + 1, plan.spec(), ttl_ns)
    }

    /// Take the reserved buffers: the frames' then the result's.
    pub fn commit(
        &self,
        rm: &ResourceManager,
        plan: &FusionPlan,
    ) -> Result<Vec<BufferRef>, RmError> {
        rm.commit_reservation(plan.id, &format!("fusion plan {}", plan.id))
    }

    /// Give the reservation back (the plan was cancelled, its source stopped).
    pub fn cancel(
        &self,
        rm: &ResourceManager,
        key: &Lifecycle,
        plan: &FusionPlan,
    ) -> Result<(), RmError> {
        rm.cancel_reservation(key, plan.id)
    }

    /// Choose the frames to merge: a frame that follows a sequence gap
    /// (the scene moved on meanwhile) or is blurred (focus under
    /// [`BLUR_SHARE`] of the sharpest) is left out; the reference is the
    /// sharpest of the first three kept (HDR+'s choice: sharp, and close to
    /// the shutter press). A bracket keeps every frame (each exposure is
    /// needed) and its reference is the frame at 0 EV (else the nearest).
    pub fn select_frames(
        &self,
        plan: &FusionPlan,
        candidates: &[Candidate],
    ) -> Result<Selection, FusionError> {
        if candidates.len() != plan.frames() {
            return Err(FusionError::Plan(
                plan.id,
                format!(
                    "{} frames arrived for a plan of {}",
                    candidates.len(),
                    plan.frames()
                ),
            ));
        }
        if let FusionKind::Bracket { ev } = &plan.kind {
            let reference = (0..ev.len())
                .min_by(|&a, &b| ev[a].abs().total_cmp(&ev[b].abs()))
                .unwrap_or(0);
            return Ok(Selection {
                chosen: (0..ev.len()).collect(),
                reference,
                rejected: Vec::new(),
            });
        }
        let sharpest = candidates.iter().map(|c| c.focus).fold(0.0f64, f64::max);
        let mut chosen = Vec::new();
        let mut rejected = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            if i > 0 && c.meta.dropped_before > 0 {
                rejected.push((
                    i,
                    format!("{} frame(s) lost before it", c.meta.dropped_before),
                ));
            } else if c.focus < BLUR_SHARE * sharpest {
                rejected.push((
                    i,
                    format!(
                        "blurred: focus {:.4} of the sharpest's {sharpest:.4}",
                        c.focus
                    ),
                ));
            } else {
                chosen.push(i);
            }
        }
        let reference = chosen
            .iter()
            .take(3)
            .copied()
            .max_by(|&a, &b| candidates[a].focus.total_cmp(&candidates[b].focus))
            .ok_or_else(|| FusionError::Plan(plan.id, "no usable frame".into()))?;
        Ok(Selection {
            chosen,
            reference,
            rejected,
        })
    }

    /// Align every chosen frame to the reference and settle the merge's
    /// parameters. `frames` are the chosen frames' mosaics (in the order of
    /// `sel.chosen`), `metas` their metadata, `noise` the sensor's noise at
    /// unity gain (scaled here by each frame's analogue gain).
    #[allow(clippy::too_many_arguments)]
    pub fn build_merge_spec(
        &self,
        plan: &FusionPlan,
        sel: &Selection,
        frames: &[&[u16]],
        metas: &[FrameInfo],
        black: f32,
        noise: NoiseModel,
        pause: Pause,
        align_with: Option<AlignWith>,
    ) -> Result<MergeSpec, FusionError> {
        let (w, h) = (plan.format.width as usize, plan.format.height as usize);
        if frames.len() != sel.chosen.len() || metas.len() != frames.len() {
            return Err(FusionError::Plan(
                plan.id,
                format!("{} frames for {} chosen", frames.len(), sel.chosen.len()),
            ));
        }
        if let Some(bad) = frames.iter().position(|f| f.len() < w * h) {
            return Err(FusionError::Plan(
                plan.id,
                format!(
                    "frame {bad} holds {} samples, not {}",
                    frames[bad].len(),
                    w * h
                ),
            ));
        }
        let reference = sel
            .chosen
            .iter()
            .position(|&c| c == sel.reference)
            .ok_or_else(|| FusionError::Plan(plan.id, "the reference is not chosen".into()))?;
        let white = plan.format.max_value() as f32;
        let at_gain = |m: &FrameInfo| {
            let g = m.analogue_gain.max(1e-3);
            NoiseModel {
                shot: noise.shot * g,
                read: noise.read * g * g,
            }
        };
        let exposure = |m: &FrameInfo| (m.exposure_us.max(1e-3) * m.analogue_gain.max(1e-3)) as f64;
        let ratios: Vec<f32> = match &plan.kind {
            FusionKind::Burst { .. } => vec![1.0; frames.len()],
            FusionKind::Bracket { ev } => {
                // From the frames' own metadata where they have it, else
                // from the plan's steps.
                let known = metas.iter().all(|m| m.exposure_us > 0.0);
                (0..frames.len())
                    .map(|i| {
                        if known {
                            (exposure(&metas[i]) / exposure(&metas[reference])) as f32
                        } else {
                            (ev[sel.chosen[i]] - ev[sel.reference]).exp2()
                        }
                    })
                    .collect()
            }
        };
        // Align in the reference's exposure, everything clipped where the
        // brightest frame clips.
        let ceiling = ratios
            .iter()
            .map(|r| (white - black) / r)
            .fold(f32::MAX, f32::min);
        let greys: Vec<Grey> = frames
            .iter()
            .zip(&ratios)
            .map(|(f, r)| Grey::from_mosaic(f, w, h, black, 1.0 / r, ceiling))
            .collect();
        let mut aligned_elsewhere = 0;
        let alignments = greys
            .iter()
            .enumerate()
            .map(|(i, g)| {
                pause();
                if i == reference {
                    return Alignment::identity(g.width, g.height);
                }
                // Elsewhere where it can, else (or when that fails) here.
                match align_with.and_then(|f| f(&greys[reference], g).ok()) {
                    Some(a) => {
                        aligned_elsewhere += 1;
                        a
                    }
                    None => align::align_pausing(&greys[reference], g, pause),
                }
            })
            .collect();
        Ok(MergeSpec {
            plan: plan.id,
            kind: plan.kind.clone(),
            reference,
            alignments,
            params: MergeParams {
                black,
                white,
                noise: at_gain(&metas[reference]),
                robustness: 1.0,
            },
            exposures: ratios
                .iter()
                .zip(metas)
                .map(|(&ratio, m)| hdr::Exposure {
                    ratio,
                    noise: at_gain(m),
                })
                .collect(),
            aligned_elsewhere,
        })
    }

    /// Merge by `spec` (the CPU reference).
    pub fn merge(
        spec: &MergeSpec,
        frames: &[&[u16]],
        w: usize,
        h: usize,
        pause: Pause,
    ) -> MergeOutput {
        match spec.kind {
            FusionKind::Burst { .. } => {
                let (mosaic, stats) = merge::merge_burst(
                    frames,
                    w,
                    h,
                    spec.reference,
                    &spec.alignments,
                    &spec.params,
                    pause,
                );
                MergeOutput {
                    mosaic,
                    hdr: None,
                    stats,
                }
            }
            FusionKind::Bracket { .. } => {
                let p = &spec.params;
                let (lin, share) = hdr::merge_bracket(
                    frames,
                    w,
                    h,
                    spec.reference,
                    &spec.exposures,
                    &spec.alignments,
                    p.black,
                    p.white,
                    pause,
                );
                let (mosaic, _) = hdr::tone_map(&lin, w, h, p.black, p.white, 6.0);
                MergeOutput {
                    mosaic,
                    hdr: Some(lin),
                    stats: MergeStats {
                        mean_weight: share,
                        rejected_tiles: vec![0; frames.len()],
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
