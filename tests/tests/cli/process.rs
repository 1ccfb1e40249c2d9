//! `isp process`: the fast and slow paths, `--linear16`, allocators,
//! outputs, and its errors.

use crate::common::*;
use isp_engine::tuning::Tuning;

/// The summary's keys (README: The CLI).
const SUMMARY_KEYS: [&str; 13] = [
    "allocator",
    "backend",
    "failed",
    "format",
    "frames",
    "frames_dropped_by_engine",
    "frames_lost_by_camera",
    "ipa",
    "params_version",
    "path",
    "source",
    "stages",
    "written",
];

/// summary.json as written, the same document on stdout, the shared checks.
#[track_caller]
fn summary(run: &Run, out: &std::path::Path, frames: u64, path: &str) -> serde_json::Value {
    let file = read_json(&out.join("summary.json"));
    assert_eq!(run.json(), file, "stdout and summary.json differ");
    assert_keys(&file, &SUMMARY_KEYS);
    assert_eq!(file["frames"], frames, "{file}");
    assert_eq!(file["written"], frames, "{file}");
    assert_eq!(file["failed"], 0, "{file}");
    assert_eq!(file["frames_dropped_by_engine"], 0, "{file}");
    assert_eq!(file["frames_lost_by_camera"], 0, "{file}");
    assert_eq!(file["path"], path, "{file}");
    assert_eq!(file["backend"], "cpu (asked for)", "{file}");
    assert!(file["params_version"].as_u64().unwrap() >= 1, "{file}");
    assert_keys(
        &file["ipa"],
        &[
            "analogue_gain",
            "awb_active",
            "colour_temperature",
            "digital_gain",
            "exposure_us",
            "frames_processed",
            "wb_gains",
        ],
    );
    for (stage, v) in file["stages"].as_object().unwrap() {
        assert_keys(v, &["count", "mean_ms", "p50_ms", "p99_ms"]);
        let (p50, p99) = (v["p50_ms"].as_f64().unwrap(), v["p99_ms"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p99, "{stage}: {v}");
    }
    file
}

#[test]
fn demo_on_the_fast_path_writes_8_bit_previews_telemetry_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let r = isp(&["process", "--backend", "cpu", "--out", &s(&out)]).ok();
    assert!(
        r.stderr.contains("isp: backend cpu (asked for)"),
        "{}",
        r.stderr
    );
    assert_eq!(files_with(&out, ".png"), frame_names(8));
    // A real picture: 640x360 RGBA8, many colours, opaque.
    let png = read_png(&out.join("frame_000000.png"));
    assert_eq!((png.width, png.height), (640, 360));
    assert_eq!(
        (png.color, png.depth),
        (png::ColorType::Rgba, png::BitDepth::Eight)
    );
    let distinct: std::collections::HashSet<_> =
        png.samples.chunks(4).map(|p| (p[0], p[1], p[2])).collect();
    assert!(distinct.len() > 200, "{} colours", distinct.len());
    assert!(png.samples.chunks(4).all(|p| p[3] == 255));

    let rows = telemetry(&out);
    for stage in ["raw_isp", "raw_algo", "fast_isp", "fast_algo"] {
        assert_eq!(ok_rows(&rows, "stage", stage), 8, "{stage}");
    }
    assert!(rows.iter().any(|r| &r[1] == "note" && &r[3] == "backend"));
    let sum = summary(&r, &out, 8, "fast");
    assert!(
        sum["source"].as_str().unwrap().starts_with("session:"),
        "{sum}"
    );
    assert_eq!(sum["format"], "RAW10P RGGB 640x360 stride 800");
    for stage in ["raw_isp", "raw_algo", "fast_isp", "fast_algo"] {
        assert_eq!(sum["stages"][stage]["count"], 8, "{stage}: {sum}");
    }
    // The demo's tuning runs AWB and AE.
    assert!(
        sum["ipa"]["frames_processed"].as_u64().unwrap() > 0,
        "{sum}"
    );
    assert_eq!(sum["ipa"]["awb_active"], true, "{sum}");
}

#[test]
fn slow_path_writes_16_bit_rgb_for_every_sensor_depth() {
    let tmp = tempfile::tempdir().unwrap();
    for (bits, packed) in [
        ("8", false),
        ("10", true),
        ("12", true),
        ("14", false),
        ("16", false),
    ] {
        let out = tmp.path().join(format!("out{bits}"));
        let mut args = vec![
            "process",
            "synthetic:checker",
            "--width",
            "64",
            "--height",
            "48",
            "--bits",
            bits,
            "--frames",
            "2",
            "--path",
            "slow",
            "--backend",
            "cpu",
            "--out",
        ];
        let o = s(&out);
        args.push(&o);
        if packed {
            args.push("--packed");
        }
        let r = isp(&args).ok();
        assert_eq!(files_with(&out, ".png"), frame_names(2), "{bits}");
        let png = read_png(&out.join("frame_000001.png"));
        assert_eq!((png.width, png.height), (64, 48), "{bits}");
        assert_eq!(
            (png.color, png.depth),
            (png::ColorType::Rgb, png::BitDepth::Sixteen),
            "{bits}"
        );
        // 16-bit data, not 8-bit values widened: many distinct low bytes.
        let low: std::collections::HashSet<_> = png.samples.iter().map(|v| v & 0xFF).collect();
        assert!(low.len() > 100, "bits {bits}: {} low bytes", low.len());
        let rows = telemetry(&out);
        assert_eq!(ok_rows(&rows, "stage", "slow_isp"), 2, "{bits}");
        assert_eq!(ok_rows(&rows, "stage", "slow_algo"), 2, "{bits}");
        assert_eq!(ok_rows(&rows, "stage", "fast_isp"), 0, "{bits}");
        let sum = summary(&r, &out, 2, "slow");
        let want = format!("RAW{bits}{} RGGB 64x48", if packed { "P" } else { "" });
        assert!(sum["format"].as_str().unwrap().starts_with(&want), "{sum}");
        assert_eq!(sum["source"], "synthetic:checker");
        assert_eq!(sum["stages"]["slow_isp"]["count"], 2, "{sum}");
    }
}

/// Three vertical bands of grey at 300, 600 and 1200 above the black level
/// of a 12-bit sensor, every CFA site alike.
const BANDS: [u16; 3] = [300, 600, 1200];
const BW: usize = 32;

fn band_raw(dir: &std::path::Path) -> String {
    let raw = dir.join("bands.raw");
    write_raw16(&raw, 3 * BW, 32, |x, _| 64 + BANDS[x / BW]);
    format!("raw:{}", raw.display())
}

/// Mean of channel `c` inside band `b`, away from the band edges.
fn band_mean(png: &Png, b: usize, c: usize) -> f64 {
    (4..28)
        .flat_map(|y| (b * BW + 4..b * BW + BW - 4).map(move |x| (x, y)))
        .map(|(x, y)| png.at(x, y, c) as f64)
        .sum::<f64>()
        / (24.0 * 24.0)
}

/// `--linear16`: the output is the scene's radiance times the stages' linear
/// gains (black level, white balance, CCM) with no tone curve: computed here
/// from the tuning, and proportional band to band.
#[test]
fn linear16_is_proportional_to_the_scene() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = band_raw(tmp.path());
    // The built-in stages with no 3A: every frame gets exactly these.
    let tuning = tuning_file(tmp.path(), "t.json", |_| {});
    let geometry = [
        "--width", "96", "--height", "32", "--bits", "12", "--bayer", "RGGB",
    ];
    let run = |out: &str, extra: &[&str]| {
        let out = tmp.path().join(out);
        let mut a: Vec<String> = vec!["process".into(), spec.clone()];
        a.extend(geometry.iter().map(|s| s.to_string()));
        a.extend(["--backend", "cpu", "--tuning"].map(String::from));
        a.push(s(&tuning));
        a.push("--out".into());
        a.push(s(&out));
        a.extend(extra.iter().map(|s| s.to_string()));
        let r = isp(&a).ok();
        let png = read_png(&out.join("frame_000000.png"));
        (r, out, png)
    };
    let (r, out, lin) = run("lin", &["--linear16"]);
    // --linear16 takes the slow path whatever --path says.
    summary(&r, &out, 1, "slow");
    assert_eq!(
        (lin.color, lin.depth),
        (png::ColorType::Rgb, png::BitDepth::Sixteen)
    );

    let st = Tuning::default().stages;
    let wb = st.white_balance.gains;
    let m = st.ccm.matrix;
    let scale = 65535.0 / (4095.0 - st.black_level.levels[0] as f64);
    for (b, &level) in BANDS.iter().enumerate() {
        let v = level as f64 * scale;
        for (c, row) in m.iter().enumerate() {
            // R, G, B after white balance, then the CCM row; demosaic leaves
            // a flat band flat.
            let want: f64 = row.iter().zip(wb).map(|(k, g)| (k * g) as f64 * v).sum();
            let got = band_mean(&lin, b, c);
            assert!(
                (got - want).abs() <= 3.0,
                "band {b} channel {c}: {got}, linear stages give {want:.1}"
            );
            if b > 0 {
                let ratio = got / band_mean(&lin, 0, c);
                let want = level as f64 / BANDS[0] as f64;
                assert!(
                    (ratio - want).abs() < 0.002 * want,
                    "band {b}/0 channel {c}: {ratio}"
                );
            }
        }
    }
    // The same frame without --linear16 is tone-mapped: brighter and
    // compressed, nowhere near proportional.
    let (_, _, enc) = run("enc", &["--path", "slow"]);
    assert_eq!(enc.depth, png::BitDepth::Sixteen);
    for c in 0..3 {
        let (e0, e2) = (band_mean(&enc, 0, c), band_mean(&enc, 2, c));
        assert!(e0 > 1.3 * band_mean(&lin, 0, c), "channel {c}: {e0}");
        assert!(e2 / e0 < 3.0, "channel {c}: encoded ratio {}", e2 / e0);
    }
}

#[test]
fn allocators_heap_memfd_auto_and_dmabuf() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |alloc: &str| {
        let out = tmp.path().join(alloc);
        let r = isp(&[
            "process",
            "synthetic:flat",
            "--width",
            "32",
            "--height",
            "16",
            "--frames",
            "2",
            "--backend",
            "cpu",
            "--allocator",
            alloc,
            "--out",
            &s(&out),
        ]);
        (r, out)
    };
    for alloc in ["heap", "memfd"] {
        let (r, out) = run(alloc);
        let r = r.ok();
        assert!(
            r.stderr.contains(&format!("isp: allocator {alloc}\n")),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("allocator auto"), "{}", r.stderr);
        assert_eq!(summary(&r, &out, 2, "fast")["allocator"], alloc);
    }
    let has_node = ["/dev/dma_heap/system", "/dev/udmabuf"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    // auto: a dmabuf node where there is one, else memfd, and it says which.
    let (r, out) = run("auto");
    let r = r.ok();
    let chosen = summary(&r, &out, 2, "fast")["allocator"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        r.stderr.contains(&format!("isp: allocator {chosen}\n")),
        "{}",
        r.stderr
    );
    if has_node {
        assert!(chosen.starts_with("dmabuf ("), "{chosen}");
    } else {
        assert_eq!(chosen, "memfd");
        assert!(
            r.stderr
                .contains("isp: allocator auto: dmabuf unavailable (no dmabuf node")
                && r.stderr.contains("using memfd"),
            "{}",
            r.stderr
        );
    }
    // dmabuf asked for: used, or an error naming the nodes; never a fallback.
    let (r, out) = run("dmabuf");
    if has_node && r.code == Some(0) {
        assert!(
            summary(&r, &out, 2, "fast")["allocator"]
                .as_str()
                .unwrap()
                .starts_with("dmabuf (")
        );
    } else if has_node {
        r.error(&["dmabuf node /dev/"]);
    } else {
        r.error(&[
            "allocator: no dmabuf node",
            "/dev/dma_heap/system",
            "/dev/udmabuf",
        ]);
        assert!(!out.join("summary.json").exists());
    }
    // Not an allocator: refused by the argument parser (status 2).
    let (r, _) = run("gpu");
    assert_eq!(r.code, Some(2));
    r.fails(&["`gpu` is not heap, memfd, dmabuf or auto", "--allocator"]);
}

#[test]
fn source_errors_name_the_file_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let process = |spec: &str, extra: &[&str]| {
        let mut a = vec!["process", spec, "--backend", "cpu", "--out"];
        let o = s(&out);
        a.push(&o);
        a.extend(extra);
        isp(&a)
    };
    // A session directory that is not there.
    let missing = tmp.path().join("no-such-session");
    process(&s(&missing), &[]).error(&[&s(&missing), "not found"]);
    // A raw file that is not there.
    let raw = tmp.path().join("frame.raw");
    let spec = format!("raw:{}", raw.display());
    let geo = ["--width", "64", "--height", "32", "--bits", "12"];
    process(&spec, &geo).error(&[&s(&raw), "No such file"]);
    // A raw file shorter than one frame.
    std::fs::write(&raw, vec![0u8; 1000]).unwrap();
    process(&spec, &geo).error(&[
        &s(&raw),
        "truncated: 1000 bytes, one RAW12 RGGB 64x32 stride 128 frame needs 4096",
    ]);
    // Longer than one frame but not a whole number of frames.
    std::fs::write(&raw, vec![0u8; 4096 + 100]).unwrap();
    process(&spec, &geo).error(&[&s(&raw), "not a whole number of 4096-byte frames"]);
    // A raw file without its geometry.
    process(&spec, &[]).error(&[&spec, "needs --width and --height"]);
    // A file where a session directory is expected.
    process(&s(&raw), &[]).error(&[&s(&raw), "not a session directory"]);
    // An unknown scene; an odd synthetic geometry.
    process("synthetic:sunset", &[]).error(&["synthetic:sunset", "unknown scene", "checker"]);
    process("synthetic:flat", &["--width", "33", "--height", "16"])
        .error(&["synthetic:flat", "non-zero and even (got 33x16)"]);
    // A tuning file that is not there.
    let t = tmp.path().join("missing.json");
    process("synthetic:flat", &["--tuning", &s(&t)]).error(&[&s(&t), "cannot read"]);
    assert!(!out.exists(), "a failed run created {}", out.display());
}

#[test]
fn unwritable_outputs_are_errors_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let small = [
        "synthetic:flat",
        "--width",
        "32",
        "--height",
        "16",
        "--frames",
        "1",
        "--backend",
        "cpu",
    ];
    let process = |out: &std::path::Path| {
        let mut a = vec!["process"];
        a.extend(small);
        let o = s(out);
        a.extend(["--out", &o]);
        isp(&a)
    };
    // The out path is a file, or lies under one (permissions do not stop
    // root, these do).
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    process(&file).error(&[&s(&file), "exists"]);
    let under = file.join("out");
    process(&under).error(&[&s(&under), "Not a directory"]);
    // The directory is fine but the telemetry cannot be written there.
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("telemetry.csv")).unwrap();
    process(&out).error(&["telemetry.csv"]);
    // Nor the summary.
    let out = tmp.path().join("out2");
    std::fs::create_dir_all(out.join("summary.json")).unwrap();
    process(&out).error(&["summary.json"]);
    // Nor a frame.
    let out = tmp.path().join("out3");
    std::fs::create_dir_all(out.join("frame_000000.png")).unwrap();
    process(&out).error(&["frame_000000.png"]);
}

#[test]
fn a_corrupt_session_frame_fails_the_run_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sess = tmp.path().join("s");
    isp(&[
        "record",
        "synthetic:gradient",
        "--width",
        "32",
        "--height",
        "16",
        "--frames",
        "3",
        "--out",
        &s(&sess),
    ])
    .ok();
    let f1 = sess.join("frames/000001.raw");
    let mut bytes = std::fs::read(&f1).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&f1, &bytes).unwrap();
    let out = tmp.path().join("out");
    let r = isp(&["process", &s(&sess), "--backend", "cpu", "--out", &s(&out)]);
    r.error(&[&s(&f1), "frame 1 is corrupt: CRC-32"]);
    // Truncated instead.
    std::fs::write(&f1, &bytes[..100]).unwrap();
    let r = isp(&["process", &s(&sess), "--backend", "cpu", "--out", &s(&out)]);
    r.error(&[&s(&f1), "frame 1 is truncated: 100 bytes"]);
}

#[test]
fn bad_arguments_are_refused_by_the_parser() {
    let r = isp(&["process", "--backend", "tpu", "--out", "/tmp/x"]);
    assert_eq!(r.code, Some(2));
    r.fails(&["`tpu` is not cpu, gpu or auto"]);
    let r = isp(&["process", "--path", "medium", "--out", "/tmp/x"]);
    assert_eq!(r.code, Some(2));
    r.fails(&["`medium` is not fast or slow"]);
    let r = isp(&["process", "synthetic:flat"]);
    assert_eq!(r.code, Some(2));
    r.fails(&["--out"]);
    let r = isp(&[
        "process",
        "synthetic:flat",
        "--bayer",
        "RGBG",
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(r.code, Some(2));
    r.fails(&["`RGBG` is not one of RGGB, BGGR, GRBG, GBRG"]);
}

fn read_rgba(path: &std::path::Path) -> Vec<u8> {
    read_png(path).samples.iter().map(|&v| v as u8).collect()
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
    let mut t = Tuning::load(
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
        isp(&[
            "process",
            "--backend",
            backend,
            "--tuning",
            &s(&tuning),
            "--frames",
            "3",
            "--out",
            &s(&out),
        ])
        .ok();
        outs.push(out);
    }
    for f in ["frame_000000.png", "frame_000002.png"] {
        let (g, c) = (read_rgba(&outs[0].join(f)), read_rgba(&outs[1].join(f)));
        let d = g.iter().zip(&c).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(d <= 1, "{f}: max diff {d}");
    }
    let summary = read_json(&outs[0].join("summary.json"));
    assert!(
        summary["backend"].as_str().unwrap().starts_with("gpu: "),
        "{summary}"
    );
    assert_eq!(
        summary["stages"]["gpu_fused_preview"]["count"], 3,
        "{summary}"
    );
    let rows = telemetry(&outs[0]);
    let gpu_rows = rows
        .iter()
        .filter(|r| &r[1] == "gpu" && &r[3] == "gpu_fused_preview")
        .filter(|r| r[14].starts_with("timer="))
        .count();
    assert_eq!(gpu_rows, 3);
}
