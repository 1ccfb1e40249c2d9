//! A camera's buffers in the ResourceManager: frames lent as the driver's
//! own DMA-BUF (no copy), copies when the driver has no VIDIOC_EXPBUF or a
//! consumer holds too many, and the buffers' lifecycle on every stop path.
//! Through the real `v4l` code against the virtual camera (`tests/vcam`).

#![allow(clippy::unwrap_used)]

#[path = "support/vcam.rs"]
mod vcam;

use isp_engine::allocator::HeapAllocator;
use isp_engine::gpu::Backend;
use isp_engine::pipeline::{Engine, EngineConfig};
use isp_engine::resource_manager::{BufferKind, PoolConfig, ResourceManager};
use isp_engine::sources::FrameSource;
use isp_engine::sources::camera::{BUFFERS, CameraRequest, MIN_QUEUED, V4l2Source, list};
use isp_engine::telemetry::EventKind;
use isp_engine::tuning::Tuning;
use isp_engine::types::Outcome;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vcam::in_child;

const DEV: &str = "/dev/video42";

fn open() -> V4l2Source {
    V4l2Source::open(
        Path::new(DEV),
        &CameraRequest {
            fourcc: Some("pRAA".into()),
            width: Some(640),
            height: Some(480),
            fps: Some(30.0),
        },
    )
    .unwrap()
}

fn cpu_engine() -> Engine {
    Engine::new(
        EngineConfig {
            backend: Backend::Cpu,
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap()
}

fn rm() -> Arc<ResourceManager> {
    Arc::new(ResourceManager::new(
        Box::new(HeapAllocator),
        PoolConfig::default(),
    ))
}

/// What a descriptor of this process is (`/memfd:isp-vcam-buffer ...` for
/// the virtual camera's buffers).
fn fd_target(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Through the engine, the frames are the camera's own buffers: six
/// imported DMA-BUFs (the virtual camera's memfds) and no raw buffer of the
/// pool's own; the results are good; at the source's end the imports go.
#[test]
fn frames_are_lent_from_the_cameras_own_buffers() {
    if in_child("frames_are_lent_from_the_cameras_own_buffers", &[]) {
        return;
    }
    let engine = cpu_engine();
    let rx = engine.subscribe(true);
    // Each result's outcome and mean preview level (results are not kept:
    // a consumer that holds them is the next test).
    let results = std::thread::spawn(move || {
        rx.iter()
            .map(|r| {
                let px = r.preview_rgba().unwrap_or_default();
                let mean = px.iter().map(|&v| v as f64).sum::<f64>() / px.len().max(1) as f64;
                (r.outcome, mean)
            })
            .collect::<Vec<_>>()
    });
    let mut src = open();
    let fed = engine.feed(&mut src, Some(60), |_| {}).unwrap();
    engine.flush(Duration::from_secs(30));
    assert_eq!(fed, 60);

    let d = engine.delivery();
    println!("delivery: {d:?}");
    assert_eq!(d.lent + d.copied, 60);
    assert!(d.lent >= 55, "{d:?}");
    assert_eq!(src.delivery(), d);

    let snap = engine.rm.snapshot();
    let imported: Vec<_> = snap.iter().filter(|b| b.imported).collect();
    assert_eq!(imported.len(), BUFFERS as usize, "{snap:#?}");
    for b in &imported {
        let target = fd_target(b.fd.unwrap());
        assert!(target.contains("isp-vcam-buffer"), "{target}");
        assert_eq!(b.owner, format!("camera {DEV}"));
        assert_eq!(b.spec.kind, BufferKind::Raw);
    }
    assert!(
        !snap
            .iter()
            .any(|b| !b.imported && b.spec.kind == BufferKind::Raw),
        "a raw buffer of the pool's own: a frame was copied\n{snap:#?}"
    );
    let notes = engine.telemetry.snapshot();
    assert!(notes.iter().any(|e| e.kind == EventKind::Note
        && e.stage == "ioctl"
        && e.detail.contains("6 buffers exported as DMA-BUF")));

    drop(src);
    assert_eq!(engine.rm.stats().imported, 0, "{:#?}", engine.rm.snapshot());
    engine.shutdown();
    let results = results.join().unwrap();
    assert_eq!(results.len(), 60);
    assert!(results.iter().all(|r| r.0 == Outcome::Ok), "{results:?}");
    // A picture (the checker chart), not an empty buffer.
    let last = results.last().unwrap().1;
    assert!(last > 40.0, "mean preview level {last}");
}

/// A driver without VIDIOC_EXPBUF: every frame is copied, once, into a
/// pooled buffer, and the log says why.
#[test]
fn without_expbuf_every_frame_is_copied() {
    if in_child(
        "without_expbuf_every_frame_is_copied",
        &[("VCAM_FAULTS", "noexpbuf")],
    ) {
        return;
    }
    let dev = list::devices()
        .into_iter()
        .find(|d| d.path == Path::new(DEV))
        .unwrap();
    assert!(!dev.dmabuf, "`isp devices` must not claim DMA-BUF export");
    let engine = cpu_engine();
    let mut src = open();
    assert_eq!(engine.feed(&mut src, Some(30), |_| {}).unwrap(), 30);
    engine.flush(Duration::from_secs(30));
    let d = engine.delivery();
    assert_eq!((d.lent, d.copied), (0, 30));
    assert_eq!(engine.rm.stats().imported, 0);
    let notes = engine.telemetry.snapshot();
    let why: Vec<String> = notes
        .iter()
        .filter(|e| e.kind == EventKind::Note && e.detail.contains("copied"))
        .map(|e| e.detail.clone())
        .collect();
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].contains("VIDIOC_EXPBUF"), "{why:?}");
    engine.shutdown();
}

/// A consumer that holds lent frames: at most BUFFERS - MIN_QUEUED are
/// lent, further frames are copied so the driver always has buffers to
/// fill (no frame lost), the held frames' bytes never change (the driver
/// does not write a buffer that is lent), and released ones are lent again.
#[test]
fn a_consumer_holding_frames_gets_copies_and_the_sensor_loses_none() {
    if in_child(
        "a_consumer_holding_frames_gets_copies_and_the_sensor_loses_none",
        &[],
    ) {
        return;
    }
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let mut src = open();
    let n = src.format().frame_bytes();
    let lendable = BUFFERS as usize - MIN_QUEUED;
    let mut held = Vec::new();
    let mut seqs = Vec::new();
    for _ in 0..lendable {
        let (b, m) = src.next_lent(&rm).unwrap().expect("lent");
        let bytes = b.read().unwrap().bytes()[..n].to_vec();
        seqs.push(m.sequence);
        held.push((b, bytes));
    }
    let mut copy = vec![0u8; n];
    for _ in 0..20 {
        assert!(src.next_lent(&rm).unwrap().is_none(), "lent past the limit");
        let m = src.next_frame(&mut copy).unwrap().unwrap();
        assert_eq!(m.dropped_before, 0);
        seqs.push(m.sequence);
    }
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "frames lost: {seqs:?}"
    );
    assert_eq!(src.dropped(), 0);
    for (b, bytes) in &held {
        assert!(
            b.read().unwrap().bytes()[..n] == bytes[..],
            "a lent buffer was written"
        );
    }
    let first = held[0].0.id.index;
    for (b, _) in held {
        rm.release(&key, b.id).unwrap();
    }
    let mut again = Vec::new();
    for _ in 0..lendable {
        let (b, m) = src.next_lent(&rm).unwrap().expect("lent again");
        assert_eq!(m.dropped_before, 0);
        again.push(b);
    }
    assert!(again.iter().any(|b| b.id.index == first));
    let d = src.delivery();
    assert_eq!((d.lent, d.copied), (2 * lendable as u64, 20));
    for b in again {
        rm.release(&key, b.id).unwrap();
    }
}

/// The stream stops (the source is dropped, or the device fails) while a
/// frame is lent: that frame keeps its bytes to the end; its memory goes at
/// its release; the device can be opened and streamed again.
#[test]
fn stopping_while_a_frame_is_lent_keeps_it_whole() {
    if in_child("stopping_while_a_frame_is_lent_keeps_it_whole", &[]) {
        return;
    }
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let mut src = open();
    let n = src.format().frame_bytes();
    let (b, _) = src.next_lent(&rm).unwrap().unwrap();
    let bytes = b.read().unwrap().bytes()[..n].to_vec();
    assert_eq!(rm.stats().imported, BUFFERS as usize);
    drop(src);
    assert_eq!(rm.stats().imported, 1, "only the lent one stays");
    assert!(b.read().unwrap().bytes()[..n] == bytes[..]);
    rm.release(&key, b.id).unwrap();
    assert_eq!(rm.stats().imported, 0);
    assert!(b.read().is_err());

    let mut src = open();
    let (b, m) = src.next_lent(&rm).unwrap().expect("lent after reopening");
    assert_eq!(m.sequence, 0);
    rm.release(&key, b.id).unwrap();
}

/// A frame the driver marks corrupted (V4L2_BUF_FLAG_ERROR) is skipped and
/// counted as lost, on the lending path and the copying one.
#[test]
fn a_frame_marked_corrupted_is_skipped_and_counted() {
    if in_child(
        "a_frame_marked_corrupted_is_skipped_and_counted",
        &[("VCAM_FAULTS", "corrupt@3,corrupt@7")],
    ) {
        return;
    }
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let mut src = open();
    let mut copy = vec![0u8; src.format().frame_bytes()];
    let mut got = Vec::new();
    for i in 0..8 {
        let m = if i < 4 {
            let (b, m) = src.next_lent(&rm).unwrap().unwrap();
            rm.release(&key, b.id).unwrap();
            m
        } else {
            src.next_frame(&mut copy).unwrap().unwrap()
        };
        got.push((m.sequence, m.dropped_before));
    }
    assert_eq!(
        got,
        [
            (0, 0),
            (1, 0),
            (2, 0),
            (4, 1),
            (5, 0),
            (6, 0),
            (8, 1),
            (9, 0)
        ]
    );
    assert_eq!(src.dropped(), 2);
}

/// EIO while a frame is lent: the stream stops with the device named, the
/// lent frame stays whole until its release, then its memory goes.
#[test]
fn eio_while_a_frame_is_lent_keeps_it_whole() {
    if in_child(
        "eio_while_a_frame_is_lent_keeps_it_whole",
        &[("VCAM_FAULTS", "eio@4")],
    ) {
        return;
    }
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let mut src = open();
    let n = src.format().frame_bytes();
    let (held, _) = src.next_lent(&rm).unwrap().unwrap();
    let bytes = held.read().unwrap().bytes()[..n].to_vec();
    let err = loop {
        match src.next_lent(&rm) {
            Ok(Some((b, _))) => rm.release(&key, b.id).unwrap(),
            Ok(None) => panic!("a copy while buffers were free"),
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains(DEV), "{err}");
    assert!(src.next_lent(&rm).unwrap().is_none(), "stopped");
    assert_eq!(rm.stats().imported, 1, "only the held one stays");
    assert!(held.read().unwrap().bytes()[..n] == bytes[..]);
    rm.release(&key, held.id).unwrap();
    assert_eq!(rm.stats().imported, 0);
}

/// Buffers are imported into one pool: fed to another, the source copies.
#[test]
fn a_second_pool_gets_copies() {
    if in_child("a_second_pool_gets_copies", &[]) {
        return;
    }
    let (one, two) = (rm(), rm());
    let key = one.take_lifecycle().unwrap();
    let mut src = open();
    let (b, m0) = src.next_lent(&one).unwrap().expect("lent to the first");
    one.release(&key, b.id).unwrap();
    assert!(src.next_lent(&two).unwrap().is_none());
    let mut copy = vec![0u8; src.format().frame_bytes()];
    let m1 = src.next_frame(&mut copy).unwrap().unwrap();
    assert_eq!(m1.sequence, m0.sequence + 1);
    assert_eq!(two.stats().imported, 0);
    let (b, _) = src
        .next_lent(&one)
        .unwrap()
        .expect("lent to the first again");
    one.release(&key, b.id).unwrap();
}

/// A frame dequeued for copying whose copy never came (the feed failed
/// before it read it) is the next frame read; asking to lend again does
/// not dequeue over it, so no buffer is lost and the stream keeps lending.
#[test]
fn a_frame_left_to_copy_is_not_lost() {
    if in_child("a_frame_left_to_copy_is_not_lost", &[]) {
        return;
    }
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let mut src = open();
    let lendable = BUFFERS as usize - MIN_QUEUED;
    let held: Vec<_> = (0..lendable)
        .map(|_| src.next_lent(&rm).unwrap().unwrap())
        .collect();
    // This frame is left to copy ...
    assert!(src.next_lent(&rm).unwrap().is_none());
    // ... and the copy does not come before the next ask.
    assert!(src.next_lent(&rm).unwrap().is_none());
    let mut copy = vec![0u8; src.format().frame_bytes()];
    let m = src.next_frame(&mut copy).unwrap().unwrap();
    assert_eq!(m.sequence, held.last().unwrap().1.sequence + 1);
    for (b, _) in held {
        rm.release(&key, b.id).unwrap();
    }
    // Every buffer is still in play: 30 more frames lent, none lost.
    for _ in 0..30 {
        let (b, m) = src.next_lent(&rm).unwrap().expect("lent");
        assert_eq!(m.dropped_before, 0);
        rm.release(&key, b.id).unwrap();
    }
    assert_eq!(src.dropped(), 0);
}
