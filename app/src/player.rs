//! The Player: a thread that owns the source and feeds the engine, driven by
//! commands (play, pause, step, seek, loop, open, record); it keeps the last
//! raw frame for taps and the pixel inspector, and records the frames it
//! reads into a new session when asked (crash-safe: the engine's recorder).

use crossbeam_channel::{Receiver, Sender, unbounded};
use isp_engine::pipeline::Engine;
use isp_engine::sources::session::SessionRecorder;
use isp_engine::sources::{self, FrameMeta, FrameSource, Levels, SourceError, SourceOptions};
use isp_engine::tuning::Tuning;
use isp_engine::types::RawFormat;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tee::{Replay, Tee};

pub mod capture;
mod tee;

pub use capture::{CaptureShown, CaptureState};

#[derive(Debug, Clone)]
pub enum PlayerCmd {
    Play,
    Pause,
    Step,
    /// Run the last frame read through the engine again (after an edit
    /// while paused): the same raw bytes under the parameters now. Several
    /// queued one after the other run once.
    Again,
    Seek(u64),
    Loop(bool),
    /// Open a source (a session directory, raw:, synthetic:; `None`: the demo session).
    Open(Option<String>),
    /// Record every frame read from now on into a new session directory
    /// (with the tuning in effect); `None` finishes the recording.
    Record(Option<(PathBuf, Box<Tuning>)>),
    /// A burst or an exposure bracket from the source: read now, merged on
    /// the background lane while playing goes on (`PlayerStatus::capture`).
    Capture(Box<isp_engine::pipeline::CaptureRequest>),
    Stop,
}

/// A recording under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub dir: PathBuf,
    pub frames: usize,
}

/// What the UI sees of the player.
#[derive(Debug, Clone, Default)]
pub struct PlayerStatus {
    pub name: String,
    pub format: Option<RawFormat>,
    pub playing: bool,
    pub looping: bool,
    /// Index of the next frame to read.
    pub position: u64,
    /// Index in the source of the last frame read (what a person calls
    /// the frame: the Session panel's frame number).
    pub last_index: Option<u64>,
    pub count: Option<u64>,
    pub last_raw: Option<Arc<Vec<u8>>>,
    pub last_meta: Option<FrameMeta>,
    /// Errors for the log (the UI drains them).
    pub errors: Vec<String>,
    /// Notes for the log (recordings started and finished).
    pub notes: Vec<String>,
    pub opened: u64,
    pub recording: Option<Recording>,
    /// Frames per second the source runs at, if it has a rate (a camera).
    pub fps: Option<f32>,
    /// The levels the source states (a DNG's), for calibration.
    pub levels: Option<Levels>,
    /// The newest burst or bracket.
    pub capture: CaptureState,
}

/// A frame the engine ran, as a person knows it: its index in the source,
/// and which source (the player's `opened` count when it was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFrame {
    pub index: u64,
    pub opened: u64,
}

/// Which source frame each engine frame was. The engine numbers frames by
/// run (its frame id); a person knows them by their index in the session.
/// Kept as runs of consecutive ids over consecutive indices (a seek, a loop
/// or a re-render starts a new run), so hours of playing stay small; the
/// newest frames' raw bytes are kept too, for the pixel inspector and taps
/// of the frame on screen.
#[derive(Debug, Default)]
pub struct FrameIndex {
    /// (first id, first index, frames, opened).
    runs: VecDeque<(u64, u64, u64, u64)>,
    recent: VecDeque<(u64, Arc<Vec<u8>>)>,
    /// The newest frames made again (no 3A ran on them).
    replays: VecDeque<u64>,
}

/// Runs kept (the oldest go first), and raw frames kept.
const MAX_RUNS: usize = 1 << 16;
const RECENT_RAW: usize = 16;

impl FrameIndex {
    fn record(&mut self, id: u64, at: SourceFrame, raw: Arc<Vec<u8>>) {
        match self.runs.back_mut() {
            Some((id0, i0, n, o)) if *id0 + *n == id && *i0 + *n == at.index && *o == at.opened => {
                *n += 1
            }
            _ => self.runs.push_back((id, at.index, 1, at.opened)),
        }
        if self.runs.len() > MAX_RUNS {
            self.runs.pop_front();
        }
        self.recent.push_back((id, raw));
        if self.recent.len() > RECENT_RAW {
            self.recent.pop_front();
        }
    }

    fn note_replay(&mut self, id: u64) {
        self.replays.push_back(id);
        if self.replays.len() > RECENT_RAW * 4 {
            self.replays.pop_front();
        }
    }

    /// Engine frame `id` was a frame made again (among the newest).
    pub fn is_replay(&self, id: u64) -> bool {
        self.replays.contains(&id)
    }

    /// The source frame engine frame `id` was.
    pub fn lookup(&self, id: u64) -> Option<SourceFrame> {
        let k = self.runs.partition_point(|r| r.0 <= id);
        let (id0, i0, n, opened) = *self.runs.get(k.checked_sub(1)?)?;
        (id < id0 + n).then_some(SourceFrame {
            index: i0 + (id - id0),
            opened,
        })
    }

    /// The raw bytes engine frame `id` was made from, while kept.
    pub fn raw(&self, id: u64) -> Option<Arc<Vec<u8>>> {
        self.recent
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| r.clone())
    }
}

pub struct Player {
    pub status: Arc<Mutex<PlayerStatus>>,
    /// Engine frame id to source frame, and the newest raw frames.
    pub index: Arc<Mutex<FrameIndex>>,
    tx: Sender<PlayerCmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Player")
    }
}

/// Open a source the way the Session panel's dialog does.
pub fn open_source(spec: Option<&str>) -> Result<Box<dyn FrameSource>, SourceError> {
    sources::open(spec, &SourceOptions::default())
}

impl Player {
    /// Start playing `src` into `engine` at `fps` frames per second.
    pub fn start(engine: Arc<Engine>, src: Box<dyn FrameSource>, fps: f32) -> Player {
        Self::start_with(engine, src, fps, true)
    }

    /// As [`Player::start`], paused: nothing is read before a command
    /// (`Play`, `Step`, `Seek`) asks for it; commands run in the order sent.
    pub fn start_paused(engine: Arc<Engine>, src: Box<dyn FrameSource>, fps: f32) -> Player {
        Self::start_with(engine, src, fps, false)
    }

    fn start_with(
        engine: Arc<Engine>,
        src: Box<dyn FrameSource>,
        fps: f32,
        playing: bool,
    ) -> Player {
        let status = Arc::new(Mutex::new(PlayerStatus {
            name: src.name(),
            format: Some(src.format()),
            playing,
            looping: true,
            count: src.frame_count(),
            fps: src.fps(),
            levels: src.levels(),
            opened: 1,
            ..Default::default()
        }));
        let (tx, rx) = unbounded();
        let st = status.clone();
        let index: Arc<Mutex<FrameIndex>> = Arc::default();
        let ix = index.clone();
        let thread = std::thread::Builder::new()
            .name("player".into())
            .spawn(move || run(engine, src, rx, st, ix, fps))
            .ok();
        Player {
            status,
            index,
            tx,
            thread,
        }
    }

    /// The source frame engine frame `id` was (its index in the session).
    pub fn source_frame(&self, id: u64) -> Option<SourceFrame> {
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lookup(id)
    }

    /// The raw bytes engine frame `id` was made from, while kept.
    pub fn raw_of(&self, id: u64) -> Option<Arc<Vec<u8>>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).raw(id)
    }

    pub fn send(&self, cmd: PlayerCmd) {
        let _ = self.tx.send(cmd);
    }

    pub fn status(&self) -> PlayerStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()).errors)
    }

    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()).notes)
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.tx.send(PlayerCmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    engine: Arc<Engine>,
    mut src: Box<dyn FrameSource>,
    rx: Receiver<PlayerCmd>,
    status: Arc<Mutex<PlayerStatus>>,
    index: Arc<Mutex<FrameIndex>>,
    fps: f32,
) {
    let period = Duration::from_secs_f32(1.0 / fps.max(1.0));
    let mut recorder: Option<SessionRecorder> = None;
    let lock = |s: &Mutex<PlayerStatus>| {
        let g = s.lock().unwrap_or_else(|p| p.into_inner());
        (g.playing, g.looping)
    };
    // Commands taken from the channel while coalescing `Again`s, in order.
    let mut queued: VecDeque<PlayerCmd> = VecDeque::new();
    let mut captures = 0u64;
    loop {
        let (playing, _) = lock(&status);
        let cmd = if let Some(c) = queued.pop_front() {
            Some(c)
        } else if playing && src.is_live() {
            // A camera paces itself: its next frame is the wait.
            rx.try_recv().ok()
        } else if playing {
            rx.recv_timeout(period).ok()
        } else {
            rx.recv().ok().or(Some(PlayerCmd::Stop))
        };
        let mut step = playing;
        match cmd {
            Some(PlayerCmd::Stop) => break,
            Some(PlayerCmd::Again) => {
                // Later `Again`s are this one; other commands keep their order.
                queued.extend(rx.try_iter());
                queued.retain(|c| !matches!(c, PlayerCmd::Again));
                again(&engine, src.as_mut(), &status, &index);
                continue;
            }
            Some(PlayerCmd::Record(Some((dir, tuning)))) => {
                start_recording(&mut recorder, &status, src.as_ref(), dir, &tuning);
                continue;
            }
            Some(PlayerCmd::Record(None)) => {
                finish_recording(&mut recorder, &status);
                continue;
            }
            Some(PlayerCmd::Capture(req)) => {
                let busy = matches!(
                    status.lock().unwrap_or_else(|p| p.into_inner()).capture,
                    CaptureState::Running(_)
                );
                if busy {
                    push_error(&status, "capture: one is already under way".into());
                } else {
                    captures += 1;
                    capture::start(&engine, src.as_mut(), *req, &status, captures);
                }
                continue;
            }
            Some(PlayerCmd::Play) => {
                status.lock().unwrap_or_else(|p| p.into_inner()).playing = true;
                continue;
            }
            Some(PlayerCmd::Pause) => {
                status.lock().unwrap_or_else(|p| p.into_inner()).playing = false;
                continue;
            }
            Some(PlayerCmd::Loop(on)) => {
                status.lock().unwrap_or_else(|p| p.into_inner()).looping = on;
                continue;
            }
            Some(PlayerCmd::Step) => step = true,
            Some(PlayerCmd::Seek(i)) => {
                match src.seek(i) {
                    Ok(()) => status.lock().unwrap_or_else(|p| p.into_inner()).position = i,
                    Err(e) => push_error(&status, format!("seek: {e}")),
                }
                step = true;
            }
            Some(PlayerCmd::Open(spec)) => {
                match open_source(spec.as_deref()) {
                    Ok(s) => {
                        // A recording holds one source's frames.
                        finish_recording(&mut recorder, &status);
                        src = s;
                        let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
                        st.name = src.name();
                        st.format = Some(src.format());
                        st.count = src.frame_count();
                        st.fps = src.fps();
                        st.levels = src.levels();
                        st.position = 0;
                        st.opened += 1;
                        st.last_raw = None;
                        st.last_meta = None;
                        st.last_index = None;
                    }
                    Err(e) => push_error(&status, e.to_string()),
                }
                step = true;
            }
            None => {}
        }
        if !step {
            continue;
        }
        let mut feed_one = |src: &mut Box<dyn FrameSource>| {
            let mut tee = Tee {
                src: src.as_mut(),
                status: &status,
                recorder: &mut recorder,
            };
            engine.feed(&mut tee, Some(1), |id| note_fed(id, &status, &index))
        };
        let mut fed = feed_one(&mut src);
        if matches!(fed, Ok(0)) && lock(&status).1 && src.seek(0).is_ok() {
            // The end of a looping session: the step shows its first frame.
            status.lock().unwrap_or_else(|p| p.into_inner()).position = 0;
            fed = feed_one(&mut src);
        }
        match fed {
            Ok(1) => {}
            Ok(_) => {
                // The end of a recorded session: loop, or stop there.
                let (_, looping) = lock(&status);
                if looping && src.seek(0).is_ok() {
                    status.lock().unwrap_or_else(|p| p.into_inner()).position = 0;
                } else {
                    status.lock().unwrap_or_else(|p| p.into_inner()).playing = false;
                }
            }
            Err(e) => {
                push_error(&status, format!("{}: {e}", src.name()));
                status.lock().unwrap_or_else(|p| p.into_inner()).playing = false;
                // A camera that vanished: keep what was recorded, complete.
                finish_recording(&mut recorder, &status);
            }
        }
    }
    // Closing the app or the player: the recording is finished, not lost.
    finish_recording(&mut recorder, &status);
}

/// Note which source frame engine frame `id` is (the one the Tee just read).
fn note_fed(id: u64, status: &Mutex<PlayerStatus>, index: &Mutex<FrameIndex>) {
    let (at, raw) = {
        let st = status.lock().unwrap_or_else(|p| p.into_inner());
        let (Some(i), Some(raw)) = (st.last_index, st.last_raw.clone()) else {
            return;
        };
        (
            SourceFrame {
                index: i,
                opened: st.opened,
            },
            raw,
        )
    };
    index
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(id, at, raw);
}

/// Feed the last frame read once more (parameters changed while paused).
fn again(
    engine: &Engine,
    src: &mut dyn FrameSource,
    status: &Mutex<PlayerStatus>,
    index: &Mutex<FrameIndex>,
) {
    let (raw, meta) = {
        let st = status.lock().unwrap_or_else(|p| p.into_inner());
        match (st.last_raw.clone(), st.last_meta.clone()) {
            (Some(r), Some(m)) => (r, m),
            _ => return,
        }
    };
    if raw.len() < src.format().frame_bytes() {
        // Another source was opened since: nothing of it read yet.
        return;
    }
    let mut once = Replay {
        src,
        raw: Some((raw, meta)),
    };
    let fed = engine.feed_replay(&mut once, Some(1), |id| {
        note_fed(id, status, index);
        index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note_replay(id);
    });
    if let Err(e) = fed {
        push_error(status, format!("{}: {e}", once.name()));
    }
}

/// Close the recording (if any): the manifest lists every frame written.
pub(crate) fn finish_recording(rec: &mut Option<SessionRecorder>, status: &Mutex<PlayerStatus>) {
    let Some(r) = rec.take() else {
        return;
    };
    let dir = status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .recording
        .as_ref()
        .map(|d| d.dir.display().to_string())
        .unwrap_or_default();
    let done = r.finish();
    // One update: the recording is over and the log says how it ended.
    let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
    st.recording = None;
    match done {
        Ok(m) => st
            .notes
            .push(format!("recorded {} frames into {dir}", m.frames.len())),
        Err(e) => st.errors.push(format!("recording {dir}: {e}")),
    }
}

/// Start a recording of `src`'s frames into `dir`.
fn start_recording(
    rec: &mut Option<SessionRecorder>,
    status: &Mutex<PlayerStatus>,
    src: &dyn FrameSource,
    dir: PathBuf,
    tuning: &Tuning,
) {
    finish_recording(rec, status);
    let started = SessionRecorder::create(&dir, src.format(), &src.name())
        .and_then(|r| r.save_tuning(tuning).map(|()| r));
    match started {
        Ok(r) => {
            *rec = Some(r);
            let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
            st.recording = Some(Recording {
                dir: dir.clone(),
                frames: 0,
            });
            st.notes.push(format!("recording into {}", dir.display()));
        }
        Err(e) => push_error(status, format!("cannot record: {e}")),
    }
}

fn push_error(status: &Mutex<PlayerStatus>, e: String) {
    status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .errors
        .push(e);
}
