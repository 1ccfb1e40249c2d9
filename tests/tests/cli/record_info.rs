//! `isp record` and `isp info`: sessions written, described, replayed, and
//! refused when corrupt.

use crate::common::*;
use isp_e2e::isp_bin;
use std::path::Path;

const INFO_KEYS: [&str; 6] = [
    "describe",
    "format",
    "frame_bytes",
    "frames",
    "live",
    "source",
];

#[track_caller]
fn info(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["info"];
    a.extend(args);
    let v = isp(&a).ok().json();
    assert_keys(&v, &INFO_KEYS);
    assert_keys(
        &v["format"],
        &["bayer", "bits", "height", "packing", "stride", "width"],
    );
    v
}

fn record(src: &str, geometry: &[&str], frames: &str, out: &Path) -> Run {
    let mut a = vec!["record", src];
    a.extend(geometry);
    let o = s(out);
    a.extend(["--frames", frames, "--out", &o]);
    isp(&a)
}

#[test]
fn record_writes_a_session_that_info_reads_and_process_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("s");
    let geo = [
        "--width", "64", "--height", "32", "--bits", "12", "--bayer", "GRBG",
    ];
    let r = record("synthetic:checker", &geo, "3", &sess).ok();
    assert_eq!(
        r.stdout.trim(),
        format!(
            "recorded 3 frames of RAW12 GRBG 64x32 stride 128 into {}",
            sess.display()
        )
    );
    // The files of README: Recorded sessions.
    let m = read_json(&sess.join("session.json"));
    assert_eq!(m["schema_version"], 1);
    assert_eq!(m["complete"], true);
    assert_eq!(m["source"], "synthetic:checker");
    let frames = m["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["sequence"], i as u64);
        assert_eq!(f["bytes"], 64 * 32 * 2);
        let file = sess.join(f["file"].as_str().unwrap());
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 64 * 32 * 2);
    }
    let journal = std::fs::read_to_string(sess.join("frames.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 3);

    let v = info(&[&s(&sess)]);
    assert_eq!(v["source"], format!("session:{}", sess.display()));
    assert_eq!(v["describe"], "RAW12 GRBG 64x32 stride 128");
    assert_eq!(
        v["format"],
        serde_json::json!({"width": 64, "height": 32, "bits": 12, "bayer": "GRBG",
                           "packing": "plain", "stride": 128})
    );
    assert_eq!(
        (v["frames"].clone(), v["frame_bytes"].clone()),
        (3.into(), 4096.into())
    );
    assert_eq!(v["live"], false);

    // Replay is bit-exact: the session gives the pictures the live source
    // gave (no 3A, so the synthetic sensor's exposure never moves).
    let tuning = tuning_file(tmp.path(), "t.json", |_| {});
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let ra = isp(&[
        "process",
        &s(&sess),
        "--backend",
        "cpu",
        "--tuning",
        &s(&tuning),
        "--out",
        &s(&a),
    ])
    .ok();
    let mut args = vec!["process", "synthetic:checker"];
    args.extend(geo);
    let (t, bs) = (s(&tuning), s(&b));
    args.extend([
        "--frames",
        "3",
        "--backend",
        "cpu",
        "--tuning",
        &t,
        "--out",
        &bs,
    ]);
    isp(&args).ok();
    assert_eq!(files_with(&a, ".png"), frame_names(3));
    for f in frame_names(3) {
        let (pa, pb) = (read_png(&a.join(&f)), read_png(&b.join(&f)));
        assert_eq!((pa.width, pa.height), (64, 32));
        assert!(
            pa.samples == pb.samples,
            "{f} differs between the session and its source"
        );
    }
    assert_eq!(ra.json()["frames"], 3);
    assert_eq!(ra.json()["source"], format!("session:{}", sess.display()));
}

#[test]
fn record_refuses_an_existing_session_a_non_empty_directory_and_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let geo = ["--width", "32", "--height", "16"];
    let sess = tmp.path().join("s");
    record("synthetic:flat", &geo, "2", &sess).ok();
    let before = std::fs::read(sess.join("session.json")).unwrap();
    record("synthetic:flat", &geo, "2", &sess).error(&[&s(&sess), "not empty"]);
    assert_eq!(std::fs::read(sess.join("session.json")).unwrap(), before);
    // A directory holding anything else.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    record("synthetic:flat", &geo, "2", &busy).error(&[&s(&busy), "not empty"]);
    assert_eq!(files_with(&busy, ""), ["notes.txt"]);
    // A file.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    record("synthetic:flat", &geo, "2", &file).error(&[&s(&file)]);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    // An empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    record("synthetic:flat", &geo, "2", &empty).ok();
    assert_eq!(
        read_json(&empty.join("session.json"))["frames"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Bad sources and geometry.
    let out = tmp.path().join("new");
    record(
        "synthetic:flat",
        &["--width", "31", "--height", "16"],
        "2",
        &out,
    )
    .error(&["synthetic:flat", "even (got 31x16)"]);
    record("nowhere", &[], "2", &out).error(&["nowhere", "not found"]);
    assert!(!out.exists());
    let r = isp(&["record", "synthetic:flat", "--out", &s(&out)]);
    assert_eq!(r.code, Some(2));
    r.fails(&["--frames"]);
}

#[test]
fn info_describes_the_demo_a_raw_file_and_a_synthetic_source() {
    let v = info(&[]);
    assert!(v["source"].as_str().unwrap().starts_with("session:"), "{v}");
    assert_eq!(v["describe"], "RAW10P RGGB 640x360 stride 800");
    assert_eq!(v["format"]["packing"], "csi2");
    assert_eq!(
        (v["frames"].clone(), v["frame_bytes"].clone()),
        (8.into(), (800 * 360).into())
    );
    assert_eq!(v["live"], false);
    assert_eq!(info(&["demo"]), v);

    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("two.raw");
    // Two RAW10P frames of 16x4 with padded rows (stride 24).
    std::fs::write(&raw, vec![0x40u8; 2 * 24 * 4]).unwrap();
    let spec = format!("raw:{}", raw.display());
    let v = info(&[
        &spec, "--width", "16", "--height", "4", "--packed", "--stride", "24", "--bayer", "BGGR",
    ]);
    assert_eq!(v["source"], spec);
    assert_eq!(v["describe"], "RAW10P BGGR 16x4 stride 24");
    assert_eq!(
        (v["frames"].clone(), v["frame_bytes"].clone()),
        (2.into(), 96.into())
    );

    let v = info(&[
        "synthetic:zoneplate",
        "--width",
        "320",
        "--height",
        "240",
        "--bits",
        "14",
    ]);
    assert_eq!(v["source"], "synthetic:zoneplate");
    assert_eq!(v["describe"], "RAW14 RGGB 320x240 stride 640");
    assert_eq!(
        v["frames"],
        serde_json::Value::Null,
        "a synthetic source never ends"
    );
    assert_eq!(v["frame_bytes"], 320 * 240 * 2);
    // Defaults: 1280x720 RAW10.
    assert_eq!(
        info(&["synthetic:checker"])["describe"],
        "RAW10 RGGB 1280x720 stride 2560"
    );
}

#[test]
fn info_names_the_broken_file_of_a_corrupt_session() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = |name: &str| {
        let sess = tmp.path().join(name);
        record(
            "synthetic:flat",
            &["--width", "32", "--height", "16"],
            "3",
            &sess,
        )
        .ok();
        sess
    };
    // A truncated frame file.
    let sess = fresh("trunc");
    let f = sess.join("frames/000002.raw");
    std::fs::write(&f, vec![0u8; 10]).unwrap();
    isp(&["info", &s(&sess)]).error(&[&s(&f), "frame 2 is truncated: 10 bytes"]);
    // A flipped byte: the CRC-32 says so.
    let sess = fresh("crc");
    let f = sess.join("frames/000000.raw");
    let mut b = std::fs::read(&f).unwrap();
    b[0] ^= 0x80;
    std::fs::write(&f, b).unwrap();
    isp(&["info", &s(&sess)]).error(&[&s(&f), "frame 0 is corrupt: CRC-32"]);
    // A missing frame file.
    let sess = fresh("gone");
    let f = sess.join("frames/000001.raw");
    std::fs::remove_file(&f).unwrap();
    isp(&["info", &s(&sess)]).error(&[&s(&f), "No such file"]);
    // A manifest cut short, and one with a wrong field.
    let sess = fresh("cut");
    let m = sess.join("session.json");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, &text[..text.len() / 2]).unwrap();
    isp(&["info", &s(&sess)]).error(&[&s(&m), "corrupt manifest"]);
    let sess = fresh("field");
    let m = sess.join("session.json");
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("\"bits\": 10", "\"bits\": \"ten\"");
    std::fs::write(&m, text).unwrap();
    isp(&["info", &s(&sess)]).error(&[&s(&m), "corrupt manifest at `format.bits`"]);
    // No manifest at all.
    let sess = fresh("none");
    std::fs::remove_file(sess.join("session.json")).unwrap();
    isp(&["info", &s(&sess)]).error(&[&s(&sess), "not a session: no session.json"]);
    // Raw: truncated, and without geometry.
    let raw = tmp.path().join("f.raw");
    std::fs::write(&raw, [0u8; 100]).unwrap();
    let spec = format!("raw:{}", raw.display());
    isp(&[
        "info", &spec, "--width", "64", "--height", "32", "--bits", "12",
    ])
    .error(&[&s(&raw), "truncated: 100 bytes"]);
    isp(&["info", &spec]).error(&[&spec, "needs --width and --height"]);
}

#[test]
fn a_raw_file_processes_and_wrong_geometry_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("s");
    record(
        "synthetic:gradient",
        &["--width", "64", "--height", "32", "--bits", "12"],
        "1",
        &sess,
    )
    .ok();
    let raw = tmp.path().join("f.raw");
    std::fs::copy(sess.join("frames/000000.raw"), &raw).unwrap();
    let spec = format!("raw:{}", raw.display());
    let out = tmp.path().join("o");
    let geo = [
        "--width", "64", "--height", "32", "--bits", "12", "--bayer", "RGGB",
    ];
    let mut a = vec!["process", &spec];
    a.extend(geo);
    let o = s(&out);
    a.extend(["--backend", "cpu", "--out", &o]);
    let r = isp(&a).ok();
    assert_eq!(files_with(&out, ".png"), frame_names(1));
    assert_eq!(r.json()["source"], spec);
    assert_eq!(r.json()["frames"], 1);
    // The raw frame is the session's frame: same picture.
    let out2 = tmp.path().join("o2");
    isp(&["process", &s(&sess), "--backend", "cpu", "--out", &s(&out2)]).ok();
    assert!(
        read_png(&out.join("frame_000000.png")).samples
            == read_png(&out2.join("frame_000000.png")).samples
    );
    // Wrong geometry: a clear error naming the file.
    isp(&[
        "process",
        &spec,
        "--width",
        "60",
        "--height",
        "32",
        "--bits",
        "12",
        "--out",
        &s(&out),
    ])
    .error(&["f.raw", "not a whole number"]);
}

#[test]
fn killed_recorder_leaves_a_readable_session() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("s");
    let mut child = std::process::Command::new(isp_bin())
        .args([
            "record",
            "synthetic:checker",
            "--width",
            "320",
            "--height",
            "240",
            "--out",
            &s(&sess),
            "--frames",
            "1000",
            "--interval-ms",
            "20",
        ])
        .spawn()
        .unwrap();
    // Wait for the journal to list 5 complete frames (the event the recorder
    // signals when a frame is safe), then kill it without warning.
    let journaled = || {
        std::fs::read_to_string(sess.join("frames.jsonl"))
            .map(|j| j.lines().filter(|l| l.ends_with('}')).count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while journaled() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the recorder journaled no 5 frames in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
    let seen = journaled();
    let src = isp_engine::sources::session::SessionSource::open(&sess).unwrap();
    let n = src.manifest().frames.len();
    // Every frame journaled before the kill survived.
    assert!(
        n >= seen && n >= 5,
        "{n} frames survived, {seen} were journaled"
    );
    assert!(!src.manifest().complete);
    // The CLI reads it too: every surviving frame checked.
    let v = info(&[&s(&sess)]);
    assert_eq!(v["frames"], n as u64);
}
