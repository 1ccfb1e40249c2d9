//! The `isp` CLI end to end, on real files.

use isp_e2e::isp_bin;
use std::process::Command;

fn isp(args: &[&str]) -> std::process::Output {
    Command::new(isp_bin())
        .args(args)
        .output()
        .expect("run isp")
}

#[test]
fn process_demo_session_writes_pngs_csv_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = isp(&[
        "process",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pngs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .collect();
    assert_eq!(pngs.len(), 8);
    // A real picture: 640x360 RGBA with more than a handful of distinct colours.
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(out.join("frame_000000.png")).unwrap(),
    ));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (640, 360));
    let distinct: std::collections::HashSet<_> =
        buf.chunks(4).map(|p| (p[0], p[1], p[2])).collect();
    assert!(distinct.len() > 200, "{} colours", distinct.len());

    let mut csv = csv::Reader::from_path(out.join("telemetry.csv")).unwrap();
    let headers: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers, isp_engine::telemetry::CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    for stage in ["raw_isp", "raw_algo", "fast_isp", "fast_algo"] {
        let n = rows
            .iter()
            .filter(|r| &r[3] == stage && &r[13] == "ok")
            .count();
        assert_eq!(n, 8, "{stage}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["frames"], 8);
    assert_eq!(summary["drops"], 0);
    assert!(summary["stages"]["fast_isp"]["p99_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn slow_path_writes_16_bit_linear() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = isp(&[
        "process",
        "--out",
        out.to_str().unwrap(),
        "--frames",
        "2",
        "--linear16",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(out.join("frame_000001.png")).unwrap(),
    ));
    let r = dec.read_info().unwrap();
    assert_eq!(r.info().bit_depth, png::BitDepth::Sixteen);
}

#[test]
fn raw_file_round_trip_and_bad_geometry() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("s");
    let o = isp(&[
        "record",
        "synthetic:gradient",
        "--width",
        "64",
        "--height",
        "32",
        "--bits",
        "12",
        "--out",
        sess.to_str().unwrap(),
        "--frames",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let raw = tmp.path().join("f.raw");
    std::fs::copy(sess.join("frames/000000.raw"), &raw).unwrap();
    let spec = format!("raw:{}", raw.display());
    let out = tmp.path().join("o");
    let o = isp(&[
        "process",
        &spec,
        "--width",
        "64",
        "--height",
        "32",
        "--bits",
        "12",
        "--bayer",
        "RGGB",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("frame_000000.png").exists());
    // Wrong geometry: a clear error naming the file.
    let o = isp(&[
        "process",
        &spec,
        "--width",
        "60",
        "--height",
        "32",
        "--bits",
        "12",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("f.raw") && err.contains("not a whole number"),
        "{err}"
    );
    // Truncated.
    std::fs::write(&raw, [0u8; 100]).unwrap();
    let o = isp(&[
        "info", &spec, "--width", "64", "--height", "32", "--bits", "12",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("truncated"), "{err}");
}

#[test]
fn corrupt_session_and_tuning_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("s");
    assert!(
        isp(&[
            "record",
            "synthetic:flat",
            "--width",
            "32",
            "--height",
            "16",
            "--out",
            sess.to_str().unwrap(),
            "--frames",
            "2"
        ])
        .status
        .success()
    );
    std::fs::write(sess.join("session.json"), b"{\"schema_version\":1,").unwrap();
    let o = isp(&["info", sess.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("session.json"), "{err}");

    let bad = tmp.path().join("t.json");
    std::fs::write(
        &bad,
        r#"{"schema_version":1,"stages":{"black_level":{"levels":[64,64,64]}}}"#,
    )
    .unwrap();
    let o = isp(&[
        "process",
        "--out",
        tmp.path().join("o").to_str().unwrap(),
        "--tuning",
        bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("t.json") && err.contains("stages.black_level.levels"),
        "{err}"
    );
}

#[test]
fn killed_recorder_leaves_a_readable_session() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("s");
    let mut child = Command::new(isp_bin())
        .args([
            "record",
            "synthetic:checker",
            "--width",
            "320",
            "--height",
            "240",
            "--out",
            sess.to_str().unwrap(),
            "--frames",
            "1000",
            "--interval-ms",
            "20",
        ])
        .spawn()
        .unwrap();
    // Let it write some frames, then kill it without warning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let n = std::fs::read_dir(sess.join("frames"))
            .map(|d| d.count())
            .unwrap_or(0);
        if n >= 5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
    let s = isp_engine::sources::session::SessionSource::open(&sess).unwrap();
    let n = s.manifest().frames.len();
    assert!(n >= 4, "{n} frames survived");
    assert!(!s.manifest().complete);
    let mut buf = vec![0u8; s.manifest().format.frame_bytes()];
    for i in 0..n {
        s.read_frame(i, &mut buf).unwrap();
    }
}

fn read_rgba(path: &std::path::Path) -> Vec<u8> {
    let f = std::fs::File::open(path).expect("PNG written");
    let mut r = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .expect("PNG header");
    let mut buf = vec![0; r.output_buffer_size().expect("PNG size")];
    r.next_frame(&mut buf).expect("PNG data");
    buf
}

/// `--backend gpu` on the demo session: same pictures as the CPU (1 LSB),
/// GPU rows in the telemetry, the adapter in the summary. The tuning has no
/// AE/AWB, so both runs use identical parameters on every frame.
#[test]
fn process_on_the_gpu_matches_the_cpu() {
    if isp_engine::gpu::context_for_tests().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tuning = tmp.path().join("fixed.json");
    let mut t = isp_engine::tuning::Tuning::load(
        &isp_engine::sources::session::demo_session_dir()
            .unwrap()
            .join("tuning.json"),
    )
    .unwrap();
    t.algorithms.clear();
    t.save(&tuning).unwrap();
    let mut outs = Vec::new();
    for backend in ["gpu", "cpu"] {
        let out = tmp.path().join(backend);
        let o = isp(&[
            "process",
            "--backend",
            backend,
            "--tuning",
            tuning.to_str().unwrap(),
            "--frames",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.push(out);
    }
    for f in ["frame_000000.png", "frame_000002.png"] {
        let (g, c) = (read_rgba(&outs[0].join(f)), read_rgba(&outs[1].join(f)));
        let d = g.iter().zip(&c).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(d <= 1, "{f}: max diff {d}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outs[0].join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["backend"].as_str().unwrap().starts_with("gpu: "),
        "{summary}"
    );
    assert!(
        summary["stages"]["gpu_fused_preview"]["count"]
            .as_u64()
            .unwrap()
            == 3
    );
    let mut csv = csv::Reader::from_path(outs[0].join("telemetry.csv")).unwrap();
    let gpu_rows = csv
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[1] == "gpu" && &r[3] == "gpu_fused_preview")
        .filter(|r| r[14].starts_with("timer="))
        .count();
    assert_eq!(gpu_rows, 3);
}

#[test]
fn backend_flag_rejects_nonsense() {
    let o = isp(&["process", "--backend", "tpu", "--out", "/tmp/x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not cpu, gpu or auto"));
}
