//! GpuIsp: the compute pipelines (built once), the per-geometry frame slots
//! (pooled buffers, staging, cached bind groups) and the ways to run them:
//! the fused preview, a tap of any stage's output, one stage on its own.

use super::uniforms::{self, Uniforms};
use super::{GpuContext, GpuError};
use crate::clock::now_ns;
use crate::stages::chain::{Image, Tap, TapImage};
use crate::stages::stats::{HIST_BINS, Stats3A, Zone};
use crate::stages::unpack;
use crate::tuning::FrameParams;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One compute entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Unpack,
    BlackLevel,
    DefectPixel,
    LensShading,
    WhiteBalance,
    Demosaic,
    Ccm,
    ToneRgba8,
    ToneRgb16,
    Yuv,
    Stats,
    Scaler,
    FusedPreview,
}

impl Kernel {
    pub const ALL: [Kernel; 13] = [
        Kernel::Unpack,
        Kernel::BlackLevel,
        Kernel::DefectPixel,
        Kernel::LensShading,
        Kernel::WhiteBalance,
        Kernel::Demosaic,
        Kernel::Ccm,
        Kernel::ToneRgba8,
        Kernel::ToneRgb16,
        Kernel::Yuv,
        Kernel::Stats,
        Kernel::Scaler,
        Kernel::FusedPreview,
    ];

    /// The WGSL entry point.
    pub fn entry(self) -> &'static str {
        match self {
            Kernel::Unpack => "unpack",
            Kernel::BlackLevel => "black_level",
            Kernel::DefectPixel => "defect_pixel",
            Kernel::LensShading => "lens_shading",
            Kernel::WhiteBalance => "white_balance",
            Kernel::Demosaic => "demosaic",
            Kernel::Ccm => "ccm",
            Kernel::ToneRgba8 => "tone_rgba8",
            Kernel::ToneRgb16 => "tone_rgb16",
            Kernel::Yuv => "yuv",
            Kernel::Stats => "stats_3a",
            Kernel::Scaler => "scaler",
            Kernel::FusedPreview => "fused_preview",
        }
    }

    /// The kernel whose entry point is `entry`.
    pub fn of(entry: &str) -> Result<Kernel, GpuError> {
        Kernel::ALL
            .into_iter()
            .find(|k| k.entry() == entry)
            .ok_or_else(|| GpuError::Input(format!("no kernel `{entry}`")))
    }

    /// Workgroups for a `w` x `h` frame (`ow` x `oh` output for the scaler).
    fn workgroups(self, w: u32, h: u32, ow: u32, oh: u32) -> (u32, u32) {
        match self {
            Kernel::Unpack
            | Kernel::BlackLevel
            | Kernel::DefectPixel
            | Kernel::LensShading
            | Kernel::WhiteBalance
            | Kernel::Demosaic => ((w / 2).div_ceil(16), h.div_ceil(16)),
            Kernel::Ccm | Kernel::ToneRgba8 | Kernel::ToneRgb16 | Kernel::Yuv => {
                let groups = (w * h / 2).div_ceil(256);
                let x = groups.clamp(1, 65535);
                (x, groups.div_ceil(x))
            }
            Kernel::Stats => ((w / 2).div_ceil(16), (h / 2).div_ceil(16)),
            Kernel::Scaler => (ow.div_ceil(16), oh.div_ceil(16)),
            Kernel::FusedPreview => (
                w.div_ceil(32),
                h.div_ceil(32).div_ceil(uniforms::fused_rows(w, h)),
            ),
        }
    }

    /// Bytes this kernel writes for a `w` x `h` frame.
    fn output_bytes(self, w: u32, h: u32, ow: u32, oh: u32) -> u64 {
        let px = w as u64 * h as u64;
        match self {
            Kernel::Unpack
            | Kernel::BlackLevel
            | Kernel::DefectPixel
            | Kernel::LensShading
            | Kernel::WhiteBalance => px * 2,
            Kernel::Demosaic | Kernel::Ccm | Kernel::ToneRgb16 | Kernel::Yuv => px * 6,
            Kernel::ToneRgba8 | Kernel::FusedPreview => px * 4,
            Kernel::Stats => 0,
            Kernel::Scaler => ow as u64 * oh as u64 * 4,
        }
    }
}

/// How the compute time was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// GPU timestamp queries around the compute pass.
    Timestamp,
    /// CPU time from submit to the GPU reporting done (includes the copies).
    Cpu,
}

impl TimerKind {
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Timestamp => "timestamp",
            TimerKind::Cpu => "cpu",
        }
    }
}

/// Where one preview frame's time went.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GpuTimings {
    /// Raw bytes into the staging buffer (CPU copy), engine clock.
    pub upload_start_ns: u64,
    pub upload_ns: u64,
    /// Submit on the engine clock, and the compute pass's duration.
    pub submit_ns: u64,
    pub compute_ns: u64,
    pub timer: TimerKind,
    /// Submit to the GPU reporting done (upload copy, compute, readback copy).
    pub gpu_wall_ns: u64,
    /// RGBA8 and statistics out of the mapped readback buffer (CPU copy).
    pub readback_ns: u64,
    pub done_ns: u64,
}

/// One preview frame's results besides the image.
#[derive(Clone, Debug)]
pub struct GpuFrame {
    pub stats: Stats3A,
    pub timings: GpuTimings,
    /// Global-memory atomics the statistics flushes issued (bytes accounting).
    pub global_atomics: u64,
}

/// Bytes one fused preview frame moves through GPU memory, against the ideal.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct BytesMoved {
    pub raw_read: u64,
    pub rgba_write: u64,
    pub stats: u64,
    pub total: u64,
    pub ideal: u64,
    pub ratio: f64,
}

const NO_QUERY: u8 = 0;
const MAPPED: u8 = 2;
const MAP_FAILED: u8 = 3;

/// Buffers of a slot a bind group can read from or write to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Buf {
    Raw,
    A,
    B,
    Out,
    Scaled,
}

/// Everything one frame of one geometry needs on the GPU, reused frame after frame.
struct Slot {
    key: (u32, u32, u64),
    uniform: wgpu::Buffer,
    last_uniforms: Option<Uniforms>,
    aux: wgpu::Buffer,
    aux_words: usize,
    aux_key: Option<(usize, u64)>,
    raw: wgpu::Buffer,
    out: wgpu::Buffer,
    stats: wgpu::Buffer,
    /// Staging for uploads (MAP_WRITE): mapped again as soon as a frame is submitted.
    upload: wgpu::Buffer,
    upload_state: Arc<AtomicU8>,
    readback: wgpu::Buffer,
    readback_len: u64,
    scratch: Option<(wgpu::Buffer, wgpu::Buffer)>,
    scaled: Option<(u64, wgpu::Buffer)>,
    queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
    groups: HashMap<(Buf, Buf), wgpu::BindGroup>,
}

const STATS_BYTES: u64 = (uniforms::ST_ZONES as u64 + 64 * 64 * 8) * 4;

/// Words in one padded RGBA8 row of the preview (256-byte rows).
fn row_words(w: u32) -> u32 {
    w.div_ceil(64) * 64
}

fn align(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// The GPU ISP on one [`GpuContext`].
pub struct GpuIsp {
    ctx: Arc<GpuContext>,
    layout: wgpu::BindGroupLayout,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    slots: Mutex<Vec<Slot>>,
    aux_scratch: Mutex<Vec<u32>>,
    display: Mutex<Option<wgpu::Texture>>,
    /// GPU objects (buffers, query sets, bind groups) created so far.
    created: std::sync::atomic::AtomicU64,
    /// A fault the next preview runs into (tests of the fallback).
    /// `InjectedFault as u8 + 1`, or 0 for none: one atomic load per check.
    inject: AtomicU8,
}

/// A fault [`GpuIsp::inject_fault`] makes the next preview run into, midway
/// through the frame, the way the real one would arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// A real invalid call (a buffer both MAP_READ and MAP_WRITE) inside the
    /// frame's error scope: wgpu reports it as validation error.
    Validation,
    /// The frame's out-of-memory scope reports an error (simulated: no
    /// adapter here can be made to run out on demand).
    OutOfMemory,
    /// The wait for the frame's submission runs past the context's timeout
    /// (simulated: the poll answers `Timeout`).
    Timeout,
}

impl std::fmt::Debug for GpuIsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuIsp({})", self.ctx.adapter_name())
    }
}

/// Run `f` inside validation and out-of-memory error scopes; an error in
/// either becomes the result.
fn scoped<T>(
    device: &wgpu::Device,
    what: &'static str,
    f: impl FnOnce() -> Result<T, GpuError>,
) -> Result<T, GpuError> {
    let val = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let r = f();
    let oom = pollster::block_on(oom.pop());
    let val = pollster::block_on(val.pop());
    if let Some(e) = oom {
        return Err(GpuError::OutOfMemory {
            what,
            message: e.to_string(),
        });
    }
    if let Some(e) = val {
        return Err(GpuError::Validation {
            what,
            message: e.to_string(),
        });
    }
    r
}

impl GpuIsp {
    /// Compile the stage shaders and build every pipeline once.
    pub fn new(ctx: Arc<GpuContext>) -> Result<GpuIsp, GpuError> {
        Self::with_source(ctx, &super::shader_source())
    }

    /// As [`GpuIsp::new`] with other WGSL (tests feed a broken shader).
    pub fn with_source(ctx: Arc<GpuContext>, source: &str) -> Result<GpuIsp, GpuError> {
        ctx.check()?;
        let device = &ctx.device;
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("isp"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                storage(1, true),
                storage(2, false),
                storage(3, true),
                storage(4, false),
            ],
        });
        let module = scoped(device, "shader", || {
            Ok(device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("isp stages"),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            }))
        })
        .map_err(|e| match e {
            GpuError::Validation { message, .. } => GpuError::Shader(message),
            e => e,
        })?;
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("isp"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mut pipelines = HashMap::new();
        for k in Kernel::ALL {
            let p = scoped(device, "pipeline", || {
                Ok(
                    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(k.entry()),
                        layout: Some(&pl),
                        module: &module,
                        entry_point: Some(k.entry()),
                        compilation_options: Default::default(),
                        cache: None,
                    }),
                )
            })
            .map_err(|e| GpuError::Shader(format!("{}: {e}", k.entry())))?;
            pipelines.insert(k, p);
        }
        Ok(GpuIsp {
            ctx,
            layout,
            pipelines,
            slots: Mutex::new(Vec::new()),
            aux_scratch: Mutex::new(Vec::new()),
            display: Mutex::new(None),
            created: std::sync::atomic::AtomicU64::new(0),
            inject: AtomicU8::new(0),
        })
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// A texture (Rgba8Unorm holding sRGB-encoded bytes, as egui expects; COPY_DST, on this context's device) every
    /// preview of its size is also copied into on the GPU, for a UI to draw
    /// without reading the frame back. `None` stops it.
    pub fn set_display_texture(&self, texture: Option<wgpu::Texture>) {
        *self.display.lock().unwrap_or_else(|p| p.into_inner()) = texture;
    }

    /// GPU buffers, query sets and bind groups this ISP has created: flat in
    /// steady state (nothing per frame).
    pub fn objects_created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn count(&self, n: u64) {
        self.created.fetch_add(n, Ordering::Relaxed);
    }

    /// Frame slots waiting in the pool (one per geometry in steady state).
    pub fn pooled_slots(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Bytes the fused preview moves through GPU memory for one frame of
    /// `fmt`, against the ideal (the raw frame read once, RGBA8 written once,
    /// the statistics written once). Reads follow from the dispatch geometry
    /// (each 32x32 tile reads a 40x40 window of raw words); the statistics
    /// traffic is the count of global atomics the kernel itself reported
    /// ([`GpuFrame::global_atomics`]), 8 bytes each (read and write).
    pub fn bytes_moved(
        fmt: &crate::types::RawFormat,
        zones: usize,
        global_atomics: u64,
    ) -> BytesMoved {
        let (w, h) = (fmt.width as u64, fmt.height as u64);
        let tiles = w.div_ceil(32) * h.div_ceil(32);
        // A 40-pixel row segment of raw bytes, in whole words, plus one word of misalignment.
        let seg = (40 * fmt.min_stride() as u64).div_ceil(w).div_ceil(4) * 4 + 4;
        let raw_read = tiles * 40 * seg;
        let rgba_write = w * h * 4;
        let stats_len = uniforms::stats_words(zones) as u64 * 4;
        let stats = global_atomics * 8 + stats_len;
        let ideal = fmt.frame_bytes() as u64 + rgba_write + stats_len;
        let total = raw_read + rgba_write + stats;
        BytesMoved {
            raw_read,
            rgba_write,
            stats,
            total,
            ideal,
            ratio: total as f64 / ideal as f64,
        }
    }

    fn take_slot(&self, w: u32, h: u32, raw_bytes: u64) -> Result<Slot, GpuError> {
        let key = (w, h, align(raw_bytes.max(4), 4));
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = slots.iter().position(|s| s.key == key) {
                return Ok(slots.swap_remove(i));
            }
        }
        self.new_slot(key)
    }

    fn give_slot(&self, s: Slot) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.push(s);
        // Keep a few geometries; the oldest goes first.
        if slots.len() > 6 {
            slots.remove(0);
        }
    }

    fn new_slot(&self, key: (u32, u32, u64)) -> Result<Slot, GpuError> {
        self.count(if self.ctx.has_timestamps() { 9 } else { 7 });
        let (w, h, raw_len) = key;
        let limits = self.ctx.device.limits();
        let px = w as u64 * h as u64;
        // RGBA8 rows padded to 256 bytes: a texture copy takes them as they are.
        let out_len = row_words(w) as u64 * h as u64 * 4;
        let _ = px;
        for (what, need) in [("raw frame", raw_len), ("RGBA8 output", out_len)] {
            if need > limits.max_storage_buffer_binding_size {
                return Err(GpuError::TooLarge {
                    what,
                    need,
                    max: limits.max_storage_buffer_binding_size,
                });
            }
        }
        let device = &self.ctx.device;
        scoped(device, "frame buffers", || {
            let buf = |label: &str, size: u64, usage: wgpu::BufferUsages, mapped: bool| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: mapped,
                })
            };
            use wgpu::BufferUsages as U;
            let readback_len = align(out_len, 256) + align(STATS_BYTES, 256) + 256;
            let queries = self.ctx.has_timestamps().then(|| {
                (
                    device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("isp timestamps"),
                        ty: wgpu::QueryType::Timestamp,
                        count: 2,
                    }),
                    buf("timestamps", 256, U::QUERY_RESOLVE | U::COPY_SRC, false),
                )
            });
            let aux_words = uniforms::LSC_AT + 4 * 32 * 32;
            Ok(Slot {
                key,
                uniform: buf(
                    "params",
                    std::mem::size_of::<Uniforms>() as u64,
                    U::UNIFORM | U::COPY_DST,
                    false,
                ),
                last_uniforms: None,
                aux: buf(
                    "tone+lsc",
                    aux_words as u64 * 4,
                    U::STORAGE | U::COPY_DST,
                    false,
                ),
                aux_words,
                aux_key: None,
                raw: buf("raw", raw_len, U::STORAGE | U::COPY_DST, false),
                out: buf(
                    "rgba8",
                    out_len,
                    U::STORAGE | U::COPY_SRC | U::COPY_DST,
                    false,
                ),
                stats: buf(
                    "stats",
                    STATS_BYTES,
                    U::STORAGE | U::COPY_SRC | U::COPY_DST,
                    false,
                ),
                upload: buf("upload staging", raw_len, U::MAP_WRITE | U::COPY_SRC, true),
                upload_state: Arc::new(AtomicU8::new(MAPPED)),
                readback: buf("readback", readback_len, U::MAP_READ | U::COPY_DST, false),
                readback_len,
                scratch: None,
                scaled: None,
                queries,
                groups: HashMap::new(),
            })
        })
    }

    /// Parameters into the slot: the uniform block when it changed, the tone
    /// tables and lens shading grid when their version changed.
    fn load_params(&self, s: &mut Slot, p: &FrameParams, u: Uniforms) -> Result<(), GpuError> {
        if s.last_uniforms != Some(u) {
            self.ctx
                .queue
                .write_buffer(&s.uniform, 0, bytemuck::bytes_of(&u));
            s.last_uniforms = Some(u);
        }
        let lsc_hash = {
            use std::hash::{Hash, Hasher};
            let mut hs = std::collections::hash_map::DefaultHasher::new();
            let l = &p.stages.lens_shading;
            (l.grid_width, l.grid_height).hash(&mut hs);
            for g in l.gains.iter().flatten() {
                g.to_bits().hash(&mut hs);
            }
            hs.finish()
        };
        let key = (Arc::as_ptr(&p.lut) as usize, lsc_hash);
        if s.aux_key == Some(key) {
            return Ok(());
        }
        let mut words = self.aux_scratch.lock().unwrap_or_else(|p| p.into_inner());
        uniforms::aux_words(p, &mut words);
        if words.len() > s.aux_words {
            self.count(1);
            s.aux = scoped(&self.ctx.device, "aux buffer", || {
                Ok(self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tone+lsc"),
                    size: words.len() as u64 * 4,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }))
            })?;
            s.aux_words = words.len();
            s.groups.clear();
        }
        self.ctx
            .queue
            .write_buffer(&s.aux, 0, bytemuck::cast_slice(&words));
        s.aux_key = Some(key);
        Ok(())
    }

    fn scratch(&self, s: &mut Slot) -> Result<(), GpuError> {
        if s.scratch.is_some() {
            return Ok(());
        }
        let size = s.key.0 as u64 * s.key.1 as u64 * 6;
        let max = self.ctx.device.limits().max_storage_buffer_binding_size;
        if size > max {
            return Err(GpuError::TooLarge {
                what: "RGB16 intermediate",
                need: size,
                max,
            });
        }
        let mk = || {
            self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("stage scratch"),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        self.count(2);
        s.scratch = Some(scoped(&self.ctx.device, "scratch buffers", || {
            Ok((mk(), mk()))
        })?);
        Ok(())
    }

    fn buffer(s: &Slot, b: Buf) -> &wgpu::Buffer {
        match (b, &s.scratch, &s.scaled) {
            (Buf::Raw, _, _) => &s.raw,
            (Buf::Out, _, _) => &s.out,
            (Buf::A, Some((a, _)), _) => a,
            (Buf::B, Some((_, b)), _) => b,
            (Buf::Scaled, _, Some((_, b))) => b,
            // Callers make the scratch/scaled buffers first.
            _ => &s.out,
        }
    }

    fn bind_group(&self, s: &mut Slot, src: Buf, dst: Buf) -> wgpu::BindGroup {
        if let Some(g) = s.groups.get(&(src, dst)) {
            return g.clone();
        }
        self.count(1);
        let g = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("isp"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: s.uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: Self::buffer(s, src).as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: Self::buffer(s, dst).as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: s.aux.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: s.stats.as_entire_binding(),
                    },
                ],
            });
        s.groups.insert((src, dst), g.clone());
        g
    }

    /// Make the next preview run into `fault` (tests of the engine's fallback).
    pub fn inject_fault(&self, fault: InjectedFault) {
        self.inject.store(fault as u8 + 1, Ordering::Release);
    }

    /// Take the injected fault if it is `kind`.
    fn injected(&self, kind: InjectedFault) -> bool {
        let k = kind as u8 + 1;
        self.inject.load(Ordering::Relaxed) == k
            && self
                .inject
                .compare_exchange(k, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Wait for `idx` (bounded by the context's timeout); a lost device or
    /// an uncaptured error is a fault.
    fn wait(&self, idx: wgpu::SubmissionIndex) -> Result<(), GpuError> {
        let r = if self.injected(InjectedFault::Timeout) {
            Err(wgpu::PollError::Timeout)
        } else {
            self.ctx.device.poll(wgpu::PollType::Wait {
                submission_index: Some(idx),
                timeout: Some(self.ctx.timeout),
            })
        };
        self.ctx.check()?;
        match r {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(GpuError::Timeout(self.ctx.timeout)),
            Err(e) => {
                self.ctx.mark_lost(&e.to_string());
                Err(GpuError::Lost(e.to_string()))
            }
        }
    }

    /// The staging buffer mapped for writing (waits if the re-map is in flight).
    fn upload_ready(&self, s: &Slot) -> Result<(), GpuError> {
        let t0 = Instant::now();
        loop {
            match s.upload_state.load(Ordering::Acquire) {
                MAPPED => return Ok(()),
                MAP_FAILED => {
                    return Err(GpuError::Map("staging buffer could not be mapped".into()));
                }
                NO_QUERY => {
                    let st = s.upload_state.clone();
                    st.store(1, Ordering::Release);
                    s.upload.map_async(wgpu::MapMode::Write, .., move |r| {
                        st.store(
                            if r.is_ok() { MAPPED } else { MAP_FAILED },
                            Ordering::Release,
                        );
                    });
                }
                _ => {
                    let _ = self.ctx.device.poll(wgpu::PollType::Wait {
                        submission_index: None,
                        timeout: Some(self.ctx.timeout),
                    });
                    self.ctx.check()?;
                    if t0.elapsed() > self.ctx.timeout {
                        return Err(GpuError::Timeout(self.ctx.timeout));
                    }
                }
            }
        }
    }

    /// Map the readback buffer after `idx`, hand its bytes to `f`, unmap.
    fn read_back<T>(
        &self,
        s: &Slot,
        idx: wgpu::SubmissionIndex,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, GpuError> {
        let res: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let r2 = res.clone();
        s.readback.map_async(wgpu::MapMode::Read, .., move |r| {
            *r2.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        self.wait(idx)?;
        // The callback runs on whichever thread polls: on a shared device
        // (eframe's) another thread may be running it right now. Wait for it.
        let t0 = Instant::now();
        loop {
            match res.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(Ok(())) => break,
                Some(Err(e)) => return Err(GpuError::Map(e.to_string())),
                None => {}
            }
            if t0.elapsed() > self.ctx.timeout {
                return Err(GpuError::Map("the readback buffer was never mapped".into()));
            }
            let _ = self.ctx.device.poll(wgpu::PollType::Poll);
            self.ctx.check()?;
            std::thread::yield_now();
        }
        let out = {
            let view = s
                .readback
                .get_mapped_range(..)
                .map_err(|e| GpuError::Map(e.to_string()))?;
            f(&view)
        };
        s.readback.unmap();
        Ok(out)
    }

    /// The fused preview: raw bytes of `p.format` -> RGBA8 in `out` and the
    /// frame's 3A statistics, in one dispatch.
    pub fn preview(
        &self,
        p: &FrameParams,
        raw: &[u8],
        out: &mut [u8],
    ) -> Result<GpuFrame, GpuError> {
        let fmt = p.format;
        unpack::check_frame(&fmt, raw.len()).map_err(|e| GpuError::Input(e.to_string()))?;
        let (w, h) = (fmt.width, fmt.height);
        if w < 8 || h < 8 {
            return Err(GpuError::Input(format!(
                "{w}x{h} is smaller than the 8x8 the GPU preview needs"
            )));
        }
        let out_len = w as usize * h as usize * 4;
        if out.len() < out_len {
            return Err(GpuError::Input(format!(
                "output holds {} bytes, {w}x{h} RGBA8 needs {out_len}",
                out.len()
            )));
        }
        self.ctx.check()?;
        let raw_len = fmt.frame_bytes().min(raw.len()) as u64;
        let mut s = self.take_slot(w, h, raw_len)?;
        // On any error the slot is dropped, not pooled: its state is unknown.
        let r = self.preview_in(&mut s, p, &raw[..raw_len as usize], out);
        if r.is_ok() {
            self.give_slot(s);
        }
        r
    }

    fn preview_in(
        &self,
        s: &mut Slot,
        p: &FrameParams,
        raw: &[u8],
        out: &mut [u8],
    ) -> Result<GpuFrame, GpuError> {
        let fmt = p.format;
        let (w, h) = (fmt.width, fmt.height);
        let device = &self.ctx.device;
        let zones = p.stages.stats.zones_x * p.stages.stats.zones_y;
        let stats_len = uniforms::stats_words(zones) as u64 * 4;
        let rw = row_words(w) as usize;
        let out_len = rw as u64 * h as u64 * 4;
        let stats_at = align(out_len, 256);
        let ts_at = align(stats_at + STATS_BYTES, 256);

        self.upload_ready(s)?;
        let upload_start_ns = now_ns();
        {
            let mut view = s
                .upload
                .get_mapped_range_mut(..)
                .map_err(|e| GpuError::Map(e.to_string()))?;
            view.slice(..raw.len()).copy_from_slice(raw);
            view.slice(raw.len()..).fill(0);
        }
        s.upload.unmap();
        s.upload_state.store(NO_QUERY, Ordering::Release);
        let upload_ns = now_ns() - upload_start_ns;

        let idx = scoped(device, "preview", || {
            let mut u = Uniforms::new(p, w, h);
            u.out_stride = rw as u32;
            self.load_params(s, p, u)?;
            let group = self.bind_group(s, Buf::Raw, Buf::Out);
            let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("preview"),
            });
            enc.clear_buffer(&s.stats, 0, Some(stats_len));
            enc.copy_buffer_to_buffer(&s.upload, 0, &s.raw, 0, s.key.2);
            self.fused_pass(&mut enc, s, &group, w, h);
            enc.copy_buffer_to_buffer(&s.out, 0, &s.readback, 0, out_len);
            // The display texture, when one of this size is set: GPU to GPU.
            if let Some(t) = self
                .display
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .filter(|t| t.width() == w && t.height() == h)
            {
                enc.copy_buffer_to_texture(
                    wgpu::TexelCopyBufferInfo {
                        buffer: &s.out,
                        layout: wgpu::TexelCopyBufferLayout {
                            offset: 0,
                            bytes_per_row: Some(rw as u32 * 4),
                            rows_per_image: Some(h),
                        },
                    },
                    t.as_image_copy(),
                    wgpu::Extent3d {
                        width: w,
                        height: h,
                        depth_or_array_layers: 1,
                    },
                );
            }
            enc.copy_buffer_to_buffer(&s.stats, 0, &s.readback, stats_at, stats_len);
            if let Some((q, qb)) = &s.queries {
                enc.resolve_query_set(q, 0..2, qb, 0);
                enc.copy_buffer_to_buffer(qb, 0, &s.readback, ts_at, 16);
            }
            if self.injected(InjectedFault::Validation) {
                let _ = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("injected fault"),
                    size: 16,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
                    mapped_at_creation: false,
                });
            }
            if self.injected(InjectedFault::OutOfMemory) {
                return Err(GpuError::OutOfMemory {
                    what: "preview",
                    message: "injected: not enough memory left".into(),
                });
            }
            Ok(self.ctx.queue.submit([enc.finish()]))
        })?;
        let submit_ns = now_ns();
        // Map the staging buffer again for the next frame while this one runs.
        self.upload_ready_async(s);
        let period = self.ctx.queue.get_timestamp_period() as f64;
        let has_ts = s.queries.is_some();
        let mut readback_ns = 0;
        let ((stats, global_atomics), gpu_ns) = self.read_back(s, idx, |bytes| {
            let t = now_ns();
            let row = w as usize * 4;
            if rw * 4 == row {
                out[..row * h as usize].copy_from_slice(&bytes[..row * h as usize]);
            } else {
                for (o, b) in out
                    .chunks_exact_mut(row)
                    .zip(bytes.chunks(rw * 4))
                    .take(h as usize)
                {
                    o.copy_from_slice(&b[..row]);
                }
            }
            let words: &[u32] =
                bytemuck::cast_slice(&bytes[stats_at as usize..(stats_at + stats_len) as usize]);
            let st = (decode_stats(p, words), words[uniforms::ST_COUNT] as u64);
            let ts = timestamps(&bytes[ts_at as usize..]);
            let gpu = (has_ts && ts[1] > ts[0]).then(|| ((ts[1] - ts[0]) as f64 * period) as u64);
            readback_ns = now_ns() - t;
            (st, gpu)
        })?;
        let done_ns = now_ns();
        let gpu_wall_ns = done_ns - submit_ns - readback_ns;
        let (compute_ns, timer) = match gpu_ns {
            Some(g) => (g, TimerKind::Timestamp),
            None => (gpu_wall_ns, TimerKind::Cpu),
        };
        Ok(GpuFrame {
            stats,
            global_atomics,
            timings: GpuTimings {
                upload_start_ns,
                upload_ns,
                submit_ns,
                compute_ns,
                timer,
                gpu_wall_ns,
                readback_ns,
                done_ns,
            },
        })
    }

    /// The fused preview's compute pass, timed by timestamps when the slot has them.
    fn fused_pass(
        &self,
        enc: &mut wgpu::CommandEncoder,
        s: &Slot,
        group: &wgpu::BindGroup,
        w: u32,
        h: u32,
    ) {
        let tw = s
            .queries
            .as_ref()
            .map(|(q, _)| wgpu::ComputePassTimestampWrites {
                query_set: q,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            });
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("fused_preview"),
            timestamp_writes: tw,
        });
        pass.set_pipeline(&self.pipelines[&Kernel::FusedPreview]);
        pass.set_bind_group(0, group, &[]);
        let (gx, gy) = Kernel::FusedPreview.workgroups(w, h, 0, 0);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    fn upload_ready_async(&self, s: &Slot) {
        let st = s.upload_state.clone();
        if st
            .compare_exchange(NO_QUERY, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            s.upload.map_async(wgpu::MapMode::Write, .., move |r| {
                st.store(
                    if r.is_ok() { MAPPED } else { MAP_FAILED },
                    Ordering::Release,
                );
            });
        }
    }

    /// The fused dispatch alone, `n` times on frame data already uploaded by
    /// a [`GpuIsp::preview`] of the same geometry: per run, the GPU's own time
    /// (timestamps) when the adapter has them, else submit-to-done. For benches.
    pub fn bench_compute(
        &self,
        p: &FrameParams,
        raw: &[u8],
        n: usize,
    ) -> Result<(Vec<f64>, TimerKind), GpuError> {
        let fmt = p.format;
        let mut out = vec![0u8; fmt.width as usize * fmt.height as usize * 4];
        self.preview(p, raw, &mut out)?;
        let raw_len = fmt.frame_bytes().min(raw.len()) as u64;
        let mut s = self.take_slot(fmt.width, fmt.height, raw_len)?;
        let period = self.ctx.queue.get_timestamp_period() as f64;
        let device = &self.ctx.device;
        let mut v = Vec::with_capacity(n);
        let mut timer = TimerKind::Cpu;
        let zones = p.stages.stats.zones_x * p.stages.stats.zones_y;
        let stats_len = uniforms::stats_words(zones) as u64 * 4;
        for _ in 0..n {
            let t = now_ns();
            let idx = scoped(device, "bench", || {
                let group = self.bind_group(&mut s, Buf::Raw, Buf::Out);
                let mut enc = device.create_command_encoder(&Default::default());
                enc.clear_buffer(&s.stats, 0, Some(stats_len));
                self.fused_pass(&mut enc, &s, &group, fmt.width, fmt.height);
                if let Some((q, qb)) = &s.queries {
                    enc.resolve_query_set(q, 0..2, qb, 0);
                    enc.copy_buffer_to_buffer(qb, 0, &s.readback, 0, 16);
                }
                Ok(self.ctx.queue.submit([enc.finish()]))
            })?;
            let gpu = if s.queries.is_some() {
                self.read_back(&s, idx, |b| {
                    let ts = timestamps(b);
                    (ts[1] > ts[0]).then(|| (ts[1] - ts[0]) as f64 * period)
                })?
            } else {
                self.wait(idx)?;
                None
            };
            match gpu {
                Some(g) => {
                    timer = TimerKind::Timestamp;
                    v.push(g / 1e6);
                }
                None => v.push((now_ns() - t) as f64 / 1e6),
            }
        }
        self.give_slot(s);
        Ok((v, timer))
    }

    /// Run the unfused stages on raw bytes up to `tap` and read that output
    /// back (the inspector's "tap"; computed on demand).
    pub fn tap(&self, p: &FrameParams, raw: &[u8], tap: Tap) -> Result<TapImage, GpuError> {
        let fmt = p.format;
        unpack::check_frame(&fmt, raw.len()).map_err(|e| GpuError::Input(e.to_string()))?;
        // The declared chain up to the tap, each stage's own kernel.
        let chain = Tap::ALL[..=tap as usize]
            .iter()
            .map(|t| Kernel::of(t.decl().kernel))
            .collect::<Result<Vec<_>, _>>()?;
        let raw_len = fmt.frame_bytes().min(raw.len());
        let bytes = self.run_chain(p, &raw[..raw_len], &chain, None)?;
        Ok(match tap.decl().output {
            Image::Rgba8 => TapImage::Rgba8(bytes),
            Image::Rgb16 => TapImage::Rgb16(bytemuck::pod_collect_to_vec(&bytes)),
            Image::Mosaic => TapImage::Mosaic(bytemuck::pod_collect_to_vec(&bytes)),
        })
    }

    /// One stage on its own: `input` (raw bytes for [`Kernel::Unpack`], else
    /// the stage's input as little-endian u16 samples or RGBA8 bytes) through
    /// `kernel`; returns the output bytes. `scale_to` is the scaler's output size.
    pub fn run_stage(
        &self,
        kernel: Kernel,
        p: &FrameParams,
        input: &[u8],
        scale_to: Option<(u32, u32)>,
    ) -> Result<Vec<u8>, GpuError> {
        if kernel == Kernel::FusedPreview || kernel == Kernel::Stats {
            return Err(GpuError::Input(format!(
                "{} has its own entry (preview / stats)",
                kernel.entry()
            )));
        }
        self.run_chain(p, input, &[kernel], scale_to)
    }

    /// The statistics kernel on its own: a 16-bit mosaic of `p.format`'s size.
    pub fn run_stats(&self, p: &FrameParams, mosaic: &[u16]) -> Result<Stats3A, GpuError> {
        let (w, h) = (p.format.width, p.format.height);
        let px = w as usize * h as usize;
        if mosaic.len() < px {
            return Err(GpuError::Input(format!(
                "mosaic holds {} samples, {w}x{h} needs {px}",
                mosaic.len()
            )));
        }
        let mut s = self.take_slot(w, h, p.format.frame_bytes() as u64)?;
        self.scratch(&mut s)?;
        let device = &self.ctx.device;
        let zones = p.stages.stats.zones_x * p.stages.stats.zones_y;
        let stats_len = uniforms::stats_words(zones) as u64 * 4;
        let r = (|| {
            let idx = scoped(device, "stats", || {
                self.load_params(&mut s, p, Uniforms::new(p, w, h))?;
                let (a, _) = s.scratch.as_ref().ok_or(GpuError::Map("scratch".into()))?;
                self.ctx
                    .queue
                    .write_buffer(a, 0, bytemuck::cast_slice(&mosaic[..px]));
                let group = self.bind_group(&mut s, Buf::A, Buf::B);
                let mut enc = device.create_command_encoder(&Default::default());
                enc.clear_buffer(&s.stats, 0, Some(stats_len));
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&self.pipelines[&Kernel::Stats]);
                    pass.set_bind_group(0, &group, &[]);
                    let (gx, gy) = Kernel::Stats.workgroups(w, h, 0, 0);
                    pass.dispatch_workgroups(gx, gy, 1);
                }
                enc.copy_buffer_to_buffer(&s.stats, 0, &s.readback, 0, stats_len);
                Ok(self.ctx.queue.submit([enc.finish()]))
            })?;
            self.read_back(&s, idx, |b| {
                decode_stats(p, bytemuck::cast_slice(&b[..stats_len as usize]))
            })
        })();
        if r.is_ok() {
            self.give_slot(s);
        }
        r
    }

    fn run_chain(
        &self,
        p: &FrameParams,
        input: &[u8],
        chain: &[Kernel],
        scale_to: Option<(u32, u32)>,
    ) -> Result<Vec<u8>, GpuError> {
        let (w, h) = (p.format.width, p.format.height);
        if w < 2 || h < 2 || w % 2 == 1 {
            return Err(GpuError::Input(format!(
                "{w}x{h}: stages need an even width and at least 2x2"
            )));
        }
        self.ctx.check()?;
        let (ow, oh) = scale_to.unwrap_or((w, h));
        let Some(&first) = chain.first() else {
            return Ok(Vec::new());
        };
        let px = w as u64 * h as u64;
        let need = match first {
            Kernel::Unpack => p.format.frame_bytes() as u64,
            Kernel::Ccm | Kernel::ToneRgba8 | Kernel::ToneRgb16 | Kernel::Yuv => px * 6,
            Kernel::Scaler => px * 4,
            _ => px * 2,
        };
        if (input.len() as u64) < need {
            return Err(GpuError::Input(format!(
                "{} input holds {} bytes, {w}x{h} needs {need}",
                first.entry(),
                input.len()
            )));
        }
        let mut s = self.take_slot(w, h, p.format.frame_bytes() as u64)?;
        let r = self.run_chain_in(&mut s, p, &input[..need as usize], chain, (ow, oh));
        if r.is_ok() {
            self.give_slot(s);
        }
        r
    }

    fn run_chain_in(
        &self,
        s: &mut Slot,
        p: &FrameParams,
        input: &[u8],
        chain: &[Kernel],
        (ow, oh): (u32, u32),
    ) -> Result<Vec<u8>, GpuError> {
        let (w, h) = (p.format.width, p.format.height);
        let device = &self.ctx.device;
        self.scratch(s)?;
        let last = chain[chain.len() - 1];
        let out_bytes = last.output_bytes(w, h, ow, oh);
        if last == Kernel::Scaler && s.scaled.as_ref().is_none_or(|(n, _)| *n < out_bytes) {
            self.count(1);
            s.scaled = Some((
                out_bytes,
                scoped(device, "scaler output", || {
                    Ok(device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("scaled"),
                        size: align(out_bytes.max(4), 4),
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    }))
                })?,
            ));
            s.groups.retain(|k, _| k.1 != Buf::Scaled);
        }
        if out_bytes > s.readback_len {
            self.count(1);
            s.readback = scoped(device, "readback", || {
                Ok(device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: align(out_bytes, 256),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }))
            })?;
            s.readback_len = align(out_bytes, 256);
        }
        let idx = scoped(device, "stage chain", || {
            let mut u = Uniforms::new(p, w, h);
            u.out_width = ow;
            u.out_height = oh;
            self.load_params(s, p, u)?;
            let first_src = if chain[0] == Kernel::Unpack {
                Buf::Raw
            } else {
                Buf::A
            };
            let mut padded;
            let data = if input.len().is_multiple_of(4) {
                input
            } else {
                padded = input.to_vec();
                padded.resize(align(input.len() as u64, 4) as usize, 0);
                &padded[..]
            };
            self.ctx
                .queue
                .write_buffer(Self::buffer(s, first_src), 0, data);
            let mut enc = device.create_command_encoder(&Default::default());
            let mut src = first_src;
            let mut dst = Buf::B;
            for (i, &k) in chain.iter().enumerate() {
                if i + 1 == chain.len() && k == Kernel::Scaler {
                    dst = Buf::Scaled;
                }
                let group = self.bind_group(s, src, dst);
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.pipelines[&k]);
                pass.set_bind_group(0, &group, &[]);
                let (gx, gy) = k.workgroups(w, h, ow, oh);
                pass.dispatch_workgroups(gx, gy, 1);
                drop(pass);
                src = dst;
                dst = if dst == Buf::A { Buf::B } else { Buf::A };
            }
            let size = align(out_bytes, 4);
            enc.copy_buffer_to_buffer(Self::buffer(s, src), 0, &s.readback, 0, size);
            Ok(self.ctx.queue.submit([enc.finish()]))
        })?;
        self.read_back(s, idx, |b| b[..out_bytes as usize].to_vec())
    }
}

/// Two resolved timestamps (little-endian u64) at the start of `b`.
fn timestamps(b: &[u8]) -> [u64; 2] {
    let at = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    [at(0), at(8)]
}

/// The statistics buffer's words -> [`Stats3A`], with the CPU's arithmetic.
fn decode_stats(p: &FrameParams, words: &[u32]) -> Stats3A {
    let st = &p.stages.stats;
    let (w, h) = (p.format.width as usize, p.format.height as usize);
    let u64_at = |i: usize| words[i] as u64 | (words[i + 1] as u64) << 32;
    let nz = st.zones_x * st.zones_y;
    let zones = (0..nz)
        .map(|z| {
            let b = uniforms::ST_ZONES + z * 8;
            let quads = words[b + 6];
            let n = quads.max(1) as f64;
            Zone {
                mean: [
                    (u64_at(b) as f64 / n) as f32,
                    (u64_at(b + 2) as f64 / 2.0 / n) as f32,
                    (u64_at(b + 4) as f64 / n) as f32,
                ],
                quads,
                saturated: words[b + 7],
            }
        })
        .collect();
    let histograms = std::array::from_fn(|c| {
        words[uniforms::ST_HIST + c * HIST_BINS..uniforms::ST_HIST + (c + 1) * HIST_BINS].to_vec()
    });
    let (qw, qh) = (w / 2, h / 2);
    let quads = (qw * qh) as u64;
    let focus_n = (qh * qw.saturating_sub(1) + qh.saturating_sub(1) * qw) as u64;
    Stats3A {
        width: w,
        height: h,
        sums: [u64_at(0) as f64, u64_at(2) as f64, u64_at(4) as f64],
        counts: [quads, 2 * quads, quads],
        histograms,
        zones_x: st.zones_x,
        zones_y: st.zones_y,
        zones,
        focus: u64_at(6) as f64 / focus_n.max(1) as f64 / 65535.0,
    }
}
