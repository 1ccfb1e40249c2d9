//! A frame as the engine shares it: its identity (held by the router and by
//! every result; when the last holder lets go the frame leaves the in-flight
//! count) and the results subscribers get.

use crate::algorithms::IpaContext;
use crate::completion_dispatcher::PinGuard;
use crate::sources::FrameMeta;
use crate::stages::stats::Stats3A;
use crate::types::{Lane, Outcome, RawFormat};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Counts frames in flight; `feed` and `flush` wait on it.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    n: Mutex<usize>,
    cv: Condvar,
}

impl InFlight {
    pub(crate) fn enter(&self) {
        *self.n.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }
    pub(crate) fn leave(&self) {
        let mut n = self.n.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.cv.notify_all();
    }
    pub(crate) fn wait_below(&self, max: usize, timeout: Duration) -> bool {
        let n = self.n.lock().unwrap_or_else(|p| p.into_inner());
        let (n, _) = self
            .cv
            .wait_timeout_while(n, timeout, |n| *n >= max)
            .unwrap_or_else(|p| p.into_inner());
        *n < max
    }
    pub(crate) fn count(&self) -> usize {
        *self.n.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The frame's identity, shared by the router's state and the results.
/// When the last holder drops it, the frame stops counting as in flight.
#[derive(Debug)]
pub(crate) struct FrameCtx {
    pub(crate) frame_id: u64,
    pub(crate) meta: FrameMeta,
    pub(crate) format: RawFormat,
    pub(crate) in_flight: Arc<InFlight>,
}

impl Drop for FrameCtx {
    fn drop(&mut self) {
        self.in_flight.leave();
    }
}

/// What subscribers receive, once per frame and lane.
#[derive(Debug)]
pub struct FrameResult {
    pub frame_id: u64,
    pub meta: FrameMeta,
    pub format: RawFormat,
    pub params_version: u64,
    pub lane: Lane,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// RGBA8 preview (fast path).
    pub preview: Option<PinGuard>,
    /// RGB16 capture (slow path).
    pub capture: Option<PinGuard>,
    pub stats: Option<Arc<Stats3A>>,
    pub ipa: IpaContext,
    pub(crate) _frame: Arc<FrameCtx>,
}

impl FrameResult {
    /// A copy of the preview pixels (RGBA8), if there is one.
    pub fn preview_rgba(&self) -> Option<Vec<u8>> {
        let g = self.preview.as_ref()?;
        let m = g.buffer().read().ok()?;
        let n = self.format.pixels() * 4;
        Some(m.bytes()[..n].to_vec())
    }
    /// A copy of the capture pixels (RGB16), if there is one.
    pub fn capture_rgb16(&self) -> Option<Vec<u16>> {
        let g = self.capture.as_ref()?;
        let m = g.buffer().read().ok()?;
        let n = self.format.pixels() * 3;
        Some(m.u16s()[..n].to_vec())
    }
}
