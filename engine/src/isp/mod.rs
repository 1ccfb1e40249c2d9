//! The seed's pipeline steps as stateless workers, `fn(&Envelope) ->
//! Result<StageOutput, StageError>`:
//!
//! | worker    | lane       | reads -> writes                                   |
//! |-----------|------------|---------------------------------------------------|
//! | RawISP    | realtime   | raw bytes -> 16-bit mosaic (unpack, black level, DPC) |
//! | RawAlgo   | realtime   | 16-bit mosaic -> 3A statistics                    |
//! | FastISP   | realtime   | 16-bit mosaic -> RGBA8 preview (fused schedule)   |
//! | FastAlgo  | realtime   | statistics -> AE/AWB result                       |
//! | SlowISP   | background | raw bytes -> RGB16 full resolution (reference stages) + statistics |
//! | GpuPreview| realtime   | raw bytes -> RGBA8 preview + statistics, one GPU dispatch (replaces RawISP..FastISP) |
//! | SlowAlgo  | background | statistics -> AE/AWB result for the capture       |
//! | Model     | background | raw bytes -> a model stage's estimate (e.g. AWB gains from an ONNX model) |

use crate::envelope::{Envelope, GpuOutput, Payload, StageError, StageOutput};
use crate::stages::chain::{CHAIN, Image, Tap, TapImage};
use crate::stages::{self, black_level, defect_pixel, demosaic, fused, stats, unpack};
use crate::tuning::FrameParams;

fn invalid(stage: &'static str, e: impl std::fmt::Display) -> StageError {
    StageError::Invalid {
        stage,
        message: e.to_string(),
    }
}

fn input<'a>(
    env: &'a Envelope,
    stage: &'static str,
    i: usize,
) -> Result<&'a crate::resource_manager::BufferRef, StageError> {
    env.inputs
        .get(i)
        .ok_or_else(|| invalid(stage, format!("missing input buffer {i}")))
}

fn output<'a>(
    env: &'a Envelope,
    stage: &'static str,
    i: usize,
) -> Result<&'a crate::resource_manager::BufferRef, StageError> {
    env.outputs
        .get(i)
        .ok_or_else(|| invalid(stage, format!("missing output buffer {i}")))
}

/// Unpack + black level (+ defect pixel correction) into a 16-bit mosaic.
pub fn raw_into(
    env: &Envelope,
    stage: &'static str,
    src: &[u8],
    dst: &mut [u16],
) -> Result<(), StageError> {
    raw_mosaic(&env.params, stage, src, dst)
}

/// [`raw_into`] under the parameters `p`.
pub fn raw_mosaic(
    p: &FrameParams,
    stage: &'static str,
    src: &[u8],
    dst: &mut [u16],
) -> Result<(), StageError> {
    use rayon::prelude::*;
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    if dst.len() < w * h {
        return Err(invalid(
            stage,
            format!(
                "output holds {} samples, {w}x{h} needs {}",
                dst.len(),
                w * h
            ),
        ));
    }
    unpack::check_frame(&fmt, src.len()).map_err(|e| invalid(stage, e))?;
    let k = p.stages.black_level.resolve(fmt.max_value());
    let stride = fmt.stride as usize;
    let row_bytes = fmt.min_stride() as usize;
    dst[..w * h]
        .par_chunks_mut(w * 32)
        .enumerate()
        .for_each(|(band, chunk)| {
            for (r, out) in chunk.chunks_exact_mut(w).enumerate() {
                let y = band * 32 + r;
                unpack::unpack_row(&fmt, &src[y * stride..y * stride + row_bytes], out);
                black_level::apply_row(black_level::row_constants(&k, fmt.bayer, y), out);
            }
        });
    if p.stages.defect_pixel.enabled {
        // The correction reads the uncorrected mosaic: a copy in this
        // thread's scratch (kept from frame to frame).
        thread_local! {
            static DPC_SRC: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let mut copy = DPC_SRC.with(|c| std::mem::take(&mut *c.borrow_mut()));
        copy.clear();
        copy.extend_from_slice(&dst[..w * h]);
        defect_pixel::apply(&p.stages.defect_pixel, w, h, &copy, &mut dst[..w * h]);
        DPC_SRC.with(|c| *c.borrow_mut() = copy);
    }
    Ok(())
}

/// RawISP: raw bytes -> 16-bit mosaic.
pub fn raw_isp(env: &Envelope) -> Result<StageOutput, StageError> {
    const S: &str = "raw_isp";
    let src = input(env, S, 0)?.read()?;
    let mut dst = output(env, S, 0)?.write()?;
    raw_into(env, S, src.bytes(), dst.u16s_mut())?;
    Ok(StageOutput::None)
}

/// RawAlgo: 3A statistics of the mosaic.
pub fn raw_algo(env: &Envelope) -> Result<StageOutput, StageError> {
    const S: &str = "raw_algo";
    let fmt = env.params.format;
    let src = input(env, S, 0)?.read()?;
    let data = src.u16s();
    stages::check_len(S, fmt.width as usize, fmt.height as usize, 1, data.len())
        .map_err(|e| invalid(S, e))?;
    let st = stats::compute(
        &env.params.stages.stats,
        fmt.bayer,
        fmt.width as usize,
        fmt.height as usize,
        data,
    );
    Ok(StageOutput::Stats(Box::new(st)))
}

/// FastISP: the fused preview.
pub fn fast_isp(env: &Envelope) -> Result<StageOutput, StageError> {
    const S: &str = "fast_isp";
    let p = &env.params;
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let src = input(env, S, 0)?.read()?;
    let mut dst = output(env, S, 0)?.write()?;
    stages::check_len(S, w, h, 1, src.u16s().len()).map_err(|e| invalid(S, e))?;
    stages::check_len(S, w, h, 4, dst.len()).map_err(|e| invalid(S, e))?;
    if w < 4 || h < 4 {
        return Err(invalid(
            S,
            format!("{w}x{h} is smaller than the 4x4 the demosaic needs"),
        ));
    }
    let fp = p.fast();
    fused::preview_rgba8(&fp, w, h, src.u16s(), dst.bytes_mut());
    Ok(StageOutput::None)
}

/// The CPU preview of one raw frame (RawISP, RawAlgo and FastISP in one
/// call): what a GPU frame falls back to.
pub fn cpu_preview(
    env: &Envelope,
    stage: &'static str,
    src: &[u8],
    out: &mut [u8],
) -> Result<stats::Stats3A, StageError> {
    let p = &env.params;
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    stages::check_len(stage, w, h, 4, out.len()).map_err(|e| invalid(stage, e))?;
    if w < 4 || h < 4 {
        return Err(invalid(
            stage,
            format!("{w}x{h} is smaller than the 4x4 the demosaic needs"),
        ));
    }
    let mut mosaic = vec![0u16; w * h];
    raw_into(env, stage, src, &mut mosaic)?;
    let fp = p.fast();
    fused::preview_rgba8(&fp, w, h, &mosaic, out);
    Ok(stats::compute(&p.stages.stats, fmt.bayer, w, h, &mosaic))
}

/// GpuPreview: raw bytes -> RGBA8 preview and 3A statistics on the GPU. A
/// GPU fault in `auto` mode runs this frame on the CPU and switches the
/// engine over; in `gpu` mode it is the frame's error.
pub fn gpu_preview(env: &Envelope) -> Result<StageOutput, StageError> {
    const S: &str = "fast_isp";
    let gpu = env
        .gpu
        .as_ref()
        .ok_or_else(|| invalid(S, "no GPU attached to the envelope"))?;
    let src = input(env, S, 0)?.read()?;
    let mut dst = output(env, S, 0)?.write()?;
    match gpu.isp.preview(&env.params, src.bytes(), dst.bytes_mut()) {
        Ok(f) => Ok(StageOutput::Gpu(Box::new(GpuOutput {
            stats: f.stats,
            timings: Some(f.timings),
            switched: None,
        }))),
        Err(e @ crate::gpu::GpuError::Input(_)) => Err(invalid(S, e)),
        Err(e) => {
            let first = gpu.fault(&e);
            if gpu.mode != crate::gpu::Backend::Auto {
                return Err(invalid(S, format!("GPU fault: {e}")));
            }
            let stats = cpu_preview(env, S, src.bytes(), dst.bytes_mut())?;
            Ok(StageOutput::Gpu(Box::new(GpuOutput {
                stats,
                timings: None,
                switched: first.then(|| format!("GPU fault: {e}; auto switches to the CPU")),
            })))
        }
    }
}

/// The reference stages on raw bytes up to `tap`, on the CPU: the
/// inspector's view of one stage's output when there is no GPU.
pub fn reference_tap(p: &FrameParams, raw: &[u8], tap: Tap) -> Result<TapImage, StageError> {
    let mut last = None;
    reference_chain(p, raw, tap, |t, img| {
        if t == tap {
            last = Some(img.to_owned_image());
        }
    })?;
    last.ok_or_else(|| invalid("tap", "no output"))
}

/// Every stage's output (the whole declared chain) of one raw frame in one
/// pass of the CPU reference chain: what the pixel inspector reads each
/// stage's value from.
pub fn reference_taps(p: &FrameParams, raw: &[u8]) -> Result<Vec<(Tap, TapImage)>, StageError> {
    let mut out = Vec::with_capacity(CHAIN.len());
    let last = CHAIN[CHAIN.len() - 1].tap;
    reference_chain(p, raw, last, |t, img| out.push((t, img.to_owned_image())))?;
    Ok(out)
}

/// A stage's output as the chain holds it (borrowed).
enum TapRef<'a> {
    Mosaic(&'a [u16]),
    Rgb16(&'a [u16]),
    Rgba8(&'a [u8]),
}

impl TapRef<'_> {
    fn to_owned_image(&self) -> TapImage {
        match self {
            TapRef::Mosaic(v) => TapImage::Mosaic(v.to_vec()),
            TapRef::Rgb16(v) => TapImage::Rgb16(v.to_vec()),
            TapRef::Rgba8(v) => TapImage::Rgba8(v.to_vec()),
        }
    }
}

/// The images the reference chain carries from stage to stage.
struct ChainState {
    mosaic: Vec<u16>,
    spare: Vec<u16>,
    rgb: Vec<u16>,
    rgba: Vec<u8>,
}

/// The CPU reference chain up to `upto`, stage by stage as [`CHAIN`]
/// declares it, showing each stage's output to `emit`.
fn reference_chain(
    p: &FrameParams,
    raw: &[u8],
    upto: Tap,
    mut emit: impl FnMut(Tap, TapRef<'_>),
) -> Result<(), StageError> {
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let mut s = ChainState {
        mosaic: vec![0u16; w * h],
        spare: Vec::new(),
        rgb: Vec::new(),
        rgba: Vec::new(),
    };
    for d in &CHAIN[..=upto as usize] {
        reference_stage(p, raw, d.tap, &mut s)?;
        emit(
            d.tap,
            match d.output {
                Image::Mosaic => TapRef::Mosaic(&s.mosaic),
                Image::Rgb16 => TapRef::Rgb16(&s.rgb),
                Image::Rgba8 => TapRef::Rgba8(&s.rgba),
            },
        );
    }
    Ok(())
}

/// One declared stage on the CPU, from the chain's state to its output.
fn reference_stage(
    p: &FrameParams,
    raw: &[u8],
    t: Tap,
    s: &mut ChainState,
) -> Result<(), StageError> {
    let fmt = p.format;
    let st = &p.stages;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    match t {
        Tap::Unpacked => unpack::unpack(&fmt, raw, &mut s.mosaic).map_err(|e| invalid("tap", e))?,
        Tap::BlackLevel => {
            s.spare.resize(w * h, 0);
            black_level::apply(
                &st.black_level,
                fmt.max_value(),
                fmt.bayer,
                w,
                &s.mosaic,
                &mut s.spare,
            );
            std::mem::swap(&mut s.mosaic, &mut s.spare);
        }
        Tap::DefectPixel => {
            s.spare.resize(w * h, 0);
            defect_pixel::apply(&st.defect_pixel, w, h, &s.mosaic, &mut s.spare);
            std::mem::swap(&mut s.mosaic, &mut s.spare);
        }
        Tap::LensShading => {
            stages::lens_shading::apply(&st.lens_shading, fmt.bayer, w, h, &mut s.mosaic)
        }
        Tap::WhiteBalance => {
            stages::white_balance::apply(&st.white_balance, fmt.bayer, w, &mut s.mosaic)
        }
        Tap::Demosaic => {
            s.rgb.resize(w * h * 3, 0);
            demosaic::apply(&st.demosaic, fmt.bayer, w, h, &s.mosaic, &mut s.rgb);
        }
        Tap::Highlights => stages::highlights::apply(&st.highlights, &mut s.rgb),
        Tap::Ccm => stages::ccm::apply(&st.ccm, &mut s.rgb),
        Tap::Tone => {
            s.rgba.resize(w * h * 4, 0);
            stages::tone::apply_rgba8(&p.lut, &s.rgb, &mut s.rgba);
        }
    }
    Ok(())
}

/// FastAlgo / SlowAlgo: run the algorithms on the frame's statistics.
pub fn fast_algo(env: &Envelope) -> Result<StageOutput, StageError> {
    let Payload::Stats(st) = &env.payload else {
        return Err(invalid(env.stage.name(), "no statistics in the envelope"));
    };
    let mut r = crate::algorithms::AlgoResult::new(&env.ipa);
    for a in env.params.algorithms.iter() {
        a.process(st, &mut r);
    }
    // `frames_processed` is the engine's count: the router adds each run.
    Ok(StageOutput::Algo(Box::new(r)))
}

/// SlowAlgo shares FastAlgo's code; it runs on the background lane.
pub fn slow_algo(env: &Envelope) -> Result<StageOutput, StageError> {
    fast_algo(env)
}

/// The whole reference chain from raw bytes, into interleaved RGB16
/// (display-encoded, or linear when `params.linear_output`). Also returns the
/// statistics of the mosaic.
pub fn reference_rgb16(
    env: &Envelope,
    src: &[u8],
    out: &mut [u16],
) -> Result<stats::Stats3A, StageError> {
    const S: &str = "slow_isp";
    let p = &env.params;
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    stages::check_len(S, w, h, 3, out.len()).map_err(|e| invalid(S, e))?;
    let mut mosaic = vec![0u16; w * h];
    raw_into(env, S, src, &mut mosaic)?;
    // Between stages the background lane steps aside for realtime work.
    use crate::threading_manager::yield_to_realtime;
    let st = stats::compute(&p.stages.stats, fmt.bayer, w, h, &mosaic);
    yield_to_realtime();
    stages::lens_shading::apply(&p.stages.lens_shading, fmt.bayer, w, h, &mut mosaic);
    stages::white_balance::apply(&p.stages.white_balance, fmt.bayer, w, &mut mosaic);
    yield_to_realtime();
    let rgb = &mut out[..w * h * 3];
    demosaic::apply(&p.stages.demosaic, fmt.bayer, w, h, &mosaic, rgb);
    yield_to_realtime();
    stages::highlights::apply(&p.stages.highlights, rgb);
    stages::ccm::apply(&p.stages.ccm, rgb);
    yield_to_realtime();
    if p.linear_output {
        stages::tone::apply_exposure(&p.stages.tone, rgb);
    } else {
        stages::tone::apply_rgb16(&p.lut, rgb);
    }
    Ok(st)
}

/// SlowISP: full-resolution 16-bit output through the reference stages.
pub fn slow_isp(env: &Envelope) -> Result<StageOutput, StageError> {
    const S: &str = "slow_isp";
    let src = input(env, S, 0)?.read()?;
    let mut dst = output(env, S, 0)?.write()?;
    let st = reference_rgb16(env, src.bytes(), dst.u16s_mut())?;
    Ok(StageOutput::Stats(Box::new(st)))
}

/// FusionManager's merge of a burst or bracket (background lane): the
/// envelope's inputs are the frames' mosaics, its output the result's. A
/// burst merges on the engine's GPU when it has one in use (on the CPU if
/// that fails).
pub fn fusion_merge(env: &Envelope) -> Result<StageOutput, StageError> {
    let invalid = |message: String| StageError::Invalid {
        stage: "fusion",
        message,
    };
    let Payload::Fusion(job) = &env.payload else {
        return Err(invalid("no merge to run".into()));
    };
    let out = env
        .outputs
        .first()
        .ok_or_else(|| invalid("no result buffer".into()))?;
    let gpu = env.gpu.as_ref().filter(|g| g.active());
    let name = gpu
        .map(|g| g.isp.context().adapter_name())
        .unwrap_or_default();
    let (w, h) = (
        job.plan.format.width as usize,
        job.plan.format.height as usize,
    );
    let align = |r: &crate::fusion::align::Grey,
                 f: &crate::fusion::align::Grey|
     -> Result<crate::fusion::align::Alignment, String> {
        let g = gpu.ok_or("no GPU")?;
        g.align()?.align(r, f).map_err(|e| e.to_string())
    };
    let merge = |spec: &crate::fusion::MergeSpec,
                 frames: &[&[u16]]|
     -> Result<(Vec<u16>, crate::fusion::merge::MergeStats), String> {
        let g = gpu.ok_or("no GPU")?;
        g.merge()?
            .merge(frames, w, h, spec.reference, &spec.alignments, &spec.params)
            .map_err(|e| e.to_string())
    };
    let bracket = |spec: &crate::fusion::MergeSpec,
                   frames: &[&[u16]]|
     -> Result<(Vec<f32>, Vec<f32>), String> {
        let g = gpu.ok_or("no GPU")?;
        let p = &spec.params;
        g.hdr()?
            .merge(
                frames,
                w,
                h,
                spec.reference,
                &spec.exposures,
                &spec.alignments,
                p.black,
                p.white,
            )
            .map_err(|e| e.to_string())
    };
    let ops = gpu.map(|_| crate::fusion::GpuOps {
        name: &name,
        align: &align,
        merge: &merge,
        bracket: &bracket,
    });
    job.run(
        &env.inputs,
        out,
        &crate::threading_manager::yield_to_realtime,
        ops.as_ref(),
    )
    .map(|d| StageOutput::Fusion(Box::new(d)))
    .map_err(invalid)
}

/// Model: the tuning's model stage on a frame's mosaic (unpacked here into
/// per-thread scratch, black level removed: the background lane reads only
/// the raw bytes).
pub fn model_stage(env: &Envelope) -> Result<StageOutput, StageError> {
    const S: &str = "model";
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let p = &env.params;
    let stage = p
        .algorithms
        .iter()
        .find_map(|a| a.model_stage())
        .ok_or_else(|| invalid(S, "the tuning has no model stage enabled"))?;
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let src = input(env, S, 0)?.read()?;
    let raw = src.bytes();
    unpack::check_frame(&fmt, raw.len()).map_err(|e| invalid(S, e))?;
    let k = p.stages.black_level.resolve(fmt.max_value());
    let (stride, row_bytes) = (fmt.stride as usize, fmt.min_stride() as usize);
    // Zone means from every `step`-th pair of rows (the Bayer phase kept):
    // the model's grid is coarse, the frame is not.
    let rows = crate::algorithms::awb_model::sampled_rows(h, stage.row_step(h));
    SCRATCH.with(|s| {
        let mut m = s.borrow_mut();
        m.resize(w * rows.len(), 0);
        // Unpacked on this worker alone (the statistics after it use the
        // lane's idle-class pool); zone means do not need the DPC.
        for (&y, out) in rows.iter().zip(m.chunks_exact_mut(w)) {
            unpack::unpack_row(&fmt, &raw[y * stride..y * stride + row_bytes], out);
            black_level::apply_row(black_level::row_constants(&k, fmt.bayer, y), out);
        }
        stage
            .estimate(
                &p.stages.stats,
                &p.stages.lens_shading,
                fmt.bayer,
                w,
                rows.len(),
                &m,
            )
            .map(|e| e.map_or(StageOutput::None, |e| StageOutput::Model(Box::new(e))))
            .map_err(|e| invalid(S, e))
    })
}

/// A stage that does nothing (for round-trip measurements).
pub fn noop(_env: &Envelope) -> Result<StageOutput, StageError> {
    Ok(StageOutput::None)
}

#[cfg(test)]
mod tests;
