//! The GPU stages held to the CPU reference, on the adapter wgpu finds
//! (lavapipe here and in CI). A missing adapter fails these tests; only
//! `ISP_SKIP_GPU_TESTS=1` outside CI skips them, loudly.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use isp_engine::gpu::{GpuContext, GpuError, GpuIsp, Kernel, context_for_tests};
use isp_engine::sources::FrameSource;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::stages::chain::{Tap, TapImage};
use isp_engine::stages::{
    black_level, ccm, defect_pixel, demosaic, fused, highlights, lens_shading, scaler, stats, tone,
    unpack, white_balance, yuv,
};
use isp_engine::tuning::{FrameParams, StageParams};
use isp_engine::types::{BayerOrder, Packing, RawFormat};
use std::sync::{Arc, OnceLock};

fn gpu() -> Option<&'static GpuIsp> {
    static G: OnceLock<Option<GpuIsp>> = OnceLock::new();
    G.get_or_init(|| {
        let ctx = context_for_tests()?;
        eprintln!("GPU adapter: {}", ctx.adapter_name());
        Some(GpuIsp::new(ctx).expect("pipelines build"))
    })
    .as_ref()
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn u16s(&mut self, n: usize, max: u16) -> Vec<u16> {
        (0..n).map(|_| self.below(max as u64 + 1) as u16).collect()
    }
}

fn params(fmt: RawFormat, stages: StageParams) -> FrameParams {
    FrameParams {
        version: 1,
        format: fmt,
        linear_output: false,
        lut: Arc::new(tone::ToneLut::build(&stages.tone)),
        stages,
        algorithms: Arc::new(Vec::new()),
    }
}

/// Interesting stage parameters: radial LSC, DPC on, strong gains.
fn busy_stages(rng: &mut Rng) -> StageParams {
    let mut st = StageParams::default();
    st.lens_shading = lens_shading::LensShadingParams::radial(9, 7, [0.6, 0.4, 0.45, 0.7]);
    st.defect_pixel.enabled = true;
    st.defect_pixel.threshold = 2000 + rng.below(4000) as u16;
    // Half the time by a noise model, with a static map (some of it
    // outside the smaller frames: ignored on both sides).
    if rng.below(2) == 0 {
        st.defect_pixel =
            st.defect_pixel
                .clone()
                .with_noise(0.5 + rng.below(4) as f32, 40.0, 2.0, 60.0);
        st.defect_pixel.map = (0..30)
            .map(|_| [rng.below(100) as u32, rng.below(64) as u32])
            .collect();
    }
    st.black_level.levels = [60, 64, 66, 70];
    st.white_balance.gains = [1.9, 1.0, 1.55];
    st
}

fn max_diff16(a: &[u16], b: &[u16]) -> u16 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

fn max_diff8(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

fn le_bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn from_le(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Sizes that are not multiples of any workgroup (widths even: Bayer).
const SIZES: [(u32, u32); 4] = [(34, 22), (66, 38), (130, 70), (18, 10)];

/// The CPU's RawISP: unpack, black level, DPC.
fn cpu_mosaic(p: &FrameParams, raw: &[u8]) -> Vec<u16> {
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let mut m = vec![0u16; w * h];
    unpack::unpack(&fmt, raw, &mut m).unwrap();
    let mut bl = vec![0u16; w * h];
    black_level::apply(
        &p.stages.black_level,
        fmt.max_value(),
        fmt.bayer,
        w,
        &m,
        &mut bl,
    );
    let mut d = vec![0u16; w * h];
    defect_pixel::apply(&p.stages.defect_pixel, w, h, &bl, &mut d);
    d
}

fn cpu_preview(p: &FrameParams, raw: &[u8]) -> (Vec<u8>, stats::Stats3A) {
    let fmt = p.format;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let m = cpu_mosaic(p, raw);
    let st = &p.stages;
    let fp = p.fast();
    let mut out = vec![0u8; w * h * 4];
    fused::preview_rgba8(&fp, w, h, &m, &mut out);
    (out, stats::compute(&st.stats, fmt.bayer, w, h, &m))
}

fn random_raw(rng: &mut Rng, fmt: &RawFormat) -> Vec<u8> {
    let mut samples = rng.u16s(fmt.pixels(), fmt.max_value());
    // A few hot and dead pixels for the defect correction.
    for _ in 0..fmt.pixels() / 50 {
        let i = rng.below(fmt.pixels() as u64) as usize;
        samples[i] = if rng.below(2) == 0 {
            fmt.max_value()
        } else {
            0
        };
    }
    let mut bytes = vec![0u8; fmt.frame_bytes()];
    unpack::pack(fmt, &samples, &mut bytes).unwrap();
    bytes
}

fn smooth_raw(scene: Scene, fmt: &RawFormat) -> Vec<u8> {
    let mut src = SyntheticSource::new(scene, *fmt);
    let mut bytes = vec![0u8; fmt.frame_bytes()];
    src.next_frame(&mut bytes).unwrap().unwrap();
    bytes
}

#[test]
fn adapter_and_pipelines() {
    let Some(g) = gpu() else { return };
    let name = g.context().adapter_name();
    assert!(!name.is_empty());
}

#[test]
fn fused_preview_matches_the_cpu_on_random_frames() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for (bits, packing) in [
        (10, Packing::Csi2),
        (12, Packing::Csi2),
        (10, Packing::Plain),
        (8, Packing::Plain),
        (16, Packing::Plain),
    ] {
        for order in BayerOrder::ALL {
            for &(w, h) in &SIZES[..3] {
                let mut fmt = RawFormat::new(w, h, bits, order, packing);
                fmt.stride = fmt.min_stride() + 4 * rng.below(3) as u32;
                let p = params(fmt, busy_stages(&mut rng));
                let raw = random_raw(&mut rng, &fmt);
                let (want, want_st) = cpu_preview(&p, &raw);
                let mut got = vec![0u8; want.len()];
                let f = g.preview(&p, &raw, &mut got).unwrap();
                let d = max_diff8(&got, &want);
                assert!(d <= 1, "{} {w}x{h}: max diff {d}", fmt.describe());
                assert_eq!(f.stats, want_st, "{} {w}x{h}: statistics", fmt.describe());
            }
        }
    }
}

#[test]
fn fused_preview_matches_on_synthetic_scenes_at_default_tuning() {
    let Some(g) = gpu() else { return };
    for scene in [
        Scene::Checker,
        Scene::Gradient,
        Scene::ZonePlate,
        Scene::Flat,
    ] {
        for order in BayerOrder::ALL {
            let fmt = RawFormat::new(322, 182, 10, order, Packing::Csi2);
            let p = params(fmt, StageParams::default());
            let raw = smooth_raw(scene, &fmt);
            let (want, want_st) = cpu_preview(&p, &raw);
            let mut got = vec![0u8; want.len()];
            let f = g.preview(&p, &raw, &mut got).unwrap();
            let d = max_diff8(&got, &want);
            let n = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(
                d <= 1,
                "{scene:?} {order}: max diff {d} ({n} values differ)"
            );
            assert_eq!(f.stats, want_st, "{scene:?} {order}");
        }
    }
}

/// Each stage kernel on its own against the CPU stage, random inputs, odd
/// sizes, all Bayer orders. Integer stages: at most 1 LSB; YUV (float): 1 LSB.
#[test]
fn every_stage_matches_its_cpu_twin() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(12345);
    for order in BayerOrder::ALL {
        for &(w, h) in &SIZES {
            let (wu, hu) = (w as usize, h as usize);
            let fmt = RawFormat::new(w, h, 12, order, Packing::Csi2);
            let mut stg = busy_stages(&mut rng);
            stg.demosaic.method = if rng.below(2) == 0 {
                demosaic::DemosaicMethod::Malvar
            } else {
                demosaic::DemosaicMethod::Bilinear
            };
            stg.yuv.range = if rng.below(2) == 0 {
                yuv::YuvRange::Full
            } else {
                yuv::YuvRange::Limited
            };
            let p = params(fmt, stg);
            let st = &p.stages;
            let what = format!("{order} {w}x{h}");

            // unpack
            let raw = random_raw(&mut rng, &fmt);
            let mut want = vec![0u16; wu * hu];
            unpack::unpack(&fmt, &raw, &mut want).unwrap();
            let got = from_le(&g.run_stage(Kernel::Unpack, &p, &raw, None).unwrap());
            assert_eq!(got, want, "unpack {what}");

            // black level
            let m = rng.u16s(wu * hu, fmt.max_value());
            let mut want = vec![0u16; wu * hu];
            black_level::apply(&st.black_level, fmt.max_value(), order, wu, &m, &mut want);
            let got = from_le(
                &g.run_stage(Kernel::BlackLevel, &p, &le_bytes(&m), None)
                    .unwrap(),
            );
            assert!(max_diff16(&got, &want) <= 1, "black level {what}");

            // defect pixels (integer: exact)
            let mut m = rng.u16s(wu * hu, 65535);
            for v in m.iter_mut() {
                *v = 20000 + *v / 8;
            }
            for _ in 0..wu * hu / 40 {
                let i = rng.below((wu * hu) as u64) as usize;
                // Extremes, and excesses all the way up (near the
                // threshold or the noise model's bound, for some).
                m[i] = match rng.below(3) {
                    0 => 65535,
                    1 => 0,
                    _ => 24000 + rng.below(30000) as u16,
                };
            }
            let mut want = vec![0u16; wu * hu];
            let fixed = defect_pixel::apply(&st.defect_pixel, wu, hu, &m, &mut want);
            assert!(fixed > 0);
            let got = from_le(
                &g.run_stage(Kernel::DefectPixel, &p, &le_bytes(&m), None)
                    .unwrap(),
            );
            assert_eq!(got, want, "defect pixel {what}");

            // lens shading, white balance
            let m = rng.u16s(wu * hu, 40000);
            let mut want = m.clone();
            lens_shading::apply(&st.lens_shading, order, wu, hu, &mut want);
            let got = from_le(
                &g.run_stage(Kernel::LensShading, &p, &le_bytes(&m), None)
                    .unwrap(),
            );
            assert!(max_diff16(&got, &want) <= 1, "lens shading {what}");
            let mut want = m.clone();
            white_balance::apply(&st.white_balance, order, wu, &mut want);
            let got = from_le(
                &g.run_stage(Kernel::WhiteBalance, &p, &le_bytes(&m), None)
                    .unwrap(),
            );
            assert!(max_diff16(&got, &want) <= 1, "white balance {what}");

            // demosaic (integer: exact)
            let m = rng.u16s(wu * hu, 65535);
            let mut want = vec![0u16; wu * hu * 3];
            demosaic::apply(&st.demosaic, order, wu, hu, &m, &mut want);
            let got = from_le(
                &g.run_stage(Kernel::Demosaic, &p, &le_bytes(&m), None)
                    .unwrap(),
            );
            assert_eq!(got, want, "demosaic {:?} {what}", st.demosaic.method);

            // CCM, tone (16 and 8 bit), YUV on RGB16
            let rgb = rng.u16s(wu * hu * 3, 65535);
            let mut want = rgb.clone();
            ccm::apply(&st.ccm, &mut want);
            let got = from_le(&g.run_stage(Kernel::Ccm, &p, &le_bytes(&rgb), None).unwrap());
            assert!(max_diff16(&got, &want) <= 1, "ccm {what}");
            let mut want = rgb.clone();
            tone::apply_rgb16(&p.lut, &mut want);
            let got = from_le(
                &g.run_stage(Kernel::ToneRgb16, &p, &le_bytes(&rgb), None)
                    .unwrap(),
            );
            assert_eq!(got, want, "tone rgb16 {what}");
            let mut want8 = vec![0u8; wu * hu * 4];
            tone::apply_rgba8(&p.lut, &rgb, &mut want8);
            let got8 = g
                .run_stage(Kernel::ToneRgba8, &p, &le_bytes(&rgb), None)
                .unwrap();
            assert_eq!(got8, want8, "tone rgba8 {what}");
            let (mut y, mut u, mut v) = (
                vec![0u16; wu * hu],
                vec![0u16; wu * hu],
                vec![0u16; wu * hu],
            );
            yuv::apply(&st.yuv, &rgb, &mut y, &mut u, &mut v);
            let got = from_le(&g.run_stage(Kernel::Yuv, &p, &le_bytes(&rgb), None).unwrap());
            let want: Vec<u16> = [y, u, v].concat();
            assert!(max_diff16(&got, &want) <= 1, "yuv {:?} {what}", st.yuv);

            // statistics (integer: exact)
            let m = rng.u16s(wu * hu, 65535);
            let want = stats::compute(&st.stats, order, wu, hu, &m);
            assert_eq!(g.run_stats(&p, &m).unwrap(), want, "stats {what}");

            // scaler (integer: exact), down and up
            let rgba: Vec<u8> = (0..wu * hu * 4).map(|_| rng.below(256) as u8).collect();
            for (ow, oh) in [(w / 3, h / 2), (w * 2 + 1, h + 3), (1, 1)] {
                let mut want = vec![0u8; (ow * oh * 4) as usize];
                scaler::apply(wu, hu, &rgba, ow as usize, oh as usize, &mut want);
                let got = g
                    .run_stage(Kernel::Scaler, &p, &rgba, Some((ow, oh)))
                    .unwrap();
                assert_eq!(got, want, "scaler {w}x{h} -> {ow}x{oh}");
            }
        }
    }
}

/// Stats with zones narrower than a workgroup and a 1x1 grid, 64-bit sums.
#[test]
fn statistics_zone_grids_and_large_sums() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(777);
    for (zx, zy, w, h) in [(64, 64, 200, 140), (1, 1, 1024, 768), (5, 3, 98, 66)] {
        let fmt = RawFormat::new(w, h, 16, BayerOrder::Gbrg, Packing::Plain);
        let mut st = StageParams::default();
        st.stats.zones_x = zx;
        st.stats.zones_y = zy;
        let p = params(fmt, st);
        let m: Vec<u16> = rng
            .u16s((w * h) as usize, 65535)
            .into_iter()
            .map(|v| v | 0xC000)
            .collect();
        let want = stats::compute(&p.stages.stats, fmt.bayer, w as usize, h as usize, &m);
        assert_eq!(
            g.run_stats(&p, &m).unwrap(),
            want,
            "{zx}x{zy} zones, {w}x{h}"
        );
    }
}

/// Every tap equals the reference chain up to that stage.
#[test]
fn taps_follow_the_reference_chain() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(4242);
    let fmt = RawFormat::new(98, 62, 10, BayerOrder::Grbg, Packing::Csi2);
    let p = params(fmt, busy_stages(&mut rng));
    let st = &p.stages;
    let (w, h) = (98usize, 62usize);
    let raw = random_raw(&mut rng, &fmt);
    let mut unpacked = vec![0u16; w * h];
    unpack::unpack(&fmt, &raw, &mut unpacked).unwrap();
    let mut bl = vec![0u16; w * h];
    black_level::apply(
        &st.black_level,
        fmt.max_value(),
        fmt.bayer,
        w,
        &unpacked,
        &mut bl,
    );
    let mut dpc = vec![0u16; w * h];
    defect_pixel::apply(&st.defect_pixel, w, h, &bl, &mut dpc);
    let mut lsc = dpc.clone();
    lens_shading::apply(&st.lens_shading, fmt.bayer, w, h, &mut lsc);
    let mut wb = lsc.clone();
    white_balance::apply(&st.white_balance, fmt.bayer, w, &mut wb);
    let mut rgb = vec![0u16; w * h * 3];
    demosaic::apply(&st.demosaic, fmt.bayer, w, h, &wb, &mut rgb);
    let mut hl = rgb.clone();
    highlights::apply(&st.highlights, &mut hl);
    let mut cc = hl.clone();
    ccm::apply(&st.ccm, &mut cc);
    let mut out = vec![0u8; w * h * 4];
    tone::apply_rgba8(&p.lut, &cc, &mut out);
    for tap in Tap::ALL {
        let got = g.tap(&p, &raw, tap).unwrap();
        match (tap, got) {
            (Tap::Unpacked, TapImage::Mosaic(v)) => assert_eq!(v, unpacked),
            (Tap::BlackLevel, TapImage::Mosaic(v)) => assert!(max_diff16(&v, &bl) <= 1),
            (Tap::DefectPixel, TapImage::Mosaic(v)) => assert!(max_diff16(&v, &dpc) <= 1),
            (Tap::LensShading, TapImage::Mosaic(v)) => assert!(max_diff16(&v, &lsc) <= 1),
            (Tap::WhiteBalance, TapImage::Mosaic(v)) => assert!(max_diff16(&v, &wb) <= 2),
            // Float stages before it may move a sample by one LSB, which the
            // demosaic's kernels (weights up to 12/16) and the CCM can spread.
            (Tap::Demosaic, TapImage::Rgb16(v)) => assert!(max_diff16(&v, &rgb) <= 8),
            (Tap::Highlights, TapImage::Rgb16(v)) => assert!(max_diff16(&v, &hl) <= 8),
            (Tap::Ccm, TapImage::Rgb16(v)) => assert!(max_diff16(&v, &cc) <= 24),
            (Tap::Tone, TapImage::Rgba8(v)) => assert!(max_diff8(&v, &out) <= 1),
            (t, other) => panic!("{t:?} gave {other:?}"),
        }
    }
}

/// Bytes moved per preview frame: reads from the dispatch geometry, the
/// statistics traffic as the kernel counted it; on scenes and on noise (the
/// worst case for histogram flushes).
#[test]
fn preview_moves_at_most_1_5x_the_ideal_bytes() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(99);
    for (w, h) in [(1920, 1080), (640, 360)] {
        let fmt = RawFormat::new(w, h, 10, BayerOrder::Rggb, Packing::Csi2);
        let p = params(fmt, StageParams::default());
        let mut out = vec![0u8; (w * h * 4) as usize];
        for (what, raw) in [
            ("checker", smooth_raw(Scene::Checker, &fmt)),
            ("zone plate", smooth_raw(Scene::ZonePlate, &fmt)),
            ("noise", random_raw(&mut rng, &fmt)),
        ] {
            let f = g.preview(&p, &raw, &mut out).unwrap();
            assert!(f.global_atomics > 0);
            let b = GpuIsp::bytes_moved(&fmt, 16 * 12, f.global_atomics);
            eprintln!("{w}x{h} RAW10P {what}: {b:?}");
            assert!(b.ratio <= 1.5, "{w}x{h} {what}: {b:?}");
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let Some(g) = gpu() else { return };
    let fmt = RawFormat::new(64, 32, 10, BayerOrder::Rggb, Packing::Csi2);
    let p = params(fmt, StageParams::default());
    let mut out = vec![0u8; 64 * 32 * 4];
    let e = g.preview(&p, &[0u8; 100], &mut out).unwrap_err();
    assert!(
        matches!(e, GpuError::Input(_)) && e.to_string().contains("truncated"),
        "{e}"
    );
    let e = g
        .preview(&p, &vec![0u8; fmt.frame_bytes()], &mut out[..10])
        .unwrap_err();
    assert!(
        matches!(e, GpuError::Input(_)) && e.to_string().contains("RGBA8"),
        "{e}"
    );
    let tiny = params(
        RawFormat::new(4, 4, 10, BayerOrder::Rggb, Packing::Csi2),
        StageParams::default(),
    );
    let e = g.preview(&tiny, &[0u8; 20], &mut out).unwrap_err();
    assert!(
        matches!(e, GpuError::Input(_)) && e.to_string().contains("smaller than the 8x8"),
        "{e}"
    );
    // A frame bigger than the adapter's buffers: refused before anything is allocated.
    let huge = params(
        RawFormat::new(60000, 60000, 16, BayerOrder::Rggb, Packing::Plain),
        StageParams::default(),
    );
    let raw = vec![0u8; 16];
    let e = g.preview(&huge, &raw, &mut out).unwrap_err();
    assert!(
        matches!(e, GpuError::Input(_) | GpuError::TooLarge { .. }),
        "{e}"
    );
}

#[test]
fn a_shader_that_fails_validation_is_an_error_not_a_crash() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let broken = isp_engine::gpu::shader_source().replace("fn clamp_u16", "fn clamp_u16 oops");
    let e = GpuIsp::with_source(ctx.clone(), &broken).unwrap_err();
    assert!(matches!(e, GpuError::Shader(_)), "{e}");
    // The device is still usable afterwards.
    GpuIsp::new(ctx).unwrap();
}

#[test]
fn a_lost_device_is_an_error_not_a_crash() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let g = GpuIsp::new(ctx.clone()).unwrap();
    let fmt = RawFormat::new(64, 32, 10, BayerOrder::Rggb, Packing::Csi2);
    let p = params(fmt, StageParams::default());
    let raw = vec![0u8; fmt.frame_bytes()];
    let mut out = vec![0u8; 64 * 32 * 4];
    g.preview(&p, &raw, &mut out).unwrap();
    ctx.destroy();
    let e = g.preview(&p, &raw, &mut out).unwrap_err();
    assert!(matches!(e, GpuError::Lost(_)), "after destroy: {e:?}");
    // And it stays that error, frame after frame.
    let e = g.preview(&p, &raw, &mut out).unwrap_err();
    assert!(matches!(e, GpuError::Lost(_)), "the next frame: {e:?}");
}

#[test]
fn an_adopted_device_runs_the_same_pipeline() {
    let Some(own) = context_for_tests() else {
        return;
    };
    // Build a device the way eframe's wgpu integration does, then adopt it.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: isp_engine::gpu::required_limits(&adapter.limits()),
        ..Default::default()
    }))
    .unwrap();
    let adopted = GpuContext::adopt(device, queue, adapter.get_info());
    assert!(!adopted.has_timestamps());
    let g = GpuIsp::new(adopted).unwrap();
    let fmt = RawFormat::new(130, 70, 10, BayerOrder::Bggr, Packing::Csi2);
    let p = params(fmt, StageParams::default());
    let raw = smooth_raw(Scene::Checker, &fmt);
    let (want, _) = cpu_preview(&p, &raw);
    let mut got = vec![0u8; want.len()];
    let f = g.preview(&p, &raw, &mut got).unwrap();
    assert!(max_diff8(&got, &want) <= 1);
    // No timestamp queries on this device: the telemetry says CPU timing.
    assert_eq!(f.timings.timer, isp_engine::gpu::TimerKind::Cpu);
    drop(own);
}

#[test]
fn steady_state_reuses_its_buffers() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let g = GpuIsp::new(ctx).unwrap();
    let fmt = RawFormat::new(256, 128, 10, BayerOrder::Rggb, Packing::Csi2);
    let p = params(fmt, StageParams::default());
    let raw = smooth_raw(Scene::Gradient, &fmt);
    let mut out = vec![0u8; 256 * 128 * 4];
    let mut first = None;
    let mut created = Vec::new();
    for _ in 0..5 {
        let f = g.preview(&p, &raw, &mut out).unwrap();
        let r = first.get_or_insert(out.clone());
        assert_eq!(*r, out);
        assert!(f.timings.compute_ns > 0);
        created.push(g.objects_created());
    }
    assert_eq!(g.pooled_slots(), 1);
    // The first frame makes its slot (buffers, a bind group); later ones make nothing.
    assert!(created[0] > 0);
    assert!(created.iter().all(|&c| c == created[0]), "{created:?}");
}

/// The preview lands in a display texture on the GPU (what the app draws),
/// equal to what is read back; any width, rows padded for the copy.
#[test]
fn preview_fills_the_display_texture_on_the_gpu() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let g = GpuIsp::new(ctx.clone()).unwrap();
    let (w, h) = (130u32, 70u32);
    let fmt = RawFormat::new(w, h, 10, BayerOrder::Rggb, Packing::Csi2);
    let p = params(fmt, StageParams::default());
    let raw = smooth_raw(Scene::Checker, &fmt);
    let size = wgpu::Extent3d {
        width: w,
        height: h,
        depth_or_array_layers: 1,
    };
    let tex = ctx.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("display"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    g.set_display_texture(Some(tex.clone()));
    let mut out = vec![0u8; (w * h * 4) as usize];
    g.preview(&p, &raw, &mut out).unwrap();
    let row = 256 * (w * 4).div_ceil(256);
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (row * h) as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        tex.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buf,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: Some(h),
            },
        },
        size,
    );
    ctx.queue.submit([enc.finish()]);
    buf.map_async(wgpu::MapMode::Read, .., |r| r.unwrap());
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let view = buf.get_mapped_range(..).unwrap();
    for y in 0..h as usize {
        let t = &view[y * row as usize..y * row as usize + w as usize * 4];
        assert_eq!(
            t,
            &out[y * w as usize * 4..(y + 1) * w as usize * 4],
            "row {y}"
        );
    }
}
