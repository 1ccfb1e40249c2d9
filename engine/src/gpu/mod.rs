//! The GPU backend: the ISP stages as wgpu compute shaders (`shaders/*.wgsl`,
//! one per CPU stage in `stages/`, same name), held to the CPU reference.
//!
//! - [`GpuContext`]: one wgpu device and queue, created here
//!   ([`GpuContext::new`]) or adopted from the caller ([`GpuContext::adopt`],
//!   the app hands over eframe's device).
//! - [`GpuIsp`]: pipelines built once, per-geometry frame slots (pooled
//!   buffers, a staging buffer per slot, cached bind groups), the fused preview
//!   (one dispatch: raw bytes -> RGBA8 + 3A statistics) and every stage on its
//!   own for taps and tests.
//! - [`Backend`]: `cpu | gpu | auto`, as the CLI and the engine take it.
//!
//! Faults (no adapter, device lost, out of memory, a shader or command that
//! fails validation, a wait that times out) come back as [`GpuError`]; the
//! device's uncaptured-error handler records instead of panicking.

mod align;
mod hdr;
mod isp;
mod merge;
mod uniforms;

pub use uniforms::Uniforms;

pub use align::GpuAlign;
pub use hdr::GpuHdr;
pub use isp::{BytesMoved, GpuFrame, GpuIsp, GpuTimings, InjectedFault, Kernel, TimerKind};
pub use merge::GpuMerge;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which ISP backend runs the preview.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Gpu,
    /// The GPU when an adapter exists, else the CPU; a GPU fault switches to the CPU.
    #[default]
    Auto,
}

impl Backend {
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "cpu" => Some(Backend::Cpu),
            "gpu" => Some(Backend::Gpu),
            "auto" => Some(Backend::Auto),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
            Backend::Auto => "auto",
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum GpuError {
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    #[error("GPU device request failed on {adapter}: {message}")]
    Device { adapter: String, message: String },
    #[error("shader module failed validation: {0}")]
    Shader(String),
    #[error("GPU validation error in {what}: {message}")]
    Validation { what: &'static str, message: String },
    #[error("GPU out of memory in {what}: {message}")]
    OutOfMemory { what: &'static str, message: String },
    #[error("GPU device lost: {0}")]
    Lost(String),
    #[error("GPU did not finish within {0:?}")]
    Timeout(Duration),
    #[error("GPU buffer mapping failed: {0}")]
    Map(String),
    #[error("{0}")]
    Input(String),
    #[error("{what} needs {need} bytes, the adapter allows {max}")]
    TooLarge {
        what: &'static str,
        need: u64,
        max: u64,
    },
}

/// The shader sources, in the order they are concatenated into one module.
pub const SHADER_FILES: [(&str, &str); 14] = [
    ("common", include_str!("../../../shaders/common.wgsl")),
    ("unpack", include_str!("../../../shaders/unpack.wgsl")),
    (
        "black_level",
        include_str!("../../../shaders/black_level.wgsl"),
    ),
    (
        "defect_pixel",
        include_str!("../../../shaders/defect_pixel.wgsl"),
    ),
    (
        "lens_shading",
        include_str!("../../../shaders/lens_shading.wgsl"),
    ),
    (
        "white_balance",
        include_str!("../../../shaders/white_balance.wgsl"),
    ),
    ("demosaic", include_str!("../../../shaders/demosaic.wgsl")),
    (
        "highlights",
        include_str!("../../../shaders/highlights.wgsl"),
    ),
    ("ccm", include_str!("../../../shaders/ccm.wgsl")),
    ("tone", include_str!("../../../shaders/tone.wgsl")),
    ("yuv", include_str!("../../../shaders/yuv.wgsl")),
    ("stats", include_str!("../../../shaders/stats.wgsl")),
    ("scaler", include_str!("../../../shaders/scaler.wgsl")),
    ("fused", include_str!("../../../shaders/fused.wgsl")),
];

/// All stage shaders as one WGSL module (they share `common.wgsl`'s bindings
/// and call each other's per-pixel functions; the fused kernel is built from them).
pub fn shader_source() -> String {
    let mut s = String::new();
    for (name, text) in SHADER_FILES {
        s.push_str(&format!("// ===== shaders/{name}.wgsl =====\n"));
        s.push_str(text);
        s.push('\n');
    }
    s
}

/// One wgpu device and queue and what is known about its adapter.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Errors nobody captured (an owned device's handler records them here).
    uncaptured: Arc<Mutex<Option<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    lost_flag: Arc<AtomicBool>,
    /// How long a wait for the GPU may take before it is a fault.
    pub timeout: Duration,
    /// Faults to inject into the next fusion kernels (alignment, burst and
    /// bracket merges): [`GpuContext::inject_fusion_faults`], tests only.
    fusion_faults: AtomicU32,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuContext({})", self.adapter_name())
    }
}

/// Rank adapters: real GPUs first, Vulkan/Metal/DX12 before GL.
fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, api)
}

/// The limits the engine asks for: WebGPU's downlevel set (so eframe's device
/// qualifies), with the adapter's texture sizes and buffer sizes.
pub fn required_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    let mut l = wgpu::Limits::downlevel_defaults().using_resolution(adapter.clone());
    l.max_storage_buffer_binding_size = adapter.max_storage_buffer_binding_size;
    l.max_buffer_size = adapter.max_buffer_size;
    l
}

/// How a fusion kernel binds one buffer (binding `i` is the `i`-th).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bind {
    Uniform,
    Read,
    ReadWrite,
}

/// A compute module of the fusion kernels: one bind group of buffers, its
/// layout, and a pipeline per entry point (in the order asked for).
pub(crate) struct ComputeModule {
    pub layout: wgpu::BindGroupLayout,
    pub pipelines: Vec<wgpu::ComputePipeline>,
}

impl GpuContext {
    /// Build `wgsl`'s `entries` over one bind group of `binds`.
    pub(crate) fn compute_module(
        &self,
        label: &str,
        wgsl: &str,
        binds: &[Bind],
        entries: &[&str],
    ) -> ComputeModule {
        let device = &self.device;
        let layout_entries: Vec<wgpu::BindGroupLayoutEntry> = binds
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b {
                        Bind::Uniform => wgpu::BufferBindingType::Uniform,
                        Bind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Bind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &layout_entries,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = entries
            .iter()
            .map(|entry| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        ComputeModule { layout, pipelines }
    }

    /// A bind group of whole `buffers` (binding `i` is `buffers[i]`).
    pub(crate) fn bind_buffers(
        &self,
        label: &str,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    }
}

impl GpuContext {
    /// Create a device on the best adapter (`WGPU_BACKEND` and the other wgpu
    /// environment variables are honoured). Asks for timestamp queries where
    /// the adapter has them.
    pub fn new() -> Result<Arc<GpuContext>, GpuError> {
        // Vulkan / Metal / DX12 first; GL only when they offer nothing (its
        // EGL probe is noisy on headless machines). WGPU_BACKEND overrides.
        let from_env = std::env::var_os("WGPU_BACKEND").is_some();
        let tries: &[wgpu::Backends] = if from_env {
            &[wgpu::Backends::all()]
        } else {
            &[wgpu::Backends::PRIMARY, wgpu::Backends::GL]
        };
        let mut adapters = Vec::new();
        for &backends in tries {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            if !from_env {
                desc.backends = backends;
            }
            let instance = wgpu::Instance::new(desc);
            adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
            adapters.retain(|a| {
                let d = a.get_downlevel_capabilities();
                d.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            });
            if !adapters.is_empty() {
                break;
            }
        }
        adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
        let Some(adapter) = adapters.into_iter().next() else {
            return Err(GpuError::NoAdapter(
                "wgpu found no adapter with compute shaders (on Linux install \
                 mesa-vulkan-drivers for the lavapipe software adapter)"
                    .into(),
            ));
        };
        let info = adapter.get_info();
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let desc = wgpu::DeviceDescriptor {
            label: Some("isp-engine"),
            required_features: features,
            required_limits: required_limits(&adapter.limits()),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&desc)).map_err(|e| GpuError::Device {
                adapter: info.name.clone(),
                message: e.to_string(),
            })?;
        let ctx = Self::wrap(device, queue, info);
        let sink = ctx.uncaptured.clone();
        ctx.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                tracing::error!("uncaptured GPU error: {e}");
                *sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }));
        Ok(Arc::new(ctx))
    }

    /// Use a device someone else created (eframe's): the preview then stays
    /// on that device and can be drawn without a CPU copy. The device needs
    /// the limits of [`required_limits`].
    pub fn adopt(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Arc<Self> {
        Arc::new(Self::wrap(device, queue, info))
    }

    fn wrap(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_flag = Arc::new(AtomicBool::new(false));
        let (l, f) = (lost.clone(), lost_flag.clone());
        device.set_device_lost_callback(move |reason, msg| {
            *l.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{reason:?}: {msg}"));
            f.store(true, Ordering::Release);
        });
        GpuContext {
            device,
            queue,
            info,
            uncaptured: Arc::default(),
            lost,
            lost_flag,
            timeout: Duration::from_secs(20),
            fusion_faults: AtomicU32::new(0),
        }
    }

    /// "NVIDIA H100 80GB HBM3 (Vulkan, DiscreteGpu)".
    pub fn adapter_name(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// A software rasterizer (lavapipe / llvmpipe, WARP, SwiftShader): it
    /// runs the shaders on the CPU, slower than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// A fault already seen: the device was lost or an error went uncaptured.
    pub fn check(&self) -> Result<(), GpuError> {
        if self.lost_flag.load(Ordering::Acquire) {
            let m = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(GpuError::Lost(m.unwrap_or_default()));
        }
        if let Some(m) = self
            .uncaptured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(GpuError::Validation {
                what: "uncaptured",
                message: m,
            });
        }
        Ok(())
    }

    /// [`GpuContext::check`] at the start of a fusion kernel (alignment,
    /// burst or bracket merge), where an injected fault is taken.
    pub fn check_fusion(&self) -> Result<(), GpuError> {
        self.check()?;
        let injected = self
            .fusion_faults
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if injected {
            return Err(GpuError::Validation {
                what: "fusion kernel",
                message: "injected fault".into(),
            });
        }
        Ok(())
    }

    /// Make the next `n` fusion kernels fail with a validation error (the
    /// engine then aligns and merges on the CPU).
    #[cfg(feature = "test-support")]
    pub fn inject_fusion_faults(&self, n: u32) {
        self.fusion_faults.store(n, Ordering::Release);
    }

    /// Destroy the device (tests use it to provoke a device-lost fault).
    /// Submit `enc`, whose last command copies what is wanted into
    /// `readback` (MAP_READ), wait for it (bounded by the timeout), and
    /// hand the mapped bytes to `f`. `what` names it in errors.
    pub fn submit_and_read(
        &self,
        enc: wgpu::CommandEncoder,
        readback: &wgpu::Buffer,
        what: &str,
        f: impl FnOnce(&[u8]) -> Result<(), GpuError>,
    ) -> Result<(), GpuError> {
        let idx = self.queue.submit([enc.finish()]);
        let done: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let d2 = done.clone();
        readback.map_async(wgpu::MapMode::Read, .., move |r| {
            *d2.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        let r = self.device.poll(wgpu::PollType::Wait {
            submission_index: Some(idx),
            timeout: Some(self.timeout),
        });
        self.check()?;
        match r {
            Ok(_) => {}
            Err(wgpu::PollError::Timeout) => return Err(GpuError::Timeout(self.timeout)),
            Err(e) => return Err(GpuError::Lost(e.to_string())),
        }
        let t0 = std::time::Instant::now();
        loop {
            match done.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(Ok(())) => break,
                Some(Err(e)) => return Err(GpuError::Map(e.to_string())),
                None => {}
            }
            if t0.elapsed() > self.timeout {
                return Err(GpuError::Map(format!(
                    "{what}: the readback was never mapped"
                )));
            }
            let _ = self.device.poll(wgpu::PollType::Poll);
            std::thread::yield_now();
        }
        let view = readback
            .get_mapped_range(..)
            .map_err(|e| GpuError::Map(e.to_string()))?;
        let r = f(&view);
        drop(view);
        readback.unmap();
        r
    }

    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// Remember that the device is gone (a poll said so before wgpu's
    /// device-lost callback ran): every later call is the same `Lost` fault,
    /// not an error about some buffer of the dead device.
    pub fn mark_lost(&self, why: &str) {
        let mut l = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        if l.is_none() {
            *l = Some(why.to_string());
        }
        self.lost_flag.store(true, Ordering::Release);
    }
}

/// For tests (feature `test-support`): a context, or why there is none. A missing adapter
/// is an error unless `ISP_SKIP_GPU_TESTS=1` says to skip (never with `CI=true`).
#[cfg(feature = "test-support")]
pub fn context_for_tests() -> Option<Arc<GpuContext>> {
    match GpuContext::new() {
        Ok(c) => Some(c),
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            let skip = std::env::var("ISP_SKIP_GPU_TESTS").is_ok_and(|v| v == "1");
            if skip && !ci {
                eprintln!("SKIPPING GPU test (ISP_SKIP_GPU_TESTS=1): {e}");
                None
            } else {
                panic!(
                    "GPU tests need an adapter: {e}. Install mesa-vulkan-drivers \
                     (lavapipe); set ISP_SKIP_GPU_TESTS=1 to skip outside CI"
                );
            }
        }
    }
}

/// The engine's GPU: the ISP, the mode it was asked for, and whether it is
/// still trusted. A fault in `auto` mode clears `healthy`; frames after it
/// run on the CPU.
#[derive(Debug)]
pub struct GpuBackend {
    pub isp: GpuIsp,
    pub mode: Backend,
    healthy: AtomicBool,
    fault: Mutex<Option<String>>,
    /// The burst merge's pipelines, built at the first merge.
    merge: std::sync::OnceLock<Result<GpuMerge, String>>,
    /// The alignment's pipeline, built at the first merge.
    align: std::sync::OnceLock<Result<GpuAlign, String>>,
    /// The bracket merge's pipeline, built at the first bracket.
    hdr: std::sync::OnceLock<Result<GpuHdr, String>>,
}

impl GpuBackend {
    pub fn new(isp: GpuIsp, mode: Backend) -> Self {
        GpuBackend {
            isp,
            mode,
            healthy: AtomicBool::new(true),
            fault: Mutex::new(None),
            merge: std::sync::OnceLock::new(),
            align: std::sync::OnceLock::new(),
            hdr: std::sync::OnceLock::new(),
        }
    }

    /// The bracket merge on this GPU (its pipeline built once), or why not.
    pub fn hdr(&self) -> Result<&GpuHdr, String> {
        self.hdr
            .get_or_init(|| GpuHdr::new(self.isp.context().clone()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The burst alignment on this GPU (its pipeline built once), or why not.
    pub fn align(&self) -> Result<&GpuAlign, String> {
        self.align
            .get_or_init(|| GpuAlign::new(self.isp.context().clone()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The burst merge on this GPU (its pipelines built once), or why not.
    pub fn merge(&self) -> Result<&GpuMerge, String> {
        self.merge
            .get_or_init(|| GpuMerge::new(self.isp.context().clone()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Frames should go to the GPU.
    pub fn active(&self) -> bool {
        self.mode == Backend::Gpu || self.healthy.load(Ordering::Acquire)
    }

    /// Record a fault; returns true the first time (the switch to the CPU).
    pub fn fault(&self, e: &GpuError) -> bool {
        let mut f = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e.to_string());
        }
        self.healthy.swap(false, Ordering::AcqRel)
    }

    /// The first fault seen, if any.
    pub fn last_fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
