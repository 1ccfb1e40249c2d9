//! Running `isp` and reading what it wrote.

use isp_e2e::isp_bin;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One finished run of `isp`.
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Assert exit status 0; returns the run for further checks.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "isp {:?} failed\nstderr:\n{}\nstdout:\n{}",
            self.args,
            self.stderr,
            self.stdout
        );
        self
    }

    /// Assert a non-zero exit whose stderr holds every one of `needles`
    /// (and nothing on stdout); returns stderr.
    #[track_caller]
    pub fn fails(self, needles: &[&str]) -> String {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "isp {:?} should have failed (exit {:?})\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "isp {:?}: stderr lacks {n:?}:\n{}",
                self.args,
                self.stderr
            );
        }
        assert!(
            self.stdout.trim().is_empty(),
            "isp {:?} failed but printed to stdout:\n{}",
            self.args,
            self.stdout
        );
        self.stderr
    }

    /// An error of the CLI itself (not of argument parsing): exit status 1
    /// and one `isp: error: ` line holding every one of `needles`.
    #[track_caller]
    pub fn error(self, needles: &[&str]) -> String {
        assert_eq!(self.code, Some(1), "isp {:?}: {}", self.args, self.stderr);
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("isp: error: "))
            .unwrap_or_else(|| panic!("isp {:?}: no error line:\n{}", self.args, self.stderr))
            .to_string();
        self.fails(needles);
        line
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "isp {:?}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

/// Run `isp` with `args`.
pub fn isp<S: AsRef<str>>(args: &[S]) -> Run {
    isp_env(args, &[], &[])
}

/// Run `isp` with `args`, some variables removed and some set.
pub fn isp_env<S: AsRef<str>>(args: &[S], unset: &[&str], set: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    let mut c = Command::new(isp_bin());
    c.args(&args);
    for u in unset {
        c.env_remove(u);
    }
    for (k, v) in set {
        c.env(k, v);
    }
    let o = c.output().expect("run isp");
    Run {
        args,
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn s(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_string()
}

/// The sorted keys of a JSON object.
#[track_caller]
pub fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

#[track_caller]
pub fn assert_keys(v: &serde_json::Value, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(keys(v), want, "in {v}");
}

pub fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A decoded PNG: samples widened to u16 (8-bit ones stay 0..=255).
pub struct Png {
    pub width: usize,
    pub height: usize,
    pub color: png::ColorType,
    pub depth: png::BitDepth,
    pub samples: Vec<u16>,
}

impl Png {
    pub fn channels(&self) -> usize {
        self.color.samples()
    }
    /// Channel `c` of pixel (x, y).
    pub fn at(&self, x: usize, y: usize, c: usize) -> u16 {
        self.samples[(y * self.width + x) * self.channels() + c]
    }
}

#[track_caller]
pub fn read_png(path: &Path) -> Png {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .expect("PNG header");
    let mut buf = vec![0; r.output_buffer_size().expect("PNG size")];
    let info = r.next_frame(&mut buf).expect("PNG data");
    let bytes = &buf[..info.buffer_size()];
    let samples = match info.bit_depth {
        png::BitDepth::Sixteen => bytes
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect(),
        png::BitDepth::Eight => bytes.iter().map(|&b| b as u16).collect(),
        d => panic!("unexpected bit depth {d:?}"),
    };
    Png {
        width: info.width as usize,
        height: info.height as usize,
        color: info.color_type,
        depth: info.bit_depth,
        samples,
    }
}

/// The files in `dir` whose names end in `ext`, sorted.
pub fn files_with(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

/// `frame_000000.png` .. for `n` frames.
pub fn frame_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("frame_{i:06}.png")).collect()
}

/// Write a plain (16-bit little-endian) raw frame: `f(x, y)` per sample.
pub fn write_raw16(path: &Path, w: usize, h: usize, f: impl Fn(usize, usize) -> u16) {
    let mut b = Vec::with_capacity(w * h * 2);
    for y in 0..h {
        for x in 0..w {
            b.extend_from_slice(&f(x, y).to_le_bytes());
        }
    }
    std::fs::write(path, b).unwrap();
}

/// A tuning file: the built-in tuning changed by `edit`, with no 3A (so every
/// frame gets exactly these parameters).
pub fn tuning_file(dir: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut t = serde_json::to_value(isp_engine::tuning::Tuning::default()).unwrap();
    t["algorithms"] = serde_json::json!([]);
    edit(&mut t);
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    p
}

/// Telemetry rows of `out/telemetry.csv`, header checked.
pub fn telemetry(out: &Path) -> Vec<csv::StringRecord> {
    let mut csv = csv::Reader::from_path(out.join("telemetry.csv")).expect("telemetry.csv");
    let headers: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers, isp_engine::telemetry::CSV_COLUMNS);
    csv.records().map(|r| r.unwrap()).collect()
}

/// Rows of `kind` and `stage` with outcome `ok`.
pub fn ok_rows(rows: &[csv::StringRecord], kind: &str, stage: &str) -> usize {
    rows.iter()
        .filter(|r| &r[1] == kind && &r[3] == stage && &r[13] == "ok")
        .count()
}

/// A small file system (tmpfs of `bytes`) mounted on a fresh folder: a disk
/// that fills up, as a real one does (ENOSPC). Unmounted when dropped.
/// Mounting needs root: elsewhere (a developer's own machine, not CI) the
/// caller is told to skip, and says so.
pub struct SmallDisk {
    pub dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn new(bytes: usize) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root && std::env::var("CI").as_deref() != Ok("true") {
            eprintln!("SKIP: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "mount a {bytes}-byte tmpfs: {st}");
        Some(SmallDisk { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every file under the disk, relative, sorted.
    pub fn files(&self) -> Vec<String> {
        fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut v = Vec::new();
        walk(self.path(), self.path(), &mut v);
        v.sort();
        v
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A JSON array of arrays of numbers (a matrix) as rows of f64.
pub fn f64_rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}
