//! AppState: what every panel reads and edits. The UI thread never waits on
//! the engine: results arrive on a lossy channel, the player runs on its own
//! thread, telemetry and pool views are cheap snapshots.

use crate::player::{Player, PlayerCmd, SourceFrame};
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

/// A path as a person reads it: `a/b/../c` as `a/c`, `./` gone; a
/// `scheme:` prefix (`session:`, `raw:`) kept. Lexical: no file is read.
pub fn tidy_path(s: &str) -> String {
    let (prefix, path) = match s.split_once(':') {
        Some((p, rest)) if !p.contains('/') && !p.is_empty() => (format!("{p}:"), rest),
        _ => (String::new(), s),
    };
    if !path.contains('/') {
        return s.to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| *l != "..") => {
                out.pop();
            }
            ".." if absolute => {}
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    let body = match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    };
    format!("{prefix}{body}")
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

#[cfg(test)]
mod tests {
    use super::tidy_path;

    #[test]
    fn paths_are_shown_tidy() {
        assert_eq!(
            tidy_path("session:/work/main/engine/../assets/demo_session"),
            "session:/work/main/assets/demo_session"
        );
        assert_eq!(tidy_path("/a/./b//c/"), "/a/b/c");
        assert_eq!(tidy_path("../x/../y"), "../y");
        assert_eq!(tidy_path("/../a"), "/a");
        assert_eq!(tidy_path("synthetic:zone_plate"), "synthetic:zone_plate");
        assert_eq!(tidy_path("raw:frames/../f.raw"), "raw:f.raw");
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
    /// The selected frame's place in its source.
    pub selected_source: Option<SourceFrame>,
    /// Frame ids and when they were shown (for fps).
    pub shown_at: std::collections::VecDeque<f64>,
    pub now: f64,
    /// The texture the engine's GPU preview is copied into, when on the GPU.
    pub gpu_texture: Option<(egui::TextureId, [usize; 2])>,
    /// What the viewer drew last: the texture and where it is on screen
    /// (clipped to the view).
    pub viewer_drawn: Option<(egui::TextureId, egui::Rect)>,
    /// Where the viewer drew the whole frame (it may reach past the view)
    /// and at what scale.
    pub viewer_image: Option<(egui::Rect, f32)>,
    /// The pixel the Inspector shows (the viewer sets it on hover).
    pub inspect_at: Option<(usize, usize)>,
    /// What the keyboard asked of the viewer this frame.
    pub view_requests: ViewRequests,
    /// The file dialogs (native or in-app) and the request pending.
    pub files: crate::files::FileDialogs,
    /// Sessions and tuning files opened, newest first.
    pub recent_files: Vec<String>,
    /// The source open now, as it was asked for (kept for the next run).
    pub source_spec: Option<String>,
    /// Uncaptured errors of eframe's device (the renderer's), for the log.
    pub gpu_errors: Arc<std::sync::Mutex<Vec<String>>>,
    /// The last few previews (frame id, RGBA8, size), so a frame selected in
    /// the timeline can be shown after newer ones arrived.
    pub recent: std::collections::VecDeque<Preview>,
    /// The newest burst or bracket, ready to show (the viewer shows it
    /// beside its reference while `visible`).
    pub capture_view: Option<CaptureView>,
}

/// A finished capture as the studio shows it.
pub struct CaptureView {
    pub shown: Arc<crate::player::CaptureShown>,
    /// Merged, reference.
    pub textures: [egui::TextureHandle; 2],
    pub visible: bool,
}

/// The viewer's keyboard shortcuts, taken by the viewer when it draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewRequests {
    pub fit: bool,
    pub one_to_one: bool,
    /// Zoom steps: + in, - out.
    pub zoom_steps: i32,
}

/// Every stage's output of one raw frame under one parameters version.
pub type StagesAt = (
    crate::presenter::StagesKey,
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

    /// Hand the edited tuning to the engine: the next frame uses it, and
    /// while the player is paused the frame on screen is made again with it.
    /// The same values again make no version and no re-render.
    pub fn apply_tuning(&mut self) {
        let was = self.engine.params.version();
        match self.engine.params.update(self.tuning.current.clone()) {
            Ok(v) if v != was => {
                self.info(format!("parameters v{v}"));
                self.rerender();
            }
            Ok(_) => {}
            Err(e) => self.error(format!("tuning refused: {e}")),
        }
    }

    /// Paused: run the frame on screen through the engine again (playing,
    /// the next frame shows the parameters anyway).
    pub fn rerender(&mut self) {
        if !self.player.status().playing {
            self.player.send(PlayerCmd::Again);
        }
    }

    /// Change the tuning with `f`, as one undo step, and apply it; nothing
    /// happens when `f` changed nothing.
    pub fn edit_tuning(&mut self, f: impl FnOnce(&mut Tuning)) {
        let before = self.tuning.current.clone();
        f(&mut self.tuning.current);
        if self.tuning.current == before {
            return;
        }
        self.tuning.push_undo(before);
        self.apply_tuning();
    }

    /// Undo the last edit (the button, ctrl+Z).
    pub fn undo(&mut self) {
        if self.tuning.undo() {
            self.apply_tuning();
        }
    }

    /// Redo the last undone edit (the button, ctrl+shift+Z).
    pub fn redo(&mut self) {
        if self.tuning.redo() {
            self.apply_tuning();
        }
    }

    /// A file dialog's answer: do what it was asked for.
    pub fn file_picked(&mut self, action: crate::files::FileAction, path: &Path) {
        use crate::files::FileAction;
        match action {
            FileAction::OpenSession => self.open_source(&path.display().to_string()),
            FileAction::OpenDng => self.open_source(&format!("dng:{}", path.display())),
            FileAction::RecordInto => self.start_recording(path),
            FileAction::OpenTuning => self.open_tuning(path),
            FileAction::SaveTuning => self.save_tuning(path),
            FileAction::ExportCsv => self.export_csv(path),
        }
    }

    /// Remember a file opened (File > Open recent), newest first.
    fn remember(&mut self, spec: &str) {
        let spec = tidy_path(spec);
        self.recent_files.retain(|r| *r != spec);
        self.recent_files.insert(0, spec);
        self.recent_files.truncate(crate::workspace::RECENT_FILES);
    }

    /// Open a recent file: a tuning file by its extension, else a source.
    pub fn open_recent(&mut self, spec: &str) {
        if spec.ends_with(".json") {
            self.open_tuning(Path::new(spec));
        } else {
            self.open_source(spec);
        }
    }

    /// Open a tuning file (what the Parameters panel's dialog calls).
    pub fn open_tuning(&mut self, path: &Path) {
        match Tuning::load(path) {
            Ok(t) => {
                self.tuning = TuningEdit::new(t, Some(path.to_path_buf()));
                self.apply_tuning();
                self.info(format!("opened {}", path.display()));
                self.remember(&path.display().to_string());
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
                self.remember(&path.display().to_string());
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    /// Open a recorded session or other source (dialog, drag and drop, argument).
    pub fn open_source(&mut self, spec: &str) {
        if let Some(Ok(t)) = isp_engine::sources::session_tuning(Some(spec)) {
            self.tuning = TuningEdit::new(t, None);
            self.apply_tuning();
            for n in isp_engine::sources::source_notes(Some(spec)) {
                self.info(format!("{}: {n}", tidy_path(spec)));
            }
        }
        self.player.send(PlayerCmd::Open(Some(spec.to_string())));
        self.info(format!("opening {}", tidy_path(spec)));
        self.source_spec = Some(spec.to_string());
        self.remember(spec);
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

    /// Select a frame (the timeline's click), by engine frame id: every
    /// panel follows it. A frame of the session open now is made again from
    /// the session (the player pauses and seeks to it), so any frame can be
    /// selected; a live source's frame is shown while among the recent
    /// previews.
    pub fn select_frame(&mut self, id: Option<u64>) {
        self.selected_frame = id;
        self.selected_source = id.and_then(|f| self.player.source_frame(f));
        // What that frame ran with (looked up once, from its telemetry rows).
        self.selected_params = id.and_then(|f| {
            let snap = self.engine.telemetry.snapshot();
            (0..snap.len())
                .rev()
                .filter_map(|i| snap.get(i))
                .find(|e| e.frame_id == f && e.kind == isp_engine::telemetry::EventKind::Stage)
                .map(|e| e.params_version)
        });
        if let Some(sf) = self.selected_source {
            let p = self.player.status();
            if sf.opened == p.opened && p.count.is_some() {
                self.player.send(PlayerCmd::Pause);
                self.player.send(PlayerCmd::Seek(sf.index));
            }
        }
    }

    /// Leave the selection and play on.
    pub fn back_to_live(&mut self) {
        self.select_frame(None);
        self.player.send(PlayerCmd::Play);
    }

    /// The selected frame is made again from the session (not a kept preview).
    pub fn selection_rerenders(&self) -> bool {
        let p = self.player.status();
        self.selected_source
            .is_some_and(|sf| sf.opened == p.opened && p.count.is_some())
    }

    /// The selected frame's preview, when it is still kept (live sources).
    pub fn selected_preview(&self) -> Option<Preview> {
        if self.selection_rerenders() {
            return None;
        }
        let id = self.selected_frame?;
        self.recent.iter().find(|(f, _, _)| *f == id).cloned()
    }

    /// The engine frame on screen: a kept preview selected (live
    /// sources), else the newest shown.
    pub fn shown_frame(&self) -> Option<u64> {
        match self.selected_preview() {
            Some((id, _, _)) => Some(id),
            None => self.latest.as_ref().map(|r| r.frame_id),
        }
    }

    /// The source frame of the frame on screen.
    pub fn shown_source(&self) -> Option<SourceFrame> {
        let id = self.latest.as_ref()?.frame_id;
        self.player.source_frame(id)
    }

    /// A frame as a person names it: its index in the session (the Session
    /// panel's number), or the engine's run number when it is not known.
    pub fn frame_name(&self, id: u64) -> String {
        match self.player.source_frame(id) {
            Some(sf) => format!("frame {}", sf.index),
            None => format!("run {id}"),
        }
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
        self.poll_capture(ctx);
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

    /// A capture that finished since the last look: its images become
    /// textures and the viewer shows them.
    fn poll_capture(&mut self, ctx: &egui::Context) {
        let done = match &self
            .player
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capture
        {
            crate::player::CaptureState::Done(c) => c.clone(),
            _ => return,
        };
        if self
            .capture_view
            .as_ref()
            .is_some_and(|v| v.shown.serial == done.serial)
        {
            return;
        }
        let tex = |name: &str, im: &crate::player::capture::CaptureImage| {
            ctx.load_texture(
                name,
                egui::ColorImage::from_rgba_unmultiplied(im.size, &im.rgba),
                egui::TextureOptions::LINEAR,
            )
        };
        let textures = [
            tex("capture-merged", &done.merged),
            tex("capture-reference", &done.reference),
        ];
        self.capture_view = Some(CaptureView {
            shown: done,
            textures,
            visible: true,
        });
    }
}
