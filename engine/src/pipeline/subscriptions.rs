//! Who gets the results: lossless subscribers (the CLI, recorders) get every
//! result and hold the pipeline back while they lag; lossy ones (a UI) miss
//! results while 2 are already waiting.

use super::{Engine, FrameResult};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use std::sync::{Arc, Mutex};

struct Subscriber {
    tx: Sender<Arc<FrameResult>>,
    lossless: bool,
}

/// The subscriber list, shared by the engine (which adds) and the router
/// (which publishes).
#[derive(Clone, Default)]
pub(crate) struct Subscribers(Arc<Mutex<Vec<Subscriber>>>);

impl Subscribers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hand one result to every subscriber; the ones that went away are dropped.
    pub(crate) fn publish(&self, res: FrameResult) {
        let res = Arc::new(res);
        self.lock().retain(|s| {
            if s.lossless {
                s.tx.send(res.clone()).is_ok()
            } else {
                !matches!(
                    s.tx.try_send(res.clone()),
                    Err(TrySendError::Disconnected(_))
                )
            }
        });
    }

    pub(crate) fn add(&self, lossless: bool) -> Receiver<Arc<FrameResult>> {
        let (tx, rx) = if lossless { unbounded() } else { bounded(2) };
        self.lock().push(Subscriber { tx, lossless });
        rx
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

impl Engine {
    /// Results of every frame. Lossless subscribers get every result (and
    /// hold the pipeline back while they lag); lossy ones (a UI) miss results
    /// when 2 are already waiting.
    pub fn subscribe(&self, lossless: bool) -> Receiver<Arc<FrameResult>> {
        self.subscribers.add(lossless)
    }

    /// Drop every subscription: their receivers see the end of the stream.
    pub fn unsubscribe_all(&self) {
        self.subscribers.clear();
    }
}
