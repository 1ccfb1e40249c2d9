//! The Player: a thread that owns the source and feeds the engine, driven by
//! commands (play, pause, step, seek, loop, open, record); it keeps the last
//! raw frame for taps and the pixel inspector, and records the frames it
//! reads into a new session when asked (crash-safe: the engine's recorder).

use crossbeam_channel::{Receiver, Sender, unbounded};
use isp_engine::pipeline::Engine;
use isp_engine::sources::session::SessionRecorder;
use isp_engine::sources::{self, FrameMeta, FrameSource, SourceError, SourceOptions};
use isp_engine::tuning::Tuning;
use isp_engine::types::RawFormat;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum PlayerCmd {
    Play,
    Pause,
    Step,
    Seek(u64),
    Loop(bool),
    /// Open a source (a session directory, raw:, synthetic:; `None`: the demo session).
    Open(Option<String>),
    /// Record every frame read from now on into a new session directory
    /// (with the tuning in effect); `None` finishes the recording.
    Record(Option<(PathBuf, Box<Tuning>)>),
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
    pub count: Option<u64>,
    pub last_raw: Option<Arc<Vec<u8>>>,
    pub last_meta: Option<FrameMeta>,
    /// Errors for the log (the UI drains them).
    pub errors: Vec<String>,
    /// Notes for the log (recordings started and finished).
    pub notes: Vec<String>,
    pub opened: u64,
    pub recording: Option<Recording>,
}

/// A source that keeps a copy of every frame it hands out, and writes it
/// to the recording when there is one.
struct Tee<'a> {
    src: &'a mut dyn FrameSource,
    status: &'a Mutex<PlayerStatus>,
    recorder: &'a mut Option<SessionRecorder>,
}

impl FrameSource for Tee<'_> {
    fn name(&self) -> String {
        self.src.name()
    }
    fn format(&self) -> RawFormat {
        self.src.format()
    }
    fn frame_count(&self) -> Option<u64> {
        self.src.frame_count()
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        let m = self.src.next_frame(dst)?;
        if let Some(meta) = &m {
            let n = self.src.format().frame_bytes().min(dst.len());
            let written = self
                .recorder
                .as_mut()
                .map(|r| r.write_frame(meta, &dst[..n]));
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.last_raw = Some(Arc::new(dst[..n].to_vec()));
            st.last_meta = Some(meta.clone());
            st.position += 1;
            match written {
                Some(Ok(())) => {
                    if let (Some(rec), Some(r)) = (st.recording.as_mut(), self.recorder.as_ref()) {
                        rec.frames = r.frames();
                    }
                }
                Some(Err(e)) => {
                    // Keep what is recorded (the journal lists every frame
                    // written); stop here and say why.
                    st.errors.push(format!("recording stopped: {e}"));
                    drop(st);
                    finish_recording(self.recorder, self.status);
                }
                None => {}
            }
        }
        Ok(m)
    }
    fn seek(&mut self, index: u64) -> Result<(), SourceError> {
        self.src.seek(index)
    }
    fn is_live(&self) -> bool {
        self.src.is_live()
    }
    fn set_controls(&mut self, c: &[isp_engine::algorithms::Control]) -> Result<(), SourceError> {
        self.src.set_controls(c)
    }
}

pub struct Player {
    pub status: Arc<Mutex<PlayerStatus>>,
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
            opened: 1,
            ..Default::default()
        }));
        let (tx, rx) = unbounded();
        let st = status.clone();
        let thread = std::thread::Builder::new()
            .name("player".into())
            .spawn(move || run(engine, src, rx, st, fps))
            .ok();
        Player { status, tx, thread }
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
    fps: f32,
) {
    let period = Duration::from_secs_f32(1.0 / fps.max(1.0));
    let mut recorder: Option<SessionRecorder> = None;
    let lock = |s: &Mutex<PlayerStatus>| {
        let g = s.lock().unwrap_or_else(|p| p.into_inner());
        (g.playing, g.looping)
    };
    loop {
        let (playing, _) = lock(&status);
        let cmd = if playing {
            rx.recv_timeout(period).ok()
        } else {
            rx.recv().ok().or(Some(PlayerCmd::Stop))
        };
        let mut step = playing;
        match cmd {
            Some(PlayerCmd::Stop) => break,
            Some(PlayerCmd::Record(Some((dir, tuning)))) => {
                start_recording(&mut recorder, &status, src.as_ref(), dir, &tuning);
                continue;
            }
            Some(PlayerCmd::Record(None)) => {
                finish_recording(&mut recorder, &status);
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
                        st.position = 0;
                        st.opened += 1;
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
        let fed = {
            let mut tee = Tee {
                src: src.as_mut(),
                status: &status,
                recorder: &mut recorder,
            };
            engine.feed(&mut tee, Some(1), |_| {})
        };
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

/// Close the recording (if any): the manifest lists every frame written.
fn finish_recording(rec: &mut Option<SessionRecorder>, status: &Mutex<PlayerStatus>) {
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
