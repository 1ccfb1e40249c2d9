//! Golden outputs: the embedded demo session (`isp_engine::demo::FILES`, the
//! bytes `engine/build.rs` embeds from `assets/demo_session`) through the
//! engine, each frame's output hashed (64-bit FNV-1a) and compared with the
//! hashes committed in `engine/tests/data/golden/`:
//!
//! - `demo_cpu.json`: the CPU backend's preview (RGBA8, what RawISP + FastISP
//!   produce: `isp::cpu_preview`) and the slow path's display-encoded RGB16
//!   (`isp::reference_rgb16`, little-endian bytes).
//! - `demo_gpu_lavapipe.json`: the GPU backend's fused preview
//!   (`GpuIsp::preview`) on the test adapter (Mesa's lavapipe here and in CI).
//!
//! Each set is run with two tunings: `default` (`Tuning::default()`, the
//! built-in tuning) and `session` (the demo's own `tuning.json`, what `isp
//! process` and the studio use on the demo).
//!
//! Determinism: 3A (AE/AWB) makes the engine's frames depend on the frames
//! before them, and on timing when frames overlap. These tests do not run the
//! engine's lanes: every raw frame goes through the stage chain directly, with
//! `FrameParams::from_tuning(tuning, format)` — the tuning's stage parameters
//! as they are, no algorithm `prepare` — so each frame depends on its own
//! bytes only.
//!
//! GPU: the hashes are compared only on the adapter that recorded them (the
//! file names it; lavapipe's output can depend on its LLVM version and vector
//! width) and only when the recording run found the output bit-stable (each
//! frame is computed twice). On any adapter, every GPU frame is also held to
//! the CPU preview within the README's tolerance (1 LSB of 8 bits).
//!
//! Updating: hashes change only on purpose. After an intended change to the
//! output, run
//!
//! ```sh
//! ISP_UPDATE_GOLDEN=1 cargo test -p isp-engine --test golden
//! ```
//!
//! which rewrites both files (the GPU one only on a lavapipe adapter), and
//! commit them with the change that explains them.

#![allow(clippy::unwrap_used)]

use isp_engine::envelope::{Envelope, StageId};
use isp_engine::gpu::{GpuIsp, context_for_tests};
use isp_engine::isp;
use isp_engine::sources::session::Manifest;
use isp_engine::tuning::{FrameParams, Tuning};
use isp_engine::types::{Lane, RawFormat};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const UPDATE_ENV: &str = "ISP_UPDATE_GOLDEN";
const GPU_TOLERANCE_LSB8: u8 = 1;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

fn updating() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1")
}

/// 64-bit FNV-1a, as 16 hex digits.
fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn le_bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The embedded demo session: its format, frames (checked against their
/// CRC-32) and its tuning.
struct Demo {
    format: RawFormat,
    frames: Vec<(u64, &'static [u8])>,
    tuning: Tuning,
}

fn demo() -> Demo {
    let file = |name: &str| -> &'static [u8] {
        isp_engine::demo::FILES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("the embedded demo session has no {name}"))
            .1
    };
    let manifest: Manifest = serde_json::from_slice(file("session.json")).unwrap();
    let frames = manifest
        .frames
        .iter()
        .map(|f| {
            let bytes = file(&f.file);
            assert_eq!(bytes.len(), manifest.format.frame_bytes(), "{}", f.file);
            assert_eq!(crc32fast::hash(bytes), f.crc32, "{}: CRC-32", f.file);
            (f.meta.sequence, bytes)
        })
        .collect::<Vec<_>>();
    assert!(!frames.is_empty(), "the demo session has no frames");
    let tuning = Tuning::from_json(
        std::str::from_utf8(file("tuning.json")).unwrap(),
        "demo tuning.json",
    )
    .unwrap();
    Demo {
        format: manifest.format,
        frames,
        tuning,
    }
}

fn tunings(d: &Demo) -> Vec<(&'static str, Tuning)> {
    vec![
        ("default", Tuning::default()),
        ("session", d.tuning.clone()),
    ]
}

/// An envelope carrying `params`, for calling the engine's workers' bodies
/// (`isp::cpu_preview`, `isp::reference_rgb16`) directly.
fn envelope(params: Arc<FrameParams>, stage: StageId, lane: Lane) -> Envelope {
    Envelope::new(0, stage, lane, isp::noop, params)
}

fn cpu_preview(p: &Arc<FrameParams>, raw: &[u8]) -> Vec<u8> {
    let f = p.format;
    let mut out = vec![0u8; f.pixels() * 4];
    let env = envelope(p.clone(), StageId::FastIsp, Lane::Realtime);
    isp::cpu_preview(&env, "fast_isp", raw, &mut out).unwrap();
    out
}

fn cpu_rgb16(p: &Arc<FrameParams>, raw: &[u8]) -> Vec<u16> {
    let f = p.format;
    let mut out = vec![0u16; f.pixels() * 3];
    let env = envelope(p.clone(), StageId::SlowIsp, Lane::Background);
    isp::reference_rgb16(&env, raw, &mut out).unwrap();
    out
}

/// Write `value` to `name` under the golden directory.
fn write_golden(name: &str, value: &Value) {
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
    eprintln!("{UPDATE_ENV}=1: wrote {}", p.display());
}

fn read_golden(name: &str) -> Value {
    let p = golden_dir().join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Record it with `{UPDATE_ENV}=1 cargo test -p isp-engine --test golden`",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Compare the `got` hashes (tuning -> frame -> key -> hash) with the file's;
/// panic listing every difference and how to update.
fn compare(name: &str, want: &Value, got: &Value, keys: &[&str]) {
    let mut diffs = Vec::new();
    let mut compared = 0;
    for (tuning, frames) in got["tunings"].as_object().unwrap() {
        for (i, frame) in frames["frames"].as_array().unwrap().iter().enumerate() {
            for &k in keys {
                let w = &want["tunings"][tuning]["frames"][i][k];
                let g = &frame[k];
                compared += 1;
                if w != g {
                    diffs.push(format!(
                        "  tuning {tuning}, frame {} ({k}): committed {w}, now {g}",
                        frame["sequence"]
                    ));
                }
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{name}: {} of {compared} golden hashes differ:\n{}\n\
         If this output change is intended, run `{UPDATE_ENV}=1 cargo test -p isp-engine \
         --test golden` and commit engine/tests/data/golden/ with the change.",
        diffs.len(),
        diffs.join("\n")
    );
    eprintln!("{name}: {compared} hashes match");
}

fn header(d: &Demo, what: &str) -> Value {
    json!({
        "about": format!(
            "{what} of every frame of the embedded demo session, 64-bit FNV-1a \
             (hex). Written by engine/tests/golden.rs with {UPDATE_ENV}=1; \
             see its doc comment."
        ),
        "format": d.format.describe(),
        "frames": d.frames.len(),
    })
}

#[test]
fn demo_session_on_the_cpu_matches_its_golden_hashes() {
    let d = demo();
    let mut out = header(&d, "CPU preview RGBA8 and slow-path RGB16 (LE bytes)");
    let mut sets = serde_json::Map::new();
    for (name, tuning) in tunings(&d) {
        let p = Arc::new(FrameParams::from_tuning(&tuning, d.format));
        let frames: Vec<Value> = d
            .frames
            .iter()
            .map(|&(seq, raw)| {
                let preview = cpu_preview(&p, raw);
                let rgb16 = cpu_rgb16(&p, raw);
                // The same frame again must give the same bytes.
                assert_eq!(preview, cpu_preview(&p, raw), "frame {seq}: CPU preview");
                json!({
                    "sequence": seq,
                    "preview_rgba8": fnv1a64(&preview),
                    "rgb16": fnv1a64(&le_bytes(&rgb16)),
                })
            })
            .collect();
        sets.insert(name.into(), json!({ "frames": frames }));
    }
    out["tunings"] = Value::Object(sets);
    let file = "demo_cpu.json";
    if updating() {
        write_golden(file, &out);
        return;
    }
    compare(file, &read_golden(file), &out, &["preview_rgba8", "rgb16"]);
}

fn is_lavapipe(adapter: &str) -> bool {
    let a = adapter.to_ascii_lowercase();
    a.contains("llvmpipe") || a.contains("lavapipe")
}

#[test]
fn demo_session_on_the_gpu_matches_its_golden_hashes() {
    // A missing adapter panics here (always in CI); only ISP_SKIP_GPU_TESTS=1
    // outside CI skips, loudly.
    let Some(ctx) = context_for_tests() else {
        return;
    };
    let adapter = ctx.adapter_name();
    let g = GpuIsp::new(ctx).expect("pipelines build");
    let d = demo();
    let mut out = header(&d, "GPU fused preview RGBA8");
    out["adapter"] = json!(adapter);
    let mut stable = true;
    let mut worst_vs_cpu = 0u8;
    let mut sets = serde_json::Map::new();
    for (name, tuning) in tunings(&d) {
        let p = Arc::new(FrameParams::from_tuning(&tuning, d.format));
        let mut frames = Vec::new();
        for &(seq, raw) in &d.frames {
            let mut a = vec![0u8; d.format.pixels() * 4];
            let mut b = a.clone();
            g.preview(&p, raw, &mut a).unwrap();
            g.preview(&p, raw, &mut b).unwrap();
            if a != b {
                let n = a.iter().zip(&b).filter(|(x, y)| x != y).count();
                eprintln!("GPU output not bit-stable: tuning {name} frame {seq}: {n} bytes differ");
                stable = false;
            }
            let cpu = cpu_preview(&p, raw);
            let (i, d8) = a
                .iter()
                .zip(&cpu)
                .map(|(x, y)| x.abs_diff(*y))
                .enumerate()
                .max_by_key(|&(_, v)| v)
                .unwrap();
            worst_vs_cpu = worst_vs_cpu.max(d8);
            let w = p.format.width as usize;
            assert!(
                d8 <= GPU_TOLERANCE_LSB8,
                "GPU preview vs CPU, tuning {name} frame {seq}: pixel ({},{}) channel {} \
                 GPU {} vs CPU {} (> {GPU_TOLERANCE_LSB8} LSB) on {adapter}",
                (i / 4) % w,
                i / 4 / w,
                i % 4,
                a[i],
                cpu[i]
            );
            frames.push(json!({ "sequence": seq, "preview_rgba8": fnv1a64(&a) }));
        }
        sets.insert(name.into(), json!({ "frames": frames }));
    }
    eprintln!("GPU ({adapter}): bit-stable {stable}, worst |GPU - CPU| {worst_vs_cpu} LSB8");
    out["bit_stable"] = json!(stable);
    out["tunings"] = Value::Object(sets);
    let file = "demo_gpu_lavapipe.json";
    if updating() {
        assert!(
            is_lavapipe(&adapter),
            "{file} holds lavapipe's hashes; this adapter is {adapter}"
        );
        write_golden(file, &out);
        return;
    }
    let want = read_golden(file);
    let recorded = want["adapter"].as_str().unwrap_or_default();
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // CI runs on the adapter the hashes were recorded on: a different one
    // there (a Mesa update renaming lavapipe) must be seen, not skipped.
    assert!(
        !(in_ci && recorded != adapter),
        "{file} was recorded on `{recorded}`, CI's adapter is `{adapter}`: the golden hashes \
         cannot be compared; record them again on this adapter (ISP_UPDATE_GOLDEN=1) or \
         find why the adapter changed"
    );
    if recorded != adapter {
        eprintln!(
            "NOTE: {file} was recorded on `{recorded}`, this adapter is `{adapter}`: \
             hashes not compared; the frames were held to the CPU within \
             {GPU_TOLERANCE_LSB8} LSB instead"
        );
        return;
    }
    assert!(
        !(in_ci && (want["bit_stable"] != json!(true) || !stable)),
        "{file}: {adapter}'s output in CI is not bit-stable (recorded {}, now {stable}): the \
         golden hashes cannot be compared",
        want["bit_stable"]
    );
    if want["bit_stable"] != json!(true) || !stable {
        eprintln!(
            "NOTE: {adapter}'s output is not bit-stable (recorded {}, now {stable}): hashes \
             not compared; the frames were held to the CPU within {GPU_TOLERANCE_LSB8} LSB",
            want["bit_stable"]
        );
        return;
    }
    compare(file, &want, &out, &["preview_rgba8"]);
}
