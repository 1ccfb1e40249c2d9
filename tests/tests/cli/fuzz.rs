//! Seeded, bounded mutation fuzzers over the inputs the CLI reads: DNG files,
//! tuning files, libcamera tuning files, a raw file's geometry, and the
//! numbers `calibrate` and `capture` take. Each mutant must give a result or
//! an error naming its file or option, never a panic. A short run (a few
//! seconds) is part of CI; a long one is run by hand (README: Development):
//!
//! `ISP_FUZZ_ITERS=20000 ISP_FUZZ_SEED=7 cargo test -p isp-e2e --test cli fuzz -- --nocapture`

use crate::common::*;
use isp_engine::tuning::Tuning;
use std::path::{Path, PathBuf};

/// Mutants per fuzzer (`ISP_FUZZ_ITERS`; the CLI's option fuzzers run a
/// tenth of that, each mutant being a process).
fn iters() -> usize {
    std::env::var("ISP_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The run's seed (`ISP_FUZZ_SEED`), printed so a failure can be replayed.
fn seed(salt: u64) -> Rng {
    let s = std::env::var("ISP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x15b_5eed);
    println!("fuzz seed {s} (ISP_FUZZ_SEED)");
    Rng(s ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
}

/// xorshift64*: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Numbers that break parsers and sizes.
const NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "1",
    "2",
    "3",
    "65535",
    "65536",
    "4294967296",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "1e30",
    "99999999999999999999",
];

/// One to four edits of `b`: bytes flipped or set to edge values, a run
/// deleted, duplicated or cut off, a number replaced by an extreme one.
fn mutate(b: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut v = b.to_vec();
    for _ in 0..1 + r.below(4) {
        if v.is_empty() {
            v.push(b'{');
        }
        let at = r.below(v.len());
        match r.below(7) {
            0 => v[at] ^= 1 << r.below(8),
            1 => v[at] = *r.pick(&[0u8, 0xff, 0x7f, 0x80, b'[', b'{', b'"', b'-']),
            2 => {
                let n = r.below(64).min(v.len() - at);
                v.drain(at..at + n);
            }
            3 => {
                let n = r.below(256).min(v.len() - at);
                let chunk = v[at..at + n].to_vec();
                v.splice(at..at, chunk);
            }
            4 => v.truncate(at),
            5 => {
                // A number in text replaced by an extreme one.
                if let Some(d) = v[at..].iter().position(u8::is_ascii_digit) {
                    let s = at + d;
                    let e = s + v[s..].iter().take_while(|c| c.is_ascii_digit()).count();
                    v.splice(s..e, r.pick(&NUMBERS).bytes());
                }
            }
            _ => {
                // Little-endian 16/32-bit fields of a binary file set large.
                let n = (v.len() - at).min(4);
                for (k, x) in v[at..at + n].iter_mut().enumerate() {
                    *x = if k < 2 { 0xff } else { 0x7f };
                }
            }
        }
    }
    v
}

/// Run `f` on each of `iters()` mutants of the seeds: a panic fails the test
/// with the seed, the mutant's number and its file (kept).
fn fuzz(name: &str, salt: u64, seeds: &[Vec<u8>], f: impl Fn(&[u8], usize) -> Result<(), String>) {
    let mut r = seed(salt);
    let dir = tempfile::tempdir().unwrap();
    let (mut ok, mut refused) = (0, 0);
    for i in 0..iters() {
        let k = r.below(seeds.len());
        let m = mutate(&seeds[k], &mut r);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&m, i))) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => {
                let keep = std::env::temp_dir().join(format!("isp-fuzz-{name}-{i}"));
                let _ = std::fs::write(&keep, &m);
                panic!("{name}: mutant {i} panicked (kept at {})", keep.display());
            }
        }
    }
    drop(dir);
    println!("{name}: {ok} read, {refused} refused, 0 panics");
}

fn seeds_in(dir: &Path, ext: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn data(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/data")
        .join(sub)
}

#[test]
fn fuzz_dng_files() {
    let seeds = seeds_in(&data("dng"), "dng");
    assert!(seeds.len() >= 5);
    let dir = tempfile::tempdir().unwrap();
    fuzz("dng", 1, &seeds, |m, i| {
        let p = dir.path().join(format!("m{i}.dng"));
        std::fs::write(&p, m).unwrap();
        let r = isp_engine::dng::read(&p)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Err(e) = &r {
            assert!(
                e.contains(&format!("m{i}.dng")),
                "an error without its file: {e}"
            );
        }
        let _ = std::fs::remove_file(&p);
        r
    });
}

#[test]
fn fuzz_tuning_files() {
    let demo = std::fs::read(isp_e2e::repo_root().join("assets/demo_session/tuning.json")).unwrap();
    let seeds = vec![Tuning::default().to_json().into_bytes(), demo];
    fuzz("tuning", 2, &seeds, |m, _| {
        let text = String::from_utf8_lossy(m);
        let r = Tuning::from_json(&text, "fuzz.json")
            .map(|t| {
                // What is accepted prints and reads back the same.
                let again = Tuning::from_json(&t.to_json(), "again.json").unwrap();
                assert_eq!(again, t);
            })
            .map_err(|e| e.to_string());
        if let Err(e) = &r {
            assert!(e.contains("fuzz.json"), "an error without its file: {e}");
        }
        r
    });
}

#[test]
fn fuzz_libcamera_imports() {
    let mut seeds = seeds_in(&data("libcamera"), "json");
    seeds.extend(seeds_in(&data("libcamera"), "yaml"));
    assert!(seeds.len() >= 5);
    fuzz("libcamera", 3, &seeds, |m, _| {
        let text = String::from_utf8_lossy(m);
        let r = isp_engine::libcamera::import(&text, "fuzz.yaml", &Tuning::default(), 10, None)
            .map(|i| i.tuning.check("imported").unwrap())
            .map_err(|e| e.to_string());
        if let Err(e) = &r {
            assert!(e.contains("fuzz.yaml"), "an error without its file: {e}");
        }
        r
    });
}

/// `isp` with random option values: exit 0, 1 (an error naming what is
/// wrong) or 2 (a malformed command line), never a panic.
fn fuzz_cli(name: &str, salt: u64, args: impl Fn(&mut Rng) -> Vec<String>) {
    let mut r = seed(salt);
    for i in 0..(iters() / 10).max(5) {
        let a = args(&mut r);
        let run = isp(&a);
        assert!(
            !run.stderr.contains("panicked"),
            "{name} {i}: isp {a:?} panicked:\n{}",
            run.stderr
        );
        assert!(
            matches!(run.code, Some(0..=2)),
            "{name} {i}: isp {a:?} exited {:?}:\n{}",
            run.code,
            run.stderr
        );
        if run.code == Some(1) {
            assert!(
                run.stderr.contains("isp: error: "),
                "{name} {i}: isp {a:?}: an error without its line:\n{}",
                run.stderr
            );
        }
    }
}

#[test]
fn fuzz_raw_geometry() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("f.raw");
    write_raw16(&raw, 64, 48, |x, y| (x * 7 + y * 3) as u16);
    let spec = format!("raw:{}", s(&raw));
    fuzz_cli("raw geometry", 4, |r| {
        let mut a = vec!["info".to_string(), spec.clone()];
        for opt in ["--width", "--height", "--bits", "--stride"] {
            if r.below(4) > 0 {
                a.push(opt.into());
                a.push(r.pick(&["64", "48", "16", "10", "128"]).to_string());
            }
            if r.below(3) == 0 {
                a.push(opt.into());
                a.push(r.pick(&NUMBERS).to_string());
            }
        }
        if r.below(2) == 0 {
            a.push("--bayer".into());
            a.push(r.pick(&["rggb", "bggr", "xyzw", ""]).to_string());
        }
        if r.below(3) == 0 {
            a.push("--packed".into());
        }
        a
    });
}

#[test]
fn fuzz_calibrate_and_capture_options() {
    let tmp = tempfile::tempdir().unwrap();
    let out = s(&tmp.path().join("o"));
    let small = ["--width", "64", "--height", "48"];
    fuzz_cli("calibrate/capture options", 5, |r| {
        let n = r.pick(&NUMBERS).to_string();
        let m = r.pick(&NUMBERS).to_string();
        let (verb, src, opt, value) = match r.below(4) {
            0 => ("calibrate", "--flat=synthetic:flat@5000", "--max-gain", n),
            1 => ("calibrate", "--synthetic", "--grid", format!("{n}x{m}")),
            2 => ("capture", "synthetic:checker", "--burst", n),
            _ => (
                "capture",
                "synthetic:checker",
                "--bracket",
                format!("{n},0,{m}"),
            ),
        };
        let mut a: Vec<String> = [verb, src].iter().map(|x| x.to_string()).collect();
        if src != "--synthetic" {
            a.extend(small.iter().map(|x| x.to_string()));
        }
        a.extend([opt.to_string(), value, "--out".into(), out.clone()]);
        a
    });
}
