//! FrameSource: where RAW frames come from. Implemented for synthetic scenes,
//! raw files, recorded sessions, and (in `v4l`-enabled builds, a later step)
//! live cameras. Sources deliver sensor bytes exactly as the sensor would.

pub mod camera;
pub mod dng;
pub mod raw_file;
pub mod session;
pub mod synthetic;

use crate::algorithms::Control;
use crate::types::{BayerOrder, FormatError, Packing, RawFormat};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Per-frame metadata as a sensor reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameMeta {
    pub sequence: u64,
    pub timestamp_ns: u64,
    pub exposure_us: f32,
    pub analogue_gain: f32,
    /// The device's controls in effect for this frame, by name (a camera's).
    #[serde(default)]
    pub controls: BTreeMap<String, f64>,
    /// Frames the device lost just before this one (a gap in its sequence).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_before: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{source_name}: bad format: {error}")]
    Format {
        source_name: String,
        error: FormatError,
    },
    #[error("{0}: seeking is not supported")]
    NoSeek(String),
    #[error("{0}")]
    Spec(String),
}

impl SourceError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        SourceError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        SourceError::Invalid {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Levels a source states for its samples (a DNG's tags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Levels {
    pub white: f32,
    /// `[R, Gr, Gb, B]`.
    pub black: [f32; 4],
}

/// A stream of RAW frames.
pub trait FrameSource: Send {
    /// A short name: `session:/path`, `synthetic:checker`, ...
    fn name(&self) -> String;
    fn format(&self) -> RawFormat;
    /// Frames available, or `None` for an endless (live) source.
    fn frame_count(&self) -> Option<u64>;
    /// Read the next frame's bytes into `dst` (`format().frame_bytes()` long).
    /// `Ok(None)` at the end of the stream.
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError>;
    /// The next frame in a buffer of `rm` that the source lends rather than
    /// copies (a camera's exported DMA-BUF; released, it goes back to the
    /// source). `Ok(None)`: read this frame with [`FrameSource::next_frame`]
    /// instead (the source cannot lend it, or the stream ended).
    fn next_lent(
        &mut self,
        _rm: &std::sync::Arc<crate::resource_manager::ResourceManager>,
    ) -> Result<Option<(crate::resource_manager::BufferRef, FrameMeta)>, SourceError> {
        Ok(None)
    }
    /// Jump so that the next frame read is `index`.
    fn seek(&mut self, _index: u64) -> Result<(), SourceError> {
        Err(SourceError::NoSeek(self.name()))
    }
    /// Whether each frame is a still of its own (a DNG, a single raw file):
    /// the engine then settles AWB and AE on the frame's own statistics
    /// before rendering it, as a raw developer does.
    fn stills(&self) -> bool {
        false
    }
    /// The white level and the black level per site (`[R, Gr, Gb, B]`)
    /// the source's files state (a DNG's WhiteLevel and BlackLevel), in
    /// the format's units; `None` where only the container's range is
    /// known.
    fn levels(&self) -> Option<Levels> {
        None
    }
    /// Whether frames arrive on their own clock (a camera) or as fast as read.
    fn is_live(&self) -> bool {
        false
    }
    /// Apply sensor controls (AE's exposure and gain). Sources without a
    /// sensor ignore them.
    fn set_controls(&mut self, _controls: &[Control]) -> Result<(), SourceError> {
        Ok(())
    }
    /// Frames per second the source paces at, if it does.
    fn fps(&self) -> Option<f32> {
        None
    }
    /// The sensor's ranges, steps and control delays, where the source
    /// knows them (a camera reads them off its controls).
    fn sensor_caps(&self) -> Option<crate::controls::SensorCaps> {
        None
    }
    /// The device writes issued since the last call, for the telemetry log.
    fn take_applied(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// The device's own controls (a camera's), with their current values.
    fn device_controls(&self) -> Vec<camera::controls::ControlInfo> {
        Vec::new()
    }
    /// Set one of [`FrameSource::device_controls`] by hand.
    fn set_device_control(&mut self, _id: u32, _value: i64) -> Result<(), SourceError> {
        Err(SourceError::Spec(format!(
            "{}: has no device controls",
            self.name()
        )))
    }
}

/// The [`FrameSource`] methods a wrapper of another source (a tee that
/// records, a replay of the last frame) passes on unchanged: `name`,
/// `format`, `frame_count`, `is_live`, `stills`, `levels`, `fps`, `set_controls`,
/// `sensor_caps`, `take_applied`, `device_controls`, `set_device_control`.
/// Used inside `impl FrameSource for Wrapper` with the field that holds the
/// inner source; the wrapper writes `next_frame` (and `seek`, `next_lent`
/// where it passes them on) itself.
#[macro_export]
macro_rules! forward_frame_source {
    ($inner:ident) => {
        fn name(&self) -> String {
            self.$inner.name()
        }
        fn format(&self) -> $crate::types::RawFormat {
            self.$inner.format()
        }
        fn frame_count(&self) -> Option<u64> {
            self.$inner.frame_count()
        }
        fn is_live(&self) -> bool {
            self.$inner.is_live()
        }
        fn stills(&self) -> bool {
            self.$inner.stills()
        }
        fn levels(&self) -> Option<$crate::sources::Levels> {
            self.$inner.levels()
        }
        fn fps(&self) -> Option<f32> {
            self.$inner.fps()
        }
        fn set_controls(
            &mut self,
            c: &[$crate::algorithms::Control],
        ) -> Result<(), $crate::sources::SourceError> {
            self.$inner.set_controls(c)
        }
        fn sensor_caps(&self) -> Option<$crate::controls::SensorCaps> {
            self.$inner.sensor_caps()
        }
        fn take_applied(&mut self) -> Vec<String> {
            self.$inner.take_applied()
        }
        fn device_controls(&self) -> Vec<$crate::sources::camera::controls::ControlInfo> {
            self.$inner.device_controls()
        }
        fn set_device_control(
            &mut self,
            id: u32,
            value: i64,
        ) -> Result<(), $crate::sources::SourceError> {
            self.$inner.set_device_control(id, value)
        }
    };
}

/// Geometry options for `raw:` and `synthetic:` sources.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bits: Option<u8>,
    pub bayer: Option<BayerOrder>,
    pub packed: bool,
    pub stride: Option<u32>,
    /// A camera's pixel format as a fourcc (`pRAA`, `RG10`, ...).
    pub fourcc: Option<String>,
    /// A camera's frame rate.
    pub fps: Option<f32>,
}

impl SourceOptions {
    fn format(&self, default: (u32, u32, u8)) -> RawFormat {
        let packing = if self.packed {
            Packing::Csi2
        } else {
            Packing::Plain
        };
        let mut f = RawFormat::new(
            self.width.unwrap_or(default.0),
            self.height.unwrap_or(default.1),
            self.bits.unwrap_or(default.2),
            self.bayer.unwrap_or_default(),
            packing,
        );
        if let Some(s) = self.stride {
            f.stride = s;
        }
        f
    }
}

/// Where the demo session is unpacked to (or found in a source checkout).
pub fn demo_session_dir() -> Result<PathBuf, SourceError> {
    session::demo_session_dir()
}

/// A source as the command line spells it, parsed once: nothing or `demo`
/// (the demo session), a session directory, `raw:PATH`, `synthetic:NAME`,
/// `v4l:/dev/videoN` (a camera), `dng:PATH` (a DNG file or a folder of
/// them; a folder given as a session with no `session.json` but DNG files
/// is one too).
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    Demo,
    Session(PathBuf),
    Raw(PathBuf),
    Dng(PathBuf),
    Synthetic(synthetic::Scene),
    Camera(PathBuf),
}

impl SourceSpec {
    pub fn parse(spec: Option<&str>) -> Result<SourceSpec, SourceError> {
        Ok(match spec {
            None | Some("demo") => SourceSpec::Demo,
            Some(s) if s.starts_with("raw:") => SourceSpec::Raw(PathBuf::from(&s[4..])),
            Some(s) if s.starts_with("dng:") => SourceSpec::Dng(PathBuf::from(&s[4..])),
            Some(s) if s.starts_with("v4l:") => SourceSpec::Camera(PathBuf::from(&s[4..])),
            Some(s) if s.starts_with("synthetic:") => {
                SourceSpec::Synthetic(synthetic::Scene::parse(&s[10..]).ok_or_else(|| {
                    SourceError::Spec(format!(
                        "{s}: unknown scene (known: {})",
                        synthetic::Scene::NAMES.join(", ")
                    ))
                })?)
            }
            Some(s) => SourceSpec::Session(PathBuf::from(s)),
        })
    }

    /// The DNG file or folder this spec names: `dng:PATH`, or a folder with
    /// DNG files and no session manifest.
    pub fn dng_path(&self) -> Option<PathBuf> {
        match self {
            SourceSpec::Dng(p) => Some(p.clone()),
            SourceSpec::Session(p) if is_dng_folder(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// The session directory this spec names, if it names one.
    pub fn session_dir(&self) -> Option<PathBuf> {
        match self {
            SourceSpec::Demo => demo_session_dir().ok(),
            SourceSpec::Session(p) if !is_dng_folder(p) => Some(p.clone()),
            _ => None,
        }
    }
}

/// A folder of DNG files that is not a recorded session.
fn is_dng_folder(p: &Path) -> bool {
    p.is_dir()
        && !p.join(session::MANIFEST).exists()
        && dng::dng_files(p).is_ok_and(|f| !f.is_empty())
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Demo => f.write_str("demo"),
            SourceSpec::Session(p) => write!(f, "{}", p.display()),
            SourceSpec::Raw(p) => write!(f, "raw:{}", p.display()),
            SourceSpec::Dng(p) => write!(f, "dng:{}", p.display()),
            SourceSpec::Synthetic(s) => write!(f, "synthetic:{}", s.name()),
            SourceSpec::Camera(p) => write!(f, "v4l:{}", p.display()),
        }
    }
}

/// The tuning a source comes with: a session's `tuning.json` (the demo
/// session has one); for DNGs, the default tuning with the first file's
/// levels, colour matrix, neutral and gain maps ([`dng::dng_tuning`]);
/// else `None`.
pub fn session_tuning(
    spec: Option<&str>,
) -> Option<Result<crate::tuning::Tuning, crate::tuning::TuningError>> {
    let spec = SourceSpec::parse(spec).ok()?;
    if let Some(dir) = spec.dng_path() {
        let img = dng::first_tags(&dir);
        return Some(
            img.map(|i| dng::dng_tuning(&i, &crate::tuning::Tuning::default()).0)
                .map_err(|e| crate::tuning::TuningError::Invalid {
                    origin: dir.display().to_string(),
                    message: e.to_string(),
                }),
        );
    }
    let dir = spec.session_dir()?;
    let p = dir.join("tuning.json");
    p.exists().then(|| crate::tuning::Tuning::load(&p))
}

/// What a source's own tuning could not take (a DNG's opcodes other than
/// GainMap, its black-level deltas, values out of range), one line each,
/// for the log.
pub fn source_notes(spec: Option<&str>) -> Vec<String> {
    let Some(p) = SourceSpec::parse(spec).ok().and_then(|s| s.dng_path()) else {
        return Vec::new();
    };
    match dng::first_tags(&p) {
        Ok(img) => dng::dng_tuning(&img, &crate::tuning::Tuning::default()).1,
        Err(_) => Vec::new(),
    }
}

/// Open a source from its command-line spelling (see [`SourceSpec`]).
pub fn open(spec: Option<&str>, opts: &SourceOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    open_spec(&SourceSpec::parse(spec)?, opts)
}

/// Open a parsed source.
pub fn open_spec(
    spec: &SourceSpec,
    opts: &SourceOptions,
) -> Result<Box<dyn FrameSource>, SourceError> {
    match spec {
        SourceSpec::Demo => Ok(Box::new(
            session::SessionSource::open(&demo_session_dir()?)?,
        )),
        SourceSpec::Raw(path) => {
            let (Some(_), Some(_)) = (opts.width, opts.height) else {
                return Err(SourceError::Spec(format!(
                    "{spec}: a raw file needs --width and --height (and --bits, --bayer)"
                )));
            };
            Ok(Box::new(raw_file::RawFileSource::open(
                path,
                opts.format((0, 0, 10)),
            )?))
        }
        SourceSpec::Synthetic(scene) => {
            let fmt = opts.format((1280, 720, 10));
            fmt.validate().map_err(|error| SourceError::Format {
                source_name: spec.to_string(),
                error,
            })?;
            Ok(Box::new(synthetic::SyntheticSource::new(*scene, fmt)))
        }
        SourceSpec::Camera(path) => Ok(Box::new(camera::V4l2Source::open(
            path,
            &camera::CameraRequest {
                fourcc: opts.fourcc.clone(),
                width: opts.width,
                height: opts.height,
                fps: opts.fps,
            },
        )?)),
        SourceSpec::Dng(p) => Ok(Box::new(dng::DngSource::open(p)?)),
        SourceSpec::Session(p) => {
            if is_dng_folder(p) {
                Ok(Box::new(dng::DngSource::open(p)?))
            } else if p.is_dir() {
                Ok(Box::new(session::SessionSource::open(p)?))
            } else if p.exists() {
                Err(SourceError::Spec(format!(
                    "{spec}: not a session directory (for a raw file write raw:{spec})"
                )))
            } else {
                Err(SourceError::io(
                    p,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ))
            }
        }
    }
}

/// Every frame of a source (at most `max_frames`) averaged into one
/// capture for calibration, in sensor units; a DNG's own white and black
/// levels where the source is one.
pub fn read_capture(
    spec: &str,
    opts: &SourceOptions,
    max_frames: u64,
) -> Result<crate::calibrate::Capture, SourceError> {
    let parsed = SourceSpec::parse(Some(spec))?;
    let mut src = open_spec(&parsed, opts)?;
    if src.is_live() && max_frames == u64::MAX {
        return Err(SourceError::Spec(format!(
            "{spec}: a live source needs a frame count"
        )));
    }
    let fmt = src.format();
    let mut raw = vec![0u8; fmt.frame_bytes()];
    let mut acc: Vec<f64> = Vec::new();
    let mut last = None;
    let mut frames = 0u64;
    while frames < max_frames {
        let Some(meta) = src.next_frame(&mut raw)? else {
            break;
        };
        let c = crate::calibrate::Capture::from_frame(
            src.name(),
            &fmt,
            &raw,
            meta.exposure_us,
            meta.analogue_gain,
        )
        .ok_or_else(|| SourceError::Spec(format!("{spec}: a frame shorter than its format")))?;
        acc.resize(c.data.len(), 0.0);
        for (a, v) in acc.iter_mut().zip(&c.data) {
            *a += *v as f64;
        }
        last = Some(c);
        frames += 1;
    }
    let Some(mut c) = last else {
        return Err(SourceError::Spec(format!("{spec}: no frames")));
    };
    c.data = acc
        .into_iter()
        .map(|v| (v / frames as f64) as f32)
        .collect();
    c.frames = frames as usize;
    Ok(match src.levels() {
        Some(l) => c.with_levels(l.white, l.black),
        None => c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_parsed_once_and_spells_itself_back() {
        for (text, want) in [
            (None, SourceSpec::Demo),
            (Some("demo"), SourceSpec::Demo),
            (Some("raw:/tmp/f.raw"), SourceSpec::Raw("/tmp/f.raw".into())),
            (Some("dng:/tmp/a.dng"), SourceSpec::Dng("/tmp/a.dng".into())),
            (
                Some("synthetic:zoneplate"),
                SourceSpec::Synthetic(synthetic::Scene::ZonePlate),
            ),
            (Some("some/dir"), SourceSpec::Session("some/dir".into())),
            (
                Some("v4l:/dev/video42"),
                SourceSpec::Camera("/dev/video42".into()),
            ),
        ] {
            let got = SourceSpec::parse(text).unwrap();
            assert_eq!(got, want);
            assert_eq!(SourceSpec::parse(Some(&got.to_string())).unwrap(), want);
        }
        let e = SourceSpec::parse(Some("synthetic:nope")).unwrap_err();
        assert!(e.to_string().contains("unknown scene"), "{e}");
        // Only the demo and a directory name a session (and its tuning).
        assert!(SourceSpec::Raw("x".into()).session_dir().is_none());
        assert_eq!(
            SourceSpec::Session("d".into()).session_dir(),
            Some(PathBuf::from("d"))
        );
        assert!(session_tuning(Some("synthetic:flat")).is_none());
    }
}
