//! TelemetryManager: the append-only event log.
//!
//! Only the CompletionDispatcher appends (one thread), readers take cheap
//! snapshots: sealed chunks are shared by `Arc`, only the open chunk is copied.
//! Export is CSV with a header row, readable by pandas as is.

use crate::types::{Lane, Outcome};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

const CHUNK: usize = 4096;

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

#[derive(Default)]
struct Store {
    sealed: Vec<Arc<Vec<TelemetryEvent>>>,
    open: Vec<TelemetryEvent>,
    next_seq: u64,
}

/// The append-only log.
#[derive(Default)]
pub struct TelemetryManager {
    store: Mutex<Store>,
}

impl std::fmt::Debug for TelemetryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TelemetryManager({} events)", self.len())
    }
}

/// A consistent view of the log at one moment.
#[derive(Clone, Debug, Default)]
pub struct TelemetrySnapshot {
    sealed: Vec<Arc<Vec<TelemetryEvent>>>,
    open: Vec<TelemetryEvent>,
}

impl TelemetrySnapshot {
    pub fn len(&self) -> usize {
        self.sealed.len() * CHUNK + self.open.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = &TelemetryEvent> + '_ {
        self.sealed
            .iter()
            .flat_map(|c| c.iter())
            .chain(self.open.iter())
    }
    pub fn get(&self, i: usize) -> Option<&TelemetryEvent> {
        let (c, k) = (i / CHUNK, i % CHUNK);
        if c < self.sealed.len() {
            self.sealed[c].get(k)
        } else if c == self.sealed.len() {
            self.open.get(k)
        } else {
            None
        }
    }
}

impl TelemetryManager {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append an event; its `seq` is assigned here. Returns the seq.
    pub fn append(&self, mut ev: TelemetryEvent) -> u64 {
        let mut s = self.lock();
        ev.seq = s.next_seq;
        s.next_seq += 1;
        s.open.push(ev);
        if s.open.len() == CHUNK {
            let full = std::mem::replace(&mut s.open, Vec::with_capacity(CHUNK));
            s.sealed.push(Arc::new(full));
        }
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
        let s = self.lock();
        s.sealed.len() * CHUNK + s.open.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn snapshot(&self) -> TelemetrySnapshot {
        let s = self.lock();
        TelemetrySnapshot {
            sealed: s.sealed.clone(),
            open: s.open.clone(),
        }
    }

    /// Write the log as CSV to any writer.
    pub fn write_csv<W: Write>(&self, out: W) -> Result<(), csv::Error> {
        write_csv(&self.snapshot(), out)
    }

    /// Write the log as CSV to `path`.
    pub fn export_csv(&self, path: &Path) -> Result<(), TelemetryError> {
        let f = std::fs::File::create(path).map_err(|e| TelemetryError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        self.write_csv(std::io::BufWriter::new(f))
            .map_err(|e| TelemetryError::Csv {
                path: path.display().to_string(),
                source: e,
            })
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

/// Write a snapshot as CSV.
pub fn write_csv<W: Write>(snap: &TelemetrySnapshot, out: W) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    let mut bufs = String::new();
    for e in snap.iter() {
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
            &bufs,
            &e.params_version.to_string(),
            e.outcome.name(),
            &e.detail,
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(frame: u64) -> TelemetryEvent {
        TelemetryEvent {
            seq: 99,
            kind: EventKind::Stage,
            frame_id: frame,
            stage: "fast_isp",
            lane: Some(Lane::Realtime),
            worker: Some(1),
            enqueue_ns: 10,
            start_ns: 1_000_010,
            end_ns: 3_000_010,
            buffers: vec![3, 4],
            params_version: 2,
            outcome: Outcome::Ok,
            detail: "a, \"quoted\" detail".into(),
        }
    }

    #[test]
    fn append_assigns_sequence_and_snapshots_are_stable() {
        let t = TelemetryManager::new();
        for i in 0..(CHUNK as u64 * 2 + 5) {
            t.append(ev(i));
        }
        let snap = t.snapshot();
        t.append(ev(12345));
        assert_eq!(snap.len(), CHUNK * 2 + 5);
        assert_eq!(t.len(), CHUNK * 2 + 6);
        for (i, e) in snap.iter().enumerate() {
            assert_eq!(e.seq, i as u64);
            assert_eq!(e.frame_id, i as u64);
        }
        assert_eq!(snap.get(CHUNK + 3).unwrap().seq, CHUNK as u64 + 3);
        assert!(snap.get(CHUNK * 3).is_none());
    }

    #[test]
    fn csv_has_header_and_parses_back() {
        let t = TelemetryManager::new();
        t.append(ev(7));
        let mut out = Vec::new();
        t.write_csv(&mut out).unwrap();
        let mut r = csv::Reader::from_reader(out.as_slice());
        let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(headers, CSV_COLUMNS);
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[2], "7");
        assert_eq!(&rec[4], "realtime");
        assert_eq!(&rec[9], "1.000000");
        assert_eq!(&rec[10], "2.000000");
        assert_eq!(&rec[11], "3;4");
        assert_eq!(&rec[14], "a, \"quoted\" detail");
    }
}
