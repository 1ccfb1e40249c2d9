//! Per-geometry frame slots: pooled storage buffers, the staging and
//! read-back buffers, the parameter block and cached bind groups.

use super::*;

impl GpuIsp {
    pub(super) fn take_slot(&self, w: u32, h: u32, raw_bytes: u64) -> Result<Slot, GpuError> {
        let key = (w, h, align(raw_bytes.max(4), 4));
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = slots.iter().position(|s| s.key == key) {
                return Ok(slots.swap_remove(i));
            }
        }
        self.new_slot(key)
    }

    pub(super) fn give_slot(&self, s: Slot) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.push(s);
        // Keep a few geometries; the oldest goes first.
        if slots.len() > 6 {
            slots.remove(0);
        }
    }

    pub(super) fn new_slot(&self, key: (u32, u32, u64)) -> Result<Slot, GpuError> {
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
    pub(super) fn load_params(
        &self,
        s: &mut Slot,
        p: &FrameParams,
        u: Uniforms,
    ) -> Result<(), GpuError> {
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
            // The static defect map's bitmap follows the grid.
            let map = &p.stages.defect_pixel.map;
            if !map.is_empty() {
                (map, p.format.width, p.format.height).hash(&mut hs);
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

    pub(super) fn scratch(&self, s: &mut Slot) -> Result<(), GpuError> {
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

    pub(super) fn buffer(s: &Slot, b: Buf) -> &wgpu::Buffer {
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

    pub(super) fn bind_group(&self, s: &mut Slot, src: Buf, dst: Buf) -> wgpu::BindGroup {
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
}
