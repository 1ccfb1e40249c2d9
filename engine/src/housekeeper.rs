//! Housekeeper: a periodic sweep. It expires reservations, reports pins held
//! past a threshold and records pool statistics as telemetry. The sweep runs
//! on the dispatcher thread (the timer thread only posts `Sweep`), so the
//! dispatcher stays the one place lifecycles change.

use crate::resource_manager::Lifecycle;
use crate::resource_manager::{PoolStats, ResourceManager, StalePin};
use crate::telemetry::{EventKind, TelemetryEvent, TelemetryManager};
use crate::types::Outcome;
use crossbeam_channel::{Sender, bounded};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct HousekeeperConfig {
    pub period: Duration,
    /// A pin held longer than this is reported as stale.
    pub stale_pin: Duration,
}

impl Default for HousekeeperConfig {
    fn default() -> Self {
        HousekeeperConfig {
            period: Duration::from_millis(250),
            stale_pin: Duration::from_secs(2),
        }
    }
}

/// What one sweep found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SweepReport {
    pub at_ns: u64,
    pub expired_plans: Vec<u64>,
    pub stale_pins: Vec<StalePin>,
    pub pool: PoolStats,
}

#[derive(Clone, Debug)]
pub struct Housekeeper {
    pub config: HousekeeperConfig,
    last: Arc<Mutex<SweepReport>>,
}

impl Housekeeper {
    pub fn new(config: HousekeeperConfig) -> Self {
        Housekeeper {
            config,
            last: Arc::default(),
        }
    }

    /// One sweep at `now`.
    pub fn sweep(
        &self,
        rm: &ResourceManager,
        lifecycle: &Lifecycle,
        telemetry: &TelemetryManager,
        now: u64,
    ) -> SweepReport {
        let expired = rm.expire_reservations(lifecycle, now);
        let stale = rm.stale_pins(now, self.config.stale_pin.as_nanos() as u64);
        let pool = rm.stats();
        let mut detail = format!(
            "total={} free={} allocated={} reserved={} pinned={} pins={} bytes_total={} bytes_in_use={}",
            pool.total,
            pool.free,
            pool.allocated,
            pool.reserved,
            pool.pinned,
            pool.pins,
            pool.bytes_total,
            pool.bytes_in_use
        );
        if !expired.is_empty() {
            detail.push_str(&format!(" expired_plans={expired:?}"));
        }
        for p in &stale {
            detail.push_str(&format!(
                " stale_pin={}:{}:{}ms",
                p.id,
                p.owner,
                p.age_ns / 1_000_000
            ));
        }
        telemetry.append(TelemetryEvent {
            seq: 0,
            kind: EventKind::Pool,
            frame_id: 0,
            stage: "housekeeper",
            lane: None,
            worker: None,
            enqueue_ns: now,
            start_ns: now,
            end_ns: crate::clock::now_ns().max(now),
            buffers: stale.iter().map(|p| p.id.index).collect(),
            params_version: 0,
            outcome: Outcome::Ok,
            detail,
        });
        let report = SweepReport {
            at_ns: now,
            expired_plans: expired,
            stale_pins: stale,
            pool,
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = report.clone();
        report
    }

    /// The latest sweep's findings (for the UI: stale pins are highlighted).
    pub fn last_report(&self) -> SweepReport {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The timer thread that asks for a sweep every period (`tick`: the engine
/// posts a sweep to the dispatcher; `false` stops the timer).
#[derive(Debug)]
pub struct HousekeeperTimer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HousekeeperTimer {
    pub fn start(period: Duration, tick: impl Fn() -> bool + Send + 'static) -> Self {
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("housekeeper".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(period)
                {
                    if !tick() {
                        break;
                    }
                }
            })
            .expect("spawning the housekeeper");
        HousekeeperTimer {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HousekeeperTimer {
    fn drop(&mut self) {
        self.stop();
    }
}
