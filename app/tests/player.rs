//! The player's recording when the source fails mid-way (a camera that
//! vanishes): the frames read so far are kept, the session is complete.

#![allow(clippy::unwrap_used)]

use isp_engine::pipeline::{Engine, EngineConfig};
use isp_engine::sources::session::SessionSource;
use isp_engine::sources::synthetic::{Scene, SyntheticSource};
use isp_engine::sources::{FrameMeta, FrameSource, SourceError};
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Packing, RawFormat};
use isp_studio::player::{Player, PlayerCmd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A live source that gives `left` frames, then fails like an unplugged
/// camera. It keeps a copy of every frame it delivered.
struct Vanishing {
    inner: SyntheticSource,
    left: usize,
    delivered: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FrameSource for Vanishing {
    fn name(&self) -> String {
        "v4l2:/dev/video-test".into()
    }
    fn format(&self) -> RawFormat {
        self.inner.format()
    }
    fn frame_count(&self) -> Option<u64> {
        None
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        if self.left == 0 {
            return Err(SourceError::Spec(
                "/dev/video-test: No such device (the camera vanished)".into(),
            ));
        }
        self.left -= 1;
        // A camera's frame interval.
        std::thread::sleep(Duration::from_millis(20));
        let m = self.inner.next_frame(dst)?;
        self.delivered.lock().unwrap().push(dst.to_vec());
        Ok(m)
    }
    fn is_live(&self) -> bool {
        true
    }
}

#[test]
fn a_camera_that_vanishes_while_recording_leaves_a_complete_session() {
    let fmt = RawFormat::new(64, 48, 10, BayerOrder::Rggb, Packing::Csi2);
    let engine = Arc::new(Engine::new(EngineConfig::default(), Tuning::default()).unwrap());
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let src = Vanishing {
        inner: SyntheticSource::new(Scene::Checker, fmt),
        left: 12,
        delivered: delivered.clone(),
    };
    // Paused until the recording is on: commands run in order, so every
    // frame the camera delivers is recorded.
    let player = Player::start_paused(engine.clone(), Box::new(src), 100.0);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    player.send(PlayerCmd::Record(Some((
        dir.clone(),
        Box::new(Tuning::default()),
    ))));
    player.send(PlayerCmd::Play);
    let t0 = Instant::now();
    let mut errors = Vec::new();
    loop {
        errors.extend(player.take_errors());
        let st = player.status();
        if !st.playing && st.recording.is_none() && !errors.is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{st:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        errors.iter().any(|e| e.contains("camera vanished")),
        "{errors:?}"
    );
    let notes = player.take_notes();
    assert!(
        notes.iter().any(|n| n.starts_with("recorded 12 frames")),
        "{notes:?}"
    );
    // Every frame the camera delivered is in the session, byte for byte.
    let s = SessionSource::open(&dir).unwrap();
    assert!(s.manifest().complete);
    let delivered = delivered.lock().unwrap();
    assert_eq!(delivered.len(), 12);
    assert_eq!(s.manifest().frames.len(), 12);
    let mut buf = vec![0u8; fmt.frame_bytes()];
    for (i, want) in delivered.iter().enumerate() {
        s.read_frame(i, &mut buf).unwrap();
        assert!(buf == *want, "frame {i} differs from what the camera gave");
    }
    player.send(PlayerCmd::Stop);
    drop(player);
    engine.shutdown();
}

/// The presenter never shows a frame older than one it already showed: with
/// several realtime workers (or a frame made again from the session) an
/// older frame can end after a newer one, and the viewer must not go back.
#[test]
fn the_presenter_does_not_show_an_older_frame_that_ends_late() {
    use isp_studio::presenter::{Presented, Presenter};
    let fmt = RawFormat::new(64, 48, 10, BayerOrder::Rggb, Packing::Csi2);
    let engine = Arc::new(Engine::new(EngineConfig::default(), Tuning::default()).unwrap());
    // Two real frames, taken from the engine in the order they were made.
    let results = engine.subscribe(true);
    let mut src = SyntheticSource::new(Scene::Checker, fmt);
    engine.feed(&mut src, Some(2), |_| {}).unwrap();
    let mut frames: Vec<_> = (0..2)
        .map(|_| results.recv_timeout(Duration::from_secs(60)).unwrap())
        .collect();
    frames.sort_by_key(|r| r.frame_id);
    let (older, newer) = (frames[0].clone(), frames[1].clone());
    assert!(older.preview.is_some() && newer.preview.is_some());
    // They reach the presenter out of order: the newer first, the older
    // after it, then the newer once more (the UI drains in between).
    let (tx, rx) = crossbeam_channel::unbounded();
    let presenter = Presenter::start(engine.clone(), rx);
    let mut shown = Vec::new();
    for r in [&newer, &older, &newer] {
        tx.send(r.clone()).unwrap();
        let t0 = Instant::now();
        // Each send is followed by the next only once the presenter took it
        // (its channel is empty) and shows what it will show.
        while !tx.is_empty() && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        for p in presenter.take() {
            if let Presented::Frame(f) = p {
                shown.push(f.result.frame_id);
            }
        }
    }
    let t0 = Instant::now();
    while shown.len() < 2 && t0.elapsed() < Duration::from_secs(60) {
        for p in presenter.take() {
            if let Presented::Frame(f) = p {
                shown.push(f.result.frame_id);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        shown,
        vec![newer.frame_id, newer.frame_id],
        "frame {} ended after frame {} and was shown over it",
        older.frame_id,
        newer.frame_id
    );
    drop((frames, older, newer, tx, presenter));
    engine.shutdown();
}
