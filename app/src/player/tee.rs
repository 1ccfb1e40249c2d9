//! The Player's wrappers of its source: the [`Tee`] that keeps (and
//! records) every frame read, and the [`Replay`] of the last one.

use super::{PlayerStatus, finish_recording};
use isp_engine::forward_frame_source;
use isp_engine::resource_manager::{BufferRef, ResourceManager};
use isp_engine::sources::session::SessionRecorder;
use isp_engine::sources::{FrameMeta, FrameSource, SourceError};
use std::sync::{Arc, Mutex};

/// The last frame read, once more: what `PlayerCmd::Again` feeds. Controls
/// still reach the real source.
pub(super) struct Replay<'a> {
    pub src: &'a mut dyn FrameSource,
    pub raw: Option<(Arc<Vec<u8>>, FrameMeta)>,
}

impl FrameSource for Replay<'_> {
    forward_frame_source!(src);
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        Ok(self.raw.take().map(|(raw, meta)| {
            let n = raw.len().min(dst.len());
            dst[..n].copy_from_slice(&raw[..n]);
            meta
        }))
    }
}

/// A source that keeps a copy of every frame it hands out (for taps, the
/// pixel inspector and re-runs while paused), and writes it to the
/// recording when there is one.
pub(super) struct Tee<'a> {
    pub src: &'a mut dyn FrameSource,
    pub status: &'a Mutex<PlayerStatus>,
    pub recorder: &'a mut Option<SessionRecorder>,
}

impl Tee<'_> {
    fn keep(&mut self, meta: &FrameMeta, raw: &[u8]) {
        let written = self.recorder.as_mut().map(|r| r.write_frame(meta, raw));
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.last_raw = Some(Arc::new(raw.to_vec()));
        st.last_meta = Some(meta.clone());
        st.last_index = Some(st.position);
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
}

impl FrameSource for Tee<'_> {
    forward_frame_source!(src);
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        let m = self.src.next_frame(dst)?;
        if let Some(meta) = &m {
            let n = self.src.format().frame_bytes().min(dst.len());
            self.keep(meta, &dst[..n]);
        }
        Ok(m)
    }
    fn next_lent(
        &mut self,
        rm: &Arc<ResourceManager>,
    ) -> Result<Option<(BufferRef, FrameMeta)>, SourceError> {
        let lent = self.src.next_lent(rm)?;
        if let Some((buf, meta)) = &lent {
            // The frame goes on to the engine either way (dropped here, its
            // buffer would never go back to the camera).
            match buf.read() {
                Ok(mem) => {
                    let n = self.src.format().frame_bytes().min(mem.len());
                    self.keep(meta, &mem.bytes()[..n]);
                }
                Err(e) => {
                    let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
                    st.errors.push(format!("{}: {e}", self.src.name()));
                }
            }
        }
        Ok(lent)
    }
    fn seek(&mut self, index: u64) -> Result<(), SourceError> {
        self.src.seek(index)
    }
}
