//! One monotonic clock for the whole engine: every telemetry timestamp is
//! nanoseconds since the first call in this process.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on the engine's monotonic clock.
pub fn now_ns() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64
}

/// The `Instant` that [`now_ns`] counts from.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}
