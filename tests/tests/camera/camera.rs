//! `isp devices`, `isp process v4l:` and `isp record v4l:` against the
//! virtual camera (`scripts/virtual-camera.sh`), with faults injected: a lost
//! frame, EIO mid-stream, the device vanishing. Every recording cut short is
//! a finished session that replays.

use crate::common::*;
use isp_e2e::isp_bin;
use isp_engine::sources::FrameSource;
use isp_engine::sources::session::SessionSource;
use std::path::Path;
use std::process::Command;

const DEV: &str = "v4l:/dev/video42";

/// The camera tests one at a time (each wants the machine and the device's
/// timing): a test holds this for its whole run.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// `isp ARGS` with the virtual camera present and `env` set.
fn with_camera(args: &[&str], env: &[(&str, &str)]) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/virtual-camera.sh");
    let o = Command::new(script)
        .arg(isp_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run the virtual camera script");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Every frame of a session: (sequence, lost before it, exposure).
fn session_frames(dir: &Path) -> Vec<(u64, u64, f32)> {
    session_metas(dir)
        .into_iter()
        .map(|m| (m.sequence, m.dropped_before, m.exposure_us))
        .collect()
}

fn session_metas(dir: &Path) -> Vec<isp_engine::sources::FrameMeta> {
    let mut src = SessionSource::open(dir).unwrap();
    let mut buf = vec![0u8; src.format().frame_bytes()];
    std::iter::from_fn(|| src.next_frame(&mut buf).unwrap()).collect()
}

/// The virtual camera on its virtual clock (it waits for its client: the
/// frames it delivers are a known set on any machine), logging every frame
/// it delivers to `log`, with `faults`.
fn virtual_camera<'a>(log: &'a str, faults: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("VCAM_CLOCK", "virtual"),
        ("VCAM_LOG", log),
        ("VCAM_FAULTS", faults),
    ]
}

/// What the device delivered (`VCAM_LOG`): (sequence, timestamp ns).
fn delivered(log: &Path) -> Vec<(u64, u64)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

/// The session holds exactly the frames the device delivered, in order,
/// with the driver's sequence numbers and timestamps.
#[track_caller]
fn session_is_what_was_delivered(dir: &Path, log: &Path) -> Vec<u64> {
    let got: Vec<(u64, u64)> = session_metas(dir)
        .iter()
        .map(|m| (m.sequence, m.timestamp_ns))
        .collect();
    assert_eq!(
        got,
        delivered(log),
        "the session vs the device's deliveries"
    );
    got.iter().map(|g| g.0).collect()
}

fn record_args<'a>(out: &'a str, frames: &'a str) -> Vec<&'a str> {
    vec![
        "record", DEV, "--format", "pRAA", "--width", "640", "--height", "480", "--fps", "60",
        "--frames", frames, "--out", out,
    ]
}

#[test]
fn devices_lists_the_virtual_camera_and_says_when_there_is_none() {
    let _turn = one_at_a_time();
    let has_video = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("video"))
        })
        .unwrap_or(false);
    let bare = isp(&["devices"]).ok();
    if !has_video {
        assert_eq!(
            bare.stdout.trim(),
            "no cameras found (no V4L2 capture device under /dev)"
        );
    }
    let r = with_camera(&["devices"], &[]).ok();
    for want in [
        "/dev/video42: ISP Studio virtual camera",
        "DMA-BUF export",
        "pRAA RAW10 RGGB (CSI-2 packed)",
        "1920x1080 @ 60.00, 30.00, 15.00 fps",
        "YUYV YUV 4:2:2 (YUYV) [not RAW: listed only]",
        "Exposure: 675 [1..2246 step 1] default 675",
        "Analogue Gain: 256 [256..4096 step 16] default 256",
        "Test Pattern (menu): 0 default 0 [0=Disabled, 1=Colour Bars, 2=Solid Grey]",
        "Pixel Rate: 148500000",
    ] {
        assert!(r.stdout.contains(want), "{want:?} missing:\n{}", r.stdout);
    }
    let j = with_camera(&["devices", "--json"], &[]).ok().json();
    let d = j
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "/dev/video42")
        .unwrap();
    assert_eq!(d["formats"][0]["fourcc"], "pRAA");
    assert_eq!(d["formats"].as_array().unwrap().len(), 8);
}

#[test]
fn a_missing_camera_is_named() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let out = s(&tmp.path().join("out"));
    isp(&["process", "v4l:/dev/video42", "--out", &out]).error(&[
        "/dev/video42",
        "no such device",
        "isp devices",
    ]);
    with_camera(&["process", DEV, "--format", "YUYV", "--out", &out], &[]).error(&[
        "/dev/video42",
        "not RAW",
        "pRAA",
    ]);
}

#[test]
fn process_from_the_camera_writes_frames_and_the_camera_summary() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("live");
    let o = s(&out);
    let r = with_camera(
        &[
            "process",
            DEV,
            "--format",
            "RG10",
            "--width",
            "640",
            "--height",
            "480",
            "--fps",
            "30",
            "--frames",
            "24",
            "--backend",
            "cpu",
            "--out",
            &o,
        ],
        &[],
    )
    .ok();
    let v = r.json();
    assert_eq!(v["frames"], 24);
    // A frame the realtime lane dropped under load is counted, not failed.
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(
        v["written"].as_u64().unwrap() + v["frames_dropped_by_engine"].as_u64().unwrap(),
        24,
        "{v}"
    );
    assert!(v["frames_lost_by_camera"].is_u64(), "{v}");
    assert_eq!(v["camera"]["fps"], 30.0);
    // The camera's DMA-BUFs went to the engine; copies only when the PNG
    // writer held the engine back.
    let (lent, copied) = (
        v["camera"]["frames_lent"].as_u64().unwrap(),
        v["camera"]["frames_copied"].as_u64().unwrap(),
    );
    assert_eq!(lent + copied, 24);
    assert!(lent > 0, "{}", v["camera"]);
    assert!(
        v["camera"]["capture_to_preview_ms"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        v["camera"]["capture_to_preview_ms"]["p50"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(files_with(&out, "png").len(), 24);
    // Every control write is a telemetry row.
    let csv = std::fs::read_to_string(out.join("telemetry.csv")).unwrap();
    assert!(csv.contains("ioctl"), "no ioctl rows");
    assert!(csv.contains("Exposure = "), "no exposure write");
}

#[test]
fn a_lost_frame_is_counted_and_kept_in_the_session() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gap");
    let o = s(&out);
    let log = s(&tmp.path().join("delivered"));
    let r = with_camera(&record_args(&o, "12"), &virtual_camera(&log, "gap@5")).ok();
    assert!(r.stdout.contains("recorded 12 frames"), "{}", r.stdout);
    // Frame 5 is never made: the session is frames 0-4 and 6-12, the one
    // after the gap saying one was lost before it.
    let seqs = session_is_what_was_delivered(&out, Path::new(&log));
    assert_eq!(seqs, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]);
    let f = session_frames(&out);
    let lost: Vec<u64> = f.iter().map(|f| f.1).collect();
    assert_eq!(lost, [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert!(r.stdout.contains("(1 lost by the camera)"), "{}", r.stdout);
    assert!(
        f.iter().all(|f| f.2 > 0.0),
        "exposure in every frame's metadata"
    );
}

#[test]
fn eio_mid_stream_leaves_a_finished_session_that_replays() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eio");
    let o = s(&out);
    let log = s(&tmp.path().join("delivered"));
    // From frame 12 the device answers EIO (on whichever of DQBUF or QBUF
    // meets it first): the session keeps exactly the 12 frames delivered,
    // says so, and replays.
    let line = with_camera(&record_args(&o, "60"), &virtual_camera(&log, "eio@12")).error(&[
        "/dev/video42",
        "Input/output error",
        "the 12 frames recorded before it",
    ]);
    assert!(
        line.contains("VIDIOC_DQBUF") || line.contains("VIDIOC_QBUF"),
        "{line}"
    );
    let seqs = session_is_what_was_delivered(&out, Path::new(&log));
    assert_eq!(seqs, (0..12).collect::<Vec<u64>>());
    isp(&["info", &o]).ok();
    let p = s(&tmp.path().join("replay"));
    let v = isp(&["process", &o, "--backend", "cpu", "--out", &p])
        .ok()
        .json();
    assert_eq!(v["written"], 12);
}

#[test]
fn a_vanished_camera_stops_the_run_and_keeps_what_was_made() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gone");
    let o = s(&out);
    // The device goes at the end of frame 9. A frame it finished that the
    // recorder had not yet dequeued goes with it (as on a real unplug, where
    // every ioctl answers ENODEV): the run keeps what it received, and says
    // how many.
    let log = s(&tmp.path().join("delivered"));
    with_camera(&record_args(&o, "60"), &virtual_camera(&log, "vanish@9")).error(&[
        "/dev/video42",
        "the device is gone",
        "(the 9 frames recorded before it",
    ]);
    let seqs = session_is_what_was_delivered(&out, Path::new(&log));
    assert_eq!(seqs, (0..9).collect::<Vec<u64>>());
    isp(&["info", &o]).ok();
    // `process` writes what it made, its telemetry and summary, then fails.
    let p = tmp.path().join("proc");
    let ps = s(&p);
    with_camera(
        &[
            "process",
            DEV,
            "--width",
            "640",
            "--height",
            "480",
            "--frames",
            "60",
            "--backend",
            "cpu",
            "--out",
            &ps,
        ],
        &virtual_camera(&s(&tmp.path().join("delivered2")), "vanish@9"),
    )
    .error(&[
        "/dev/video42",
        "the device is gone",
        "stopped after 9 frames",
    ]);
    let summary = read_json(&p.join("summary.json"));
    assert_eq!(summary["frames"], 9);
    assert_eq!(delivered(&tmp.path().join("delivered2")).len(), 9);
    assert!(summary["source_error"].as_str().unwrap().contains("gone"));
    assert!(p.join("telemetry.csv").exists());
}

/// An outside V4L2 client sees a well-behaved device: Debian's `v4l2-ctl`
/// (v4l-utils) under the virtual camera stats the node, finds it in sysfs,
/// opens it (fortified `open`), reads its format and controls, and streams
/// 30 frames through mmap'ed buffers.
#[test]
fn v4l2_ctl_streams_from_the_virtual_camera() {
    let _turn = one_at_a_time();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/virtual-camera.sh");
    let run = |args: &[&str]| {
        let o = Command::new(&script)
            .arg("v4l2-ctl")
            .args(["-d", "/dev/video42"])
            .args(args)
            .env("VCAM_CLOCK", "virtual")
            .output()
            .expect("v4l2-ctl (scripts/setup.sh installs v4l-utils)");
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "v4l2-ctl {args:?}:\n{text}");
        text
    };
    let all = run(&["--all"]);
    for want in ["isp-vcam", "Video Capture", "1920/1080", "exposure"] {
        assert!(all.contains(want), "v4l2-ctl --all lacks {want:?}:\n{all}");
    }
    let stream = run(&["--stream-mmap", "--stream-count=30"]);
    assert_eq!(stream.matches('<').count(), 30, "{stream}");
}
