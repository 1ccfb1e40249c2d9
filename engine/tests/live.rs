//! The live camera path through the real `v4l` code, against the virtual
//! camera (`tests/vcam`, a userspace V4L2 device loaded with LD_PRELOAD).
//! Each test re-runs itself in a child of this test binary started by
//! `scripts/virtual-camera.sh` (the device's settings come from the
//! environment, read once per process).

#![allow(clippy::unwrap_used)]

use isp_engine::algorithms::Control;
use isp_engine::algorithms::ae::MeanLuminanceAe;
use isp_engine::gpu::Backend;
use isp_engine::pipeline::{Engine, EngineConfig};
use isp_engine::sources::camera::{CameraRequest, V4l2Source, list, monotonic_ns};
use isp_engine::sources::{FrameSource, SourceError};
use isp_engine::stages::unpack::unpack;
use isp_engine::telemetry::EventKind;
use isp_engine::tuning::Tuning;
use isp_engine::types::Outcome;
use std::path::Path;
use std::time::Duration;

const DEV: &str = "/dev/video42";

#[path = "support/vcam.rs"]
mod vcam;
use vcam::in_child;

/// The results of `n` frames off `rx` (at most 30 s of waiting).
fn drain(
    n: u64,
    rx: &crossbeam_channel::Receiver<std::sync::Arc<isp_engine::pipeline::FrameResult>>,
) -> Vec<std::sync::Arc<isp_engine::pipeline::FrameResult>> {
    let mut out = Vec::new();
    let t0 = std::time::Instant::now();
    while (out.len() as u64) < n && t0.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
            out.push(r);
        }
    }
    out
}

fn request(cc: &str, w: u32, h: u32, fps: f32) -> CameraRequest {
    CameraRequest {
        fourcc: Some(cc.into()),
        width: Some(w),
        height: Some(h),
        fps: Some(fps),
    }
}

/// Mean of the green sites of the centre quarter, above the pedestal.
fn centre_green(src: &V4l2Source, bytes: &[u8]) -> f32 {
    let f = src.format();
    let mut px = vec![0u16; f.pixels()];
    unpack(&f, bytes, &mut px).unwrap();
    let (w, h) = (f.width as usize, f.height as usize);
    let black = 64.0 * (f.max_value() as f32 + 1.0) / 1024.0;
    let (mut sum, mut n) = (0.0f64, 0u32);
    for y in h / 4..3 * h / 4 {
        for x in w / 4..3 * w / 4 {
            if (x + y) % 2 == 1 {
                sum += px[y * w + x] as f64;
                n += 1;
            }
        }
    }
    (sum / n as f64) as f32 - black
}

#[test]
fn streams_through_the_v4l_crate() {
    if in_child("streams_through_the_v4l_crate", &[]) {
        return;
    }
    let devs = list::devices();
    let d = devs
        .iter()
        .find(|d| d.path == Path::new(DEV))
        .expect("listed");
    assert_eq!(d.card, "ISP Studio virtual camera");
    assert!(
        d.format_names().contains(&"pRAA".to_string()),
        "{:?}",
        d.format_names()
    );
    assert_eq!(
        d.rates(
            isp_engine::sources::camera::formats::code(b"pRAA"),
            640,
            480
        ),
        [60.0, 30.0, 15.0]
    );
    let names: Vec<&str> = d.controls.iter().map(|c| c.name.as_str()).collect();
    for want in [
        "Exposure",
        "Analogue Gain",
        "Digital Gain",
        "Test Pattern",
        "Horizontal Flip",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let pattern = d
        .controls
        .iter()
        .find(|c| c.name == "Test Pattern")
        .unwrap();
    assert_eq!(pattern.menu[1], (1, "Colour Bars".to_string()));

    let mut src = V4l2Source::open(Path::new(DEV), &request("pRAA", 640, 480, 60.0)).unwrap();
    // 640 RAW10 packed is 800 bytes a row; the driver pads to 832.
    assert_eq!(src.format().stride, 832);
    assert_eq!(src.fps(), Some(60.0));
    let mut buf = vec![0u8; src.format().frame_bytes()];
    let mut metas = Vec::new();
    for _ in 0..40 {
        metas.push(src.next_frame(&mut buf).unwrap().unwrap());
    }
    let seqs: Vec<u64> = metas.iter().map(|m| m.sequence).collect();
    assert_eq!(seqs, (0..40).collect::<Vec<_>>());
    let span = (metas[39].timestamp_ns - metas[0].timestamp_ns) as f64 / 39.0 / 1e6;
    assert!((span - 1000.0 / 60.0).abs() < 1.5, "{span} ms a frame");
    assert!(metas[39].timestamp_ns <= monotonic_ns());
    assert_eq!(metas[5].controls["Exposure"], 675.0);
    assert_eq!(metas[5].dropped_before, 0);
    assert!(centre_green(&src, &buf) > 20.0);

    // A second program cannot stream from it meanwhile.
    let mut other = V4l2Source::open(Path::new(DEV), &CameraRequest::default())
        .map(|mut s| s.next_frame(&mut buf).map(|_| ()))
        .unwrap_or_else(Err);
    let e = other.take_err();
    assert!(e.contains(DEV) && e.contains("in use"), "{e}");

    // Bad requests name the device and say what it has.
    drop(src);
    let e = V4l2Source::open(Path::new(DEV), &request("XYZW", 640, 480, 30.0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(DEV) && e.contains("XYZW") && e.contains("pRAA, RG10"),
        "{e}"
    );
    let e = V4l2Source::open(Path::new(DEV), &request("YUYV", 640, 480, 30.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not RAW") && e.contains("pRAA"), "{e}");
    let e = V4l2Source::open(Path::new(DEV), &request("RG10", 1000, 1000, 30.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1920x1080"), "{e}");
    let e = V4l2Source::open(Path::new(DEV), &request("RG10", 640, 480, 24.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("24 fps") && e.contains("30.000"), "{e}");
    let e = V4l2Source::open(Path::new("/dev/video43"), &CameraRequest::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/dev/video43") && e.contains("no such device"),
        "{e}"
    );
}

trait TakeErr {
    fn take_err(&mut self) -> String;
}
impl TakeErr for Result<(), SourceError> {
    fn take_err(&mut self) -> String {
        match self {
            Ok(()) => "no error".into(),
            Err(e) => e.to_string(),
        }
    }
}

#[test]
fn control_delays_pair_each_frame_with_what_exposed_it() {
    if in_child(
        "control_delays_pair_each_frame_with_what_exposed_it",
        &[("VCAM_SCENE", "flat")],
    ) {
        return;
    }
    let mut src = V4l2Source::open(Path::new(DEV), &request("RG12", 640, 480, 30.0)).unwrap();
    let mut buf = vec![0u8; src.format().frame_bytes()];
    let mut rows = Vec::new();
    // Steps of exposure (lands 2 frames on) and gain (1 frame on), written
    // between frames as the feeder does.
    let steps: [(u64, &[Control]); 6] = [
        (6, &[Control::ExposureUs(20_000.0)]),
        (12, &[Control::AnalogueGain(2.0)]),
        (18, &[Control::ExposureUs(5_000.0)]),
        (19, &[Control::AnalogueGain(1.0)]),
        (26, &[Control::ExposureUs(15_000.0)]),
        // One write of both: the gain lands a frame before the exposure.
        (
            32,
            &[Control::ExposureUs(8_000.0), Control::AnalogueGain(1.5)],
        ),
    ];
    let mut metas = Vec::new();
    for i in 0..40 {
        for (at, c) in steps {
            if at == i {
                src.set_controls(c).unwrap();
            }
        }
        let m = src.next_frame(&mut buf).unwrap().unwrap();
        rows.push((
            m.sequence,
            m.exposure_us * m.analogue_gain,
            centre_green(&src, &buf),
        ));
        metas.push(m);
    }
    // Written while frame 32 was exposed (frame 31 just read): gain at 33,
    // exposure at 34.
    let line = src.sensor_map().exposure_us(1).unwrap();
    let e = |i: usize| (metas[i].exposure_us / line).round() as i64;
    let lines = |us: f32| (us / line).round() as i64;
    assert_eq!((e(32), metas[32].analogue_gain), (lines(15_000.0), 1.0));
    assert_eq!((e(33), metas[33].analogue_gain), (lines(15_000.0), 1.5));
    assert_eq!((e(34), metas[34].analogue_gain), (lines(8_000.0), 1.5));
    // Signal per unit of exposure x gain is the same for every frame: each
    // frame is paired with the controls that exposed it.
    let k0 = rows[0].2 / rows[0].1;
    for &(seq, eg, signal) in &rows {
        let k = signal / eg;
        assert!(
            (k / k0 - 1.0).abs() < 0.04,
            "frame {seq}: {signal} for {eg} (k {k}, k0 {k0})\n{rows:?}"
        );
    }
    // And the steps really landed (the pairing is not trivially constant).
    let distinct: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.1 as u32).collect();
    assert!(distinct.len() >= 4, "{distinct:?}");
    let applied = src.take_applied();
    assert!(
        applied
            .iter()
            .any(|a| a.starts_with("Exposure = ") && a.contains("lands at sequence 8")),
        "{applied:?}"
    );
}

fn ae_run(light_note: &str) {
    let engine = Engine::new(
        EngineConfig {
            backend: Backend::Cpu,
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap();
    let rx = engine.subscribe(true);
    let mut src = V4l2Source::open(Path::new(DEV), &request("RG10", 640, 480, 30.0)).unwrap();
    let fed = engine.feed(&mut src, Some(60), |_| {}).unwrap();
    let results = drain(60, &rx);
    assert_eq!(fed, 60);
    // AE planned within the camera's own ranges (read off its controls).
    let caps = src.sensor_caps().unwrap();
    assert_eq!(engine.params.sensor(), caps.config);
    assert_ne!(
        caps.config,
        isp_engine::algorithms::SensorConfig::default(),
        "{caps:?}"
    );
    println!("sensor: {:?}", caps.config);
    let mut luma = Vec::new();
    for r in results {
        if let (Outcome::Ok, Some(s)) = (r.outcome, &r.stats) {
            luma.push((
                r.meta.sequence,
                MeanLuminanceAe::luminance(s, r.ipa.wb_gains),
                r.meta.exposure_us,
                r.meta.analogue_gain,
            ));
        }
    }
    assert!(luma.len() >= 55, "{} results", luma.len());
    println!("{light_note}: {luma:?}");
    let first = luma[0].1;
    let target = 0.18;
    // From frame 20 on the level stays within 12% of the target.
    for &(seq, y, e, g) in luma.iter().filter(|l| l.0 >= 20) {
        assert!(
            (y / target - 1.0).abs() < 0.12,
            "{light_note}: frame {seq} at {y} ({e} us x {g}) from {first}\n{luma:?}"
        );
    }
    // No oscillation: once there, the exposure x gain product moves by less
    // than 10% frame to frame.
    let late: Vec<f32> = luma
        .iter()
        .filter(|l| l.0 >= 20)
        .map(|l| l.2 * l.3)
        .collect();
    for w in late.windows(2) {
        assert!((w[1] / w[0] - 1.0).abs() < 0.1, "{light_note}: {late:?}");
    }
    let notes = engine.telemetry.snapshot();
    assert!(
        notes
            .iter()
            .any(|e| e.kind == EventKind::Note && e.stage == "ioctl")
    );
    engine.shutdown();
    assert!(
        !(0.05..=0.5).contains(&first),
        "{light_note}: the start was not far off: {first}"
    );
}

#[test]
fn ae_converges_from_a_dark_start() {
    if in_child("ae_converges_from_a_dark_start", &[("VCAM_EXPOSURE", "20")]) {
        return;
    }
    ae_run("dark start (20 lines, 0.3 ms)");
}

#[test]
fn ae_converges_from_a_bright_start() {
    if in_child(
        "ae_converges_from_a_bright_start",
        &[("VCAM_EXPOSURE", "2246"), ("VCAM_LIGHT", "4")],
    ) {
        return;
    }
    ae_run("bright start (33 ms, 4x light)");
}

#[test]
fn a_manual_exposure_is_honoured_exactly() {
    if in_child(
        "a_manual_exposure_is_honoured_exactly",
        &[("VCAM_SCENE", "flat")],
    ) {
        return;
    }
    let engine = Engine::new(
        EngineConfig {
            backend: Backend::Cpu,
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap();
    let rx = engine.subscribe(true);
    let mut src = V4l2Source::open(Path::new(DEV), &request("RG10", 640, 480, 30.0)).unwrap();
    let line = src.sensor_map().exposure_us(1).unwrap();
    engine.set_manual_controls(Some(5_000.0), Some(2.5));
    engine.feed(&mut src, Some(20), |_| {}).unwrap();
    let results = drain(20, &rx);
    // 5 ms is 337.5 lines of 14.8 us: the sensor takes whole lines (337);
    // gain codes are 1/256 in steps of 16: 2.5 is 640.
    let value = |name: &str| {
        engine
            .device_controls()
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .value
            .unwrap()
    };
    assert_eq!(value("Exposure"), (5_000.0 / line).floor() as i64);
    assert_eq!(value("Analogue Gain"), 640);
    let last = results.last().unwrap();
    assert_eq!(last.meta.controls["Exposure"], 337.0);
    assert_eq!(last.meta.exposure_us, 337.0 * line);
    assert_eq!(last.meta.analogue_gain, 2.5);
    // A long exposure by hand, then given back to AE: it comes down to the
    // target without undershooting.
    engine.set_manual_controls(Some(30_000.0), None);
    engine.feed(&mut src, Some(12), |_| {}).unwrap();
    drain(12, &rx);
    engine.set_manual_controls(None, None);
    engine.feed(&mut src, Some(30), |_| {}).unwrap();
    let luma: Vec<(u64, f32, f32, f32)> = drain(30, &rx)
        .into_iter()
        .filter_map(|r| {
            let st = r.stats.as_ref()?;
            Some((
                r.meta.sequence,
                MeanLuminanceAe::luminance(st, r.ipa.wb_gains),
                r.meta.exposure_us,
                r.meta.analogue_gain,
            ))
        })
        .collect();
    println!("back to AE: {luma:?}");
    assert!(
        luma.iter().all(|l| l.1 > 0.18 * 0.8),
        "undershoot: {luma:?}"
    );
    assert!(
        (luma.last().unwrap().1 / 0.18 - 1.0).abs() < 0.1,
        "{luma:?}"
    );
    engine.shutdown();
}
