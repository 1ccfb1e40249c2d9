//! The burst merge on the GPU: `shaders/merge.wgsl`, the twin of
//! `fusion/merge.rs` (the CPU reference it is held to). Alignment runs on
//! the CPU; the merge (weights per tile and frame, then every pixel's blend)
//! here.

use super::{Bind, GpuContext, GpuError};
use crate::fusion::align::Alignment;
use crate::fusion::merge::{MergeParams, MergeStats, stats_from_weights};
use std::sync::Arc;

/// The merge's pipelines on one [`GpuContext`].
pub struct GpuMerge {
    ctx: Arc<GpuContext>,
    layout: wgpu::BindGroupLayout,
    weights: wgpu::ComputePipeline,
    pixels: wgpu::ComputePipeline,
}

impl std::fmt::Debug for GpuMerge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuMerge({})", self.ctx.adapter_name())
    }
}

/// `MergeParams` in the shader's layout (12 words).
fn uniforms(
    w: u32,
    h: u32,
    a: &Alignment,
    frames: u32,
    reference: u32,
    p: &MergeParams,
) -> [u32; 12] {
    [
        w,
        h,
        a.tiles_x as u32,
        a.tiles_y as u32,
        frames,
        reference,
        p.black.to_bits(),
        p.white.to_bits(),
        p.noise.shot.to_bits(),
        p.noise.read.to_bits(),
        p.robustness.to_bits(),
        0,
    ]
}

impl GpuMerge {
    pub fn new(ctx: Arc<GpuContext>) -> Result<GpuMerge, GpuError> {
        ctx.check()?;
        let mut m = ctx.compute_module(
            "merge",
            include_str!("../../../shaders/merge.wgsl"),
            &[
                Bind::Uniform,
                Bind::Read,
                Bind::Read,
                Bind::ReadWrite,
                Bind::ReadWrite,
            ],
            &["merge_weights", "merge_pixels"],
        );
        let pixels = m.pipelines.remove(1);
        let weights = m.pipelines.remove(0);
        let layout = m.layout;
        ctx.check()?;
        Ok(GpuMerge {
            ctx,
            layout,
            weights,
            pixels,
        })
    }

    /// [`crate::fusion::merge::merge_burst`] on the GPU: the merged mosaic
    /// and the tile weights' summary.
    pub fn merge(
        &self,
        frames: &[&[u16]],
        w: usize,
        h: usize,
        reference: usize,
        alignments: &[Alignment],
        p: &MergeParams,
    ) -> Result<(Vec<u16>, MergeStats), GpuError> {
        use wgpu::util::DeviceExt;
        self.ctx.check_fusion()?;
        let device = &self.ctx.device;
        let n = frames.len();
        let a0 = alignments
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
        let u = uniforms(w as u32, h as u32, a0, n as u32, reference as u32, p);
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("merge params"),
            contents: bytemuck::cast_slice(&u),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut samples: Vec<u16> = Vec::with_capacity(n * w * h);
        for f in frames {
            samples.extend_from_slice(&f[..w * h]);
        }
        let frames_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("merge frames"),
            contents: bytemuck::cast_slice(&samples),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let offs: Vec<[i32; 2]> = alignments
            .iter()
            .flat_map(|a| a.offsets.iter().map(|&(x, y)| [x, y]))
            .collect();
        let offsets = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("merge offsets"),
            contents: bytemuck::cast_slice(&offs),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let weight_bytes = (tiles * n * 4) as u64;
        let weights = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("merge weights"),
            size: weight_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let out_bytes = (w * h * 2) as u64;
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("merged"),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("merged readback"),
            size: out_bytes + weight_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let group = self.ctx.bind_buffers(
            "merge",
            &self.layout,
            &[&uniform, &frames_buf, &offsets, &weights, &out],
        );
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_bind_group(0, &group, &[]);
            pass.set_pipeline(&self.weights);
            pass.dispatch_workgroups(((tiles * n) as u32).div_ceil(64), 1, 1);
            pass.set_pipeline(&self.pixels);
            pass.dispatch_workgroups((w as u32 / 2).div_ceil(16), (h as u32).div_ceil(16), 1);
        }
        enc.copy_buffer_to_buffer(&out, 0, &readback, 0, out_bytes);
        enc.copy_buffer_to_buffer(&weights, 0, &readback, out_bytes, weight_bytes);
        let mut got = None;
        self.ctx.submit_and_read(enc, &readback, "merge", |bytes| {
            let merged: Vec<u16> = bytemuck::cast_slice(&bytes[..out_bytes as usize]).to_vec();
            let flat: Vec<f32> = bytemuck::cast_slice(&bytes[out_bytes as usize..]).to_vec();
            got = Some((merged, stats_from_weights(&flat, n)));
            Ok(())
        })?;
        got.ok_or_else(|| GpuError::Map("merge: nothing read back".into()))
    }
}
