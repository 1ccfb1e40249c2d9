//! The CPU fast path allocates nothing per frame in steady state: a counting
//! global allocator (this test binary's own) counts every allocation on
//! every thread while RawISP's unpack/black level/defect correction, RawAlgo's
//! statistics and FastISP's fused preview run frame after frame on a data
//! pool, as a lane runs them. The whole engine's count per frame (envelopes,
//! results, telemetry rows) is held under a bound too.

#![allow(clippy::unwrap_used)]

use isp_engine::bench::MemorySource;
use isp_engine::envelope::{Envelope, StageId};
use isp_engine::pipeline::{Engine, EngineConfig};
use isp_engine::sources::FrameSource;
use isp_engine::sources::synthetic::Scene;
use isp_engine::stages::{fused, stats};
use isp_engine::tuning::{FrameParams, Tuning};
use isp_engine::types::{BayerOrder, Lane, Packing, RawFormat};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// One test at a time: the counter is the process's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn format() -> RawFormat {
    RawFormat::new(640, 480, 10, BayerOrder::Grbg, Packing::Csi2)
}

#[test]
fn the_cpu_fast_paths_pixel_work_allocates_nothing_per_frame() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let fmt = format();
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    // Every stage on: defect correction and lens shading included.
    let mut t = Tuning::default();
    t.stages.defect_pixel.enabled = true;
    t.stages.lens_shading.enabled = true;
    let params = Arc::new(FrameParams::from_tuning(&t, fmt));
    let env = Envelope::new(
        1,
        StageId::RawIsp,
        Lane::Realtime,
        isp_engine::isp::raw_isp,
        params.clone(),
    );
    let mut src = MemorySource::synthetic(Scene::Checker, fmt, 2, u64::MAX);
    let raws: Vec<Vec<u8>> = (0..2)
        .map(|_| {
            let mut b = vec![0u8; fmt.frame_bytes()];
            src.next_frame(&mut b).unwrap();
            b
        })
        .collect();
    let mut mosaic = vec![0u16; w * h];
    let mut rgba = vec![0u8; w * h * 4];
    let mut st = stats::Stats3A::empty();
    let fp: fused::FastParams<'_> = params.fast();
    // A lane's data pool: the work is installed into it, as the lanes do.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let frame = |i: usize, mosaic: &mut Vec<u16>, rgba: &mut Vec<u8>, st: &mut stats::Stats3A| {
        pool.install(|| {
            isp_engine::isp::raw_into(&env, "raw_isp", &raws[i % 2], mosaic).unwrap();
            stats::compute_into(&params.stages.stats, fmt.bayer, w, h, mosaic, st);
            fused::preview_rgba8(&fp, w, h, mosaic, rgba);
        })
    };
    // Warm up: scratch grows to the frame's size, the pool's threads start,
    // and every thread of the pool runs a whole frame once (scratch is per
    // thread, and a job may land on any of them).
    for i in 0..8 {
        frame(i, &mut mosaic, &mut rgba, &mut st);
    }
    for _ in 0..2 {
        pool.broadcast(|_| {
            let mut m = vec![0u16; w * h];
            let mut o = vec![0u8; w * h * 4];
            let mut s = stats::Stats3A::empty();
            isp_engine::isp::raw_into(&env, "raw_isp", &raws[0], &mut m).unwrap();
            stats::compute_into(&params.stages.stats, fmt.bayer, w, h, &m, &mut s);
            fused::preview_rgba8(&fp, w, h, &m, &mut o);
        });
    }
    // The stages themselves, on a thread of the pool: not one allocation.
    let n = 100;
    let (stages, st_done) = pool.install(|| {
        let before = allocations();
        for i in 0..n {
            isp_engine::isp::raw_into(&env, "raw_isp", &raws[i % 2], &mut mosaic).unwrap();
            stats::compute_into(&params.stages.stats, fmt.bayer, w, h, &mosaic, &mut st);
            fused::preview_rgba8(&fp, w, h, &mosaic, &mut rgba);
        }
        (allocations() - before, st.width)
    });
    println!("CPU fast path pixel work: {stages} allocations in {n} frames");
    assert_eq!(stages, 0, "allocations in {n} frames in steady state");
    // Handed into the pool frame by frame, as a lane does: rayon's job
    // injector takes one 63-slot block per 63 jobs, and nothing else comes.
    let before = allocations();
    for i in 0..n {
        frame(i, &mut mosaic, &mut rgba, &mut st);
    }
    let installed = allocations() - before;
    println!("with one install per frame: {installed} allocations in {n} frames");
    assert!(
        installed <= (n as u64).div_ceil(63),
        "{installed} in {n} frames"
    );
    assert_eq!(st_done, w);
    // The work was real: the statistics saw the frame.
    assert_eq!(st.width, w);
    assert!(st.sums[1] > 0.0);
}

#[test]
fn the_whole_engine_allocates_a_bounded_amount_per_frame() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let fmt = format();
    let engine = Engine::new(EngineConfig::default(), Tuning::default()).unwrap();
    let mut src = MemorySource::synthetic(Scene::Checker, fmt, 2, u64::MAX);
    engine.feed(&mut src, Some(20), |_| {}).unwrap();
    assert!(engine.flush(Duration::from_secs(30)));
    let before = allocations();
    let n = 200;
    engine.feed(&mut src, Some(n), |_| {}).unwrap();
    assert!(engine.flush(Duration::from_secs(60)));
    let per_frame = (allocations() - before) as f64 / n as f64;
    println!("whole engine, CPU fast path: {per_frame:.1} allocations per frame");
    // Envelopes (4) with their buffer lists and pin names, pins, the
    // statistics and AE's result, the frame's state and result, telemetry's
    // rows and notes: about a hundred small ones (measured 105 at 640x480),
    // never a frame buffer (pixels are pooled).
    assert!(per_frame < 150.0, "{per_frame} allocations per frame");
}
