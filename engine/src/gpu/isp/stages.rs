//! Taps, single stages and the statistics kernel, run unfused.

use super::*;

impl GpuIsp {
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

    pub(super) fn run_chain(
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
            Kernel::Highlights
            | Kernel::Ccm
            | Kernel::ToneRgba8
            | Kernel::ToneRgb16
            | Kernel::Yuv => px * 6,
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

    pub(super) fn run_chain_in(
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

/// The statistics buffer's words -> [`Stats3A`], with the CPU's arithmetic.
pub(super) fn decode_stats(p: &FrameParams, words: &[u32]) -> Stats3A {
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
    let mut s = Stats3A {
        width: w,
        height: h,
        sums: [u64_at(0) as f64, u64_at(2) as f64, u64_at(4) as f64],
        counts: [quads, 2 * quads, quads],
        histograms,
        zones_x: st.zones_x,
        zones_y: st.zones_y,
        zones,
        focus: u64_at(6) as f64 / focus_n.max(1) as f64 / 65535.0,
    };
    s.above_pedestal();
    s
}
