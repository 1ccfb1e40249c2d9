//! AWB from a model: an ONNX model (loaded by the [`ModelManager`]) reads the
//! zone means of a frame and gives the white-balance gains. The model runs on
//! the background lane (the plan's `model` step, see `pipeline::plan`), every
//! `every` frames while that lane is free; its estimate folds into the 3A
//! context at `speed`, so the realtime lane never waits for it.
//!
//! The block names the file: `{"name": "awb.model", "params": {"model":
//! "assets/models/awb_shades_of_grey.onnx"}}` (a relative path is taken from
//! the tuning file's folder when the file is there, else from the working
//! directory: `Tuning::load`). The model's input shape sets the zone grid its
//! statistics are taken on.

use super::{AlgoInitError, AlgoResult, Algorithm, IpaContext};
use crate::models::{Model, ModelError, ModelManager, ModelRole};
use crate::stages::StageParams;
use crate::stages::fields::Field;
use crate::stages::lens_shading::LensShadingParams;
use crate::stages::stats::{self, Stats3A, StatsParams};
use crate::types::BayerOrder;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelAwbParams {
    /// The ONNX file (an AWB estimator from zone statistics).
    pub model: String,
    /// 0..=1: fraction of the way to the estimate per model run.
    pub speed: f32,
    /// Run the model on every n-th frame (when the background lane is free).
    pub every: u32,
    pub min_gain: f32,
    pub max_gain: f32,
}

impl ModelAwbParams {
    pub const FIELDS: &'static [Field] = &[
        Field::closed("speed", 0.0, 1.0),
        Field::closed("every", 1.0, 120.0),
        Field::closed("min_gain", 0.0, 64.0)
            .open_min()
            .log()
            .slider(0.1, 16.0),
        Field::closed("max_gain", 0.0, 64.0)
            .open_min()
            .log()
            .slider(0.1, 16.0),
    ];
}

impl Default for ModelAwbParams {
    fn default() -> Self {
        ModelAwbParams {
            model: String::new(),
            speed: 0.5,
            every: 4,
            min_gain: 0.25,
            max_gain: 8.0,
        }
    }
}

/// The rows a model stage reads of a frame `height` rows high: every
/// `step`-th pair of rows, so the Bayer phase is kept.
pub fn sampled_rows(height: usize, step: usize) -> Vec<usize> {
    (0..height / 2)
        .step_by(step.max(1))
        .flat_map(|q| [2 * q, 2 * q + 1])
        .collect()
}

/// What one run of a model stage gives the router.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEstimate {
    pub algorithm: &'static str,
    pub model: PathBuf,
    /// The gains the model asks for (clamped to the block's range).
    pub wb_gains: [f32; 3],
    pub speed: f32,
    /// Time in the model itself (tract), and in preparing its input.
    pub infer_ns: u64,
    pub input_ns: u64,
}

impl ModelEstimate {
    /// Move `ctx`'s gains towards the estimate (the engine's newest context,
    /// not the frame's: the estimate is late by design).
    pub fn fold(&self, ctx: &mut IpaContext) {
        super::approach(&mut ctx.wb_gains, self.wb_gains, self.speed);
        ctx.awb_active = true;
    }
}

/// An algorithm whose estimate comes from a model on the background lane.
pub trait ModelStage: Send + Sync {
    /// Run on every n-th frame.
    fn every(&self) -> u32;
    /// Take every n-th pair of rows of a frame `height` rows high (zone
    /// means need far fewer rows than a frame has; 1: every row).
    fn row_step(&self, _height: usize) -> usize {
        1
    }
    /// The model's estimate for a frame's mosaic (black level removed,
    /// 0..=65535), taking statistics with `stats`' saturation level; `None`
    /// when the frame holds nothing to estimate from (every zone clipped or
    /// black: the model gives no gains).
    /// The zone means are taken as after lens shading (`lsc`), as the
    /// other 3A statistics are ([`Stats3A::shade`]).
    fn estimate(
        &self,
        stats: &StatsParams,
        lsc: &LensShadingParams,
        bayer: BayerOrder,
        width: usize,
        height: usize,
        mosaic: &[u16],
    ) -> Result<Option<ModelEstimate>, ModelError>;
}

#[derive(Debug, Default)]
pub struct ModelAwb {
    pub p: ModelAwbParams,
    model: Option<Arc<Model>>,
}

impl ModelAwb {
    /// The name tuning files use.
    pub const NAME: &'static str = "awb.model";

    /// The model's input from statistics: zone means / 65535, channel-major.
    pub fn input(st: &Stats3A) -> Vec<f32> {
        let n = st.zones.len();
        let mut x = vec![0.0f32; 3 * n];
        for (i, z) in st.zones.iter().enumerate() {
            for c in 0..3 {
                x[c * n + i] = z.mean[c] / 65535.0;
            }
        }
        x
    }
}

impl ModelStage for ModelAwb {
    fn every(&self) -> u32 {
        self.p.every.max(1)
    }

    /// At least 8 quad rows per zone row of the model's grid.
    fn row_step(&self, height: usize) -> usize {
        let zones_y = self.model.as_ref().map_or(1, |m| m.input_shape()[2].max(1));
        (height / 2 / (zones_y * 8)).max(1)
    }

    fn estimate(
        &self,
        sp: &StatsParams,
        lsc: &LensShadingParams,
        bayer: BayerOrder,
        width: usize,
        height: usize,
        mosaic: &[u16],
    ) -> Result<Option<ModelEstimate>, ModelError> {
        let path = PathBuf::from(&self.p.model);
        let model = self.model.as_ref().ok_or_else(|| ModelError::Run {
            path: path.clone(),
            reason: "the block was never initialised".into(),
        })?;
        let t0 = std::time::Instant::now();
        let shape = model.input_shape();
        let zp = StatsParams {
            zones_x: shape[3],
            zones_y: shape[2],
            saturation: sp.saturation,
        };
        let mut st = stats::compute(&zp, bayer, width, height, mosaic);
        st.shade(lsc, bayer);
        let x = Self::input(&st);
        let t1 = std::time::Instant::now();
        let y = model.run(&x)?;
        let t2 = std::time::Instant::now();
        // No usable zone: the estimator's weights are all 0 and so are its
        // gains (a dark or clipped frame), which is no estimate, not a fault.
        if y.iter().all(|v| *v == 0.0) {
            return Ok(None);
        }
        let mut gains = [0.0f32; 3];
        for (g, v) in gains.iter_mut().zip(&y) {
            if !v.is_finite() || *v <= 0.0 {
                return Err(ModelError::Run {
                    path,
                    reason: format!("gains must be finite and positive, the model gave {y:?}"),
                });
            }
            *g = v.clamp(self.p.min_gain, self.p.max_gain);
        }
        Ok(Some(ModelEstimate {
            algorithm: Self::NAME,
            model: model.path().to_path_buf(),
            wb_gains: gains,
            speed: self.p.speed,
            infer_ns: (t2 - t1).as_nanos() as u64,
            input_ns: (t1 - t0).as_nanos() as u64,
        }))
    }
}

impl Algorithm for ModelAwb {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn init(&mut self, params: &serde_json::Value) -> Result<(), AlgoInitError> {
        let p: ModelAwbParams = super::parse_checked(params, ModelAwbParams::FIELDS)?;
        super::check_gain_range(p.min_gain, p.max_gain)?;
        if p.model.is_empty() {
            return Err(AlgoInitError {
                field: ".model".into(),
                message: "names no model file".into(),
            });
        }
        let model = ModelManager::shared()
            .load(std::path::Path::new(&p.model), ModelRole::AwbFromZones)
            .map_err(|e| AlgoInitError {
                field: ".model".into(),
                message: e.to_string(),
            })?;
        self.p = p;
        self.model = Some(model);
        Ok(())
    }
    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.p).unwrap_or_default()
    }
    fn prepare(&self, ctx: &IpaContext, stages: &mut StageParams) {
        stages.white_balance.gains = ctx.wb_gains;
    }
    fn process(&self, _stats: &Stats3A, r: &mut AlgoResult) {
        // The gains come from the model's runs (folded by the router); the
        // realtime lane only says an AWB is in charge.
        r.next.awb_active = true;
    }
    fn model_stage(&self) -> Option<&dyn ModelStage> {
        Some(self)
    }
}
