//! ModelManager: ONNX models loaded with `tract-onnx` (pure Rust, nothing is
//! fetched at run time), checked against the stage they serve, and run on the
//! background lane by that stage's worker.
//!
//! A model is loaded once per file (keyed by its path, size and modification
//! time, so a rewritten file loads again) and shared: a loaded [`Model`] is
//! immutable and `run` takes `&self`, so any worker may run it. Loading names
//! the file in every error: a missing file, a file tract cannot read as ONNX,
//! and a model whose input or output shape is not the one its [`ModelRole`]
//! needs (both shapes are in the message).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

/// What a model is for: fixes the shapes it must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelRole {
    /// Zone means of R, G, B (0..1) in, white-balance gains out:
    /// input `[1, 3, zones_y, zones_x]` (1..=64 each way), output `[1, 3]`.
    AwbFromZones,
}

impl ModelRole {
    pub fn name(self) -> &'static str {
        match self {
            ModelRole::AwbFromZones => "an AWB estimator from zone statistics",
        }
    }

    /// What the role needs, in words (for errors).
    pub fn expects(self) -> &'static str {
        match self {
            ModelRole::AwbFromZones => {
                "one f32 input [1, 3, zones_y, zones_x] (zones 1..=64 each way) and one f32 output [1, 3]"
            }
        }
    }

    fn admits(self, input: &[usize], output: &[usize]) -> bool {
        match self {
            ModelRole::AwbFromZones => {
                matches!(input, [1, 3, zy, zx] if (1..=64).contains(zy) && (1..=64).contains(zx))
                    && output == [1, 3]
            }
        }
    }
}

/// A model that cannot be used, naming its file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {}: cannot read the file: {source}", path.display())]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model {}: not a model tract can run: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "model {}: input {input} and output {output} do not fit {role}: it needs {expects}",
        path.display(),
        input = shape_text(input),
        output = shape_text(output),
        role = role.name(),
        expects = role.expects()
    )]
    Shape {
        path: PathBuf,
        role: ModelRole,
        input: Vec<Option<usize>>,
        output: Vec<Option<usize>>,
    },
    #[error("model {}: {reason}", path.display())]
    Run { path: PathBuf, reason: String },
}

fn shape_text(s: &[Option<usize>]) -> String {
    let dims: Vec<String> = s
        .iter()
        .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

/// One loaded, checked, optimised model.
pub struct Model {
    path: PathBuf,
    role: ModelRole,
    input: Vec<usize>,
    output: Vec<usize>,
    plan: Arc<TypedSimplePlan>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("role", &self.role)
            .field("input", &self.input)
            .field("output", &self.output)
            .finish()
    }
}

impl Model {
    /// Read, check and optimise the model at `path` for `role`.
    pub fn load(path: &Path, role: ModelRole) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Missing {
            path: path.to_path_buf(),
            source,
        })?;
        let malformed = |e: TractError| ModelError::Malformed {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        };
        let typed = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .and_then(|m| m.into_typed())
            .map_err(malformed)?;
        let dims = |fact: TractResult<&TypedFact>| -> Result<Vec<Option<usize>>, ModelError> {
            let fact = fact.map_err(malformed)?;
            if fact.datum_type != f32::datum_type() {
                return Err(ModelError::Malformed {
                    path: path.to_path_buf(),
                    reason: format!("tensors must be f32, found {:?}", fact.datum_type),
                });
            }
            Ok(fact.shape.iter().map(|d| d.to_usize().ok()).collect())
        };
        let (n_in, n_out) = (typed.inputs.len(), typed.outputs.len());
        if n_in != 1 || n_out != 1 {
            return Err(ModelError::Malformed {
                path: path.to_path_buf(),
                reason: format!(
                    "{n_in} inputs and {n_out} outputs; {} needs {}",
                    role.name(),
                    role.expects()
                ),
            });
        }
        let input = dims(typed.input_fact(0))?;
        let output = dims(typed.output_fact(0))?;
        let concrete = |s: &[Option<usize>]| s.iter().copied().collect::<Option<Vec<usize>>>();
        let (Some(ci), Some(co)) = (concrete(&input), concrete(&output)) else {
            return Err(ModelError::Shape {
                path: path.to_path_buf(),
                role,
                input,
                output,
            });
        };
        if !role.admits(&ci, &co) {
            return Err(ModelError::Shape {
                path: path.to_path_buf(),
                role,
                input,
                output,
            });
        }
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(malformed)?;
        Ok(Model {
            path: path.to_path_buf(),
            role,
            input: ci,
            output: co,
            plan,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn role(&self) -> ModelRole {
        self.role
    }
    /// The input's shape (concrete: checked at load).
    pub fn input_shape(&self) -> &[usize] {
        &self.input
    }
    pub fn output_shape(&self) -> &[usize] {
        &self.output
    }

    /// Run on `input` (row-major, `input_shape`'s element count), giving the
    /// output row-major.
    pub fn run(&self, input: &[f32]) -> Result<Vec<f32>, ModelError> {
        let run_err = |reason: String| ModelError::Run {
            path: self.path.clone(),
            reason,
        };
        let want: usize = self.input.iter().product();
        if input.len() != want {
            return Err(run_err(format!(
                "input has {} values, the model takes {want} ({:?})",
                input.len(),
                self.input
            )));
        }
        let t = Tensor::from_shape(&self.input, input).map_err(|e| run_err(format!("{e:#}")))?;
        let out = self
            .plan
            .run(tvec!(t.into()))
            .map_err(|e| run_err(format!("{e:#}")))?;
        let first = out
            .first()
            .ok_or_else(|| run_err("the model gave no output".into()))?;
        let view = first
            .to_plain_array_view::<f32>()
            .map_err(|e| run_err(format!("{e:#}")))?;
        Ok(view.iter().copied().collect())
    }
}

/// Which version of a file a loaded model came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    path: PathBuf,
    role: ModelRole,
    len: u64,
    modified: Option<SystemTime>,
}

/// Loads each model file once and hands out the shared [`Model`].
#[derive(Debug, Default)]
pub struct ModelManager {
    models: Mutex<HashMap<FileKey, Arc<Model>>>,
    loads: std::sync::atomic::AtomicU64,
}

impl ModelManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's manager: algorithm blocks of tuning files load their
    /// models through it, so every tuning that names a file shares one copy.
    pub fn shared() -> &'static ModelManager {
        static SHARED: OnceLock<ModelManager> = OnceLock::new();
        SHARED.get_or_init(ModelManager::new)
    }

    /// The model at `path` for `role`, loaded now or earlier (a file changed
    /// since is loaded again).
    pub fn load(&self, path: &Path, role: ModelRole) -> Result<Arc<Model>, ModelError> {
        let meta = std::fs::metadata(path).map_err(|source| ModelError::Missing {
            path: path.to_path_buf(),
            source,
        })?;
        let key = FileKey {
            path: path.to_path_buf(),
            role,
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        if let Some(m) = self.lock().get(&key) {
            return Ok(m.clone());
        }
        // Loaded outside the lock: optimising a model takes a while.
        let m = Arc::new(Model::load(path, role)?);
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut map = self.lock();
        map.retain(|k, _| k.path != key.path || k.role != key.role);
        Ok(map.entry(key).or_insert(m).clone())
    }

    /// How many times a file was read and optimised (not served from memory).
    pub fn loads(&self) -> u64 {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FileKey, Arc<Model>>> {
        self.models.lock().unwrap_or_else(|p| p.into_inner())
    }
}
