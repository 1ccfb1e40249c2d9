//! Taps: any stage's output for one raw frame, on demand (the inspector, the
//! viewer's before/after), on the GPU when the engine has one, else by the
//! CPU reference stages.

use super::{Engine, EngineError};
use crate::gpu::GpuError;
use crate::isp;
use crate::stages::chain::{Tap, TapImage};
use crate::tuning::{FrameParams, Tuning};
use crate::types::RawFormat;
use std::sync::Arc;

impl Engine {
    /// One stage's output ("tap") for a raw frame of `format`, with the
    /// current parameters (as the next frame would get them): computed on
    /// demand on the GPU when the engine has one, else by the CPU reference
    /// stages. For the inspector; the pipeline does not wait on it.
    pub fn tap(&self, raw: &[u8], format: RawFormat, tap: Tap) -> Result<TapImage, EngineError> {
        self.tap_with(raw, format, tap, None)
    }

    /// [`Engine::tap`] with another tuning (`None`: the current one), under
    /// the current 3A state: the viewer's "before" side renders the frame
    /// with the tuning as loaded.
    pub fn tap_with(
        &self,
        raw: &[u8],
        format: RawFormat,
        tap: Tap,
        tuning: Option<&Tuning>,
    ) -> Result<TapImage, EngineError> {
        let params = match tuning {
            None => self.frame_params(format).0,
            Some(t) => {
                t.check("tuning")
                    .map_err(|e| EngineError::Gpu(GpuError::Input(e.to_string())))?;
                let mut p = FrameParams::from_tuning(t, format);
                let ipa = self.ipa();
                for a in p.algorithms.iter() {
                    a.prepare(&ipa, &mut p.stages);
                }
                super::frame_adjustments(&ipa, &mut p.stages, &mut p.lut);
                p.linear_output = self.config.linear_output;
                Arc::new(p)
            }
        };
        match self.gpu.as_ref().filter(|g| g.active()) {
            Some(g) => Ok(g.isp.tap(&params, raw, tap)?),
            None => isp::reference_tap(&params, raw, tap)
                .map_err(|e| EngineError::Gpu(GpuError::Input(e.to_string()))),
        }
    }

    /// Every stage's output for one raw frame with the current parameters,
    /// in one pass of the CPU reference chain (the pixel inspector's values).
    pub fn taps(&self, raw: &[u8], format: RawFormat) -> Result<Vec<(Tap, TapImage)>, EngineError> {
        let (params, _) = self.frame_params(format);
        isp::reference_taps(&params, raw)
            .map_err(|e| EngineError::Gpu(GpuError::Input(e.to_string())))
    }
}
