//! The bracket merge on the GPU: `shaders/hdr.wgsl`, the twin of
//! `fusion/hdr.rs`'s `merge_bracket` (the CPU reference it is held to). The
//! alignment comes in (CPU or `GpuAlign`); the tone map stays on the CPU.

use super::{Bind, GpuContext, GpuError};
use crate::fusion::align::Alignment;
use crate::fusion::hdr::{CLIP, Exposure};
use std::sync::Arc;

/// The most frames the shader's parameters hold.
pub const MAX_FRAMES: usize = 16;

/// The bracket merge's pipeline on one [`GpuContext`].
pub struct GpuHdr {
    ctx: Arc<GpuContext>,
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl std::fmt::Debug for GpuHdr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuHdr({})", self.ctx.adapter_name())
    }
}

/// `HdrParams` in the shader's layout: 8 words, then a vec4 per frame.
fn uniforms(
    w: u32,
    h: u32,
    a: &Alignment,
    reference: u32,
    exposures: &[Exposure],
    black: f32,
    white: f32,
) -> Vec<u32> {
    let clip = black + CLIP * (white - black);
    let mut u = vec![
        w,
        h,
        a.tiles_x as u32,
        a.tiles_y as u32,
        exposures.len() as u32,
        reference,
        black.to_bits(),
        clip.to_bits(),
    ];
    for k in 0..MAX_FRAMES {
        let e = exposures.get(k);
        u.extend([
            e.map_or(1.0f32, |e| e.ratio).to_bits(),
            e.map_or(0.0f32, |e| e.noise.shot).to_bits(),
            e.map_or(0.0f32, |e| e.noise.read).to_bits(),
            0,
        ]);
    }
    u
}

impl GpuHdr {
    pub fn new(ctx: Arc<GpuContext>) -> Result<GpuHdr, GpuError> {
        ctx.check()?;
        let mut m = ctx.compute_module(
            "hdr",
            include_str!("../../../shaders/hdr.wgsl"),
            &[Bind::Uniform, Bind::Read, Bind::Read, Bind::ReadWrite],
            &["merge_bracket"],
        );
        let pipeline = m.pipelines.remove(0);
        let layout = m.layout;
        ctx.check()?;
        Ok(GpuHdr {
            ctx,
            layout,
            pipeline,
        })
    }

    /// [`crate::fusion::hdr::merge_bracket`] on the GPU: the linear mosaic
    /// and each frame's share of the quads it weighed most in.
    #[allow(clippy::too_many_arguments)]
    pub fn merge(
        &self,
        frames: &[&[u16]],
        w: usize,
        h: usize,
        reference: usize,
        exposures: &[Exposure],
        alignments: &[Alignment],
        black: f32,
        white: f32,
    ) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        use wgpu::util::DeviceExt;
        self.ctx.check_fusion()?;
        let device = &self.ctx.device;
        let n = frames.len();
        if n == 0 || n > MAX_FRAMES || exposures.len() != n || reference >= n {
            return Err(GpuError::Input(format!(
                "{n} frames with {} exposures (1..={MAX_FRAMES}, reference {reference})",
                exposures.len()
            )));
        }
        let a0 = &alignments
            .get(reference)
            .ok_or_else(|| GpuError::Input("no alignment for the reference".into()))?;
        let tiles = a0.tiles_x * a0.tiles_y;
        if !w.is_multiple_of(2) || !h.is_multiple_of(2) || frames.iter().any(|f| f.len() < w * h) {
            return Err(GpuError::Input(format!("{n} frames of {w}x{h} expected")));
        }
        if alignments.len() != n || alignments.iter().any(|a| a.offsets.len() != tiles) {
            return Err(GpuError::Input(
                "an alignment per frame, on one tile grid".into(),
            ));
        }
        let u = uniforms(
            w as u32,
            h as u32,
            a0,
            reference as u32,
            exposures,
            black,
            white,
        );
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("hdr params"),
            contents: bytemuck::cast_slice(&u),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut samples: Vec<u16> = Vec::with_capacity(n * w * h);
        for f in frames {
            samples.extend_from_slice(&f[..w * h]);
        }
        let frames_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("hdr frames"),
            contents: bytemuck::cast_slice(&samples),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let offs: Vec<[i32; 2]> = alignments
            .iter()
            .flat_map(|a| a.offsets.iter().map(|&(x, y)| [x, y]))
            .collect();
        let offsets = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("hdr offsets"),
            contents: bytemuck::cast_slice(&offs),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let quads = (w / 2) * (h / 2);
        let out_bytes = ((w * h + quads) * 4) as u64;
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hdr linear"),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hdr readback"),
            size: out_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let group = self.ctx.bind_buffers(
            "hdr",
            &self.layout,
            &[&uniform, &frames_buf, &offsets, &out],
        );
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_bind_group(0, &group, &[]);
            pass.set_pipeline(&self.pipeline);
            pass.dispatch_workgroups((w as u32 / 2).div_ceil(16), (h as u32 / 2).div_ceil(16), 1);
        }
        enc.copy_buffer_to_buffer(&out, 0, &readback, 0, out_bytes);
        let mut got = None;
        self.ctx.submit_and_read(enc, &readback, "hdr", |bytes| {
            let all: &[f32] = bytemuck::cast_slice(bytes);
            let lin = all[..w * h].to_vec();
            let mut share = vec![0.0f32; n];
            let total = quads.max(1) as f32;
            for &b in &all[w * h..w * h + quads] {
                if b >= 0.0 {
                    share[b as usize] += 1.0 / total;
                }
            }
            got = Some((lin, share));
            Ok(())
        })?;
        got.ok_or_else(|| GpuError::Map("hdr: nothing read back".into()))
    }
}
