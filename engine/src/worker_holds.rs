//! Worker holds: stop one stage of one frame at the start of its worker, on
//! the lane thread that took it, until whoever set the hold lets it go (or
//! makes it panic). The runtime's promises (frame-boundary parameters,
//! drop-oldest, a panicking worker) are tested with these instead of sleeps:
//! the test waits for the event "the worker is inside the stage", acts, then
//! releases it.
//!
//! Each [`ThreadingManager`](crate::threading_manager::ThreadingManager) owns
//! one `WorkerHolds`; when no hold is set, a worker pays one atomic load.

use crate::envelope::{Envelope, StageId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Release {
    Waiting,
    Run,
    Panic(String),
}

#[derive(Debug)]
struct HoldState {
    stage: StageId,
    frame_id: u64,
    entered: bool,
    release: Release,
}

/// The holds set on one ThreadingManager's workers.
#[derive(Debug, Default)]
pub struct WorkerHolds {
    armed: AtomicUsize,
    holds: Mutex<Vec<HoldState>>,
    changed: Condvar,
}

impl WorkerHolds {
    fn lock(&self) -> MutexGuard<'_, Vec<HoldState>> {
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hold the worker that runs `stage` of frame `frame_id`, when it starts.
    pub fn hold(self: &Arc<Self>, stage: StageId, frame_id: u64) -> Hold {
        self.lock().push(HoldState {
            stage,
            frame_id,
            entered: false,
            release: Release::Waiting,
        });
        self.armed.fetch_add(1, Ordering::AcqRel);
        Hold {
            holds: self.clone(),
            stage,
            frame_id,
            done: false,
        }
    }

    /// Called by a lane worker before it runs `env`: blocks while a hold on
    /// this stage of this frame is set; panics when the hold says so (the
    /// worker's own `catch_unwind` turns that into a `failed` completion).
    pub(crate) fn checkpoint(&self, env: &Envelope) {
        if self.armed.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut holds = self.lock();
        let Some(i) = holds
            .iter()
            .position(|h| h.stage == env.stage && h.frame_id == env.frame_id && !h.entered)
        else {
            return;
        };
        holds[i].entered = true;
        let key = (env.stage, env.frame_id);
        self.changed.notify_all();
        loop {
            // Other holds come and go while this one waits: find it again.
            let Some(i) = holds
                .iter()
                .position(|h| (h.stage, h.frame_id) == key && h.entered)
            else {
                return;
            };
            match &holds[i].release {
                Release::Waiting => {
                    holds = self.changed.wait(holds).unwrap_or_else(|p| p.into_inner());
                }
                Release::Run => {
                    holds.remove(i);
                    return;
                }
                Release::Panic(msg) => {
                    let msg = msg.clone();
                    holds.remove(i);
                    drop(holds);
                    panic!("{msg}");
                }
            }
        }
    }

    fn set(&self, stage: StageId, frame_id: u64, release: Release) {
        let mut holds = self.lock();
        if let Some(h) = holds
            .iter_mut()
            .find(|h| h.stage == stage && h.frame_id == frame_id)
        {
            h.release = release;
        }
        self.changed.notify_all();
    }
}

/// One hold; dropping it releases the worker (a failed test never leaves a
/// lane stuck).
#[derive(Debug)]
pub struct Hold {
    holds: Arc<WorkerHolds>,
    stage: StageId,
    frame_id: u64,
    done: bool,
}

impl Hold {
    /// Wait until the held worker is inside the stage; false after `timeout`
    /// (a guard against a test that would otherwise hang, not a sleep).
    pub fn wait_entered(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut holds = self.holds.lock();
        loop {
            let entered = holds
                .iter()
                .any(|h| h.stage == self.stage && h.frame_id == self.frame_id && h.entered);
            let now = Instant::now();
            if entered || now >= end {
                return entered;
            }
            holds = self
                .holds
                .changed
                .wait_timeout(holds, end - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Let the worker run the stage.
    pub fn release(mut self) {
        self.finish(Release::Run);
    }

    /// Make the worker panic with `msg` instead of running the stage.
    pub fn panic(mut self, msg: &str) {
        self.finish(Release::Panic(msg.to_string()));
    }

    fn finish(&mut self, r: Release) {
        if self.done {
            return;
        }
        self.done = true;
        self.holds.set(self.stage, self.frame_id, r);
        self.holds.armed.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.finish(Release::Run);
    }
}
