//! Recorded sessions: a directory with `session.json` and one file per frame.
//!
//! ```text
//! session.json    manifest: schema_version, format, source, complete, frames[]
//! frames.jsonl    journal: one line per frame, appended as frames are written
//! frames/000000.raw ...   the sensor bytes of each frame, exactly as captured
//! tuning.json     optional: the tuning the session was recorded with
//! ```
//!
//! Crash safety: each frame file is written to a temporary name, synced and
//! renamed, then its journal line is appended and synced. `finish` rewrites
//! `session.json` atomically with every frame and `complete: true`. A reader
//! of an unfinished session (recorder killed) takes the journal up to its last
//! whole line whose frame file is complete: everything up to the last
//! complete frame is kept. CRC-32 per frame catches corruption.

use super::{FrameMeta, FrameSource, SourceError};
use crate::types::RawFormat;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SESSION_SCHEMA: u32 = 1;
pub const MANIFEST: &str = "session.json";
pub const JOURNAL: &str = "frames.jsonl";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameEntry {
    #[serde(flatten)]
    pub meta: FrameMeta,
    /// Path relative to the session directory.
    pub file: String,
    pub bytes: u64,
    pub crc32: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    pub format: RawFormat,
    #[serde(default)]
    pub source: String,
    pub complete: bool,
    #[serde(default)]
    pub frames: Vec<FrameEntry>,
}

fn parse_manifest(path: &Path) -> Result<Manifest, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::io(path, e))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let m: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
        SourceError::invalid(
            path,
            format!("corrupt manifest at `{}`: {}", e.path(), e.inner()),
        )
    })?;
    if m.schema_version != SESSION_SCHEMA {
        return Err(SourceError::invalid(
            path,
            format!(
                "schema_version {} is not supported (this build reads {SESSION_SCHEMA})",
                m.schema_version
            ),
        ));
    }
    m.format
        .validate()
        .map_err(|e| SourceError::invalid(path, format!("bad format: {e}")))?;
    Ok(m)
}

/// Open a session and list its readable frames.
pub fn read_manifest(dir: &Path) -> Result<Manifest, SourceError> {
    let mpath = dir.join(MANIFEST);
    if !dir.is_dir() {
        return Err(SourceError::invalid(dir, "not a session directory"));
    }
    if !mpath.exists() {
        return Err(SourceError::invalid(
            dir,
            format!("not a session: no {MANIFEST}"),
        ));
    }
    let mut m = parse_manifest(&mpath)?;
    if !m.complete {
        // An unfinished recording: recover the frames from the journal.
        m.frames.clear();
        let jpath = dir.join(JOURNAL);
        let text = std::fs::read(&jpath).unwrap_or_default();
        let fb = m.format.frame_bytes() as u64;
        for line in text.split(|&b| b == b'\n') {
            // A last line without its newline was cut mid-write; so was a bad one.
            let Ok(e) = serde_json::from_slice::<FrameEntry>(line) else {
                break;
            };
            let ok = std::fs::metadata(dir.join(&e.file))
                .map(|md| md.len() == fb)
                .unwrap_or(false);
            if !ok || e.bytes != fb {
                break;
            }
            m.frames.push(e);
        }
    }
    Ok(m)
}

/// `Ok` when `path`, every link resolved, lies inside `dir` (resolved too):
/// a frame file that is a link to a file elsewhere (`/etc/shadow`) is
/// refused before it is opened, as a `..` in the manifest is.
pub(crate) fn inside(dir: &Path, path: &Path) -> Result<(), SourceError> {
    let real_dir = dir.canonicalize().map_err(|e| SourceError::io(dir, e))?;
    match path.canonicalize() {
        Ok(real) if real.starts_with(&real_dir) => Ok(()),
        Ok(_) => Err(SourceError::invalid(
            path,
            format!("a link to a file outside {}: refused", dir.display()),
        )),
        Err(e) => Err(SourceError::io(path, e)),
    }
}

/// Plays a recorded session.
#[derive(Debug)]
pub struct SessionSource {
    dir: PathBuf,
    manifest: Manifest,
    next: usize,
}

impl SessionSource {
    pub fn open(dir: &Path) -> Result<Self, SourceError> {
        let manifest = read_manifest(dir)?;
        let fb = manifest.format.frame_bytes() as u64;
        for (i, f) in manifest.frames.iter().enumerate() {
            if f.bytes != fb {
                return Err(SourceError::invalid(
                    dir,
                    format!(
                        "frame {i} ({}) is listed with {} bytes, {} needs {fb}",
                        f.file,
                        f.bytes,
                        manifest.format.describe()
                    ),
                ));
            }
            if f.file.contains("..") || Path::new(&f.file).is_absolute() {
                return Err(SourceError::invalid(
                    dir,
                    format!("frame {i}: file `{}` lies outside the session", f.file),
                ));
            }
        }
        if manifest.frames.is_empty() {
            return Err(SourceError::invalid(
                dir,
                "the session holds no frames (a recording that ended before its first frame)",
            ));
        }
        Ok(SessionSource {
            dir: dir.to_path_buf(),
            manifest,
            next: 0,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The session's own tuning file, if it has one.
    pub fn tuning_path(&self) -> Option<PathBuf> {
        let p = self.dir.join("tuning.json");
        p.exists().then_some(p)
    }

    /// Read frame `i` into `dst`, checking size and CRC.
    pub fn read_frame(&self, i: usize, dst: &mut [u8]) -> Result<FrameMeta, SourceError> {
        let e = self
            .manifest
            .frames
            .get(i)
            .ok_or_else(|| SourceError::invalid(&self.dir, format!("no frame {i}")))?;
        let path = self.dir.join(&e.file);
        inside(&self.dir, &path)?;
        let data = std::fs::read(&path).map_err(|err| SourceError::io(&path, err))?;
        let fb = self.manifest.format.frame_bytes();
        if data.len() != fb {
            return Err(SourceError::invalid(
                &path,
                format!(
                    "frame {i} is truncated: {} bytes, {} needs {fb}",
                    data.len(),
                    self.manifest.format.describe()
                ),
            ));
        }
        let crc = crc32fast::hash(&data);
        if crc != e.crc32 {
            return Err(SourceError::invalid(
                &path,
                format!(
                    "frame {i} is corrupt: CRC-32 {crc:08x}, manifest says {:08x}",
                    e.crc32
                ),
            ));
        }
        dst[..fb].copy_from_slice(&data);
        Ok(e.meta.clone())
    }
}

impl FrameSource for SessionSource {
    fn name(&self) -> String {
        format!("session:{}", self.dir.display())
    }
    fn format(&self) -> RawFormat {
        self.manifest.format
    }
    fn frame_count(&self) -> Option<u64> {
        Some(self.manifest.frames.len() as u64)
    }
    /// A one-frame session: a still.
    fn stills(&self) -> bool {
        self.manifest.frames.len() == 1
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        if self.next >= self.manifest.frames.len() {
            return Ok(None);
        }
        let m = self.read_frame(self.next, dst)?;
        self.next += 1;
        Ok(Some(m))
    }
    fn seek(&mut self, index: u64) -> Result<(), SourceError> {
        if index as usize >= self.manifest.frames.len() {
            return Err(SourceError::invalid(
                &self.dir,
                format!(
                    "frame {index} is past the last frame ({})",
                    self.manifest.frames.len()
                ),
            ));
        }
        self.next = index as usize;
        Ok(())
    }
}

/// Writes a session, crash-safely.
#[derive(Debug)]
pub struct SessionRecorder {
    dir: PathBuf,
    manifest: Manifest,
    journal: File,
}

fn sync_dir(dir: &Path) {
    // Make renames durable; failure only weakens durability, not correctness.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    crate::image_io::write_atomic(path, data)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

impl SessionRecorder {
    /// Start a session in `dir` (created; it must not hold a session already).
    pub fn create(dir: &Path, format: RawFormat, source: &str) -> Result<Self, SourceError> {
        format
            .validate()
            .map_err(|e| SourceError::invalid(dir, format!("bad format: {e}")))?;
        if dir.join(MANIFEST).exists() {
            return Err(SourceError::invalid(
                dir,
                "already holds a session; choose a new directory",
            ));
        }
        std::fs::create_dir_all(dir.join("frames")).map_err(|e| SourceError::io(dir, e))?;
        let manifest = Manifest {
            schema_version: SESSION_SCHEMA,
            format,
            source: source.to_string(),
            complete: false,
            frames: Vec::new(),
        };
        let mpath = dir.join(MANIFEST);
        write_atomic(
            &mpath,
            serde_json::to_string_pretty(&manifest)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(|e| SourceError::io(&mpath, e))?;
        let jpath = dir.join(JOURNAL);
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&jpath)
            .map_err(|e| SourceError::io(&jpath, e))?;
        Ok(SessionRecorder {
            dir: dir.to_path_buf(),
            manifest,
            journal,
        })
    }

    pub fn frames(&self) -> usize {
        self.manifest.frames.len()
    }

    /// Append one frame: its bytes exactly as the source delivered them.
    pub fn write_frame(&mut self, meta: &FrameMeta, data: &[u8]) -> Result<(), SourceError> {
        let fb = self.manifest.format.frame_bytes();
        if data.len() < fb {
            return Err(SourceError::invalid(
                &self.dir,
                format!("frame of {} bytes, the format needs {fb}", data.len()),
            ));
        }
        let data = &data[..fb];
        let file = format!("frames/{:06}.raw", self.manifest.frames.len());
        let path = self.dir.join(&file);
        write_atomic(&path, data).map_err(|e| SourceError::io(&path, e))?;
        let entry = FrameEntry {
            meta: meta.clone(),
            file,
            bytes: fb as u64,
            crc32: crc32fast::hash(data),
        };
        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
        line.push(b'\n');
        let jpath = self.dir.join(JOURNAL);
        self.journal
            .write_all(&line)
            .and_then(|_| self.journal.sync_data())
            .map_err(|e| SourceError::io(&jpath, e))?;
        self.manifest.frames.push(entry);
        Ok(())
    }

    /// Save the tuning in effect beside the frames.
    pub fn save_tuning(&self, tuning: &crate::tuning::Tuning) -> Result<(), SourceError> {
        let p = self.dir.join("tuning.json");
        tuning
            .save(&p)
            .map_err(|e| SourceError::invalid(&p, e.to_string()))
    }

    /// Close the session: the manifest lists every frame and says complete.
    pub fn finish(mut self) -> Result<Manifest, SourceError> {
        self.manifest.complete = true;
        let mpath = self.dir.join(MANIFEST);
        write_atomic(
            &mpath,
            serde_json::to_string_pretty(&self.manifest)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(|e| SourceError::io(&mpath, e))?;
        Ok(self.manifest)
    }
}

/// The demo session: `assets/demo_session` in a source checkout, else the
/// copy embedded in this binary, unpacked once under the cache directory.
pub fn demo_session_dir() -> Result<PathBuf, SourceError> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo_session");
    if checkout.join(MANIFEST).exists() {
        // Named without the `engine/..` detour wherever it is shown.
        return Ok(checkout.canonicalize().unwrap_or(checkout));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base
        .join("isp-studio")
        .join(format!("demo_session-{}", env!("CARGO_PKG_VERSION")));
    if dir.join(MANIFEST).exists() {
        return Ok(dir);
    }
    for (name, bytes) in crate::demo::FILES {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SourceError::io(parent, e))?;
        }
        crate::image_io::write_atomic(&p, bytes).map_err(|e| SourceError::io(&p, e))?;
    }
    if !dir.join(MANIFEST).exists() {
        return Err(SourceError::invalid(
            &dir,
            "this build embeds no demo session",
        ));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::synthetic::{Scene, SyntheticSource};
    use crate::types::{BayerOrder, Packing};

    fn record(dir: &Path, n: usize) -> (Vec<Vec<u8>>, Vec<FrameMeta>) {
        let fmt = RawFormat::new(32, 16, 10, BayerOrder::Grbg, Packing::Csi2);
        let mut src = SyntheticSource::new(Scene::Checker, fmt);
        let mut rec = SessionRecorder::create(dir, fmt, &src.name()).unwrap();
        let mut frames = Vec::new();
        let mut metas = Vec::new();
        for _ in 0..n {
            let mut buf = vec![0u8; fmt.frame_bytes()];
            let m = src.next_frame(&mut buf).unwrap().unwrap();
            rec.write_frame(&m, &buf).unwrap();
            frames.push(buf);
            metas.push(m);
        }
        rec.finish().unwrap();
        (frames, metas)
    }

    #[test]
    fn record_then_replay_is_exact() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let (frames, metas) = record(&dir, 4);
        let mut s = SessionSource::open(&dir).unwrap();
        assert_eq!(s.frame_count(), Some(4));
        let mut buf = vec![0u8; s.format().frame_bytes()];
        for (f, m) in frames.iter().zip(&metas) {
            let got = s.next_frame(&mut buf).unwrap().unwrap();
            assert_eq!(&buf, f);
            assert_eq!(&got, m);
        }
        assert!(s.next_frame(&mut buf).unwrap().is_none());
        s.seek(2).unwrap();
        s.next_frame(&mut buf).unwrap();
        assert_eq!(buf, frames[2]);
    }

    #[test]
    fn unfinished_session_reads_up_to_the_last_whole_frame() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        record(&dir, 3);
        // Pretend the recorder died: manifest not finished, a torn journal line,
        // and a half-written fourth frame.
        let m = parse_manifest(&dir.join(MANIFEST)).unwrap();
        let unfinished = Manifest {
            complete: false,
            frames: vec![],
            ..m
        };
        std::fs::write(
            dir.join(MANIFEST),
            serde_json::to_string(&unfinished).unwrap(),
        )
        .unwrap();
        let mut j = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL))
            .unwrap();
        j.write_all(br#"{"sequence":3,"timestamp_ns":1,"exposure_us":1.0,"analogue"#)
            .unwrap();
        std::fs::write(dir.join("frames/000003.raw"), [1u8, 2, 3]).unwrap();
        let s = SessionSource::open(&dir).unwrap();
        assert_eq!(s.frame_count(), Some(3));
    }

    #[test]
    fn corrupt_sessions_are_clear_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        record(&dir, 2);
        // Flip a byte in a frame: CRC mismatch names the frame.
        let f = dir.join("frames/000001.raw");
        let mut d = std::fs::read(&f).unwrap();
        d[5] ^= 0xFF;
        std::fs::write(&f, &d).unwrap();
        let mut s = SessionSource::open(&dir).unwrap();
        let mut buf = vec![0u8; s.format().frame_bytes()];
        s.next_frame(&mut buf).unwrap();
        let e = s.next_frame(&mut buf).unwrap_err().to_string();
        assert!(e.contains("000001.raw") && e.contains("corrupt"), "{e}");
        // Truncate it.
        std::fs::write(&f, &d[..10]).unwrap();
        let e = s.read_frame(1, &mut buf).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // Garbage manifest.
        std::fs::write(
            dir.join(MANIFEST),
            b"{\"schema_version\": 1, \"format\": 12}",
        )
        .unwrap();
        let e = SessionSource::open(&dir).unwrap_err().to_string();
        assert!(e.contains("session.json") && e.contains("format"), "{e}");
        // Not a session at all.
        let e = SessionSource::open(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("no session.json"), "{e}");
    }

    #[test]
    fn recorder_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        record(&dir, 1);
        let fmt = RawFormat::new(32, 16, 10, BayerOrder::Grbg, Packing::Csi2);
        let e = SessionRecorder::create(&dir, fmt, "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&dir.display().to_string()) && e.contains("already holds a session"),
            "{e}"
        );
    }
}
