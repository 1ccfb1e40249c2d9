//! The GPU stages held to the CPU reference, on the adapter wgpu finds
//! (lavapipe here and in CI). A missing adapter fails these tests; only
//! `ISP_SKIP_GPU_TESTS=1` outside CI skips them, loudly.

use isp_engine::gpu::{GpuContext, GpuError, GpuIsp, Kernel, Tap, TapImage, context_for_tests};
use isp_engine::sources::FrameSource;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::stages::{
    self, black_level, ccm, defect_pixel, demosaic, fused, lens_shading, scaler, stats, tone,
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
        (0..n)
            .map(|_| self.below(max as u64 + 1) as u16)
            .collect()
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
    st.black_level.levels = [60, 64, 66, 70];
    st.white_balance.gains = [1.9, 1.0, 1.55];
    st
}

fn max_diff16(a: &[u16], b: &[u16]) -> u16 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

fn max_diff8(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
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
    let fp = fused::FastParams {
        order: fmt.bayer,
        lsc: st.lens_shading.enabled.then_some(&st.lens_shading),
        wb: st.white_balance.effective(),
        method: st.demosaic.method,
        ccm: st.ccm.effective(),
        lut: &p.lut,
    };
    let mut out = vec![0u8; w * h * 4];
    fused::preview_rgba8(&fp, w, h, &m, &mut out);
    (out, stats::compute(&st.stats, fmt.bayer, w, h, &m))
}

fn random_raw(rng: &mut Rng, fmt: &RawFormat) -> Vec<u8> {
    let mut samples = rng.u16s(fmt.pixels(), fmt.max_value());
    // A few hot and dead pixels for the defect correction.
    for _ in 0..fmt.pixels() / 50 {
        let i = rng.below(fmt.pixels() as u64) as usize;
        samples[i] = if rng.below(2) == 0 { fmt.max_value() } else { 0 };
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
