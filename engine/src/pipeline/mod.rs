//! The Engine: the runtime wired together.
//!
//! ```text
//! feeder (caller's thread) -> ResourceManager (raw buffer) -> Launcher -> ThreadingManager
//!   the frame's plan (plan.rs), e.g. realtime RawISP -> RawAlgo -> FastISP -> FastAlgo,
//!   background SlowISP -> SlowAlgo
//! -> CompletionDispatcher -> PipelineRouter (next step, releases, publish, 3A fold)
//! ```
//! The router runs on the dispatcher thread; it is the only code that ends a
//! buffer's life. Subscribers get `Arc<FrameResult>` with pinned outputs.
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | `EngineConfig`, `PathMode`, `EngineError` |
//! | `plan.rs` | `FramePlan`: the steps of a frame, declared once |
//! | `frame.rs` | a frame's identity, the in-flight count, `FrameResult` |
//! | `router.rs` | starting frames, running plans |
//! | `subscriptions.rs` | who gets results |
//! | `feed.rs` | sources in, sensor controls out |
//! | `capture.rs` | bursts and brackets: read, merged on the background lane, developed |
//! | `taps.rs` | any stage's output on demand |

mod capture;
mod config;
mod feed;
mod frame;
pub mod plan;
mod router;
mod still;
mod subscriptions;
mod taps;

pub use capture::{CaptureReport, CaptureRequest, PendingCapture};
pub use config::{ActiveBackend, EngineConfig, EngineError, PathMode};
pub use frame::FrameResult;

use crate::algorithms::{Control, IpaContext};
use crate::allocator::create_allocator;
use crate::completion_dispatcher::{CompletionDispatcher, DispatchCtx, DispatcherMsg};
use crate::gpu::{Backend, GpuBackend, GpuContext, GpuIsp};
use crate::housekeeper::{Housekeeper, HousekeeperTimer};
use crate::resource_manager::{BufferRef, BufferSpec, ResourceManager, RmError};
use crate::sources::FrameMeta;
use crate::telemetry::TelemetryManager;
use crate::threading_manager::ThreadingManager;
use crate::tuning::{FrameParams, ParamStore, Tuning};
use crate::types::{Lane, RawFormat};
use plan::StandardPlans;
use router::{FrameStart, Launcher, PipelineRouter};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subscriptions::Subscribers;

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
    launcher: Launcher,
    plans: StandardPlans,
    fusion: crate::fusion::FusionManager,
    next_frame: Mutex<u64>,
    /// Modifier chain and write scheduling for sensor controls (feeder side).
    controls_out: Mutex<(
        crate::controls::Coordinator,
        crate::controls::IoctlApplier,
        u64,
    )>,
    device: Mutex<feed::DeviceSide>,
    config: EngineConfig,
    pub allocator_note: Option<String>,
    gpu: Option<Arc<GpuBackend>>,
    backend_note: ActiveBackend,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({:?})", self.config.path)
    }
}

/// What the 3A state adds to a frame's stages after the algorithms'
/// `prepare`: the CCM interpolated at the colour temperature (when the
/// tuning has matrices per CT) and a still's digital gain as the tone's
/// exposure (with its roll-off: never on the white balance, where channels
/// clipped by the sensor would end at different levels). Every path that
/// renders a frame takes them (the preview, the capture path, taps with
/// another tuning); `lut` becomes the tone table of the adjusted tone.
pub(crate) fn frame_adjustments(
    ipa: &IpaContext,
    stages: &mut crate::stages::StageParams,
    lut: &mut Arc<crate::stages::tone::ToneLut>,
) {
    if !stages.ccm.by_ct.is_empty() {
        stages.ccm.matrix = stages.ccm.for_ct(ipa.colour_temperature);
    }
    if ipa.digital_gain != 1.0 {
        let tone = &mut stages.tone;
        tone.exposure = (tone.exposure * ipa.digital_gain).clamp(1.0 / 64.0, 64.0);
        *lut = crate::stages::tone::lut_for(tone);
    }
}

impl Engine {
    pub fn new(config: EngineConfig, tuning: Tuning) -> Result<Engine, EngineError> {
        let (alloc, note) = create_allocator(config.allocator)?;
        let rm = Arc::new(ResourceManager::new(alloc, config.pool));
        let telemetry = Arc::new(TelemetryManager::with_spill(
            config.telemetry_memory_chunks,
            config.telemetry_spill_dir.clone(),
        ));
        if let Some(n) = &note {
            telemetry.note("allocator", n.clone());
        }
        let inbox = CompletionDispatcher::channel();
        let threading = Arc::new(ThreadingManager::new(
            config.threading,
            CompletionDispatcher::sink(&inbox.0),
        ));
        let subscribers = Subscribers::default();
        let ipa = Arc::new(Mutex::new(IpaContext {
            wb_gains: tuning.stages.white_balance.gains,
            ..Default::default()
        }));
        let controls = Arc::new(Mutex::new(Vec::new()));
        let (router, launcher) = PipelineRouter::new(
            rm.clone(),
            threading.clone(),
            telemetry.clone(),
            inbox.0.clone(),
            subscribers.clone(),
            ipa.clone(),
            controls.clone(),
        );
        let housekeeper = Housekeeper::new(config.housekeeper);
        let sweeps = inbox.0.clone();
        let timer = HousekeeperTimer::start(config.housekeeper.period, move || {
            sweeps.send(DispatcherMsg::Sweep).is_ok()
        });
        let lifecycle = rm
            .take_lifecycle()
            .ok_or(EngineError::Buffer(RmError::ForeignLifecycle))?;
        let dispatcher = CompletionDispatcher::start(
            inbox,
            rm.clone(),
            lifecycle,
            telemetry.clone(),
            housekeeper.clone(),
            Box::new(router),
        );
        let params = Arc::new(ParamStore::for_sensor(tuning, config.sensor));
        let (gpu, backend_note) = Self::open_gpu(&config)?;
        telemetry.note("backend", backend_note.to_string());
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
            launcher,
            plans: StandardPlans::new(),
            fusion: crate::fusion::FusionManager::new(),
            next_frame: Mutex::new(0),
            device: Mutex::default(),
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
    fn open_gpu(
        config: &EngineConfig,
    ) -> Result<(Option<Arc<GpuBackend>>, ActiveBackend), EngineError> {
        let cpu = |why: String| ActiveBackend::Cpu { why };
        let mode = config.backend;
        if mode == Backend::Cpu {
            return Ok((None, cpu("asked for".into())));
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
                cpu(format!(
                    "auto: the only adapter, {}, is a software rasterizer; --backend gpu uses it",
                    ctx.adapter_name()
                )),
            ));
        }
        match (opened.and_then(GpuIsp::new), mode) {
            (Ok(isp), _) => {
                let note = ActiveBackend::Gpu {
                    adapter: isp.context().adapter_name(),
                };
                Ok((Some(Arc::new(GpuBackend::new(isp, mode))), note))
            }
            (Err(e), Backend::Auto) => Ok((None, cpu(format!("auto: {e}")))),
            (Err(e), _) => Err(EngineError::Gpu(e)),
        }
    }

    /// What runs the preview now (after a fault in auto mode, the CPU and
    /// why); it prints as "gpu: <adapter>" or "cpu (<why>)".
    pub fn backend(&self) -> ActiveBackend {
        match &self.gpu {
            Some(g) if g.active() => self.backend_note.clone(),
            Some(g) => ActiveBackend::Cpu {
                why: format!(
                    "auto, after a GPU fault: {}",
                    g.last_fault().unwrap_or_default()
                ),
            },
            None => self.backend_note.clone(),
        }
    }

    /// The engine's GPU ISP, when it has one (for taps and the app's texture path).
    pub fn gpu(&self) -> Option<&GpuIsp> {
        self.gpu.as_ref().map(|g| &g.isp)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn threading(&self) -> &ThreadingManager {
        &self.threading
    }

    /// The current 3A state.
    pub fn ipa(&self) -> IpaContext {
        *self.ipa.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frames submitted so far: the newest frame's id.
    pub fn frames_submitted(&self) -> u64 {
        *self.next_frame.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn in_flight(&self) -> usize {
        self.launcher.in_flight.count()
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

    /// A Housekeeper sweep as of `now` (engine clock), run on the dispatcher
    /// (where lifecycles end); its report, or `None` when the engine is shut
    /// down.
    pub fn sweep(&self, now: u64) -> Option<crate::housekeeper::SweepReport> {
        self.call(move |ctx| ctx.sweep(now))
    }

    /// Run `f` on the dispatcher thread and wait (up to 30 s) for its
    /// result: everything posted before it (releases, unpins) has happened
    /// by then. `None` when the engine is shut down.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DispatchCtx) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.post(move |ctx| {
            let _ = tx.send(f(ctx));
        });
        rx.recv_timeout(Duration::from_secs(30)).ok()
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
        let mut lut = set.lut;
        frame_adjustments(&ipa, &mut stages, &mut lut);
        if let Some(n) = &set.tuning.noise {
            n.resolve_into(&mut stages, &format, ipa.analogue_gain);
        }
        (
            Arc::new(FrameParams {
                version: set.version,
                format,
                linear_output: self.config.linear_output,
                stages,
                lut,
                algorithms: set.algorithms,
            }),
            ipa,
        )
    }

    /// Submit a frame whose bytes are in `raw` (from [`Engine::acquire_raw`]).
    /// Returns the frame id. Never blocks on the realtime path; the slow path
    /// waits while the background lane is full. On an error the frame never
    /// started and every buffer it took (`raw` too) is handed back.
    pub fn submit(
        &self,
        raw: BufferRef,
        meta: FrameMeta,
        format: RawFormat,
    ) -> Result<u64, EngineError> {
        self.start_frame(raw, meta, format, false)
    }

    /// Submit a frame made again (an edit while paused): its preview and
    /// statistics under the parameters now, with no 3A run, so the 3A
    /// state, the controls and the capture path are left as they were.
    pub fn submit_replay(
        &self,
        raw: BufferRef,
        meta: FrameMeta,
        format: RawFormat,
    ) -> Result<u64, EngineError> {
        self.start_frame(raw, meta, format, true)
    }

    fn start_frame(
        &self,
        raw: BufferRef,
        meta: FrameMeta,
        format: RawFormat,
        replay: bool,
    ) -> Result<u64, EngineError> {
        self.start_frame_on(raw, meta, format, replay, self.config.path, true)
    }

    /// [`Engine::start_frame`] on a path of its own (a merged capture takes
    /// the capture path whatever the preview runs); `live`: a frame of the
    /// stream (a model stage may run on it), not a capture's result.
    fn start_frame_on(
        &self,
        raw: BufferRef,
        meta: FrameMeta,
        format: RawFormat,
        replay: bool,
        path: PathMode,
        live: bool,
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
        // The backend is chosen per frame: after a fault in auto mode the
        // next frame takes the CPU plan.
        let gpu = self.gpu.clone().filter(|g| g.active());
        // A model stage runs on every n-th frame of the live stream (not on
        // replays or a capture's results), and only while the background
        // lane has nothing queued: starting a frame never waits for that
        // lane (a run already under way may still have one queued behind it).
        let model_due = !replay
            && live
            && params
                .algorithms
                .iter()
                .find_map(|a| a.model_stage())
                .is_some_and(|m| frame_id.is_multiple_of(u64::from(m.every())))
            && self.threading.pending(Lane::Background) == 0;
        let plan = if replay {
            self.plans.replay(gpu.is_some())
        } else if model_due {
            self.plans.with_model(path, gpu.is_some())
        } else {
            self.plans.get(path, gpu.is_some())
        }
        .clone();
        self.launcher.start(FrameStart {
            frame_id,
            meta,
            format,
            raw,
            plan,
            params,
            ipa,
            gpu,
        })?;
        Ok(frame_id)
    }

    /// Wait until every submitted frame is done and its results dropped.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.launcher.in_flight.wait_below(1, timeout)
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
        self.subscribers.clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}
