//! Criterion benches: the fast preview path at 1080p (unpack + black level,
//! then the fused LSC/WB/Malvar/CCM/tone), statistics, the envelope round
//! trip, and the preview on the CPU against the GPU at 1080p and 4K (GPU
//! compute alone, with transfers, upload and readback on their own).
//! Targets are in the README and the closing notes.

use criterion::{Criterion, criterion_group, criterion_main};
use isp_engine::sources::FrameSource;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::stages::{black_level, fused, stats, tone, unpack};
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Packing, RawFormat};

fn fast_path(c: &mut Criterion) {
    let fmt = RawFormat::new(1920, 1080, 10, BayerOrder::Rggb, Packing::Plain);
    let mut src = SyntheticSource::new(Scene::Checker, fmt);
    let mut raw = vec![0u8; fmt.frame_bytes()];
    src.next_frame(&mut raw).expect("a frame");
    let t = Tuning::default();
    let lut = tone::ToneLut::build(&t.stages.tone);
    let k = t.stages.black_level.resolve(fmt.max_value());
    let (w, h) = (1920usize, 1080usize);
    let mut mosaic = vec![0u16; w * h];
    let mut out = vec![0u8; w * h * 4];
    let st = &t.stages;
    let fp = fused::FastParams {
        order: fmt.bayer,
        lsc: Some(&st.lens_shading),
        wb: st.white_balance.effective(),
        method: st.demosaic.method,
        highlights: st.highlights.resolve(),
        ccm: st.ccm.effective(),
        lut: &lut,
    };
    let unpack_bl = |mosaic: &mut Vec<u16>| {
        use rayon::prelude::*;
        mosaic
            .par_chunks_mut(w * 32)
            .enumerate()
            .for_each(|(b, chunk)| {
                for (r, row) in chunk.chunks_exact_mut(w).enumerate() {
                    let y = b * 32 + r;
                    unpack::unpack_row(&fmt, &raw[y * fmt.stride as usize..], row);
                    black_level::apply_row(black_level::row_constants(&k, fmt.bayer, y), row);
                }
            })
    };
    let mut g = c.benchmark_group("fast_path_1080p_raw10");
    g.sample_size(30);
    g.bench_function("unpack_black_level", |b| b.iter(|| unpack_bl(&mut mosaic)));
    unpack_bl(&mut mosaic);
    g.bench_function("fused_lsc_wb_malvar_ccm_tone", |b| {
        b.iter(|| fused::preview_rgba8(&fp, w, h, &mosaic, &mut out))
    });
    g.bench_function("stats", |b| {
        b.iter(|| stats::compute(&st.stats, fmt.bayer, w, h, &mosaic))
    });
    g.bench_function("whole_preview", |b| {
        b.iter(|| {
            unpack_bl(&mut mosaic);
            fused::preview_rgba8(&fp, w, h, &mosaic, &mut out)
        })
    });
    g.finish();
}

fn runtime(c: &mut Criterion) {
    let mut g = c.benchmark_group("runtime");
    g.sample_size(10);
    g.bench_function("noop_roundtrip_1000", |b| {
        b.iter(|| isp_engine::bench::roundtrip(1000))
    });
    g.finish();
}

/// The whole preview (raw -> RGBA8 + statistics) on the CPU and on the GPU.
fn cpu_vs_gpu(c: &mut Criterion) {
    use isp_engine::gpu::{GpuContext, GpuIsp};
    use isp_engine::tuning::FrameParams;
    use std::time::Duration;
    let gpu = match GpuContext::new().and_then(GpuIsp::new) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no GPU for the gpu benches: {e}");
            None
        }
    };
    if let Some(g) = &gpu {
        eprintln!("GPU adapter: {}", g.context().adapter_name());
    }
    for (w, h, name) in [(1920u32, 1080u32, "1080p"), (3840, 2160, "4k")] {
        let fmt = RawFormat::new(w, h, 10, BayerOrder::Rggb, Packing::Plain);
        let mut src = SyntheticSource::new(Scene::Checker, fmt);
        let mut raw = vec![0u8; fmt.frame_bytes()];
        src.next_frame(&mut raw).expect("a frame");
        let p = FrameParams::from_tuning(&Tuning::default(), fmt);
        let (wu, hu) = (w as usize, h as usize);
        let mut out = vec![0u8; wu * hu * 4];
        let mut g_ = c.benchmark_group(format!("preview_{name}_raw10"));
        g_.sample_size(10);
        g_.measurement_time(Duration::from_secs(8));
        let st = &p.stages;
        let fp = fused::FastParams {
            order: fmt.bayer,
            lsc: Some(&st.lens_shading),
            wb: st.white_balance.effective(),
            method: st.demosaic.method,
            highlights: st.highlights.resolve(),
            ccm: st.ccm.effective(),
            lut: &p.lut,
        };
        let k = st.black_level.resolve(fmt.max_value());
        let mut mosaic = vec![0u16; wu * hu];
        g_.bench_function("cpu_whole_preview_with_stats", |b| {
            b.iter(|| {
                use rayon::prelude::*;
                mosaic
                    .par_chunks_mut(wu * 32)
                    .enumerate()
                    .for_each(|(bi, chunk)| {
                        for (r, row) in chunk.chunks_exact_mut(wu).enumerate() {
                            let y = bi * 32 + r;
                            unpack::unpack_row(&fmt, &raw[y * fmt.stride as usize..], row);
                            black_level::apply_row(
                                black_level::row_constants(&k, fmt.bayer, y),
                                row,
                            );
                        }
                    });
                fused::preview_rgba8(&fp, wu, hu, &mosaic, &mut out);
                stats::compute(&st.stats, fmt.bayer, wu, hu, &mosaic)
            })
        });
        if let Some(g) = &gpu {
            g_.bench_function("gpu_compute", |b| {
                b.iter_custom(|iters| {
                    let (ms, _) = g
                        .bench_compute(&p, &raw, iters as usize)
                        .expect("GPU compute");
                    Duration::from_secs_f64(ms.iter().sum::<f64>() / 1e3)
                })
            });
            g_.bench_function("gpu_with_transfers", |b| {
                b.iter(|| g.preview(&p, &raw, &mut out).expect("GPU preview"))
            });
            g_.bench_function("gpu_upload", |b| {
                b.iter_custom(|iters| {
                    let mut t = 0;
                    for _ in 0..iters {
                        t += g
                            .preview(&p, &raw, &mut out)
                            .expect("GPU preview")
                            .timings
                            .upload_ns;
                    }
                    Duration::from_nanos(t)
                })
            });
            g_.bench_function("gpu_readback", |b| {
                b.iter_custom(|iters| {
                    let mut t = 0;
                    for _ in 0..iters {
                        t += g
                            .preview(&p, &raw, &mut out)
                            .expect("GPU preview")
                            .timings
                            .readback_ns;
                    }
                    Duration::from_nanos(t)
                })
            });
        }
        g_.finish();
    }
}

criterion_group!(benches, fast_path, runtime, cpu_vs_gpu);
criterion_main!(benches);
