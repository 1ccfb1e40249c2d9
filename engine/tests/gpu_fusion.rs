//! The burst merge on the GPU (`shaders/merge.wgsl`) held to its CPU
//! reference (`fusion/merge.rs`): the same frames, alignment and weights
//! give the same mosaic within 1 DN (float sums in another order round the
//! other way at .5), identical in at least 99.9% of samples. The bracket
//! merge (`shaders/hdr.wgsl`) is held to `fusion/hdr.rs` the same way: within
//! 1e-4 relative in at least 99.9% of samples (a 5-sigma motion test right at
//! its threshold may go the other way), the frames' shares within 0.1%. A
//! missing adapter fails these tests in CI.

#![allow(clippy::unwrap_used)]

use isp_engine::fusion::merge::NoiseModel;
use isp_engine::fusion::{FrameInfo, FusionKind, FusionManager, Selection};
use isp_engine::gpu::{GpuError, GpuHdr, GpuMerge, context_for_tests};
use isp_engine::sources::FrameSource;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::stages::unpack;
use isp_engine::types::{BayerOrder, Packing, RawFormat};

#[test]
fn the_gpu_merge_matches_the_cpu_reference() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let gpu = GpuMerge::new(ctx).unwrap();
    let (w, h) = (384usize, 256usize);
    let fmt = RawFormat::new(w as u32, h as u32, 10, BayerOrder::Rggb, Packing::Plain);
    let mut src = SyntheticSource::new(Scene::ZonePlate, fmt);
    let mut raw = vec![0u8; fmt.frame_bytes()];
    let mut frames: Vec<Vec<u16>> = (0..5)
        .map(|_| {
            src.next_frame(&mut raw).unwrap();
            let mut px = vec![0u16; w * h];
            unpack::unpack(&fmt, &raw, &mut px).unwrap();
            px
        })
        .collect();
    // Something moves: a bright square in a different place in each frame
    // but the reference, so some tiles are rejected.
    for (i, f) in frames.iter_mut().enumerate().skip(1) {
        for y in 100..140 {
            for x in 40 + 50 * i..80 + 50 * i {
                f[y * w + x] = 900;
            }
        }
    }
    let refs: Vec<&[u16]> = frames.iter().map(|f| f.as_slice()).collect();
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(FusionKind::Burst { frames: 5 }, fmt)
        .unwrap();
    let sel = Selection {
        chosen: (0..5).collect(),
        reference: 0,
        rejected: vec![],
    };
    let infos = vec![
        FrameInfo {
            exposure_us: 10_000.0,
            analogue_gain: 1.0,
            ..Default::default()
        };
        5
    ];
    let noise = NoiseModel {
        shot: 959.0 / 12000.0,
        read: 1.44,
    };
    let spec = fm
        .build_merge_spec(&plan, &sel, &refs, &infos, 64.0, noise, &|| {}, None)
        .unwrap();
    let cpu = FusionManager::merge(&spec, &refs, w, h, &|| {});
    assert!(
        cpu.stats.rejected_tiles.iter().skip(1).all(|&n| n > 0),
        "the moving square must be rejected somewhere: {:?}",
        cpu.stats
    );
    let (out, stats) = gpu
        .merge(&refs, w, h, spec.reference, &spec.alignments, &spec.params)
        .unwrap();
    assert_eq!(stats.rejected_tiles, cpu.stats.rejected_tiles);
    assert_eq!(out.len(), w * h);
    let diffs: Vec<i32> = out
        .iter()
        .zip(&cpu.mosaic)
        .map(|(&g, &c)| g as i32 - c as i32)
        .collect();
    let max = diffs.iter().map(|d| d.abs()).max().unwrap();
    let same = diffs.iter().filter(|&&d| d == 0).count() as f64 / diffs.len() as f64;
    println!(
        "GPU vs CPU merge: max |diff| {max} DN, identical {:.4}%",
        same * 100.0
    );
    assert!(max <= 1, "max |diff| {max}");
    assert!(same >= 0.999, "identical {same}");
    // Bad input is an error, not a panic.
    let e = gpu
        .merge(&refs[..2], w, h, 0, &spec.alignments, &spec.params)
        .unwrap_err();
    assert!(
        matches!(&e, GpuError::Input(m) if m.contains("an alignment per frame")),
        "{e:?}"
    );
}

/// An engine with a GPU merges bursts and brackets there (the report says
/// so) and the result is the CPU engine's: a burst sample for sample within
/// 1 DN, a bracket's linear HDR within 1e-4.
#[test]
fn an_engine_with_a_gpu_merges_bursts_and_brackets_there() {
    use isp_engine::gpu::Backend;
    use isp_engine::pipeline::{CaptureRequest, Engine, EngineConfig};
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let fmt = RawFormat::new(320, 240, 10, BayerOrder::Rggb, Packing::Csi2);
    let run = |config: EngineConfig, kind: FusionKind| {
        let engine = Engine::new(config, isp_engine::tuning::Tuning::default()).unwrap();
        let mut src = SyntheticSource::new(Scene::Checker, fmt);
        let r = engine
            .capture(&mut src, &CaptureRequest::new(kind))
            .unwrap();
        engine.shutdown();
        r
    };
    let on_gpu = || EngineConfig {
        backend: Backend::Gpu,
        gpu_context: Some(ctx.clone()),
        ..Default::default()
    };
    let on_cpu = || EngineConfig {
        backend: Backend::Cpu,
        ..Default::default()
    };
    let burst = FusionKind::Burst { frames: 4 };
    let gpu = run(on_gpu(), burst.clone());
    let cpu = run(on_cpu(), burst);
    // A bracket too: merged there, tone mapped on the CPU, the same result.
    let bracket = FusionKind::Bracket {
        ev: vec![-1.0, 0.0, 1.0],
    };
    let gb = run(on_gpu(), bracket.clone());
    let cb = run(on_cpu(), bracket);
    assert!(gb.merged_on.starts_with("gpu: "), "{}", gb.merged_on);
    assert_eq!(cb.merged_on, "cpu");
    let (g, c) = (gb.hdr.unwrap(), cb.hdr.unwrap());
    let close = g
        .iter()
        .zip(&c)
        .filter(|&(&a, &b)| (a - b).abs() <= 1e-4 * b.abs().max(1.0))
        .count();
    assert!(
        close as f64 >= 0.999 * c.len() as f64,
        "{close} of {}",
        c.len()
    );
    // And the rest are near: a sample whose quad fell the other side of a
    // clip or motion threshold differs by noise, not by a frame.
    let worst = g
        .iter()
        .zip(&c)
        .map(|(&a, &b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(worst <= 0.02, "largest relative difference {worst}");
    assert!(gpu.merged_on.starts_with("gpu: "), "{}", gpu.merged_on);
    // Its three other frames were aligned on the GPU too.
    assert_eq!(gpu.aligned_on_gpu, 3);
    assert_eq!(cpu.aligned_on_gpu, 0);
    // A GPU that faults in the fusion kernels: the alignment and the merge
    // fall back to the CPU, say so, and give the CPU's result exactly.
    let faulty = context_for_tests().unwrap();
    faulty.inject_fusion_faults(4);
    let fell_back = run(
        EngineConfig {
            backend: Backend::Gpu,
            gpu_context: Some(faulty.clone()),
            ..Default::default()
        },
        FusionKind::Burst { frames: 4 },
    );
    assert!(
        fell_back
            .merged_on
            .starts_with("cpu (the GPU merge failed: GPU validation error in fusion kernel"),
        "{}",
        fell_back.merged_on
    );
    assert_eq!(fell_back.aligned_on_gpu, 0);
    assert!(
        fell_back.merged_raw == cpu.merged_raw,
        "the fallback is not the CPU's merge"
    );
    // And the faults were all taken: the next capture is the GPU's again.
    assert!(faulty.check_fusion().is_ok());
    assert_eq!(cpu.merged_on, "cpu");
    let max = gpu
        .merged_raw
        .iter()
        .zip(&cpu.merged_raw)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap();
    assert!(max <= 1, "max |diff| {max}");
}

/// The alignment on the GPU (`shaders/align.wgsl`) finds the CPU's offsets:
/// in at least 99% of tiles exactly (equal costs may tie the other way
/// after float sums in another order; on lavapipe all of them), and a
/// known hand-held shift is what the moving tiles moved by.
#[test]
fn the_gpu_alignment_matches_the_cpu_reference() {
    use isp_engine::fusion::align::{self, Grey};
    use isp_engine::gpu::GpuAlign;
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let gpu = GpuAlign::new(ctx).unwrap();
    let (w, h) = (384usize, 256usize);
    let fmt = RawFormat::new(w as u32, h as u32, 10, BayerOrder::Rggb, Packing::Plain);
    let mut src = SyntheticSource::new(Scene::ZonePlate, fmt);
    let mut raw = vec![0u8; fmt.frame_bytes()];
    let mut frame = || {
        src.next_frame(&mut raw).unwrap();
        let mut px = vec![0u16; w * h];
        unpack::unpack(&fmt, &raw, &mut px).unwrap();
        px
    };
    let reference = frame();
    // The next frame moved by (6, -4) raw pixels: (3, -2) grey pixels.
    let moved = frame();
    let mut shifted = vec![0u16; w * h];
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x as i64 - 6, y as i64 + 4);
            let (sx, sy) = (
                sx.clamp(0, w as i64 - 1) as usize,
                sy.clamp(0, h as i64 - 1) as usize,
            );
            // Keep the CFA phase: even shifts.
            shifted[y * w + x] = moved[sy * w + sx];
        }
    }
    let g = |m: &[u16]| Grey::from_mosaic(m, w, h, 64.0, 1.0, f32::MAX);
    let (gr, gf) = (g(&reference), g(&shifted));
    let cpu = align::align(&gr, &gf);
    let on_gpu = gpu.align(&gr, &gf).unwrap();
    assert_eq!((on_gpu.tiles_x, on_gpu.tiles_y), (cpu.tiles_x, cpu.tiles_y));
    let same = cpu
        .offsets
        .iter()
        .zip(&on_gpu.offsets)
        .filter(|(a, b)| a == b)
        .count() as f64
        / cpu.offsets.len() as f64;
    let found = on_gpu.offsets.iter().filter(|&&o| o == (3, -2)).count() as f64
        / on_gpu.offsets.len() as f64;
    // Of the tiles that moved, most moved by the shift (the zone plate's
    // rings repeat, and flat tiles stay put).
    let mut counts = std::collections::HashMap::new();
    for &o in on_gpu.offsets.iter().filter(|&&o| o != (0, 0)) {
        *counts.entry(o).or_insert(0) += 1;
    }
    let mode = counts.iter().max_by_key(|(_, n)| **n).map(|(o, _)| *o);
    println!(
        "GPU vs CPU alignment: {:.2}% of tiles identical; the shift found in {:.1}% of tiles",
        same * 100.0,
        found * 100.0
    );
    assert!(same >= 0.99, "identical in {same}");
    // A tile the two disagree on is a near tie: at most 2 px apart.
    let worst = cpu
        .offsets
        .iter()
        .zip(&on_gpu.offsets)
        .map(|(a, b)| (a.0 - b.0).abs().max((a.1 - b.1).abs()))
        .max()
        .unwrap_or(0);
    assert!(worst <= 2, "a tile's offsets differ by {worst} px");
    assert_eq!(mode, Some((3, -2)), "found in {found} of tiles");
    // Images of two sizes are an error, not a panic.
    let small = Grey {
        width: 8,
        height: 8,
        px: vec![0.0; 64],
    };
    let e = gpu.align(&gr, &small).unwrap_err();
    assert!(
        matches!(&e, GpuError::Input(m) if m.contains("8x8")),
        "{e:?}"
    );
}

#[test]
fn the_gpu_bracket_merge_matches_the_cpu_reference() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let gpu = GpuHdr::new(ctx).unwrap();
    let (w, h) = (384usize, 256usize);
    let fmt = RawFormat::new(w as u32, h as u32, 10, BayerOrder::Rggb, Packing::Plain);
    let mut src = SyntheticSource::new(Scene::ZonePlate, fmt);
    let mut raw = vec![0u8; fmt.frame_bytes()];
    src.next_frame(&mut raw).unwrap();
    let mut base = vec![0u16; w * h];
    unpack::unpack(&fmt, &raw, &mut base).unwrap();
    let black = 64.0f32;
    let ev = [-2.0f32, 0.0, 2.0];
    // The scene at three exposures (the +2 EV one clips), with noise, and a
    // square that moved in the last frame.
    let mut seed = 0x2545f4914f6cdd1du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let frames: Vec<Vec<u16>> = ev
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (0..w * h)
                .map(|k| {
                    let (x, y) = (k % w, k / w);
                    let mut s = (base[k] as f32 - black).max(0.0);
                    if i == 2 && (100..140).contains(&y) && (200..260).contains(&x) {
                        s = 20.0;
                    }
                    let v = black + 2.5 * s * e.exp2() + 6.0 * noise();
                    v.clamp(0.0, 1023.0) as u16
                })
                .collect()
        })
        .collect();
    let refs: Vec<&[u16]> = frames.iter().map(|f| f.as_slice()).collect();
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(FusionKind::Bracket { ev: ev.to_vec() }, fmt)
        .unwrap();
    let sel = Selection {
        chosen: (0..3).collect(),
        reference: 1,
        rejected: vec![],
    };
    let infos: Vec<FrameInfo> = ev
        .iter()
        .map(|e| FrameInfo {
            exposure_us: 10_000.0 * e.exp2(),
            analogue_gain: 1.0,
            ..Default::default()
        })
        .collect();
    let nm = NoiseModel {
        shot: 959.0 / 12000.0,
        read: 1.44,
    };
    let spec = fm
        .build_merge_spec(&plan, &sel, &refs, &infos, black, nm, &|| {}, None)
        .unwrap();
    let cpu = FusionManager::merge(&spec, &refs, w, h, &|| {});
    let lin = cpu.hdr.as_ref().unwrap();
    let p = &spec.params;
    let (out, share) = gpu
        .merge(
            &refs,
            w,
            h,
            spec.reference,
            &spec.exposures,
            &spec.alignments,
            p.black,
            p.white,
        )
        .unwrap();
    assert_eq!(out.len(), w * h);
    let close = out
        .iter()
        .zip(lin)
        .filter(|&(&g, &c)| (g - c).abs() <= 1e-4 * c.abs().max(1.0))
        .count() as f64
        / lin.len() as f64;
    let worst = share
        .iter()
        .zip(&cpu.stats.mean_weight)
        .map(|(g, c)| (g - c).abs())
        .fold(0.0f32, f32::max);
    println!(
        "GPU vs CPU bracket merge: {:.4}% of samples within 1e-4; shares {share:?} vs {:?}",
        close * 100.0,
        cpu.stats.mean_weight
    );
    // Every frame won somewhere: the test exercises all three.
    assert!(
        cpu.stats.mean_weight.iter().all(|&s| s > 0.0),
        "{:?}",
        cpu.stats
    );
    assert!(close >= 0.999, "{close}");
    assert!(worst <= 0.001, "{worst}");
    let far = out
        .iter()
        .zip(lin)
        .map(|(&g, &c)| (g - c).abs() / c.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(far <= 0.02, "largest relative difference {far}");
    // Bad input is an error, not a panic.
    let e = gpu
        .merge(
            &refs[..2],
            w,
            h,
            1,
            &spec.exposures,
            &spec.alignments,
            p.black,
            p.white,
        )
        .unwrap_err();
    assert!(
        matches!(&e, GpuError::Input(m) if m.contains("2 frames with")),
        "{e:?}"
    );
}
