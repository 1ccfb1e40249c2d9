//! GpuIsp: the compute pipelines (built once), the per-geometry frame slots
//! (pooled buffers, staging, cached bind groups) and the ways to run them:
//! the fused preview, a tap of any stage's output, one stage on its own.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | `GpuIsp`: pipelines, faults, waits, uploads, read-backs |
//! | `kernels.rs` | `Kernel`: entry points, workgroups, output sizes |
//! | `slots.rs` | per-geometry frame slots: buffers, parameters, bind groups |
//! | `preview.rs` | the fused preview (the realtime lane on the GPU), its timings |
//! | `stages.rs` | taps, single stages, the statistics kernel, unfused chains |

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

mod kernels;
mod preview;
mod slots;
mod stages;

pub use kernels::Kernel;
pub use preview::{BytesMoved, GpuFrame, GpuTimings, TimerKind};
use stages::decode_stats;

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
    /// Previews copied into the display texture since it was set.
    display_writes: std::sync::atomic::AtomicU64,
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
            display_writes: Default::default(),
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
        let mut d = self.display.lock().unwrap_or_else(|p| p.into_inner());
        *d = texture;
        self.display_writes.store(0, Ordering::Release);
    }

    /// Previews copied into the display texture since it was last set: until
    /// one is, the texture holds no frame (a UI shows its CPU image).
    pub fn display_writes(&self) -> u64 {
        self.display_writes.load(Ordering::Acquire)
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

    /// Make the next preview run into `fault` (tests of the engine's fallback).
    #[cfg(feature = "test-support")]
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
