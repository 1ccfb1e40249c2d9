//! The router: runs a frame's [`FramePlan`] on the lanes.
//!
//! A frame starts on the caller's thread ([`Launcher::start`]): the buffers
//! the first step of each lane writes are allocated and every envelope's
//! buffers pinned before the frame is registered, so a failure there leaves
//! nothing behind. From then on everything happens on the dispatcher thread
//! ([`PipelineRouter`], the only code that ends a frame buffer's life): each
//! completion ends its step, publishes the lane's result when the step says
//! so, and dispatches the lane's next step; a failure ends the rest of the
//! lane. A buffer is released when the last step that uses it has ended,
//! and the frame leaves the in-flight count when all its steps have ended
//! and its results are dropped.

use super::EngineError;
pub(crate) use super::frame::{FrameCtx, FrameResult, InFlight};
use super::plan::{FramePlan, Slot, StepBackend};
use super::subscriptions::Subscribers;
use crate::algorithms::{Control, IpaContext};
use crate::completion_dispatcher::{DispatchCtx, DispatcherMsg, Router};
use crate::envelope::{CompletionEvent, Envelope, GpuOutput, Payload, StageOutput};
use crate::gpu::GpuBackend;
use crate::resource_manager::{BufferId, BufferRef, ResourceManager};
use crate::sources::FrameMeta;
use crate::stages::stats::Stats3A;
use crate::telemetry::TelemetryManager;
use crate::threading_manager::ThreadingManager;
use crate::tuning::FrameParams;
use crate::types::{Lane, Outcome, RawFormat};
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn lane_index(l: Lane) -> usize {
    match l {
        Lane::Realtime => 0,
        Lane::Background => 1,
    }
}

/// One frame in flight, as the router tracks it.
struct FrameState {
    frame: Arc<FrameCtx>,
    plan: Arc<FramePlan>,
    params: Arc<FrameParams>,
    ipa: IpaContext,
    gpu: Option<Arc<GpuBackend>>,
    bufs: [Option<BufferRef>; Slot::COUNT],
    /// Steps not yet ended that use each slot.
    uses: [u8; Slot::COUNT],
    /// Bit `i`: step `i` has ended (completed, failed, or will never run).
    ended: u32,
    stats: [Option<Arc<Stats3A>>; 2],
    published: [bool; 2],
}

impl FrameState {
    fn done(&self) -> bool {
        self.ended.count_ones() as usize == self.plan.steps().len()
    }

    /// Step `i` is over: buffers no later step uses go back.
    fn end_step(&mut self, ctx: &mut DispatchCtx, i: usize) {
        if self.ended & (1 << i) != 0 {
            return;
        }
        self.ended |= 1 << i;
        let step = self.plan.steps()[i];
        for slot in Slot::ALL {
            if !step.slots().any(|s| s == slot) {
                continue;
            }
            let u = &mut self.uses[slot.index()];
            *u = u.saturating_sub(1);
            if *u == 0
                && let Some(b) = self.bufs[slot.index()].take()
            {
                ctx.release_when_unpinned(b.id);
            }
        }
    }

    /// The envelope for step `i`; its buffers must be in `bufs`.
    fn envelope(&self, i: usize, continuation: bool) -> Result<Envelope, String> {
        let step = self.plan.steps()[i];
        let get = |s: &Slot| {
            self.bufs[s.index()]
                .clone()
                .ok_or_else(|| format!("{}: no {} buffer", step.stage.name(), s.name()))
        };
        let inputs = step.reads.iter().map(get).collect::<Result<Vec<_>, _>>()?;
        let outputs = step.writes.iter().map(get).collect::<Result<Vec<_>, _>>()?;
        let gpu = match step.backend {
            StepBackend::Cpu => None,
            StepBackend::Gpu => Some(
                self.gpu
                    .clone()
                    .ok_or_else(|| format!("{}: the plan needs a GPU", step.stage.name()))?,
            ),
        };
        Ok(Envelope {
            frame_id: self.frame.frame_id,
            stage: step.stage,
            lane: step.lane,
            worker: step.worker,
            inputs,
            outputs,
            pin_owner: format!("f{}:{}", self.frame.frame_id, step.stage.name()),
            params: self.params.clone(),
            ipa: self.ipa,
            payload: match &self.stats[lane_index(step.lane)] {
                Some(s) => Payload::Stats(s.clone()),
                None => Payload::None,
            },
            enqueue_ns: 0,
            deadline_ns: None,
            continuation,
            gpu,
        })
    }

    fn result(
        &self,
        lane: Lane,
        outcome: Outcome,
        error: Option<String>,
        params_version: u64,
    ) -> FrameResult {
        FrameResult {
            frame_id: self.frame.frame_id,
            meta: self.frame.meta.clone(),
            format: self.frame.format,
            params_version,
            lane,
            outcome,
            error,
            preview: None,
            capture: None,
            stats: self.stats[lane_index(lane)].clone(),
            ipa: self.ipa,
            _frame: self.frame.clone(),
        }
    }
}

/// What one frame starts with.
pub(crate) struct FrameStart {
    pub frame_id: u64,
    pub meta: FrameMeta,
    pub format: RawFormat,
    /// The sensor bytes; the frame owns them from here on, whatever happens.
    pub raw: BufferRef,
    pub plan: Arc<FramePlan>,
    pub params: Arc<FrameParams>,
    pub ipa: IpaContext,
    pub gpu: Option<Arc<GpuBackend>>,
}

/// Starts frames from the caller's thread.
pub(crate) struct Launcher {
    pub rm: Arc<ResourceManager>,
    pub threading: Arc<ThreadingManager>,
    pub telemetry: Arc<TelemetryManager>,
    pub inbox: Sender<DispatcherMsg>,
    pub in_flight: Arc<InFlight>,
    register: Sender<FrameState>,
}

impl Launcher {
    /// Allocate, pin, register, submit. Nothing after the registration can
    /// fail: before it, a failure hands every buffer back (the raw one too)
    /// and the frame never counts as in flight.
    pub(crate) fn start(&self, s: FrameStart) -> Result<(), EngineError> {
        let plan = s.plan.clone();
        let mut bufs: [Option<BufferRef>; Slot::COUNT] = Default::default();
        bufs[Slot::Raw.index()] = Some(s.raw.clone());
        let mut state = FrameState {
            frame: Arc::new(FrameCtx {
                frame_id: s.frame_id,
                meta: s.meta,
                format: s.format,
                // Counted only once registered (below).
                in_flight: Arc::default(),
            }),
            plan: plan.clone(),
            params: s.params,
            ipa: s.ipa,
            gpu: s.gpu,
            bufs,
            uses: plan.uses(),
            ended: 0,
            stats: Default::default(),
            published: [false; 2],
        };
        let mut envelopes = Vec::with_capacity(2);
        let mut pinned: Vec<(BufferId, String)> = Vec::new();
        let mut failure: Option<EngineError> = None;
        'start: for i in plan.lane_starts() {
            for &w in plan.steps()[i].writes {
                if state.bufs[w.index()].is_some() {
                    continue;
                }
                match self
                    .rm
                    .allocate(w.spec(&s.format), &format!("f{}:{}", s.frame_id, w.name()))
                {
                    Ok(b) => state.bufs[w.index()] = Some(b),
                    Err(e) => {
                        failure = Some(e.into());
                        break 'start;
                    }
                }
            }
            let env = match state.envelope(i, false) {
                Ok(env) => env,
                Err(e) => {
                    failure = Some(EngineError::Plan(e));
                    break 'start;
                }
            };
            for b in env.inputs.iter().chain(env.outputs.iter()) {
                match self.rm.pin(b.id, &env.pin_owner) {
                    Ok(_) => pinned.push((b.id, env.pin_owner.clone())),
                    Err(e) => {
                        failure = Some(e.into());
                        break 'start;
                    }
                }
            }
            envelopes.push(env);
        }
        if let Some(e) = failure {
            self.telemetry
                .note("engine", format!("frame {} dropped: {e}", s.frame_id));
            let bufs = state.bufs.iter_mut().filter_map(Option::take).collect();
            self.abandon(bufs, pinned);
            return Err(e);
        }
        self.in_flight.enter();
        Arc::get_mut(&mut state.frame)
            .map(|f| f.in_flight = self.in_flight.clone())
            .unwrap_or_else(|| unreachable!("the frame is not shared before it is registered"));
        // The router drains registrations before it routes, and the lanes
        // only see the envelopes below: it knows the frame before any of
        // its completions.
        let _ = self.register.send(state);
        for env in envelopes {
            // A shut-down lane completes the envelope as cancelled; the
            // router then ends the lane as for any failure.
            let _ = self.threading.submit(env);
        }
        Ok(())
    }

    /// Give back what a frame that never started holds: its pins, then its
    /// buffers (on the dispatcher thread, where lifecycles end).
    fn abandon(&self, bufs: Vec<BufferRef>, pinned: Vec<(BufferId, String)>) {
        let _ = self.inbox.send(DispatcherMsg::Call(Box::new(move |ctx| {
            for (id, owner) in &pinned {
                ctx.unpin(*id, owner);
            }
            for b in bufs {
                ctx.release_when_unpinned(b.id);
            }
        })));
    }
}

/// Runs plans on the dispatcher thread.
pub(crate) struct PipelineRouter {
    threading: Arc<ThreadingManager>,
    subscribers: Subscribers,
    ipa: Arc<Mutex<IpaContext>>,
    controls: Arc<Mutex<Vec<Control>>>,
    frames: HashMap<u64, FrameState>,
    registrations: Receiver<FrameState>,
}

impl PipelineRouter {
    /// A router and the launcher that feeds it frames.
    pub(crate) fn new(
        rm: Arc<ResourceManager>,
        threading: Arc<ThreadingManager>,
        telemetry: Arc<TelemetryManager>,
        inbox: Sender<DispatcherMsg>,
        subscribers: Subscribers,
        ipa: Arc<Mutex<IpaContext>>,
        controls: Arc<Mutex<Vec<Control>>>,
    ) -> (PipelineRouter, Launcher) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let launcher = Launcher {
            rm,
            threading: threading.clone(),
            telemetry,
            inbox,
            in_flight: Arc::default(),
            register: tx,
        };
        let router = PipelineRouter {
            threading,
            subscribers,
            ipa,
            controls,
            frames: HashMap::new(),
            registrations: rx,
        };
        (router, launcher)
    }

    /// Fold a frame's algorithm result into the engine's context. Frames
    /// overlap: the result grew from the context its frame started with
    /// (`start`), which may predate the last fold, so a value none of this
    /// frame's algorithms changed keeps the engine's newest (a model's
    /// gains folded meanwhile stay). The count of algorithm runs is the
    /// engine's own, not the frame's.
    fn fold_algo(&self, frame_id: u64, start: &IpaContext, out: &StageOutput) {
        if let StageOutput::Algo(r) = out {
            let mut ipa = self.ipa.lock().unwrap_or_else(|p| p.into_inner());
            let runs = ipa.frames_processed + 1;
            let newest = ipa.newest_frame.max(frame_id);
            let mut next = r.next;
            if next.wb_gains == start.wb_gains {
                next.wb_gains = ipa.wb_gains;
            }
            if next.exposure_us == start.exposure_us && next.analogue_gain == start.analogue_gain {
                next.exposure_us = ipa.exposure_us;
                next.analogue_gain = ipa.analogue_gain;
            }
            // The digital gain is the engine's (a still's settle sets it),
            // never an algorithm's: an older frame's fold keeps it.
            next.digital_gain = ipa.digital_gain;
            if next.colour_temperature == start.colour_temperature {
                next.colour_temperature = ipa.colour_temperature;
            }
            *ipa = next;
            ipa.frames_processed = runs;
            ipa.newest_frame = newest;
            drop(ipa);
            if !r.controls.is_empty() {
                *self.controls.lock().unwrap_or_else(|p| p.into_inner()) = r.controls.clone();
            }
        }
    }

    /// Step `i` of `st` failed (or could not be dispatched): the rest of its
    /// lane will not run; subscribers hear of it unless the lane already
    /// published.
    fn fail_lane(
        &self,
        ctx: &mut DispatchCtx,
        st: &mut FrameState,
        i: usize,
        outcome: Outcome,
        error: Option<String>,
        params_version: u64,
    ) {
        let lane = st.plan.steps()[i].lane;
        for k in i..st.plan.steps().len() {
            if st.plan.steps()[k].lane == lane {
                st.end_step(ctx, k);
            }
        }
        if !st.published[lane_index(lane)] {
            st.published[lane_index(lane)] = true;
            self.subscribers
                .publish(st.result(lane, outcome, error, params_version));
        }
    }

    /// Step `i` completed: keep what it produced, publish if it says so,
    /// end it, and dispatch the lane's next step.
    fn complete(
        &self,
        ctx: &mut DispatchCtx,
        st: &mut FrameState,
        i: usize,
        ev: &mut CompletionEvent,
    ) {
        let step = st.plan.steps()[i];
        let li = lane_index(step.lane);
        match std::mem::take(&mut ev.output) {
            StageOutput::Stats(mut s) => {
                s.shade(&st.params.stages.lens_shading, st.params.format.bayer);
                st.stats[li] = Some(Arc::new(*s));
            }
            StageOutput::Gpu(mut g) => {
                gpu_telemetry(ctx, ev, &g);
                g.stats
                    .shade(&st.params.stages.lens_shading, st.params.format.bayer);
                st.stats[li] = Some(Arc::new(g.stats));
            }
            StageOutput::Algo(r) => {
                self.fold_algo(st.frame.frame_id, &ev.envelope.ipa, &StageOutput::Algo(r))
            }
            StageOutput::Model(m) => {
                m.fold(&mut self.ipa.lock().unwrap_or_else(|p| p.into_inner()))
            }
            StageOutput::Fusion(_) | StageOutput::None => {}
        }
        if let Some(slot) = step.publishes {
            let owner = match slot {
                Slot::Capture => "subscribers:capture",
                _ => "subscribers:preview",
            };
            let guard = st.bufs[slot.index()]
                .clone()
                .and_then(|b| ctx.pin_for(&b, owner));
            let mut res = st.result(step.lane, Outcome::Ok, None, ev.envelope.params_version());
            match slot {
                Slot::Capture => res.capture = guard,
                _ => res.preview = guard,
            }
            st.published[li] = true;
            self.subscribers.publish(res);
        }
        st.end_step(ctx, i);
        let Some(j) = st.plan.next_on_lane(i) else {
            return;
        };
        match self.dispatch(ctx, st, j) {
            Ok(env) => self.threading.continue_with(env),
            Err(msg) => {
                let v = ev.envelope.params_version();
                self.fail_lane(ctx, st, j, Outcome::Failed, Some(msg), v);
            }
        }
    }

    /// Buffers and pins for step `j`, on the dispatcher thread.
    fn dispatch(
        &self,
        ctx: &mut DispatchCtx,
        st: &mut FrameState,
        j: usize,
    ) -> Result<Envelope, String> {
        let step = st.plan.steps()[j];
        for &w in step.writes {
            if st.bufs[w.index()].is_none() {
                let spec = w.spec(&st.frame.format);
                let b = ctx
                    .rm
                    .allocate(spec, &format!("f{}:{}", st.frame.frame_id, w.name()))
                    .map_err(|e| format!("{} buffer: {e}", w.name()))?;
                st.bufs[w.index()] = Some(b);
            }
        }
        let env = st.envelope(j, true)?;
        let mut pinned = Vec::new();
        for b in env.inputs.iter().chain(env.outputs.iter()) {
            if let Err(e) = ctx.rm.pin(b.id, &env.pin_owner) {
                for id in pinned {
                    ctx.unpin(id, &env.pin_owner);
                }
                return Err(format!("pin for {}: {e}", step.stage.name()));
            }
            pinned.push(b.id);
        }
        Ok(env)
    }
}

/// Rows for the GPU's own timings (upload, compute, readback) and a note
/// when the frame switched the engine to the CPU.
fn gpu_telemetry(ctx: &mut DispatchCtx, ev: &CompletionEvent, g: &GpuOutput) {
    use crate::telemetry::{EventKind, TelemetryEvent};
    let env = &ev.envelope;
    if let Some(t) = &g.timings {
        let row = |stage: &'static str, start: u64, end: u64, detail: String| TelemetryEvent {
            seq: 0,
            kind: EventKind::Gpu,
            frame_id: env.frame_id,
            stage,
            lane: Some(env.lane),
            worker: ev.worker,
            enqueue_ns: start,
            start_ns: start,
            end_ns: end,
            buffers: Vec::new(),
            params_version: env.params_version(),
            outcome: Outcome::Ok,
            detail,
        };
        ctx.telemetry.append(row(
            "gpu_upload",
            t.upload_start_ns,
            t.upload_start_ns + t.upload_ns,
            "timer=cpu raw bytes into the staging buffer".into(),
        ));
        ctx.telemetry.append(row(
            "gpu_fused_preview",
            t.submit_ns,
            t.submit_ns + t.compute_ns,
            format!(
                "timer={} submit_to_done_ms={:.3}",
                t.timer.name(),
                t.gpu_wall_ns as f64 / 1e6
            ),
        ));
        ctx.telemetry.append(row(
            "gpu_readback",
            t.done_ns - t.readback_ns,
            t.done_ns,
            "timer=cpu RGBA8 and statistics out of the readback buffer".into(),
        ));
    }
    if let Some(n) = &g.switched {
        ctx.telemetry.note("backend", n.clone());
    }
}

/// A merge finished (or failed, or never ran): its frames go back to the
/// pool, the result to whoever asked (released too when it failed).
fn fusion_done(mut ev: CompletionEvent, ctx: &mut DispatchCtx) {
    for b in &ev.envelope.inputs {
        ctx.release_when_unpinned(b.id);
    }
    let Payload::Fusion(job) = ev.envelope.payload.clone() else {
        for b in &ev.envelope.outputs {
            ctx.release_when_unpinned(b.id);
        }
        return;
    };
    let out = ev.envelope.outputs.first().cloned();
    let result = match (ev.outcome, std::mem::take(&mut ev.output), out) {
        (Outcome::Ok, StageOutput::Fusion(done), Some(o)) => Ok((*done, o)),
        (outcome, _, o) => {
            if let Some(o) = o {
                ctx.release_when_unpinned(o.id);
            }
            Err(ev
                .error
                .take()
                .unwrap_or_else(|| format!("the merge ended {}", outcome.name())))
        }
    };
    ctx.telemetry.note(
        "fusion",
        match &result {
            Ok((d, _)) => format!(
                "plan {}: {} frames merged (align {:.1} ms, merge {:.1} ms)",
                job.plan.id,
                job.selection.chosen.len(),
                d.align_ms,
                d.merge_ms
            ),
            Err(e) => format!("plan {}: merge failed: {e}", job.plan.id),
        },
    );
    // Nobody waiting (the asker gave up): nothing is held for it.
    if let Err(crossbeam_channel::SendError(r)) = job.reply.send(crate::fusion::FusionReply {
        plan: job.plan.id,
        result,
    }) && let Ok((_, o)) = r.result
    {
        ctx.release_when_unpinned(o.id);
    }
}

impl Router for PipelineRouter {
    fn route(&mut self, mut ev: CompletionEvent, ctx: &mut DispatchCtx) {
        while let Ok(st) = self.registrations.try_recv() {
            self.frames.insert(st.frame.frame_id, st);
        }
        let (fid, stage, lane) = (ev.envelope.frame_id, ev.envelope.stage, ev.envelope.lane);
        // A multi-frame merge is no frame of a plan: it has its own end.
        if matches!(ev.envelope.payload, Payload::Fusion(_)) {
            fusion_done(ev, ctx);
            return;
        }
        let Some(mut st) = self.frames.remove(&fid) else {
            ctx.telemetry.note(
                "router",
                format!(
                    "completion of {} for frame {fid}, which is not in flight",
                    stage.name()
                ),
            );
            return;
        };
        match st.plan.position(stage, lane) {
            None => ctx.telemetry.note(
                "router",
                format!(
                    "frame {fid}: {} on the {} lane is not in plan {}",
                    stage.name(),
                    lane.name(),
                    st.plan.name()
                ),
            ),
            Some(i) if ev.outcome != Outcome::Ok => {
                let err = ev.error.take();
                let v = ev.envelope.params_version();
                self.fail_lane(ctx, &mut st, i, ev.outcome, err, v);
            }
            Some(i) => self.complete(ctx, &mut st, i, &mut ev),
        }
        if st.done() {
            // Every slot's last user has ended; nothing should be left.
            for b in st.bufs.iter_mut().filter_map(Option::take) {
                ctx.release_when_unpinned(b.id);
            }
        } else {
            self.frames.insert(fid, st);
        }
    }

    fn finish(&mut self, ctx: &mut DispatchCtx) {
        // Frames still registered never completed (engine stopped): release.
        while let Ok(st) = self.registrations.try_recv() {
            self.frames.insert(st.frame.frame_id, st);
        }
        for (_, mut st) in self.frames.drain() {
            for b in st.bufs.iter_mut().filter_map(Option::take) {
                ctx.release_when_unpinned(b.id);
            }
        }
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
