//! TelemetryManager: the append-only event log.
//!
//! Only the CompletionDispatcher appends (one thread), readers take cheap
//! snapshots: sealed chunks are shared by `Arc`, only the open chunk is copied.
//! Events are kept packed (40 bytes, see `packed.rs`) in chunks of 4096; past
//! the newest 16 sealed chunks, chunks go to an append-only unnamed spill
//! file and are read back on demand, so a day's run stays in bounded memory.
//! Export is CSV with a header row, readable by pandas as is.

mod packed;
mod store;

pub use packed::EventBrief;
pub use store::CHUNK;

use crate::types::{Lane, Outcome};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use store::{Chunks, KEEP_IN_MEMORY, Store};

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// One envelope's completion (a stage on a frame).
    Stage,
    /// A Housekeeper sweep: pool statistics, expiries, stale pins.
    Pool,
    /// Anything else worth a row: backend switches, source errors, control writes.
    Note,
    /// A GPU step of a frame (upload, compute, readback); `detail` says how
    /// it was timed (`timer=timestamp` GPU timestamp queries, `timer=cpu`).
    Gpu,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Stage => "stage",
            EventKind::Pool => "pool",
            EventKind::Note => "note",
            EventKind::Gpu => "gpu",
        }
    }
}

/// One telemetry row. Times are ns on the engine clock ([`crate::clock`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TelemetryEvent {
    pub seq: u64,
    pub kind: EventKind,
    pub frame_id: u64,
    pub stage: &'static str,
    pub lane: Option<Lane>,
    pub worker: Option<u16>,
    pub enqueue_ns: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub buffers: Vec<u32>,
    pub params_version: u64,
    pub outcome: Outcome,
    pub detail: String,
}

impl TelemetryEvent {
    pub fn queue_ns(&self) -> u64 {
        self.start_ns.saturating_sub(self.enqueue_ns)
    }
    pub fn run_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// The CSV columns, in order (documented in the README).
pub const CSV_COLUMNS: [&str; 15] = [
    "seq",
    "kind",
    "frame_id",
    "stage",
    "lane",
    "worker",
    "enqueue_ns",
    "start_ns",
    "end_ns",
    "queue_ms",
    "run_ms",
    "buffers",
    "params_version",
    "outcome",
    "detail",
];

/// Where the log's memory goes (see `isp bench`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TelemetryMemory {
    pub events: u64,
    /// Events held in memory (the newest).
    pub in_memory: u64,
    /// Bytes those events take: packed rows, extra bytes, chunk headers.
    pub bytes_in_memory: u64,
    /// Events in the spill file, and its size.
    pub spilled: u64,
    pub spilled_bytes: u64,
}

impl TelemetryMemory {
    /// Bytes per event held in memory.
    pub fn bytes_per_event(&self) -> f64 {
        self.bytes_in_memory as f64 / self.in_memory.max(1) as f64
    }
}

/// The append-only log.
pub struct TelemetryManager {
    store: Mutex<Store>,
}

impl Default for TelemetryManager {
    fn default() -> Self {
        TelemetryManager {
            store: Mutex::new(Store::new(KEEP_IN_MEMORY, None)),
        }
    }
}

impl std::fmt::Debug for TelemetryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TelemetryManager({} events)", self.len())
    }
}

/// A consistent view of the log at one moment. Older chunks are
/// decompressed (and spilled ones read back) on demand; the last few are
/// cached.
#[derive(Clone, Debug, Default)]
pub struct TelemetrySnapshot {
    chunks: Chunks,
}

impl TelemetrySnapshot {
    pub fn len(&self) -> usize {
        self.chunks.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every event, in order.
    pub fn iter(&self) -> impl Iterator<Item = TelemetryEvent> + '_ {
        (0..self.chunks.count()).flat_map(move |c| {
            let chunk = self.chunks.get(c).unwrap_or_default();
            (0..chunk.events.len())
                .map(move |k| chunk.events[k].unpack((c * CHUNK + k) as u64, &chunk.extra))
        })
    }

    /// Event `i` (its `seq`).
    pub fn get(&self, i: usize) -> Option<TelemetryEvent> {
        let ch = self.chunks.get(i / CHUNK)?;
        ch.events
            .get(i % CHUNK)
            .map(|p| p.unpack(i as u64, &ch.extra))
    }

    /// Event `i`'s fixed fields, without its buffers and detail (no
    /// allocation for the newest events).
    pub fn brief(&self, i: usize) -> Option<EventBrief> {
        let (c, k) = (i / CHUNK, i % CHUNK);
        if c + 1 == self.chunks.count() {
            let open = self.chunks.open();
            return open.events.get(k).map(|p| p.brief(i as u64, &open.extra));
        }
        let ch = self.chunks.get(c)?;
        ch.events.get(k).map(|p| p.brief(i as u64, &ch.extra))
    }

    /// Why an older chunk could not be read back, if one could not (its
    /// events are then missing from `iter`; a CSV export fails instead).
    pub fn read_error(&self) -> Option<String> {
        self.chunks.error()
    }
}

impl TelemetryManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// A log that keeps `chunks` sealed chunks of [`CHUNK`] events in
    /// memory and spills older ones to an unnamed file in `dir` (the
    /// system's temporary folder when `None`).
    pub fn with_spill(chunks: usize, dir: Option<std::path::PathBuf>) -> Self {
        TelemetryManager {
            store: Mutex::new(Store::new(chunks, dir)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append an event; its `seq` is assigned here. Returns the seq.
    pub fn append(&self, ev: TelemetryEvent) -> u64 {
        let mut s = self.lock();
        s.push(&ev);
        s.next_seq - 1
    }

    /// A note row (no frame, no lane).
    pub fn note(&self, stage: &'static str, detail: String) {
        let t = crate::clock::now_ns();
        self.append(TelemetryEvent {
            seq: 0,
            kind: EventKind::Note,
            frame_id: 0,
            stage,
            lane: None,
            worker: None,
            enqueue_ns: t,
            start_ns: t,
            end_ns: t,
            buffers: Vec::new(),
            params_version: 0,
            outcome: Outcome::Ok,
            detail,
        });
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the log holds in memory and on disk now.
    pub fn memory(&self) -> TelemetryMemory {
        self.lock().memory()
    }

    /// Why spilling stopped (events then stay in memory), if it did.
    pub fn spill_error(&self) -> Option<String> {
        self.lock().spill_error.clone()
    }

    pub fn snapshot(&self) -> TelemetrySnapshot {
        TelemetrySnapshot {
            chunks: self.lock().chunks(),
        }
    }

    /// Write the log as CSV to any writer.
    pub fn write_csv<W: Write>(&self, out: W) -> Result<(), csv::Error> {
        write_csv(&self.snapshot(), out)
    }

    /// Write the log as CSV to `path`.
    pub fn export_csv(&self, path: &Path) -> Result<(), TelemetryError> {
        // Written whole or not at all; a CSV error travels out as `other`.
        let mut csv_error = None;
        let r = crate::image_io::write_atomic_with(path, |w| {
            self.write_csv(w).map_err(|e| {
                let m = std::io::Error::other(e.to_string());
                csv_error = Some(e);
                m
            })
        });
        match (r, csv_error) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(e)) => Err(TelemetryError::Csv {
                path: path.display().to_string(),
                source: e,
            }),
            (Err(e), None) => Err(TelemetryError::Io {
                path: path.display().to_string(),
                source: e,
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot write telemetry to {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write telemetry CSV to {path}: {source}")]
    Csv { path: String, source: csv::Error },
}

/// Write a snapshot as CSV. A spilled chunk that cannot be read back is an
/// error, not a gap.
pub fn write_csv<W: Write>(snap: &TelemetrySnapshot, out: W) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    let mut bufs = String::new();
    for c in 0..snap.chunks.count() {
        let chunk = snap.chunks.load(c).map_err(csv::Error::from)?;
        for (k, p) in chunk.events.iter().enumerate() {
            write_row(
                &mut w,
                &p.unpack((c * CHUNK + k) as u64, &chunk.extra),
                &mut bufs,
            )?;
        }
    }
    w.flush()?;
    Ok(())
}

fn write_row<W: Write>(
    w: &mut csv::Writer<W>,
    e: &TelemetryEvent,
    bufs: &mut String,
) -> Result<(), csv::Error> {
    {
        bufs.clear();
        for (i, b) in e.buffers.iter().enumerate() {
            if i > 0 {
                bufs.push(';');
            }
            bufs.push_str(&b.to_string());
        }
        w.write_record([
            e.seq.to_string().as_str(),
            e.kind.name(),
            &e.frame_id.to_string(),
            e.stage,
            e.lane.map(|l| l.name()).unwrap_or(""),
            &e.worker.map(|w| w.to_string()).unwrap_or_default(),
            &e.enqueue_ns.to_string(),
            &e.start_ns.to_string(),
            &e.end_ns.to_string(),
            &format!("{:.6}", e.queue_ns() as f64 / 1e6),
            &format!("{:.6}", e.run_ns() as f64 / 1e6),
            bufs,
            &e.params_version.to_string(),
            e.outcome.name(),
            &e.detail,
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
