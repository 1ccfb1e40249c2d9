//! AppState: what every panel reads and edits. The UI thread never waits on
//! the engine: results arrive on a lossy channel, the player runs on its own
//! thread, telemetry and pool views are cheap snapshots.

use crate::player::{Player, PlayerCmd};
use crate::presenter::{DisplayImage, Presented, Presenter, TapKey};
use eframe::egui;
use isp_engine::pipeline::{Engine, FrameResult};
use isp_engine::tuning::Tuning;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One line of the status log.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub time: f64,
    pub error: bool,
    pub text: String,
}

/// The tuning being edited: as loaded, as now, and the undo history.
#[derive(Debug, Clone)]
pub struct TuningEdit {
    pub loaded: Tuning,
    pub loaded_from: Option<PathBuf>,
    pub current: Tuning,
    undo: Vec<Tuning>,
    redo: Vec<Tuning>,
}

impl TuningEdit {
    pub fn new(t: Tuning, from: Option<PathBuf>) -> Self {
        TuningEdit {
            loaded: t.clone(),
            loaded_from: from,
            current: t,
            undo: Vec::new(),
            redo: Vec::new(),
        }
    }
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }
    /// Record `before` as an undo step (the edit already happened).
    pub fn push_undo(&mut self, before: Tuning) {
        if before != self.current {
            self.undo.push(before);
            self.redo.clear();
        }
    }
    pub fn undo(&mut self) -> bool {
        match self.undo.pop() {
            Some(t) => {
                self.redo.push(std::mem::replace(&mut self.current, t));
                true
            }
            None => false,
        }
    }
    pub fn redo(&mut self) -> bool {
        match self.redo.pop() {
            Some(t) => {
                self.undo.push(std::mem::replace(&mut self.current, t));
                true
            }
            None => false,
        }
    }
    /// Dotted paths of the values that differ from the file as loaded.
    pub fn diff(&self) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(&self.loaded).unwrap_or_default(),
            serde_json::to_value(&self.current).unwrap_or_default(),
        );
        let mut out = Vec::new();
        diff_values("", &a, &b, &mut out);
        out
    }
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in y {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_values(&p, x.get(k).unwrap_or(&Value::Null), v, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_values(&format!("{path}[{i}]"), p, q, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

pub struct AppState {
    pub engine: Arc<Engine>,
    pub player: Player,
    /// Results arrive through the presenter's threads, ready to show.
    pub presenter: Presenter,
    pub latest: Option<Arc<FrameResult>>,
    /// The newest frame's display image (when the viewer wants one) and its
    /// clipped fractions (high, low).
    pub frame_image: Option<DisplayImage>,
    pub clipped: [f32; 2],
    /// Inspect results: the last tap image per side (`before` false/true).
    pub taps: [Option<TapShown>; 2],
    /// Every stage's output for the pixel inspector: ((raw, version), stages).
    pub stages: Option<StagesAt>,
    pub frames_shown: u64,
    pub log: Vec<LogLine>,
    pub tuning: TuningEdit,
    /// The frame the timeline selected (the viewer follows it while it is recent).
    pub selected_frame: Option<u64>,
    /// The parameters version the selected frame ran with.
    pub selected_params: Option<u64>,
    /// Frame ids and when they were shown (for fps).
    pub shown_at: std::collections::VecDeque<f64>,
    pub now: f64,
    /// The texture the engine's GPU preview is copied into, when on the GPU.
    pub gpu_texture: Option<(egui::TextureId, [usize; 2])>,
    /// What the viewer drew last: the texture and where it is on screen
    /// (clipped to the view).
    pub viewer_drawn: Option<(egui::TextureId, egui::Rect)>,
    /// Uncaptured errors of eframe's device (the renderer's), for the log.
    pub gpu_errors: Arc<std::sync::Mutex<Vec<String>>>,
    /// The last few previews (frame id, RGBA8, size), so a frame selected in
    /// the timeline can be shown after newer ones arrived.
    pub recent: std::collections::VecDeque<Preview>,
}

/// Every stage's output of one raw frame under one parameters version.
pub type StagesAt = (
    (usize, u64),
    Arc<
        Vec<(
            isp_engine::stages::chain::Tap,
            isp_engine::stages::chain::TapImage,
        )>,
    >,
);

/// A tap the inspect thread made: what was asked, its RGBA8, its display image.
pub type TapShown = (TapKey, Arc<Vec<u8>>, DisplayImage);

/// A kept preview: frame id, RGBA8, size.
pub type Preview = (u64, Arc<Vec<u8>>, [usize; 2]);

/// Previews kept for selection.
pub const RECENT_FRAMES: usize = 8;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppState")
    }
}

impl AppState {
    pub fn info(&mut self, text: impl Into<String>) {
        self.log.push(LogLine {
            time: self.now,
            error: false,
            text: text.into(),
        });
    }
    pub fn error(&mut self, text: impl Into<String>) {
        self.log.push(LogLine {
            time: self.now,
            error: true,
            text: text.into(),
        });
    }

    /// Hand the edited tuning to the engine: the next frame uses it.
    pub fn apply_tuning(&mut self) {
        match self.engine.params.update(self.tuning.current.clone()) {
            Ok(v) => self.info(format!("parameters v{v}")),
            Err(e) => self.error(format!("tuning refused: {e}")),
        }
    }

    /// Change the tuning with `f`, as one undo step, and apply it.
    pub fn edit_tuning(&mut self, f: impl FnOnce(&mut Tuning)) {
        let before = self.tuning.current.clone();
        f(&mut self.tuning.current);
        self.tuning.push_undo(before);
        self.apply_tuning();
    }

    /// Open a tuning file (what the Parameters panel's dialog calls).
    pub fn open_tuning(&mut self, path: &Path) {
        match Tuning::load(path) {
            Ok(t) => {
                self.tuning = TuningEdit::new(t, Some(path.to_path_buf()));
                self.apply_tuning();
                self.info(format!("opened {}", path.display()));
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    /// Save the tuning being edited (what the save dialog calls).
    pub fn save_tuning(&mut self, path: &Path) {
        match self.tuning.current.save(path) {
            Ok(()) => {
                self.tuning.loaded = self.tuning.current.clone();
                self.tuning.loaded_from = Some(path.to_path_buf());
                self.info(format!("saved {}", path.display()));
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    /// Open a recorded session or other source (dialog, drag and drop, argument).
    pub fn open_source(&mut self, spec: &str) {
        if let Some(Ok(t)) = isp_engine::sources::session_tuning(Some(spec)) {
            self.tuning = TuningEdit::new(t, None);
            self.apply_tuning();
        }
        self.player.send(PlayerCmd::Open(Some(spec.to_string())));
        self.info(format!("opening {spec}"));
    }

    /// Record the source's frames from now on into a new session in `dir`
    /// (what the Session panel's Record dialog calls), with the tuning in effect.
    /// A folder that already holds files gets a new `session-<time>` folder inside.
    pub fn start_recording(&mut self, dir: &Path) {
        let busy = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
        let dir = if busy {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            dir.join(format!("session-{t}"))
        } else {
            dir.to_path_buf()
        };
        let t = Box::new(self.tuning.current.clone());
        self.player.send(PlayerCmd::Record(Some((dir, t))));
    }

    /// Finish the recording: the session is complete and can be opened.
    pub fn stop_recording(&mut self) {
        self.player.send(PlayerCmd::Record(None));
    }

    /// Write the telemetry as CSV (the export dialog's path).
    pub fn export_csv(&mut self, path: &Path) {
        match self.engine.telemetry.export_csv(path) {
            Ok(()) => self.info(format!("telemetry written to {}", path.display())),
            Err(e) => self.error(e.to_string()),
        }
    }

    /// Select a frame (the timeline's click): every panel follows it; the
    /// viewer shows it while it is among the recent previews.
    pub fn select_frame(&mut self, id: Option<u64>) {
        self.selected_frame = id;
        // What that frame ran with (looked up once, from its telemetry rows).
        self.selected_params = id.and_then(|f| {
            let snap = self.engine.telemetry.snapshot();
            (0..snap.len())
                .rev()
                .filter_map(|i| snap.get(i))
                .find(|e| e.frame_id == f && e.kind == isp_engine::telemetry::EventKind::Stage)
                .map(|e| e.params_version)
        });
    }

    /// The selected frame's preview, when it is still kept.
    pub fn selected_preview(&self) -> Option<Preview> {
        let id = self.selected_frame?;
        self.recent.iter().find(|(f, _, _)| *f == id).cloned()
    }

    /// Frames shown per second over the last two seconds.
    pub fn fps(&self) -> f64 {
        let n = self
            .shown_at
            .iter()
            .filter(|t| self.now - **t < 2.0)
            .count();
        n as f64 / 2.0
    }

    /// Take new results and errors; call once per UI frame. Never waits:
    /// the presenter has copied and converted everything already.
    pub fn poll(&mut self, ctx: &egui::Context) {
        self.now = ctx.input(|i| i.time);
        for p in self.presenter.take() {
            match p {
                Presented::Error(e) => self.error(e),
                Presented::Frame(f) => {
                    self.frames_shown += 1;
                    self.shown_at.push_back(self.now);
                    self.recent.push_back((f.result.frame_id, f.rgba, f.size));
                    while self.recent.len() > RECENT_FRAMES {
                        self.recent.pop_front();
                    }
                    if f.image.is_some() {
                        self.frame_image = f.image;
                    }
                    self.clipped = f.clipped;
                    self.latest = Some(f.result);
                }
                Presented::Tap { key, rgba, image } => {
                    let side = usize::from(key.before);
                    self.taps[side] = Some((key, rgba, image));
                }
                Presented::Stages { key, stages } => self.stages = Some((key, stages)),
            }
        }
        while self.shown_at.len() > 240 {
            self.shown_at.pop_front();
        }
        for e in self.player.take_errors() {
            self.error(e);
        }
        for n in self.player.take_notes() {
            self.info(n);
        }
        let gpu: Vec<String> =
            std::mem::take(&mut *self.gpu_errors.lock().unwrap_or_else(|p| p.into_inner()));
        for e in gpu {
            self.error(e);
        }
    }
}
