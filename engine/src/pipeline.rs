//! The Engine: the runtime wired together.
//!
//! ```text
//! feeder (caller's thread) -> ResourceManager (raw buffer) -> Envelope -> ThreadingManager
//!   realtime:   RawISP -> RawAlgo -> FastISP -> FastAlgo
//!   background: SlowISP -> SlowAlgo
//! -> CompletionDispatcher -> PipelineRouter (next stage, releases, publish, 3A fold)
//! ```
//! The router runs on the dispatcher thread; it is the only code that ends a
//! buffer's life. Subscribers get `Arc<FrameResult>` with pinned outputs.

use crate::algorithms::{Control, IpaContext, SensorConfig};
use crate::allocator::{AllocatorKind, create_allocator};
use crate::clock::now_ns;
use crate::completion_dispatcher::{
    CompletionDispatcher, DispatchCtx, DispatcherMsg, PinGuard, Router,
};
use crate::envelope::{CompletionEvent, Envelope, Payload, StageId, StageOutput, WorkerFn};
use crate::gpu::{Backend, GpuBackend, GpuContext, GpuError, GpuIsp};
use crate::housekeeper::{Housekeeper, HousekeeperConfig, HousekeeperTimer};
use crate::isp;
use crate::resource_manager::{
    BufferKind, BufferRef, BufferSpec, PoolConfig, ResourceManager, RmError,
};
use crate::sources::{FrameMeta, FrameSource, SourceError};
use crate::stages::stats::Stats3A;
use crate::telemetry::TelemetryManager;
use crate::threading_manager::{ThreadingConfig, ThreadingManager};
use crate::tuning::{FrameParams, ParamStore, Tuning};
use crate::types::{Lane, Outcome, RawFormat};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Which pipeline a frame goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathMode {
    /// Realtime preview (RGBA8).
    Fast,
    /// Background capture (RGB16, full quality).
    Slow,
    /// Both, per frame.
    Both,
}

impl PathMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fast" => Some(Self::Fast),
            "slow" => Some(Self::Slow),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub allocator: AllocatorKind,
    pub pool: PoolConfig,
    pub threading: ThreadingConfig,
    pub housekeeper: HousekeeperConfig,
    pub path: PathMode,
    /// Slow path writes linear RGB16 instead of display-encoded.
    pub linear_output: bool,
    /// Frames allowed in flight before `feed` waits (offline sources).
    pub max_in_flight: usize,
    pub sensor: SensorConfig,
    /// Which backend runs the preview (`Cpu` by default in the library; the
    /// CLI and the app default to `Auto`).
    pub backend: Backend,
    /// A GPU device to adopt instead of creating one (the app's eframe device).
    pub gpu_context: Option<Arc<GpuContext>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            allocator: AllocatorKind::Auto,
            pool: PoolConfig::default(),
            threading: ThreadingConfig::default(),
            housekeeper: HousekeeperConfig::default(),
            path: PathMode::Fast,
            linear_output: false,
            max_in_flight: 3,
            sensor: SensorConfig::default(),
            backend: Backend::Cpu,
            gpu_context: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("allocator: {0}")]
    Alloc(#[from] crate::allocator::AllocError),
    #[error("buffers: {0}")]
    Buffer(#[from] RmError),
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("the engine is shut down")]
    Closed,
    #[error("GPU backend: {0}")]
    Gpu(#[from] GpuError),
}

/// Counts frames in flight; `feed` waits on it.
#[derive(Debug, Default)]
struct InFlight {
    n: Mutex<usize>,
    cv: Condvar,
}

impl InFlight {
    fn enter(&self) {
        *self.n.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }
    fn leave(&self) {
        let mut n = self.n.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.cv.notify_all();
    }
    fn wait_below(&self, max: usize, timeout: Duration) -> bool {
        let n = self.n.lock().unwrap_or_else(|p| p.into_inner());
        let (n, _) = self
            .cv
            .wait_timeout_while(n, timeout, |n| *n >= max)
            .unwrap_or_else(|p| p.into_inner());
        *n < max
    }
    fn count(&self) -> usize {
        *self.n.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The frame's identity and buffers, shared by its envelopes and results.
/// When the last holder drops it, the frame stops counting as in flight.
#[derive(Debug)]
pub struct FrameCtx {
    pub frame_id: u64,
    pub meta: FrameMeta,
    pub format: RawFormat,
    pub path: PathMode,
    pub raw: BufferRef,
    /// Paths that still need the raw buffer.
    raw_users: std::sync::atomic::AtomicU8,
    in_flight: Arc<InFlight>,
}

impl Drop for FrameCtx {
    fn drop(&mut self) {
        self.in_flight.leave();
    }
}

/// What subscribers receive, once per frame and path.
#[derive(Debug)]
pub struct FrameResult {
    pub frame_id: u64,
    pub meta: FrameMeta,
    pub format: RawFormat,
    pub params_version: u64,
    pub lane: Lane,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// RGBA8 preview (fast path).
    pub preview: Option<PinGuard>,
    /// RGB16 capture (slow path).
    pub capture: Option<PinGuard>,
    pub stats: Option<Arc<Stats3A>>,
    pub ipa: IpaContext,
    _frame: Arc<FrameCtx>,
}

impl FrameResult {
    /// A copy of the preview pixels (RGBA8), if there is one.
    pub fn preview_rgba(&self) -> Option<Vec<u8>> {
        let g = self.preview.as_ref()?;
        let m = g.buffer().read().ok()?;
        let n = self.format.pixels() * 4;
        Some(m.bytes()[..n].to_vec())
    }
    /// A copy of the capture pixels (RGB16), if there is one.
    pub fn capture_rgb16(&self) -> Option<Vec<u16>> {
        let g = self.capture.as_ref()?;
        let m = g.buffer().read().ok()?;
        let n = self.format.pixels() * 3;
        Some(m.u16s()[..n].to_vec())
    }
}

struct Subscriber {
    tx: Sender<Arc<FrameResult>>,
    lossless: bool,
}

type Subscribers = Arc<Mutex<Vec<Subscriber>>>;

/// One frame on one lane, as the router tracks it.
#[derive(Clone)]
struct Entry {
    frame: Arc<FrameCtx>,
    /// The lane's intermediate buffer (the mosaic on the realtime lane).
    work: Option<BufferRef>,
    raw_done: bool,
}

/// The per-frame chain, run on the dispatcher thread.
struct PipelineRouter {
    threading: Arc<ThreadingManager>,
    subscribers: Subscribers,
    ipa: Arc<Mutex<IpaContext>>,
    controls: Arc<Mutex<Vec<Control>>>,
    /// Frames in flight, by (frame id, lane).
    frames: std::collections::HashMap<(u64, Lane), Entry>,
    new_frames: Receiver<(Arc<FrameCtx>, Lane, Option<BufferRef>)>,
}

impl PipelineRouter {
    fn publish(&self, ctx: &mut DispatchCtx, res: FrameResult) {
        let res = Arc::new(res);
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| {
            if s.lossless {
                s.tx.send(res.clone()).is_ok()
            } else {
                !matches!(
                    s.tx.try_send(res.clone()),
                    Err(TrySendError::Disconnected(_))
                )
            }
        });
        let _ = ctx;
    }

    fn envelope(
        &self,
        frame: &Arc<FrameCtx>,
        stage: StageId,
        lane: Lane,
        worker: WorkerFn,
        prev: &Envelope,
    ) -> Envelope {
        Envelope {
            frame_id: frame.frame_id,
            stage,
            lane,
            worker,
            inputs: Vec::new(),
            outputs: Vec::new(),
            pin_owner: format!("f{}:{}", frame.frame_id, stage.name()),
            params: prev.params.clone(),
            ipa: prev.ipa,
            payload: Payload::None,
            enqueue_ns: 0,
            deadline_ns: None,
            continuation: true,
            gpu: None,
        }
    }

    fn pin_all(ctx: &mut DispatchCtx, env: &Envelope) -> Result<(), RmError> {
        for b in env.inputs.iter().chain(env.outputs.iter()) {
            ctx.rm.pin(b.id, &env.pin_owner)?;
        }
        Ok(())
    }

    fn end_frame(
        &mut self,
        ctx: &mut DispatchCtx,
        key: (u64, Lane),
        ev: &CompletionEvent,
        outcome: Outcome,
        error: Option<String>,
    ) {
        for b in &ev.envelope.outputs {
            ctx.release_when_unpinned(b.id);
        }
        if let Some(mut e) = self.frames.remove(&key) {
            if let Some(w) = e.work.take() {
                ctx.release_when_unpinned(w.id);
            }
            Self::raw_done(ctx, &mut e);
            let frame = e.frame;
            let res = FrameResult {
                frame_id: frame.frame_id,
                meta: frame.meta.clone(),
                format: frame.format,
                params_version: ev.envelope.params_version(),
                lane: key.1,
                outcome,
                error,
                preview: None,
                capture: None,
                stats: None,
                ipa: ev.envelope.ipa,
                _frame: frame,
            };
            self.publish(ctx, res);
        }
    }

    /// This lane is done with the raw buffer; it goes once no path needs it.
    fn raw_done(ctx: &mut DispatchCtx, e: &mut Entry) {
        if e.raw_done {
            return;
        }
        e.raw_done = true;
        if e.frame
            .raw_users
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            ctx.release_when_unpinned(e.frame.raw.id);
        }
    }

    /// Rows for the GPU's own timings (upload, compute, readback) and a note
    /// when the frame switched the engine to the CPU.
    fn gpu_telemetry(ctx: &mut DispatchCtx, ev: &CompletionEvent, g: &crate::envelope::GpuOutput) {
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

    fn fold_algo(&self, out: &StageOutput) {
        if let StageOutput::Algo(r) = out {
            *self.ipa.lock().unwrap_or_else(|p| p.into_inner()) = r.next;
            if !r.controls.is_empty() {
                *self.controls.lock().unwrap_or_else(|p| p.into_inner()) = r.controls.clone();
            }
        }
    }
}

impl Router for PipelineRouter {
    fn route(&mut self, mut ev: CompletionEvent, ctx: &mut DispatchCtx) {
        while let Ok((frame, lane, work)) = self.new_frames.try_recv() {
            self.frames.insert(
                (frame.frame_id, lane),
                Entry {
                    frame,
                    work,
                    raw_done: false,
                },
            );
        }
        let env = &ev.envelope;
        let key = (env.frame_id, env.lane);
        if env.stage == StageId::Noop {
            return;
        }
        if ev.outcome != Outcome::Ok {
            let err = ev.error.clone();
            self.end_frame(ctx, key, &ev, ev.outcome, err);
            return;
        }
        let Some(entry) = self.frames.get(&key).cloned() else {
            // The algo step of a frame already published: fold and finish.
            self.fold_algo(&ev.output);
            return;
        };
        let (frame, work) = (entry.frame.clone(), entry.work.clone());
        let next: Option<Envelope> = match env.stage {
            StageId::RawIsp => {
                let mut n =
                    self.envelope(&frame, StageId::RawAlgo, Lane::Realtime, isp::raw_algo, env);
                n.inputs = work.iter().cloned().collect();
                if let Some(e) = self.frames.get_mut(&key) {
                    Self::raw_done(ctx, e);
                }
                Some(n)
            }
            StageId::RawAlgo => {
                let stats = match std::mem::take(&mut ev.output) {
                    StageOutput::Stats(s) => Arc::new(*s),
                    _ => Arc::new(Stats3A {
                        width: 0,
                        height: 0,
                        sums: [0.0; 3],
                        counts: [0; 3],
                        histograms: Default::default(),
                        zones_x: 0,
                        zones_y: 0,
                        zones: Vec::new(),
                        focus: 0.0,
                    }),
                };
                let spec =
                    BufferSpec::new(BufferKind::Rgba8, frame.format.width, frame.format.height);
                match ctx
                    .rm
                    .allocate(spec, &format!("f{}:preview", frame.frame_id))
                {
                    Ok(out) => {
                        let mut n = self.envelope(
                            &frame,
                            StageId::FastIsp,
                            Lane::Realtime,
                            isp::fast_isp,
                            &ev.envelope,
                        );
                        n.inputs = work.iter().cloned().collect();
                        n.outputs = vec![out];
                        n.payload = Payload::Stats(stats);
                        Some(n)
                    }
                    Err(e) => {
                        self.end_frame(
                            ctx,
                            key,
                            &ev,
                            Outcome::Failed,
                            Some(format!("preview buffer: {e}")),
                        );
                        return;
                    }
                }
            }
            StageId::FastIsp | StageId::SlowIsp => {
                let out = ev.envelope.outputs.first().cloned();
                let (stats, owner) = match (&ev.envelope.payload, std::mem::take(&mut ev.output)) {
                    (_, StageOutput::Gpu(g)) => {
                        Self::gpu_telemetry(ctx, &ev, &g);
                        (Some(Arc::new(g.stats)), "subscribers:preview")
                    }
                    (_, StageOutput::Stats(s)) => (Some(Arc::new(*s)), "subscribers:capture"),
                    (Payload::Stats(s), _) => (Some(s.clone()), "subscribers:preview"),
                    _ => (None, "subscribers"),
                };
                if let Some(mut e) = self.frames.remove(&key) {
                    if let Some(w) = e.work.take() {
                        ctx.release_when_unpinned(w.id);
                    }
                    Self::raw_done(ctx, &mut e);
                }
                let guard = out.as_ref().and_then(|b| ctx.pin_for(b, owner));
                if let Some(b) = &out {
                    ctx.release_when_unpinned(b.id);
                }
                let (preview, capture) = if env.stage == StageId::FastIsp {
                    (guard, None)
                } else {
                    (None, guard)
                };
                let res = FrameResult {
                    frame_id: frame.frame_id,
                    meta: frame.meta.clone(),
                    format: frame.format,
                    params_version: env.params_version(),
                    lane: env.lane,
                    outcome: Outcome::Ok,
                    error: None,
                    preview,
                    capture,
                    stats: stats.clone(),
                    ipa: env.ipa,
                    _frame: frame.clone(),
                };
                self.publish(ctx, res);
                stats.map(|s| {
                    let (stage, worker): (StageId, WorkerFn) = if env.stage == StageId::FastIsp {
                        (StageId::FastAlgo, isp::fast_algo)
                    } else {
                        (StageId::SlowAlgo, isp::slow_algo)
                    };
                    let mut n = self.envelope(&frame, stage, env.lane, worker, &ev.envelope);
                    n.payload = Payload::Stats(s);
                    n
                })
            }
            _ => {
                self.fold_algo(&ev.output);
                None
            }
        };
        if let Some(n) = next {
            match Self::pin_all(ctx, &n) {
                Ok(()) => self.threading.continue_with(n),
                Err(e) => {
                    let msg = format!("pin for {}: {e}", n.stage.name());
                    self.end_frame(ctx, key, &ev, Outcome::Failed, Some(msg));
                }
            }
        }
    }

    fn finish(&mut self, ctx: &mut DispatchCtx) {
        // Frames still registered never completed (engine stopped): release.
        let keys: Vec<_> = self.frames.keys().copied().collect();
        for k in keys {
            if let Some(mut e) = self.frames.remove(&k) {
                if let Some(w) = e.work.take() {
                    ctx.release_when_unpinned(w.id);
                }
                Self::raw_done(ctx, &mut e);
            }
        }
    }
}

/// The whole runtime.
pub struct Engine {
    pub rm: Arc<ResourceManager>,
    pub telemetry: Arc<TelemetryManager>,
    pub params: Arc<ParamStore>,
    pub housekeeper: Housekeeper,
    threading: Arc<ThreadingManager>,
    dispatcher: Mutex<CompletionDispatcher>,
    timer: Mutex<HousekeeperTimer>,
    subscribers: Subscribers,
    ipa: Arc<Mutex<IpaContext>>,
    controls: Arc<Mutex<Vec<Control>>>,
    new_frames: Sender<(Arc<FrameCtx>, Lane, Option<BufferRef>)>,
    in_flight: Arc<InFlight>,
    next_frame: Mutex<u64>,
    /// Modifier chain and write scheduling for sensor controls (feeder side).
    controls_out: Mutex<(
        crate::controls::Coordinator,
        crate::controls::IoctlApplier,
        u64,
    )>,
    config: EngineConfig,
    pub allocator_note: Option<String>,
    gpu: Option<Arc<GpuBackend>>,
    backend_note: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({:?})", self.config.path)
    }
}

impl Engine {
    pub fn new(config: EngineConfig, tuning: Tuning) -> Result<Engine, EngineError> {
        let (alloc, note) = create_allocator(config.allocator)?;
        let rm = Arc::new(ResourceManager::new(alloc, config.pool));
        let telemetry = Arc::new(TelemetryManager::new());
        if let Some(n) = &note {
            telemetry.note("allocator", n.clone());
        }
        let inbox = CompletionDispatcher::channel();
        let threading = Arc::new(ThreadingManager::new(config.threading, inbox.0.clone()));
        let subscribers: Subscribers = Arc::default();
        let ipa = Arc::new(Mutex::new(IpaContext {
            wb_gains: tuning.stages.white_balance.gains,
            ..Default::default()
        }));
        let controls = Arc::new(Mutex::new(Vec::new()));
        let (nf_tx, nf_rx) = unbounded();
        let router = PipelineRouter {
            threading: threading.clone(),
            subscribers: subscribers.clone(),
            ipa: ipa.clone(),
            controls: controls.clone(),
            frames: Default::default(),
            new_frames: nf_rx,
        };
        let housekeeper = Housekeeper::new(config.housekeeper);
        let timer = HousekeeperTimer::start(config.housekeeper.period, inbox.0.clone());
        let dispatcher = CompletionDispatcher::start(
            inbox,
            rm.clone(),
            telemetry.clone(),
            housekeeper.clone(),
            Box::new(router),
        );
        let params = Arc::new(ParamStore::new(tuning));
        let (gpu, backend_note) = Self::open_gpu(&config)?;
        telemetry.note("backend", backend_note.clone());
        Ok(Engine {
            rm,
            telemetry,
            params,
            housekeeper,
            threading,
            dispatcher: Mutex::new(dispatcher),
            timer: Mutex::new(timer),
            subscribers,
            ipa,
            controls,
            new_frames: nf_tx,
            in_flight: Arc::default(),
            next_frame: Mutex::new(0),
            controls_out: Mutex::new((
                crate::controls::Coordinator::standard(config.sensor),
                crate::controls::IoctlApplier::new(Default::default()),
                0,
            )),
            config,
            allocator_note: note,
            gpu,
            backend_note,
        })
    }

    /// The GPU for `config.backend`, and a line saying what was chosen.
    fn open_gpu(config: &EngineConfig) -> Result<(Option<Arc<GpuBackend>>, String), EngineError> {
        let mode = config.backend;
        if mode == Backend::Cpu {
            return Ok((None, "cpu (asked for)".into()));
        }
        let adopted = config.gpu_context.is_some();
        let opened = match &config.gpu_context {
            Some(c) => Ok(c.clone()),
            None => GpuContext::new(),
        };
        // `auto` on its own device skips a software rasterizer: it runs the
        // shaders on the CPU, far slower than the CPU backend. A device the
        // caller hands over, or `gpu`, is used as it is.
        if let (Ok(ctx), Backend::Auto, false) = (&opened, mode, adopted)
            && ctx.is_software()
        {
            return Ok((
                None,
                format!(
                    "cpu (auto: the only adapter, {}, is a software rasterizer; --backend gpu uses it)",
                    ctx.adapter_name()
                ),
            ));
        }
        match (opened.and_then(GpuIsp::new), mode) {
            (Ok(isp), _) => {
                let note = format!("gpu: {}", isp.context().adapter_name());
                Ok((Some(Arc::new(GpuBackend::new(isp, mode))), note))
            }
            (Err(e), Backend::Auto) => Ok((None, format!("cpu (auto: {e})"))),
            (Err(e), _) => Err(EngineError::Gpu(e)),
        }
    }

    /// What runs the preview now: "gpu: <adapter>" or "cpu (...)"; after a
    /// fault in auto mode, the CPU and why.
    pub fn backend(&self) -> String {
        match &self.gpu {
            Some(g) if g.active() => self.backend_note.clone(),
            Some(g) => format!(
                "cpu (auto, after a GPU fault: {})",
                g.last_fault().unwrap_or_default()
            ),
            None => self.backend_note.clone(),
        }
    }

    /// One stage's output ("tap") for a raw frame of `format`, with the
    /// current parameters (as the next frame would get them): computed on
    /// demand on the GPU when the engine has one, else by the CPU reference
    /// stages. For the inspector; the pipeline does not wait on it.
    pub fn tap(
        &self,
        raw: &[u8],
        format: RawFormat,
        tap: crate::gpu::Tap,
    ) -> Result<crate::gpu::TapImage, EngineError> {
        self.tap_with(raw, format, tap, None)
    }

    /// [`Engine::tap`] with another tuning (`None`: the current one), under
    /// the current 3A state: the viewer's "before" side renders the frame
    /// with the tuning as loaded.
    pub fn tap_with(
        &self,
        raw: &[u8],
        format: RawFormat,
        tap: crate::gpu::Tap,
        tuning: Option<&Tuning>,
    ) -> Result<crate::gpu::TapImage, EngineError> {
        let params = match tuning {
            None => self.frame_params(format).0,
            Some(t) => {
                t.check("tuning")
                    .map_err(|e| EngineError::Gpu(GpuError::Input(e.to_string())))?;
                let mut p = FrameParams::from_tuning(t, format);
                let ipa = self.ipa();
                for a in p.algorithms.iter() {
                    a.prepare(&ipa, &mut p.stages);
                }
                p.linear_output = self.config.linear_output;
                Arc::new(p)
            }
        };
        match self.gpu.as_ref().filter(|g| g.active()) {
            Some(g) => Ok(g.isp.tap(&params, raw, tap)?),
            None => isp::reference_tap(&params, raw, tap)
                .map_err(|e| EngineError::Gpu(GpuError::Input(e.to_string()))),
        }
    }

    /// Every stage's output for one raw frame with the current parameters,
    /// in one pass of the CPU reference chain (the pixel inspector's values).
    pub fn taps(
        &self,
        raw: &[u8],
        format: RawFormat,
    ) -> Result<Vec<(crate::gpu::Tap, crate::gpu::TapImage)>, EngineError> {
        let (params, _) = self.frame_params(format);
        isp::reference_taps(&params, raw)
            .map_err(|e| EngineError::Gpu(GpuError::Input(e.to_string())))
    }

    /// The engine's GPU ISP, when it has one (for taps and the app's texture path).
    pub fn gpu(&self) -> Option<&GpuIsp> {
        self.gpu.as_ref().map(|g| &g.isp)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Results of every frame. Lossless subscribers get every result (and
    /// hold the pipeline back while they lag); lossy ones (a UI) miss results
    /// when 2 are already waiting.
    pub fn subscribe(&self, lossless: bool) -> Receiver<Arc<FrameResult>> {
        let (tx, rx) = if lossless { unbounded() } else { bounded(2) };
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Subscriber { tx, lossless });
        rx
    }

    /// Drop every subscription: their receivers see the end of the stream.
    pub fn unsubscribe_all(&self) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn threading(&self) -> &ThreadingManager {
        &self.threading
    }

    /// The current 3A state.
    pub fn ipa(&self) -> IpaContext {
        *self.ipa.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Controls the algorithms asked for since the last call.
    pub fn take_controls(&self) -> Vec<Control> {
        std::mem::take(&mut *self.controls.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Frames submitted so far: the newest frame's id.
    pub fn frames_submitted(&self) -> u64 {
        *self.next_frame.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.count()
    }

    /// A pooled buffer for one RAW frame of `fmt`.
    pub fn acquire_raw(&self, fmt: &RawFormat) -> Result<BufferRef, EngineError> {
        Ok(self
            .rm
            .allocate(BufferSpec::raw(fmt.width, fmt.height, fmt.stride), "source")?)
    }

    /// Hand an unused buffer back (through the dispatcher).
    pub fn discard(&self, buf: BufferRef) {
        self.post(move |ctx| ctx.release_when_unpinned(buf.id));
    }

    /// Run a closure on the dispatcher thread.
    pub fn post(&self, f: impl FnOnce(&mut DispatchCtx) + Send + 'static) {
        let inbox = self
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .inbox();
        let _ = inbox.send(DispatcherMsg::Call(Box::new(f)));
    }

    /// The parameters of the next frame: the current version, prepared by the
    /// algorithms from the current 3A state.
    fn frame_params(&self, format: RawFormat) -> (Arc<FrameParams>, IpaContext) {
        let set = self.params.snapshot();
        let ipa = self.ipa();
        let mut stages = set.tuning.stages.clone();
        for a in set.algorithms.iter() {
            a.prepare(&ipa, &mut stages);
        }
        (
            Arc::new(FrameParams {
                version: set.version,
                format,
                linear_output: self.config.linear_output,
                stages,
                lut: set.lut,
                algorithms: set.algorithms,
            }),
            ipa,
        )
    }

    /// Submit a frame whose bytes are in `raw` (from [`Engine::acquire_raw`]).
    /// Returns the frame id. Never blocks on the realtime path; the slow path
    /// waits while the background lane is full.
    pub fn submit(
        &self,
        raw: BufferRef,
        meta: FrameMeta,
        format: RawFormat,
    ) -> Result<u64, EngineError> {
        if self.threading.is_shut_down() {
            self.discard(raw);
            return Err(EngineError::Closed);
        }
        let frame_id = {
            let mut n = self.next_frame.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        let (params, mut ipa) = self.frame_params(format);
        // AE works from what the sensor actually did for this frame (its
        // metadata), not from what was last asked: controls land frames later.
        if meta.exposure_us > 0.0 {
            ipa.exposure_us = meta.exposure_us;
            ipa.analogue_gain = meta.analogue_gain.max(f32::MIN_POSITIVE);
        }
        self.in_flight.enter();
        let frame = Arc::new(FrameCtx {
            frame_id,
            meta,
            format,
            path: self.config.path,
            raw: raw.clone(),
            raw_users: std::sync::atomic::AtomicU8::new(if self.config.path == PathMode::Both {
                2
            } else {
                1
            }),
            in_flight: self.in_flight.clone(),
        });
        let lanes: &[Lane] = match self.config.path {
            PathMode::Fast => &[Lane::Realtime],
            PathMode::Slow => &[Lane::Background],
            PathMode::Both => &[Lane::Realtime, Lane::Background],
        };
        // On the GPU the realtime lane writes the RGBA8 preview straight from
        // the raw bytes; no 16-bit mosaic is kept.
        let gpu = self.gpu.clone().filter(|g| g.active());
        let mut work_bufs = Vec::new();
        for &lane in lanes {
            let spec = match (lane, &gpu) {
                (Lane::Realtime, Some(_)) => {
                    BufferSpec::new(BufferKind::Rgba8, format.width, format.height)
                }
                (Lane::Realtime, None) => {
                    BufferSpec::new(BufferKind::Bayer16, format.width, format.height)
                }
                (Lane::Background, _) => {
                    BufferSpec::new(BufferKind::Rgb16, format.width, format.height)
                }
            };
            match self
                .rm
                .allocate(spec, &format!("f{frame_id}:{}", lane.name()))
            {
                Ok(b) => work_bufs.push((lane, b)),
                Err(e) => {
                    for (_, b) in work_bufs {
                        self.discard(b);
                    }
                    self.discard(raw);
                    self.telemetry
                        .note("engine", format!("frame {frame_id} dropped: {e}"));
                    return Err(e.into());
                }
            }
        }
        for (lane, buf) in work_bufs {
            let on_gpu = lane == Lane::Realtime && gpu.is_some();
            let (stage, worker): (StageId, WorkerFn) = match lane {
                Lane::Realtime if on_gpu => (StageId::FastIsp, isp::gpu_preview),
                Lane::Realtime => (StageId::RawIsp, isp::raw_isp),
                Lane::Background => (StageId::SlowIsp, isp::slow_isp),
            };
            let env = Envelope {
                frame_id,
                stage,
                lane,
                worker,
                inputs: vec![raw.clone()],
                outputs: vec![buf.clone()],
                pin_owner: format!("f{frame_id}:{}", stage.name()),
                params: params.clone(),
                ipa,
                payload: Payload::None,
                enqueue_ns: now_ns(),
                deadline_ns: None,
                continuation: false,
                gpu: if on_gpu { gpu.clone() } else { None },
            };
            let _ = self.new_frames.send((
                frame.clone(),
                lane,
                (lane == Lane::Realtime && !on_gpu).then(|| buf.clone()),
            ));
            self.rm.pin(raw.id, &env.pin_owner)?;
            self.rm.pin(buf.id, &env.pin_owner)?;
            // A shut-down lane completes the envelope as cancelled; the router cleans up.
            let _ = self.threading.submit(env);
        }
        Ok(frame_id)
    }

    /// Read frames from `source` and submit them, at most `limit`. Offline
    /// sources wait for a free slot (no frame is dropped); live sources never
    /// wait. Controls from AE are applied to the source between frames.
    /// `on_submit` sees each frame id. Returns the frames submitted.
    pub fn feed(
        &self,
        source: &mut dyn FrameSource,
        limit: Option<u64>,
        mut on_submit: impl FnMut(u64),
    ) -> Result<u64, EngineError> {
        let fmt = source.format();
        let mut n = 0;
        while limit.is_none_or(|l| n < l) {
            if !source.is_live() {
                while !self
                    .in_flight
                    .wait_below(self.config.max_in_flight, Duration::from_millis(200))
                {
                }
            }
            self.apply_controls(source)?;
            let buf = self.acquire_raw(&fmt)?;
            let meta = {
                let mut m = buf.write()?;
                source.next_frame(m.bytes_mut())
            };
            let meta = match meta {
                Ok(Some(m)) => m,
                Ok(None) => {
                    self.discard(buf);
                    break;
                }
                Err(e) => {
                    self.discard(buf);
                    return Err(e.into());
                }
            };
            let id = self.submit(buf, meta, fmt)?;
            on_submit(id);
            n += 1;
        }
        Ok(n)
    }

    /// Run the algorithms' latest controls through the Coordinator's chain,
    /// schedule them with the IoctlApplier and write what is due before the
    /// next frame is captured.
    fn apply_controls(&self, source: &mut dyn FrameSource) -> Result<(), EngineError> {
        let requested = self.take_controls();
        let mut g = self.controls_out.lock().unwrap_or_else(|p| p.into_inner());
        let (coordinator, applier, frame) = &mut *g;
        if !requested.is_empty() {
            let (modified, changes) = coordinator.run_traced(requested);
            let target = applier.push(*frame, &modified);
            let why = if changes.is_empty() {
                String::new()
            } else {
                format!(" ({})", changes.join("; "))
            };
            self.telemetry.note(
                "coordinator",
                format!("{modified:?} take effect at frame {target}{why}"),
            );
        }
        let due = applier.due(*frame);
        *frame += 1;
        if !due.is_empty() {
            source.set_controls(&due)?;
        }
        Ok(())
    }

    /// Manual exposure/gain that win over AE (None gives control back).
    pub fn set_manual_controls(&self, exposure_us: Option<f32>, analogue_gain: Option<f32>) {
        let mut g = self.controls_out.lock().unwrap_or_else(|p| p.into_inner());
        g.0.chain[0] = Box::new(crate::controls::ManualOverride {
            exposure_us,
            analogue_gain,
        });
    }

    /// Wait until every submitted frame is done and its results dropped.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.in_flight.wait_below(1, timeout)
    }

    /// Stop everything: lanes (pending work cancelled), dispatcher, Housekeeper.
    pub fn shutdown(&self) {
        self.timer.lock().unwrap_or_else(|p| p.into_inner()).stop();
        self.threading.shutdown();
        self.dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shutdown();
        // Subscribers see their channel close.
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}
