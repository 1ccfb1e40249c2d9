//! Burst alignment on the GPU: `shaders/align.wgsl`, the twin of
//! `fusion/align.rs`. The pyramids are built on the CPU (a box average, a
//! few milliseconds); every level's tile search, coarsest first, runs here,
//! each level starting from the one before it without leaving the GPU.

use super::{Bind, GpuContext, GpuError};
use crate::fusion::align::{self, Alignment, Grey, MOTION_PENALTY};
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// The alignment's pipeline on one [`GpuContext`].
pub struct GpuAlign {
    ctx: Arc<GpuContext>,
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl std::fmt::Debug for GpuAlign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuAlign({})", self.ctx.adapter_name())
    }
}

impl GpuAlign {
    pub fn new(ctx: Arc<GpuContext>) -> Result<GpuAlign, GpuError> {
        ctx.check()?;
        let mut m = ctx.compute_module(
            "align",
            include_str!("../../../shaders/align.wgsl"),
            &[
                Bind::Uniform,
                Bind::Read,
                Bind::Read,
                Bind::Read,
                Bind::ReadWrite,
            ],
            &["align_level"],
        );
        let pipeline = m.pipelines.remove(0);
        let layout = m.layout;
        ctx.check()?;
        Ok(GpuAlign {
            ctx,
            layout,
            pipeline,
        })
    }

    /// [`align::align`] on the GPU.
    pub fn align(&self, reference: &Grey, frame: &Grey) -> Result<Alignment, GpuError> {
        self.ctx.check_fusion()?;
        if (reference.width, reference.height) != (frame.width, frame.height)
            || reference.width < 4
            || reference.height < 4
        {
            return Err(GpuError::Input(format!(
                "grey images of {}x{} and {}x{}",
                reference.width, reference.height, frame.width, frame.height
            )));
        }
        let device = &self.ctx.device;
        let (pr, pf) = (align::pyramid(reference), align::pyramid(frame));
        let storage = |label: &str, data: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: data,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            })
        };
        let mut enc = device.create_command_encoder(&Default::default());
        // The coarser level's offsets (a placeholder before the coarsest).
        let mut coarse = storage("no coarser level", bytemuck::cast_slice(&[0i32; 4]));
        let mut coarse_grid = (0u32, 0u32, 0u32);
        let mut last = None;
        for level in (0..pr.len()).rev() {
            let (tile, radius, up, l1) = align::level_search(level);
            let (r, f) = (&pr[level], &pf[level]);
            let (tx, ty) = (align::tiles(r.width, tile), align::tiles(r.height, tile));
            let u: [u32; 16] = [
                r.width as u32,
                r.height as u32,
                tile as u32,
                radius as u32,
                up as u32,
                tx as u32,
                ty as u32,
                u32::from(l1),
                coarse_grid.0,
                coarse_grid.1,
                coarse_grid.2,
                u32::from(level + 1 < pr.len()),
                MOTION_PENALTY.to_bits(),
                0,
                0,
                0,
            ];
            let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("align params"),
                contents: bytemuck::cast_slice(&u),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let rbuf = storage("align reference", bytemuck::cast_slice(&r.px));
            let fbuf = storage("align frame", bytemuck::cast_slice(&f.px));
            // Per tile: offset (2 x i32), cost (f32), padding.
            let offs = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("align matches"),
                size: (tx * ty * 16) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let group = self.ctx.bind_buffers(
                "align",
                &self.layout,
                &[&uniform, &rbuf, &fbuf, &coarse, &offs],
            );
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(((tx * ty) as u32).div_ceil(64), 1, 1);
            }
            coarse_grid = (tx as u32, ty as u32, tile as u32);
            last = Some((offs.clone(), tx, ty));
            coarse = offs;
        }
        let Some((offs, tx, ty)) = last else {
            return Err(GpuError::Input("no pyramid level".into()));
        };
        let n = (tx * ty) as u64;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("align readback"),
            size: n * 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        enc.copy_buffer_to_buffer(&offs, 0, &readback, 0, n * 16);
        let mut a = None;
        self.ctx
            .submit_and_read(enc, &readback, "alignment", |bytes| {
                let m: &[[u32; 4]] = bytemuck::cast_slice(bytes);
                a = Some(Alignment {
                    tiles_x: tx,
                    tiles_y: ty,
                    offsets: m.iter().map(|t| (t[0] as i32, t[1] as i32)).collect(),
                    costs: m.iter().map(|t| f32::from_bits(t[2])).collect(),
                });
                Ok(())
            })?;
        a.ok_or_else(|| GpuError::Map("alignment: nothing read back".into()))
    }
}
