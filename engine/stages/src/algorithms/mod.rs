//! 3A algorithms in libcamera's libipa shape: each is a module with
//! `init(tuning block)`, `configure(sensor)`, `prepare(context, stage params)`
//! and `process(context, stats) -> next context + controls + metadata`,
//! registered by name. They hold configuration only; the moving state (the
//! [`IpaContext`]) travels with each frame, so the workers that run them stay
//! stateless and the dispatcher folds each result into the next frame's context.

pub mod ae;
pub mod awb;
pub mod awb_ct;
pub mod awb_model;

pub use awb_model::{ModelEstimate, ModelStage};

use crate::stages::StageParams;
use crate::stages::stats::Stats3A;
use serde::Serialize;

/// Makes one algorithm with its defaults.
pub type MakeAlgorithm = fn() -> Box<dyn Algorithm>;

/// Every algorithm by its registered name (the one place a name is
/// written: each algorithm's `NAME`), with how to make one.
pub const REGISTRY: [(&str, MakeAlgorithm); 4] = [
    (awb::GreyWorldAwb::NAME, || {
        Box::new(awb::GreyWorldAwb::default())
    }),
    (awb_ct::CtCurveAwb::NAME, || {
        Box::new(awb_ct::CtCurveAwb::default())
    }),
    (awb_model::ModelAwb::NAME, || {
        Box::new(awb_model::ModelAwb::default())
    }),
    (ae::MeanLuminanceAe::NAME, || {
        Box::new(ae::MeanLuminanceAe::default())
    }),
];

/// The names `create` knows.
pub const NAMES: [&str; REGISTRY.len()] = {
    let mut n = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        n[i] = REGISTRY[i].0;
        i += 1;
    }
    n
};

/// Build an algorithm by its registered name.
pub fn create(name: &str) -> Option<Box<dyn Algorithm>> {
    REGISTRY
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, make)| make())
}

/// Sensor facts an algorithm may adapt to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SensorConfig {
    pub min_exposure_us: f32,
    pub max_exposure_us: f32,
    pub min_gain: f32,
    pub max_gain: f32,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            min_exposure_us: 10.0,
            max_exposure_us: 33_000.0,
            min_gain: 1.0,
            max_gain: 16.0,
        }
    }
}

/// The per-frame 3A state: what the sensor was set to and the current gains.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct IpaContext {
    pub exposure_us: f32,
    pub analogue_gain: f32,
    pub wb_gains: [f32; 3],
    /// Whether an AWB algorithm drives `wb_gains`.
    pub awb_active: bool,
    pub frames_processed: u64,
    /// A gain on every channel after white balance: a still's exposure,
    /// settled on its own statistics (1 for every other source).
    pub digital_gain: f32,
    /// The illuminant's colour temperature (K) a CT-aware AWB estimated;
    /// 0 when unknown. Matrices calibrated per CT are interpolated at it.
    pub colour_temperature: f32,
    /// The newest engine frame whose algorithm results are folded in (the
    /// feeder's to wait on; not part of the reported state).
    #[serde(skip)]
    pub newest_frame: u64,
}

impl Default for IpaContext {
    fn default() -> Self {
        IpaContext {
            exposure_us: 10_000.0,
            analogue_gain: 1.0,
            wb_gains: [1.8, 1.0, 1.6],
            awb_active: false,
            frames_processed: 0,
            digital_gain: 1.0,
            colour_temperature: 0.0,
            newest_frame: 0,
        }
    }
}

/// A sensor control an algorithm asks for.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Control {
    ExposureUs(f32),
    AnalogueGain(f32),
}

/// What `process` produces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlgoResult {
    /// The context for the frames after this one.
    pub next: IpaContext,
    pub controls: Vec<Control>,
    pub metadata: Vec<(String, f64)>,
}

impl AlgoResult {
    pub fn new(ctx: &IpaContext) -> Self {
        AlgoResult {
            next: *ctx,
            controls: Vec::new(),
            metadata: Vec::new(),
        }
    }
    /// One line for telemetry.
    pub fn summary(&self) -> String {
        self.metadata
            .iter()
            .map(|(k, v)| format!("{k}={v:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A bad algorithm block: `field` is the path below `params`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlgoInitError {
    pub field: String,
    pub message: String,
}

/// Parse an algorithm's parameter block with the field path on error.
/// The parameters `name` runs with for the block `params` (defaults filled
/// in), or `None` for an unknown algorithm or a block it refuses.
pub fn effective_params(name: &str, params: &serde_json::Value) -> Option<serde_json::Value> {
    let mut a = create(name)?;
    a.init(params).ok()?;
    Some(a.params())
}

pub fn parse_params<T: serde::de::DeserializeOwned + Default>(
    v: &serde_json::Value,
) -> Result<T, AlgoInitError> {
    if v.is_null() {
        return Ok(T::default());
    }
    // serde's derive would read an array as the fields in order (and `[]`
    // as all defaults): a block's parameters are an object.
    if !v.is_object() {
        return Err(AlgoInitError {
            field: String::new(),
            message: match v {
                serde_json::Value::Array(_) => "an object ({...}) is expected, not an array".into(),
                _ => format!("an object ({{...}}) is expected, not {v}"),
            },
        });
    }
    serde_path_to_error::deserialize(v.clone()).map_err(|e| {
        let p = e.path().to_string();
        AlgoInitError {
            field: if p == "." {
                String::new()
            } else {
                format!(".{p}")
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// A tuning block's parameters read ([`parse_params`]) and every described
/// field of them checked against its range (`fields`: the block's
/// `FIELDS`), the first one out of range named in the error.
pub fn parse_checked<T: serde::de::DeserializeOwned + serde::Serialize + Default>(
    v: &serde_json::Value,
    fields: &[crate::stages::fields::Field],
) -> Result<T, AlgoInitError> {
    let p: T = parse_params(v)?;
    let spelled = serde_json::to_value(&p).unwrap_or_default();
    for f in fields {
        match spelled.get(f.name) {
            Some(serde_json::Value::Number(x)) => {
                check_field(fields, f.name, x.as_f64().unwrap_or(f64::NAN))?;
            }
            // A number too large for its field (1e39 read into an f32 is
            // infinite, which serde_json spells null).
            Some(serde_json::Value::Null) if v.get(f.name).is_some_and(|x| x.is_number()) => {
                return Err(AlgoInitError {
                    field: format!(".{}", f.name),
                    message: format!("{} does not fit this field", v[f.name]),
                });
            }
            _ => {}
        }
    }
    Ok(p)
}

/// A white-balance block's gain limits: `0 < min_gain <= max_gain`.
pub fn check_gain_range(min_gain: f32, max_gain: f32) -> Result<(), AlgoInitError> {
    if min_gain > 0.0 && min_gain <= max_gain {
        Ok(())
    } else {
        Err(AlgoInitError {
            field: ".min_gain".into(),
            message: "must be > 0 and <= max_gain".into(),
        })
    }
}

/// Move white-balance gains `speed` of the way towards `target`.
pub fn approach(gains: &mut [f32; 3], target: [f32; 3], speed: f32) {
    for (g, t) in gains.iter_mut().zip(target) {
        *g += (t - *g) * speed;
    }
}

/// Check `v` against the field `name` of `fields`, as an init error naming it.
pub fn check_field(
    fields: &[crate::stages::fields::Field],
    name: &str,
    v: f64,
) -> Result<(), AlgoInitError> {
    match fields.iter().find(|f| f.name == name) {
        Some(f) => f.check(v).map_err(|message| AlgoInitError {
            field: format!(".{name}"),
            message,
        }),
        None => Ok(()),
    }
}

/// The described fields of algorithm `name`'s parameter block.
pub fn fields(name: &str) -> &'static [crate::stages::fields::Field] {
    match name {
        n if n == awb::GreyWorldAwb::NAME => awb::GreyWorldParams::FIELDS,
        n if n == awb_ct::CtCurveAwb::NAME => awb_ct::CtCurveParams::FIELDS,
        n if n == ae::MeanLuminanceAe::NAME => ae::MeanLuminanceParams::FIELDS,
        n if n == awb_model::ModelAwb::NAME => awb_model::ModelAwbParams::FIELDS,
        _ => &[],
    }
}

/// The libipa algorithm interface.
pub trait Algorithm: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Read the algorithm's tuning block.
    fn init(&mut self, params: &serde_json::Value) -> Result<(), AlgoInitError>;
    /// The parameters in effect (defaults filled in), as the tuning block
    /// would spell them: what a tuning UI shows.
    fn params(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Adapt to the sensor.
    fn configure(&mut self, _sensor: &SensorConfig) {}
    /// Before a frame: write this frame's stage parameters from the context.
    fn prepare(&self, _ctx: &IpaContext, _stages: &mut StageParams) {}
    /// After a frame's statistics: update the context, ask for controls.
    fn process(&self, stats: &Stats3A, result: &mut AlgoResult);
    /// The part that runs a model on the background lane, if any.
    fn model_stage(&self) -> Option<&dyn ModelStage> {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn effective_params_fill_in_the_defaults() {
        let p = effective_params("ae.mean_luminance", &serde_json::json!({"speed": 0.25})).unwrap();
        assert_eq!(p["speed"], serde_json::json!(0.25));
        assert_eq!(p["target"], serde_json::json!(0.18_f32 as f64));
        assert!(p.get("max_step").is_some());
        let awb = effective_params("awb.grey_world", &serde_json::Value::Null).unwrap();
        assert_eq!(awb["max_gain"], serde_json::json!(8.0));
        // Unknown names and refused blocks have none.
        assert!(effective_params("ae.nope", &serde_json::Value::Null).is_none());
        assert!(
            effective_params("ae.mean_luminance", &serde_json::json!({"target": 2.0})).is_none()
        );
    }
}
