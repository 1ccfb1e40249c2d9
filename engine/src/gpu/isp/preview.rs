//! The fused preview: raw bytes to RGBA8 and 3A statistics in one dispatch,
//! with its timings; and the compute-only bench.

use super::*;

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

impl GpuIsp {
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

    pub(super) fn preview_in(
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
            let display = self.display.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = display
                .as_ref()
                .filter(|t| t.width() == w && t.height() == h)
            {
                self.display_writes.fetch_add(1, Ordering::AcqRel);
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
            drop(display);
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
    pub(super) fn fused_pass(
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

    pub(super) fn upload_ready_async(&self, s: &Slot) {
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
}
