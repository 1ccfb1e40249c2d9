//! `isp bench`: its JSON, and the geometries it refuses.

use crate::common::*;

/// Top-level keys of `isp bench` on the CPU (README: The CLI).
const BENCH_KEYS: [&str; 14] = [
    "backend",
    "cores",
    "dropped",
    "end_to_end_ms",
    "format",
    "frames",
    "frames_per_s",
    "height",
    "in_flight",
    "memory",
    "path",
    "preview_compute_ms",
    "stages_ms",
    "width",
];
const SPREAD_KEYS: [&str; 6] = ["max", "mean", "n", "p50", "p90", "p99"];

#[track_caller]
fn spread(v: &serde_json::Value, n: u64) {
    assert_keys(v, &SPREAD_KEYS);
    assert_eq!(v["n"], n, "{v}");
    let f = |k: &str| v[k].as_f64().unwrap();
    if n > 0 {
        assert!(
            0.0 < f("p50") && f("p50") <= f("p90") && f("p90") <= f("p99") && f("p99") <= f("max"),
            "{v}"
        );
        assert!(f("mean") <= f("max"), "{v}");
    }
}

fn bench(args: &[&str]) -> Run {
    let mut a = vec!["bench", "--backend", "cpu"];
    a.extend(args);
    isp(&a)
}

#[test]
fn fast_path_json_has_the_documented_keys() {
    let v = bench(&["--width", "64", "--height", "32", "--frames", "4"])
        .ok()
        .json();
    assert_keys(&v, &BENCH_KEYS);
    assert_eq!(
        (v["width"].clone(), v["height"].clone()),
        (64.into(), 32.into())
    );
    assert_eq!(v["format"], "RAW10 RGGB 64x32 stride 128");
    assert_eq!(v["path"], "fast");
    assert_eq!(v["frames"], 4);
    assert_eq!(v["backend"], "cpu (asked for)");
    assert_eq!(v["in_flight"], 2);
    assert_eq!(v["dropped"], 0);
    assert!(v["cores"].as_u64().unwrap() >= 1);
    assert!(v["frames_per_s"].as_f64().unwrap() > 0.0);
    // Memory: the log holds every row of the run (4 stages a frame, warm-up
    // included) in memory at this size, and the resident set is measured.
    let m = &v["memory"];
    assert_keys(
        m,
        &[
            "rss_at_mark_mb",
            "rss_end_mb",
            "rss_growth_mb",
            "rss_mark_frame",
            "telemetry",
            "telemetry_bytes_per_event",
        ],
    );
    let t = &m["telemetry"];
    assert!(t["events"].as_u64().unwrap() >= 4 * 7, "{m}");
    assert_eq!(t["in_memory"], t["events"], "{m}");
    assert_eq!(t["spilled"], 0, "{m}");
    assert!(
        m["telemetry_bytes_per_event"].as_f64().unwrap() > 0.0,
        "{m}"
    );
    assert_eq!(m["rss_mark_frame"], 1);
    assert!(m["rss_at_mark_mb"].as_f64().unwrap() > 1.0, "{m}");
    assert!(m["rss_end_mb"].as_f64().unwrap() > 1.0, "{m}");
    let stages = &v["stages_ms"];
    assert_keys(stages, &["fast_algo", "fast_isp", "raw_algo", "raw_isp"]);
    for (_, s) in stages.as_object().unwrap() {
        spread(s, 4);
    }
    spread(&v["preview_compute_ms"], 4);
    spread(&v["end_to_end_ms"], 4);
}

#[test]
fn slow_path_in_flight_and_runtime() {
    let v = bench(&[
        "--width",
        "32",
        "--height",
        "16",
        "--frames",
        "3",
        "--path",
        "slow",
        "--in-flight",
        "1",
        "--runtime",
        "--runtime-samples",
        "10",
    ])
    .ok()
    .json();
    let mut want = BENCH_KEYS.to_vec();
    want.extend(["qos", "roundtrip_us"]);
    assert_keys(&v, &want);
    assert_eq!(v["path"], "slow");
    assert_eq!(v["in_flight"], 1);
    assert_keys(&v["stages_ms"], &["slow_algo", "slow_isp"]);
    spread(&v["stages_ms"]["slow_isp"], 3);
    spread(&v["end_to_end_ms"], 3);
    // The slow path has no preview.
    spread(&v["preview_compute_ms"], 0);
    spread(&v["roundtrip_us"], 50);
    assert_keys(&v["qos"], &["idle_ms", "loaded_ms", "p99_ratio"]);
    spread(&v["qos"]["idle_ms"], 10);
    spread(&v["qos"]["loaded_ms"], 10);
    assert!(v["qos"]["p99_ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn odd_or_zero_geometry_and_zero_frames_are_refused() {
    for (w, h) in [
        ("7", "5"),
        ("8", "5"),
        ("7", "4"),
        ("0", "0"),
        ("0", "16"),
        ("16", "0"),
    ] {
        bench(&["--width", w, "--height", h, "--frames", "2"]).error(&[
            &format!("--width {w} --height {h}"),
            &format!("must be non-zero and even (got {w}x{h})"),
        ]);
    }
    bench(&["--width", "70000", "--height", "2", "--frames", "1"])
        .error(&["larger than 65536x65536"]);
    bench(&["--width", "8", "--height", "4", "--frames", "0"]).error(&["--frames 0"]);
    bench(&[
        "--width",
        "8",
        "--height",
        "4",
        "--frames",
        "1",
        "--runtime",
        "--runtime-samples",
        "0",
    ])
    .error(&["--runtime-samples 0"]);
    // The library refuses them too.
    let e = isp_engine::bench::pipeline(7, 5, 2, isp_engine::pipeline::PathMode::Fast).unwrap_err();
    assert!(e.to_string().contains("even (got 7x5)"), "{e}");
}

/// With a GPU (lavapipe counts), `--backend gpu` adds `gpu_preview`: the
/// fused preview measured on its own, checked against the CPU.
#[test]
fn gpu_backend_adds_the_gpu_preview_block() {
    if isp_engine::gpu::context_for_tests().is_none() {
        return;
    }
    let v = isp(&[
        "bench",
        "--backend",
        "gpu",
        "--width",
        "64",
        "--height",
        "32",
        "--frames",
        "2",
    ])
    .ok()
    .json();
    let mut want = BENCH_KEYS.to_vec();
    want.push("gpu_preview");
    assert_keys(&v, &want);
    assert!(v["backend"].as_str().unwrap().starts_with("gpu: "), "{v}");
    let g = &v["gpu_preview"];
    assert_keys(
        g,
        &[
            "adapter",
            "bytes",
            "compute_ms",
            "cpu_preview_ms",
            "format",
            "gpu_wall_ms",
            "height",
            "max_diff_vs_cpu",
            "readback_ms",
            "stats_equal_cpu",
            "timer",
            "upload_ms",
            "width",
            "with_transfers_ms",
        ],
    );
    for k in [
        "compute_ms",
        "with_transfers_ms",
        "upload_ms",
        "gpu_wall_ms",
        "readback_ms",
        "cpu_preview_ms",
    ] {
        spread(&g[k], 2);
    }
    assert_keys(
        &g["bytes"],
        &["ideal", "ratio", "raw_read", "rgba_write", "stats", "total"],
    );
    assert!(g["max_diff_vs_cpu"].as_u64().unwrap() <= 1, "{g}");
    assert_eq!(g["stats_equal_cpu"], true, "{g}");
    assert_eq!(g["format"], "RAW10 RGGB 64x32 stride 128");
}
