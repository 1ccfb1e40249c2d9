//! Criterion benches: the fast preview path at 1080p (unpack + black level,
//! then the fused LSC/WB/Malvar/CCM/tone), statistics, and the slow path's
//! reference chain. Targets are in the README and the closing notes.

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

criterion_group!(benches, fast_path, runtime);
criterion_main!(benches);
