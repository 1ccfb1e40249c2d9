//! The tuning file: one versioned JSON document of named stage blocks and a
//! list of named algorithm blocks (libipa style). Loading names the exact
//! field that is wrong. The [`ParamStore`] holds the live parameters; every
//! update gets a new version, and frames take one snapshot at their start,
//! so a change lands on a frame boundary and every output names its version.

use crate::algorithms::{self, Algorithm, SensorConfig};
pub use crate::stages::StageParams;
use crate::stages::tone::ToneLut;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The schema this build reads and writes.
pub const TUNING_SCHEMA: u32 = 1;

/// One algorithm block: `{"name": "awb.grey_world", "enabled": true, "params": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlgorithmBlock {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub params: serde_json::Value,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    pub schema_version: u32,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub stages: StageParams,
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<AlgorithmBlock>,
    /// The sensor's noise, calibrated (`isp calibrate`): the burst merge
    /// takes it instead of its built-in model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<SensorNoise>,
    /// The folder the tuning file was read from (not part of the file): a
    /// relative file an algorithm block names is looked for there first.
    #[serde(skip)]
    pub folder: Folder,
}

/// Where a tuning was read from. Not part of its value: tunings with the
/// same values are equal wherever they came from.
#[derive(Clone, Debug, Default)]
pub struct Folder(pub Option<std::path::PathBuf>);

impl PartialEq for Folder {
    fn eq(&self, _: &Folder) -> bool {
        true
    }
}

/// Noise of the sensor at unity analogue gain, per site `[R, Gr, Gb, B]`:
/// a sample `s` DN above black varies by `shot * s + read` DN² (sensor
/// units).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorNoise {
    pub shot: [f32; 4],
    pub read: [f32; 4],
}

impl SensorNoise {
    /// The sites' mean model.
    pub fn mean(&self) -> (f32, f32) {
        (
            self.shot.iter().sum::<f32>() / 4.0,
            self.read.iter().sum::<f32>() / 4.0,
        )
    }
    /// Into the defect pixel stage of a frame of `format` at analogue gain
    /// `gain` (its threshold by the noise at each pixel's level).
    pub fn resolve_into(
        &self,
        stages: &mut StageParams,
        format: &crate::types::RawFormat,
        gain: f32,
    ) {
        let k = stages.black_level.resolve(format.max_value());
        let scale = k.iter().map(|(_, s)| s).sum::<f32>() / 4.0;
        let (shot, read) = self.mean();
        stages.defect_pixel =
            std::mem::take(&mut stages.defect_pixel).with_noise(shot, read, gain, scale);
    }

    pub fn check(&self) -> Result<(), String> {
        match self
            .shot
            .iter()
            .chain(&self.read)
            .find(|v| !(v.is_finite() && **v >= 0.0))
        {
            Some(v) => Err(format!("{v} is not a finite value >= 0")),
            None => Ok(()),
        }
    }
}

fn default_algorithms() -> Vec<AlgorithmBlock> {
    vec![
        AlgorithmBlock {
            name: algorithms::awb::GreyWorldAwb::NAME.into(),
            enabled: true,
            params: serde_json::json!({}),
        },
        AlgorithmBlock {
            name: algorithms::ae::MeanLuminanceAe::NAME.into(),
            enabled: true,
            params: serde_json::json!({}),
        },
    ]
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            schema_version: TUNING_SCHEMA,
            name: "default".into(),
            stages: StageParams::default(),
            algorithms: default_algorithms(),
            noise: None,
            folder: Folder::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    #[error("{origin}: cannot read: {source}")]
    Io {
        origin: String,
        source: std::io::Error,
    },
    #[error("{origin}: field `{field}`: {message}")]
    Field {
        origin: String,
        field: String,
        message: String,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{origin}: schema_version {found} is not supported (this build reads {TUNING_SCHEMA})")]
    Schema { origin: String, found: u32 },
}

impl Tuning {
    /// Parse and check a tuning document; `origin` (a file name) goes into errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Tuning, TuningError> {
        Self::from_json_in(text, origin, None)
    }

    /// [`Tuning::from_json`] for a document read from the folder `dir`: a
    /// relative file an algorithm block names (`params.model`) is taken
    /// from that folder when it is there (a tuning file and its model kept
    /// side by side), else from the working directory.
    pub fn from_json_in(
        text: &str,
        origin: &str,
        dir: Option<&Path>,
    ) -> Result<Tuning, TuningError> {
        // Read as a value first (serde_json refuses nesting past 128 levels
        // at once), so that its shape can be held to the schema's: a block
        // written as an array (`"white_balance": []`), which serde's derive
        // would take as a list of the fields and fill with defaults, is
        // refused by name.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| TuningError::Field {
                origin: origin.to_string(),
                field: "(document)".into(),
                message: e.to_string(),
            })?;
        let schema = serde_json::to_value(Tuning::default()).unwrap_or_default();
        if let Some(field) = array_for_object(&value, &schema, String::new()) {
            return Err(TuningError::Field {
                origin: origin.to_string(),
                field,
                message: "an object ({...}) is expected here, not an array".into(),
            });
        }
        let t: Tuning = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            TuningError::Field {
                origin: origin.to_string(),
                field: if field == "." {
                    "(document)".into()
                } else {
                    field
                },
                message: e.into_inner().to_string(),
            }
        })?;
        if t.schema_version != TUNING_SCHEMA {
            return Err(TuningError::Schema {
                origin: origin.to_string(),
                found: t.schema_version,
            });
        }
        let mut t = t;
        t.folder = Folder(dir.map(Path::to_path_buf));
        t.check(origin)?;
        Ok(t)
    }

    /// A block's parameters as its algorithm reads them: a relative
    /// `model` path that names a file in [`Tuning::folder`] becomes that
    /// file's path (the tuning itself keeps the path as written, so it
    /// saves as it was read).
    pub fn block_params<'b>(
        &self,
        b: &'b AlgorithmBlock,
    ) -> std::borrow::Cow<'b, serde_json::Value> {
        let beside = self.folder.0.as_deref().and_then(|dir| {
            let rel = Path::new(b.params.get("model")?.as_str()?);
            let p = dir.join(rel);
            (rel.is_relative() && !rel.as_os_str().is_empty() && p.is_file()).then_some(p)
        });
        match beside {
            Some(p) => {
                let mut v = b.params.clone();
                v["model"] = serde_json::Value::String(p.display().to_string());
                std::borrow::Cow::Owned(v)
            }
            None => std::borrow::Cow::Borrowed(&b.params),
        }
    }

    pub fn load(path: &Path) -> Result<Tuning, TuningError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TuningError::Io {
            origin: origin.clone(),
            source: e,
        })?;
        Self::from_json_in(&text, &origin, path.parent())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Write atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<(), TuningError> {
        let origin = path.display().to_string();
        crate::image_io::write_atomic(path, (self.to_json() + "\n").as_bytes())
            .map_err(|e| TuningError::Io { origin, source: e })
    }

    /// Value checks that the types alone cannot express.
    pub fn check(&self, origin: &str) -> Result<(), TuningError> {
        let s = &self.stages;
        let field = |f: &str, r: Result<(), String>| {
            r.map_err(|m| TuningError::Field {
                origin: origin.to_string(),
                field: f.to_string(),
                message: m,
            })
        };
        field("stages.black_level", s.black_level.check(u16::MAX))?;
        field("stages.lens_shading", s.lens_shading.check())?;
        field("stages.white_balance.gains", s.white_balance.check())?;
        field("stages.ccm.matrix", s.ccm.check())?;
        field("stages.tone", s.tone.check())?;
        field("stages.highlights", s.highlights.check())?;
        field("stages.stats", s.stats.check())?;
        // Every described field against its range, in one place (the same
        // descriptions the studio draws its sliders from).
        let spelled = serde_json::to_value(s).unwrap_or_default();
        for (path, fields) in crate::stages::fields::blocks() {
            let block = path
                .strip_prefix("stages.")
                .unwrap_or(path)
                .split('.')
                .try_fold(&spelled, |v, k| v.get(k));
            if let Some(block) = block {
                crate::stages::fields::check_block(block, fields).map_err(|(name, m)| {
                    TuningError::Field {
                        origin: origin.to_string(),
                        field: format!("{path}.{name}"),
                        message: m,
                    }
                })?;
            }
        }
        if let Some(n) = &self.noise {
            field("noise", n.check())?;
        }
        for (i, b) in self.algorithms.iter().enumerate() {
            let mut a = algorithms::create(&b.name).ok_or_else(|| TuningError::Field {
                origin: origin.to_string(),
                field: format!("algorithms[{i}].name"),
                message: format!(
                    "unknown algorithm `{}` (known: {})",
                    b.name,
                    algorithms::NAMES.join(", ")
                ),
            })?;
            a.init(&self.block_params(b))
                .map_err(|e| TuningError::Field {
                    origin: origin.to_string(),
                    field: format!("algorithms[{i}].params{}", e.field),
                    message: e.message,
                })?;
        }
        Ok(())
    }

    /// Instantiate the enabled algorithms, configured for `sensor`.
    pub fn algorithms(&self, sensor: &SensorConfig) -> Vec<Box<dyn Algorithm>> {
        self.algorithms
            .iter()
            .filter(|b| b.enabled)
            .filter_map(|b| {
                let mut a = algorithms::create(&b.name)?;
                a.init(&self.block_params(b)).ok()?;
                a.configure(sensor);
                Some(a)
            })
            .collect()
    }
}

/// The path of the first place where `v` holds an array and `schema` (the
/// default tuning, as JSON) an object; algorithm blocks are held to the
/// block's shape, their `params` to an object.
fn array_for_object(
    v: &serde_json::Value,
    schema: &serde_json::Value,
    path: String,
) -> Option<String> {
    use serde_json::Value;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (v, schema) {
        (Value::Array(_), Value::Object(_)) => Some(if path.is_empty() {
            "(document)".into()
        } else {
            path.clone()
        }),
        (Value::Object(o), Value::Object(so)) => o.iter().find_map(|(k, x)| {
            let sub = match (k.as_str(), path.as_str()) {
                // A block's params are the algorithm's to describe: an
                // object, whatever it holds.
                ("params", p) if p.starts_with("algorithms[") => {
                    return x.is_array().then(|| join(k));
                }
                _ => so.get(k)?,
            };
            array_for_object(x, sub, join(k))
        }),
        (Value::Array(a), Value::Array(sa)) => {
            let first = sa.first()?;
            a.iter()
                .enumerate()
                .find_map(|(i, x)| array_for_object(x, first, format!("{path}[{i}]")))
        }
        _ => None,
    }
}

/// One version of the parameters with everything derived from it.
pub struct ParamSet {
    pub version: u64,
    pub tuning: Arc<Tuning>,
    pub lut: Arc<ToneLut>,
    pub algorithms: Arc<Vec<Box<dyn Algorithm>>>,
}

impl Clone for ParamSet {
    fn clone(&self) -> Self {
        ParamSet {
            version: self.version,
            tuning: self.tuning.clone(),
            lut: self.lut.clone(),
            algorithms: self.algorithms.clone(),
        }
    }
}

impl std::fmt::Debug for ParamSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParamSet(v{})", self.version)
    }
}

/// The parameters of one frame: a version's stage blocks after the
/// algorithms' `prepare` (e.g. AWB's gains), plus the shared derived data.
#[derive(Debug, Clone)]
pub struct FrameParams {
    pub version: u64,
    /// The frame's RAW format.
    pub format: crate::types::RawFormat,
    /// Slow path: write linear 16-bit (no tone curve).
    pub linear_output: bool,
    pub stages: StageParams,
    pub lut: Arc<ToneLut>,
    pub algorithms: Arc<Vec<Box<dyn Algorithm>>>,
}

impl FrameParams {
    /// The fused fast path's view of these parameters.
    pub fn fast(&self) -> crate::stages::fused::FastParams<'_> {
        crate::stages::fused::FastParams::of(&self.stages, self.format.bayer, &self.lut)
    }

    /// A frame's parameters straight from a tuning (no algorithm has
    /// prepared them): for benches, tests and one-off processing.
    pub fn from_tuning(t: &Tuning, format: crate::types::RawFormat) -> FrameParams {
        let mut stages = t.stages.clone();
        if let Some(n) = &t.noise {
            n.resolve_into(&mut stages, &format, 1.0);
        }
        FrameParams {
            version: 0,
            format,
            linear_output: false,
            stages,
            lut: Arc::new(ToneLut::build(&t.stages.tone)),
            algorithms: Arc::new(t.algorithms(&SensorConfig::default())),
        }
    }
}

/// The live parameters.
#[derive(Debug)]
pub struct ParamStore {
    current: RwLock<ParamSet>,
    /// What the algorithms are configured for.
    sensor: RwLock<SensorConfig>,
}

impl ParamStore {
    /// Parameters for the default sensor description.
    pub fn new(tuning: Tuning) -> Self {
        Self::for_sensor(tuning, SensorConfig::default())
    }

    /// Parameters whose algorithms are configured for `sensor` (every
    /// version's, not only the first).
    pub fn for_sensor(tuning: Tuning, sensor: SensorConfig) -> Self {
        let lut = Arc::new(ToneLut::build(&tuning.stages.tone));
        ParamStore {
            sensor: RwLock::new(sensor),
            current: RwLock::new(ParamSet {
                version: 1,
                algorithms: Arc::new(tuning.algorithms(&sensor)),
                tuning: Arc::new(tuning),
                lut,
            }),
        }
    }

    /// The current version (cheap: a few `Arc` clones).
    pub fn snapshot(&self) -> ParamSet {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn version(&self) -> u64 {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .version
    }

    /// Replace the parameters; the next frame to start uses them. Returns the
    /// version in effect: a new one when anything changed, the same one when
    /// nothing did. Invalid parameters are refused and the old ones stay.
    pub fn update(&self, tuning: Tuning) -> Result<u64, TuningError> {
        tuning.check("update")?;
        let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
        // Only a change makes a version: the same values again (a widget
        // set to the value it had) keep the one in effect.
        if *cur.tuning == tuning {
            return Ok(cur.version);
        }
        let lut = if tuning.stages.tone == cur.tuning.stages.tone {
            cur.lut.clone()
        } else {
            Arc::new(ToneLut::build(&tuning.stages.tone))
        };
        let algorithms = if tuning.algorithms == cur.tuning.algorithms {
            cur.algorithms.clone()
        } else {
            Arc::new(tuning.algorithms(&self.sensor()))
        };
        *cur = ParamSet {
            version: cur.version + 1,
            tuning: Arc::new(tuning),
            lut,
            algorithms,
        };
        Ok(cur.version)
    }

    /// The sensor the algorithms are configured for.
    pub fn sensor(&self) -> SensorConfig {
        *self.sensor.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Configure the algorithms for another sensor (a camera read its
    /// ranges off its controls): a new version whose algorithms are built
    /// for it, and every later version's too. The same sensor again changes
    /// nothing. Returns the version in effect.
    pub fn set_sensor(&self, sensor: SensorConfig) -> u64 {
        let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut s = self.sensor.write().unwrap_or_else(|p| p.into_inner());
        if *s == sensor {
            return cur.version;
        }
        *s = sensor;
        *cur = ParamSet {
            version: cur.version + 1,
            algorithms: Arc::new(cur.tuning.algorithms(&sensor)),
            tuning: cur.tuning.clone(),
            lut: cur.lut.clone(),
        };
        cur.version
    }

    /// Change the parameters with a closure (a slider's edit).
    pub fn edit(&self, f: impl FnOnce(&mut Tuning)) -> Result<u64, TuningError> {
        let mut t = (*self.snapshot().tuning).clone();
        f(&mut t);
        self.update(t)
    }
}

#[cfg(test)]
mod tests;
