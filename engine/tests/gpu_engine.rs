//! The engine with the GPU backend: the realtime lane's preview on the GPU
//! equals the CPU engine's, GPU timings land in telemetry, and a GPU fault is
//! an error (gpu) or a switch to the CPU (auto), never a crash or a hang.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use isp_engine::bench::MemorySource;
use isp_engine::gpu::{Backend, context_for_tests};
use isp_engine::pipeline::{Engine, EngineConfig, FrameResult, PathMode};
use isp_engine::sources::synthetic::Scene;
use isp_engine::telemetry::EventKind;
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Outcome, Packing, RawFormat};
use std::sync::Arc;
use std::time::Duration;

fn fmt() -> RawFormat {
    RawFormat::new(160, 96, 10, BayerOrder::Grbg, Packing::Csi2)
}

/// What a test keeps of a result (holding the result itself would keep its
/// frame in flight and stall `feed`).
struct Got {
    frame_id: u64,
    outcome: Outcome,
    error: Option<String>,
    preview: Option<Vec<u8>>,
    capture: bool,
    stats: Option<Arc<isp_engine::stages::stats::Stats3A>>,
}

fn keep(r: &FrameResult) -> Got {
    Got {
        frame_id: r.frame_id,
        outcome: r.outcome,
        error: r.error.clone(),
        preview: r.preview_rgba(),
        capture: r.capture.is_some(),
        stats: r.stats.clone(),
    }
}

fn run(engine: &Engine, frames: u64, scene: Scene) -> Vec<Got> {
    let rx = engine.subscribe(true);
    let collector = std::thread::spawn(move || rx.iter().map(|r| keep(&r)).collect::<Vec<_>>());
    let mut src = MemorySource::synthetic(scene, fmt(), 3, frames);
    engine.feed(&mut src, None, |_| {}).unwrap();
    assert!(engine.flush(Duration::from_secs(60)), "the engine hung");
    engine.unsubscribe_all();
    let mut v = collector.join().unwrap();
    v.sort_by_key(|r| r.frame_id);
    v
}

fn engine(backend: Backend, path: PathMode) -> Engine {
    engine_with(backend, path, Tuning::default())
}

fn engine_with(backend: Backend, path: PathMode, tuning: Tuning) -> Engine {
    Engine::new(
        EngineConfig {
            backend,
            path,
            max_in_flight: 1,
            ..Default::default()
        },
        tuning,
    )
    .unwrap()
}

/// The built-in tuning without AE/AWB: every frame's parameters are the
/// same, whatever the timing of the 3A loop.
fn fixed_tuning() -> Tuning {
    let mut t = Tuning::default();
    t.algorithms.clear();
    t
}

#[test]
fn the_gpu_engine_matches_the_cpu_engine_frame_by_frame() {
    if context_for_tests().is_none() {
        return;
    }
    let gpu = engine_with(Backend::Gpu, PathMode::Fast, fixed_tuning());
    assert!(
        gpu.backend().to_string().starts_with("gpu: "),
        "{}",
        gpu.backend()
    );
    let cpu = engine_with(Backend::Cpu, PathMode::Fast, fixed_tuning());
    let a = run(&gpu, 10, Scene::Checker);
    let b = run(&cpu, 10, Scene::Checker);
    assert_eq!(a.len(), 10);
    assert_eq!(b.len(), 10);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.outcome, Outcome::Ok, "{:?}", x.error);
        assert_eq!(x.stats, y.stats, "frame {}", x.frame_id);
        let (p, q) = (x.preview.clone().unwrap(), y.preview.clone().unwrap());
        let d = p.iter().zip(&q).map(|(s, t)| s.abs_diff(*t)).max().unwrap();
        assert!(d <= 1, "frame {}: max diff {d}", x.frame_id);
    }
    drop(a);
    gpu.shutdown();
    cpu.shutdown();
    let snap = gpu.telemetry.snapshot();
    let rows: Vec<_> = snap.iter().filter(|e| e.kind == EventKind::Gpu).collect();
    assert_eq!(rows.len(), 30, "upload, compute, readback per frame");
    let compute: Vec<_> = rows
        .iter()
        .filter(|e| e.stage == "gpu_fused_preview")
        .collect();
    assert_eq!(compute.len(), 10);
    assert!(
        compute
            .iter()
            .all(|e| e.detail.starts_with("timer=timestamp") || e.detail.starts_with("timer=cpu"))
    );
    assert!(compute.iter().all(|e| e.run_ns() > 0));
    // No RawISP/RawAlgo on the GPU path: one fused stage, then the algorithms.
    assert!(!snap.iter().any(|e| e.stage == "raw_isp"));
    let st = gpu.rm.stats();
    assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
}

#[test]
fn both_paths_run_with_the_preview_on_the_gpu() {
    if context_for_tests().is_none() {
        return;
    }
    let e = engine(Backend::Gpu, PathMode::Both);
    let r = run(&e, 6, Scene::Gradient);
    assert_eq!(r.len(), 12);
    assert!(r.iter().all(|r| r.outcome == Outcome::Ok));
    assert_eq!(r.iter().filter(|r| r.preview.is_some()).count(), 6);
    assert_eq!(r.iter().filter(|r| r.capture).count(), 6);
    drop(r);
    e.shutdown();
    let st = e.rm.stats();
    assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
}

#[test]
fn auto_switches_to_the_cpu_after_a_gpu_fault_and_loses_no_frame() {
    if context_for_tests().is_none() {
        return;
    }
    // Auto takes a device handed to it even when it is a software adapter.
    let e = Engine::new(
        EngineConfig {
            backend: Backend::Auto,
            gpu_context: context_for_tests(),
            max_in_flight: 1,
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap();
    assert!(
        e.backend().to_string().starts_with("gpu: "),
        "{}",
        e.backend()
    );
    let before = run(&e, 4, Scene::Checker);
    assert!(before.iter().all(|r| r.outcome == Outcome::Ok));
    // The device goes away (as when a driver resets).
    e.gpu().unwrap().context().destroy();
    let after = run(&e, 6, Scene::Checker);
    assert_eq!(after.len(), 6);
    for r in &after {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert!(r.preview.clone().unwrap().iter().any(|&v| v > 0 && v < 255));
    }
    assert!(
        e.backend()
            .to_string()
            .starts_with("cpu (auto, after a GPU fault"),
        "{}",
        e.backend()
    );
    drop((before, after));
    e.shutdown();
    let snap = e.telemetry.snapshot();
    let notes: Vec<_> = snap
        .iter()
        .filter(|r| r.kind == EventKind::Note && r.stage == "backend")
        .map(|r| r.detail.clone())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("auto switches to the CPU")),
        "{notes:?}"
    );
    // Later frames went the CPU way.
    assert!(snap.iter().any(|r| r.stage == "raw_isp"));
    let st = e.rm.stats();
    assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
}

#[test]
fn a_gpu_fault_in_gpu_mode_fails_frames_clearly_without_hanging() {
    if context_for_tests().is_none() {
        return;
    }
    let e = engine(Backend::Gpu, PathMode::Fast);
    e.gpu().unwrap().context().destroy();
    let r = run(&e, 3, Scene::Checker);
    assert_eq!(r.len(), 3);
    for x in &r {
        assert_eq!(x.outcome, Outcome::Failed);
        let msg = x.error.clone().unwrap_or_default();
        assert!(msg.contains("GPU fault"), "{msg}");
    }
    drop(r);
    e.shutdown();
    let st = e.rm.stats();
    assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
}

#[test]
fn the_engine_adopts_a_callers_device() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let e = Engine::new(
        EngineConfig {
            backend: Backend::Gpu,
            gpu_context: Some(ctx.clone()),
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap();
    assert!(Arc::ptr_eq(e.gpu().unwrap().context(), &ctx));
    let r = run(&e, 2, Scene::Flat);
    assert!(r.iter().all(|r| r.outcome == Outcome::Ok));
    drop(r);
    e.shutdown();
}

#[test]
fn ae_and_awb_converge_on_the_gpu_statistics() {
    if context_for_tests().is_none() {
        return;
    }
    let mut ends = Vec::new();
    for backend in [Backend::Gpu, Backend::Cpu] {
        let e = engine(backend, PathMode::Fast);
        let r = run(&e, 30, Scene::Checker);
        assert!(r.iter().all(|r| r.outcome == Outcome::Ok));
        ends.push(e.ipa());
        e.shutdown();
    }
    let (g, c) = (ends[0], ends[1]);
    for k in 0..3 {
        assert!(
            (g.wb_gains[k] - c.wb_gains[k]).abs() < 0.02 * c.wb_gains[k],
            "{g:?} {c:?}"
        );
    }
    assert!(
        (g.exposure_us - c.exposure_us).abs() < 0.05 * c.exposure_us,
        "{g:?} {c:?}"
    );
}

#[test]
fn auto_on_its_own_skips_a_software_adapter_and_says_why() {
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let e = engine(Backend::Auto, PathMode::Fast);
    if ctx.is_software() {
        assert!(
            e.backend().to_string().contains("software rasterizer"),
            "{}",
            e.backend()
        );
        assert!(e.gpu().is_none());
    } else {
        assert!(
            e.backend().to_string().starts_with("gpu: "),
            "{}",
            e.backend()
        );
    }
    let notes: Vec<_> = e
        .telemetry
        .snapshot()
        .iter()
        .filter(|r| r.stage == "backend")
        .map(|r| r.detail.clone())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    e.shutdown();
}

#[test]
fn taps_agree_between_the_gpu_and_the_cpu_engine() {
    use isp_engine::stages::chain::{Tap, TapImage};
    if context_for_tests().is_none() {
        return;
    }
    let gpu = engine_with(Backend::Gpu, PathMode::Fast, fixed_tuning());
    let cpu = engine_with(Backend::Cpu, PathMode::Fast, fixed_tuning());
    let f = fmt();
    let mut src = isp_engine::sources::synthetic::SyntheticSource::new(Scene::ZonePlate, f);
    let mut raw = vec![0u8; f.frame_bytes()];
    use isp_engine::sources::FrameSource;
    src.next_frame(&mut raw).unwrap();
    for tap in Tap::ALL {
        let (a, b) = (
            gpu.tap(&raw, f, tap).unwrap(),
            cpu.tap(&raw, f, tap).unwrap(),
        );
        let d = match (&a, &b) {
            (TapImage::Mosaic(x), TapImage::Mosaic(y))
            | (TapImage::Rgb16(x), TapImage::Rgb16(y)) => {
                x.iter().zip(y).map(|(p, q)| p.abs_diff(*q)).max().unwrap() as u32
            }
            (TapImage::Rgba8(x), TapImage::Rgba8(y)) => {
                x.iter().zip(y).map(|(p, q)| p.abs_diff(*q)).max().unwrap() as u32
            }
            _ => panic!("{tap:?}: {a:?} vs {b:?}"),
        };
        // 16-bit taps after float stages may differ by a few LSB (see gpu.rs);
        // the displayed RGBA8 by at most one.
        let limit = match tap {
            Tap::Unpacked | Tap::BlackLevel | Tap::DefectPixel | Tap::LensShading => 1,
            Tap::WhiteBalance => 2,
            Tap::Demosaic | Tap::Highlights => 8,
            Tap::Ccm => 24,
            Tap::Tone => 1,
        };
        assert!(d <= limit, "{tap:?}: {d}");
    }
    gpu.shutdown();
    cpu.shutdown();
}

#[test]
fn every_stage_in_one_pass_matches_each_tap_and_tap_with_another_tuning() {
    use isp_engine::sources::FrameSource;
    use isp_engine::stages::chain::Tap;
    let cpu = engine_with(Backend::Cpu, PathMode::Fast, fixed_tuning());
    let f = fmt();
    let mut src = isp_engine::sources::synthetic::SyntheticSource::new(Scene::ZonePlate, f);
    let mut raw = vec![0u8; f.frame_bytes()];
    src.next_frame(&mut raw).unwrap();
    let all = cpu.taps(&raw, f).unwrap();
    assert_eq!(all.len(), Tap::ALL.len());
    for ((t, img), tap) in all.iter().zip(Tap::ALL) {
        assert_eq!(*t, tap);
        assert_eq!(*img, cpu.tap(&raw, f, tap).unwrap(), "{tap:?}");
    }
    // Another tuning (the viewer's "before"): its own picture; the current
    // tuning given explicitly: the same as the current one.
    let mut other = fixed_tuning();
    other.stages.ccm.enabled = false;
    let a = cpu.tap_with(&raw, f, Tap::Tone, Some(&other)).unwrap();
    assert_ne!(a, cpu.tap(&raw, f, Tap::Tone).unwrap());
    let same = cpu
        .tap_with(&raw, f, Tap::Tone, Some(&fixed_tuning()))
        .unwrap();
    assert_eq!(same, cpu.tap(&raw, f, Tap::Tone).unwrap());
    // A malformed tuning is refused with the problem named.
    let mut bad = fixed_tuning();
    bad.stages.tone.contrast = -1.0;
    let e = cpu.tap_with(&raw, f, Tap::Tone, Some(&bad)).unwrap_err();
    assert!(e.to_string().contains("contrast"), "{e}");
    cpu.shutdown();
}

/// Each kind of GPU fault, arriving mid-run in `auto`: the frame it hits and
/// every later one run on the CPU with the CPU's picture, a `backend` note
/// names the fault, nothing is lost.
#[test]
fn auto_falls_back_to_the_cpu_on_each_kind_of_gpu_fault() {
    use isp_engine::gpu::InjectedFault;
    if context_for_tests().is_none() {
        return;
    }
    let cpu = engine_with(Backend::Cpu, PathMode::Fast, fixed_tuning());
    let want: Vec<Vec<u8>> = run(&cpu, 3, Scene::Checker)
        .into_iter()
        .map(|r| r.preview.unwrap())
        .collect();
    cpu.shutdown();
    for (fault, says) in [
        (InjectedFault::Validation, "GPU validation error in preview"),
        (InjectedFault::OutOfMemory, "GPU out of memory in preview"),
        (InjectedFault::Timeout, "GPU did not finish within"),
    ] {
        let e = Engine::new(
            EngineConfig {
                backend: Backend::Auto,
                gpu_context: context_for_tests(),
                max_in_flight: 1,
                ..Default::default()
            },
            fixed_tuning(),
        )
        .unwrap();
        let before = run(&e, 2, Scene::Checker);
        assert!(before.iter().all(|r| r.outcome == Outcome::Ok));
        assert!(
            e.backend().to_string().starts_with("gpu: "),
            "{}",
            e.backend()
        );
        e.gpu().unwrap().inject_fault(fault);
        let after = run(&e, 3, Scene::Checker);
        let got: Vec<_> = after.iter().map(|r| (r.outcome, r.error.clone())).collect();
        assert_eq!(got, vec![(Outcome::Ok, None); 3], "{fault:?}");
        for (r, w) in after.iter().zip(&want) {
            assert!(
                r.preview.as_ref() == Some(w),
                "{fault:?}: frame {} is not the CPU's picture",
                r.frame_id
            );
        }
        assert!(
            e.backend()
                .to_string()
                .starts_with("cpu (auto, after a GPU fault"),
            "{fault:?}: {}",
            e.backend()
        );
        drop((before, after));
        e.shutdown();
        let snap = e.telemetry.snapshot();
        let notes: Vec<_> = snap
            .iter()
            .filter(|r| r.kind == EventKind::Note && r.stage == "backend")
            .map(|r| r.detail.clone())
            .collect();
        assert!(
            notes
                .iter()
                .any(|n| n.contains(says) && n.contains("auto switches to the CPU")),
            "{fault:?}: {notes:?}"
        );
        // The fault hit frame 3; frames 4 and 5 went the CPU way.
        let raw: Vec<u64> = snap
            .iter()
            .filter(|r| r.stage == "raw_isp")
            .map(|r| r.frame_id)
            .collect();
        assert_eq!(raw, vec![4, 5], "{fault:?}");
        let st = e.rm.stats();
        assert_eq!((st.allocated, st.pins), (0, 0), "{fault:?}: {st:?}");
    }
}

/// In `gpu` mode an injected fault fails that frame with its kind named; the
/// next frame runs on the GPU again.
#[test]
fn gpu_mode_fails_the_faulted_frame_with_its_kind() {
    use isp_engine::gpu::InjectedFault;
    if context_for_tests().is_none() {
        return;
    }
    let e = engine_with(Backend::Gpu, PathMode::Fast, fixed_tuning());
    e.gpu().unwrap().inject_fault(InjectedFault::Validation);
    let r = run(&e, 2, Scene::Flat);
    assert_eq!(r[0].outcome, Outcome::Failed);
    let msg = r[0].error.clone().unwrap_or_default();
    assert!(
        msg.contains("GPU fault: GPU validation error in preview"),
        "{msg}"
    );
    assert_eq!((r[1].outcome, r[1].error.clone()), (Outcome::Ok, None));
    drop(r);
    e.shutdown();
    let st = e.rm.stats();
    assert_eq!((st.allocated, st.pins), (0, 0), "{st:?}");
}
