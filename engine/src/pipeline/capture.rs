//! Multi-frame captures: a burst or an exposure bracket read from a source
//! into the buffers the FusionManager reserved, merged on the background
//! lane (the realtime lane goes on meanwhile), and the result sent down the
//! capture path like any frame, beside the reference frame on its own.

mod read;

use super::{Engine, EngineError, PathMode};
use crate::envelope::{Envelope, Payload, StageId};
use crate::fusion::merge::MergeStats;
use crate::fusion::merge::NoiseModel;
use crate::fusion::{Candidate, FrameInfo, FusionJob, FusionKind, FusionPlan, Selection};
use crate::resource_manager::BufferRef;
use crate::sources::{FrameMeta, FrameSource};
use crate::types::{Lane, Packing, RawFormat};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to capture.
#[derive(Clone, Debug)]
pub struct CaptureRequest {
    pub kind: FusionKind,
    /// How long the reserved buffers wait for the frames.
    pub ttl: Duration,
    /// The sensor's noise at unity gain; `None`: a 12000 e- full well and
    /// 1.2 DN of read noise at 10 bits (the synthetic sensor's).
    pub noise: Option<NoiseModel>,
    /// Longest wait for the merge.
    pub timeout: Duration,
}

impl CaptureRequest {
    pub fn new(kind: FusionKind) -> Self {
        CaptureRequest {
            kind,
            ttl: Duration::from_secs(10),
            noise: None,
            timeout: Duration::from_secs(300),
        }
    }
}

/// One frame of a capture.
#[derive(Clone, Debug, Serialize)]
pub struct CapturedFrame {
    #[serde(flatten)]
    pub info: FrameInfo,
    pub focus: f64,
}

/// How a frame was aligned to the reference, in raw pixels.
#[derive(Clone, Debug, Serialize)]
pub struct AlignSummary {
    pub frame: usize,
    pub mean_offset_px: f32,
    pub max_offset_px: i32,
}

/// What a capture did: its plan, the frames and the choice among them,
/// the alignment, the merge's weights, the times, and the engine frames
/// the results came out as.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureReport {
    pub plan: FusionPlan,
    pub frames: Vec<CapturedFrame>,
    pub selection: Selection,
    pub alignment: Vec<AlignSummary>,
    pub merge: MergeStats,
    pub read_ms: f64,
    pub align_ms: f64,
    pub merge_ms: f64,
    pub total_ms: f64,
    /// Where the merge ran (`cpu`, `gpu: <adapter>`, or the CPU after a
    /// GPU failure and why).
    pub merged_on: String,
    /// Frames aligned on the GPU (the rest on the CPU).
    pub aligned_on_gpu: usize,
    /// The engine frame of the merged result (capture path).
    pub merged_frame: u64,
    /// The engine frame of the reference alone (capture path).
    pub reference_frame: u64,
    /// The merged mosaic (the frames' bit depth, unpacked).
    #[serde(skip)]
    pub merged_raw: Vec<u16>,
    /// The merged mosaic's format.
    pub merged_format: RawFormat,
    /// A bracket's linear HDR mosaic (above black, at the reference's
    /// exposure).
    #[serde(skip)]
    pub hdr: Option<Vec<f32>>,
}

/// A capture whose merge is scheduled on the background lane: its frames
/// are read and chosen, its buffers pinned by the merge.
/// [`Engine::capture_finish`] waits for it; dropped unfinished, the merge
/// runs on and its result goes back to the pool when it ends.
#[derive(Debug)]
pub struct PendingCapture {
    pub plan: FusionPlan,
    pub selection: Selection,
    cands: Vec<Candidate>,
    metas: Vec<FrameMeta>,
    raws: Vec<Vec<u8>>,
    /// `None` once finished.
    reply: Option<crossbeam_channel::Receiver<crate::fusion::FusionReply>>,
    inbox: crossbeam_channel::Sender<crate::completion_dispatcher::DispatcherMsg>,
    timeout: Duration,
    t0: Instant,
    read_ms: f64,
}

impl Drop for PendingCapture {
    fn drop(&mut self) {
        if let Some(rx) = self.reply.take() {
            release_late(rx, self.inbox.clone());
        }
    }
}

/// A merge whose result nobody will read: released when it comes (or at
/// once if it is already there).
fn release_late(
    rx: crossbeam_channel::Receiver<crate::fusion::FusionReply>,
    inbox: crossbeam_channel::Sender<crate::completion_dispatcher::DispatcherMsg>,
) {
    let release = move |r: crate::fusion::FusionReply| {
        if let Ok((_, o)) = r.result {
            let _ = inbox.send(crate::completion_dispatcher::DispatcherMsg::Call(Box::new(
                move |ctx| ctx.release_when_unpinned(o.id),
            )));
        }
    };
    match rx.try_recv() {
        Ok(r) => release(r),
        Err(crossbeam_channel::TryRecvError::Disconnected) => {}
        Err(crossbeam_channel::TryRecvError::Empty) => {
            std::thread::spawn(move || {
                if let Ok(r) = rx.recv() {
                    release(r);
                }
            });
        }
    }
}

fn plan_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Plan(e.to_string())
}

impl Engine {
    /// Capture `req` from `source` and merge it (see the module's doc).
    /// Returns once the merge is done and both results are submitted; their
    /// images come to subscribers as frames `merged_frame` and
    /// `reference_frame`. On every failure the plan's buffers go back.
    pub fn capture(
        &self,
        source: &mut dyn FrameSource,
        req: &CaptureRequest,
    ) -> Result<CaptureReport, EngineError> {
        let pending = self.capture_start(source, req)?;
        self.capture_finish(pending)
    }

    /// The first half of [`Engine::capture`]: read the frames, choose among
    /// them and schedule the merge on the background lane. The source is
    /// free again when this returns (a player goes on feeding the preview
    /// while the merge runs); [`Engine::capture_finish`] waits for it.
    pub fn capture_start(
        &self,
        source: &mut dyn FrameSource,
        req: &CaptureRequest,
    ) -> Result<PendingCapture, EngineError> {
        let t0 = Instant::now();
        let fmt = source.format();
        if fmt.bits < 10 {
            return Err(plan_err(format!(
                "{}: merges take 10- to 16-bit RAW, not {}-bit",
                source.name(),
                fmt.bits
            )));
        }
        let plan = self
            .fusion
            .create_plan(req.kind.clone(), fmt)
            .map_err(plan_err)?;
        let ttl = req.ttl.as_nanos().min(u64::MAX as u128) as u64;
        self.fusion.reserve_for_plan(&self.rm, &plan, ttl)?;
        self.telemetry.note(
            "fusion",
            format!(
                "plan {}: {:?}, {} buffers reserved for {:.1} s",
                plan.id,
                plan.kind,
                plan.frames() + 1,
                req.ttl.as_secs_f64()
            ),
        );
        let mut committed: Vec<BufferRef> = Vec::new();
        let read = self.read_frames(source, &plan, &mut committed);
        let (metas, raws, cands) = match read {
            Ok(v) => v,
            Err(e) => {
                self.abandon(&plan, committed);
                return Err(e);
            }
        };
        let read_ms = t0.elapsed().as_secs_f64() * 1e3;
        let selection = match self.fusion.select_frames(&plan, &cands) {
            Ok(s) => s,
            Err(e) => {
                self.abandon(&plan, committed);
                return Err(plan_err(e));
            }
        };
        // The result's buffer is the last; frames not chosen go back now.
        let Some(result_buf) = committed.pop() else {
            self.abandon(&plan, committed);
            return Err(plan_err("no buffers committed"));
        };
        let mut inputs = Vec::new();
        for (i, b) in committed.into_iter().enumerate() {
            if selection.chosen.contains(&i) {
                inputs.push(b);
            } else {
                self.discard(b);
            }
        }
        let black = self.black_level(&fmt);
        let noise = req
            .noise
            .or_else(|| {
                self.params.snapshot().tuning.noise.as_ref().map(|n| {
                    let (shot, read) = n.mean();
                    NoiseModel { shot, read }
                })
            })
            .unwrap_or_else(|| default_noise(&fmt, black));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job = FusionJob {
            plan: plan.clone(),
            selection: selection.clone(),
            infos: selection.chosen.iter().map(|&i| cands[i].meta).collect(),
            black,
            noise,
            reply: tx,
        };
        self.schedule_plan(job, inputs, result_buf)?;
        Ok(PendingCapture {
            plan,
            selection,
            cands,
            metas,
            raws,
            reply: Some(rx),
            inbox: self
                .dispatcher
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .inbox(),
            timeout: req.timeout,
            t0,
            read_ms,
        })
    }

    /// The FusionManager's `schedule_plan`: the merge of `job` as one
    /// envelope on the background lane, its frames and result pinned for it
    /// (the router releases them when it ends, whatever happens). On failure
    /// here every buffer goes back.
    fn schedule_plan(
        &self,
        job: FusionJob,
        inputs: Vec<BufferRef>,
        result_buf: BufferRef,
    ) -> Result<(), EngineError> {
        let frame_id = {
            let mut n = self.next_frame.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        let (params, _) = self.frame_params(job.plan.format);
        let mut env = Envelope::new(
            frame_id,
            StageId::Fusion,
            Lane::Background,
            crate::isp::fusion_merge,
            params,
        );
        env.pin_owner = format!("fusion plan {}", job.plan.id);
        let mut pinned = Vec::new();
        for b in inputs.iter().chain(std::iter::once(&result_buf)) {
            if let Err(e) = self.rm.pin(b.id, &env.pin_owner) {
                // Undo: the pins taken, then every buffer back.
                for id in pinned {
                    let owner = env.pin_owner.clone();
                    self.post(move |ctx| ctx.unpin(id, &owner));
                }
                for b in inputs.into_iter().chain(std::iter::once(result_buf)) {
                    self.discard(b);
                }
                return Err(e.into());
            }
            pinned.push(b.id);
        }
        env.inputs = inputs;
        env.outputs = vec![result_buf];
        env.payload = Payload::Fusion(Arc::new(job));
        env.gpu = self.gpu.clone().filter(|g| g.active());
        env.enqueue_ns = crate::clock::now_ns();
        if self.threading.submit(env).is_err() {
            // Shut down: the envelope was completed as cancelled, and the
            // dispatcher releases its buffers.
            return Err(EngineError::Closed);
        }
        Ok(())
    }

    /// Wait for a scheduled merge and send its result and the reference down
    /// the capture path (the second half of [`Engine::capture`]).
    pub fn capture_finish(&self, p: PendingCapture) -> Result<CaptureReport, EngineError> {
        self.finish(p, false).map(|(r, _)| r)
    }

    /// [`Engine::capture_finish`], subscribed (losslessly) just before the
    /// results are submitted: the receiver sees both frames come back
    /// without having held every preview while the merge ran.
    pub fn capture_finish_watched(
        &self,
        p: PendingCapture,
    ) -> Result<
        (
            CaptureReport,
            crossbeam_channel::Receiver<Arc<super::FrameResult>>,
        ),
        EngineError,
    > {
        self.finish(p, true)
            .map(|(r, rx)| (r, rx.unwrap_or_else(crossbeam_channel::never)))
    }

    #[allow(clippy::type_complexity)]
    fn finish(
        &self,
        mut p: PendingCapture,
        watch: bool,
    ) -> Result<
        (
            CaptureReport,
            Option<crossbeam_channel::Receiver<Arc<super::FrameResult>>>,
        ),
        EngineError,
    > {
        let Some(rx) = p.reply.take() else {
            return Err(plan_err(format!("plan {}: finished twice", p.plan.id)));
        };
        let (plan, selection) = (p.plan.clone(), p.selection.clone());
        let (cands, metas, raws) = (
            std::mem::take(&mut p.cands),
            std::mem::take(&mut p.metas),
            std::mem::take(&mut p.raws),
        );
        let (timeout, t0, read_ms) = (p.timeout, p.t0, p.read_ms);
        let fmt = plan.format;
        let reply = match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => {
                release_late(rx, p.inbox.clone());
                return Err(plan_err(format!(
                    "plan {}: no merge in {:?}",
                    plan.id, timeout
                )));
            }
        };
        let (done, out) = reply.result.map_err(plan_err)?;
        let merged_raw = out.read().map(|m| m.u16s()[..fmt.pixels()].to_vec());
        let merged_raw = match merged_raw {
            Ok(v) => v,
            Err(e) => {
                self.discard(out);
                return Err(e.into());
            }
        };
        // Down the capture path: the merged mosaic (unpacked, same bits),
        // and the reference on its own beside it.
        let merged_format =
            RawFormat::new(fmt.width, fmt.height, fmt.bits, fmt.bayer, Packing::Plain);
        let r = selection.reference;
        let watcher = watch.then(|| self.subscribe(true));
        let merged_frame = self.start_frame_on(
            out,
            metas[r].clone(),
            merged_format,
            false,
            PathMode::Slow,
            false,
        )?;
        let rbuf = self.acquire_raw(&fmt)?;
        let copied = rbuf.write().map(|mut m| {
            let n = fmt.frame_bytes().min(raws[r].len());
            m.bytes_mut()[..n].copy_from_slice(&raws[r][..n]);
        });
        if let Err(e) = copied {
            self.discard(rbuf);
            return Err(e.into());
        }
        let reference_frame =
            self.start_frame_on(rbuf, metas[r].clone(), fmt, false, PathMode::Slow, false)?;
        let alignment = done
            .spec
            .alignments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let (mean, max) = a.stats();
                AlignSummary {
                    frame: selection.chosen[i],
                    mean_offset_px: mean,
                    max_offset_px: max,
                }
            })
            .collect();
        Ok((
            CaptureReport {
                plan,
                frames: cands
                    .iter()
                    .map(|c| CapturedFrame {
                        info: c.meta,
                        focus: c.focus,
                    })
                    .collect(),
                selection,
                alignment,
                merge: done.stats,
                read_ms,
                align_ms: done.align_ms,
                merge_ms: done.merge_ms,
                total_ms: t0.elapsed().as_secs_f64() * 1e3,
                merged_on: done.merged_on,
                aligned_on_gpu: done.spec.aligned_elsewhere,
                merged_frame,
                reference_frame,
                merged_raw,
                merged_format,
                hdr: done.hdr,
            },
            watcher,
        ))
    }

    /// The plan will not merge: committed buffers go back, or the
    /// reservation is cancelled if nothing was committed yet.
    fn abandon(&self, plan: &FusionPlan, committed: Vec<BufferRef>) {
        if committed.is_empty() {
            let id = plan.id;
            self.post(move |ctx| {
                let _ = ctx.cancel_reservation(id);
            });
        }
        for b in committed {
            self.discard(b);
        }
        self.telemetry
            .note("fusion", format!("plan {}: abandoned", plan.id));
    }

    /// The black level of the current tuning, for `fmt`'s samples.
    fn black_level(&self, fmt: &RawFormat) -> f32 {
        let l = self.params.snapshot().tuning.stages.black_level.levels;
        let _ = fmt;
        l.iter().map(|&v| v as f32).sum::<f32>() / 4.0
    }
}

/// The synthetic sensor's noise (a 12000 e- full well over the range, 1.2
/// DN of read noise at 10 bits), for a format.
fn default_noise(fmt: &RawFormat, black: f32) -> NoiseModel {
    let range = fmt.max_value() as f32 - black;
    let read = 1.2 * (fmt.max_value() as f32 + 1.0) / 1024.0;
    NoiseModel {
        shot: range / 12000.0,
        read: read * read,
    }
}
