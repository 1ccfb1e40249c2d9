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
