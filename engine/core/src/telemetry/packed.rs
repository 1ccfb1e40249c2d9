//! The compact form of a telemetry event: 40 bytes, with anything that does
//! not fit (a detail string, a third buffer, a value past 32 bits) in the
//! chunk's `extra` bytes. Stage names are interned once per process.

use super::{EventKind, TelemetryEvent};
use crate::types::{Lane, Outcome};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};

/// One event in memory and in the spill file.
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(super) struct Packed {
    pub enqueue_ns: u64,
    /// `u32::MAX`: in the extra bytes.
    pub frame_id: u32,
    /// start - enqueue; `u32::MAX`: in the extra bytes.
    pub queue_ns: u32,
    /// end - start; `u32::MAX`: in the extra bytes.
    pub run_ns: u32,
    /// `u32::MAX`: in the extra bytes.
    pub params_version: u32,
    pub buffers: [u32; 2],
    /// Offset + 1 into the chunk's extra bytes; 0: none.
    pub extra: u32,
    /// Interned stage name; `u16::MAX`: in the extra bytes.
    pub stage: u16,
    /// `NO_WORKER`, `WIDE_WORKER` (in the extra bytes) or the worker.
    pub worker: u8,
    /// kind (2 bits), lane (2), outcome (2), inline buffers (2; 3: in extra).
    pub flags: u8,
}

const NO_WORKER: u8 = 0xFF;
const WIDE_WORKER: u8 = 0xFE;
const WIDE: u32 = u32::MAX;

// Which fields the extra bytes hold, in this order.
const X_FRAME: u8 = 1;
const X_START: u8 = 2;
const X_END: u8 = 4;
const X_VERSION: u8 = 8;
const X_WORKER: u8 = 16;
const X_BUFFERS: u8 = 32;
const X_DETAIL: u8 = 64;
const X_STAGE: u8 = 128;

fn kind_bits(k: EventKind) -> u8 {
    match k {
        EventKind::Stage => 0,
        EventKind::Pool => 1,
        EventKind::Note => 2,
        EventKind::Gpu => 3,
    }
}

fn kind_of(b: u8) -> EventKind {
    match b & 3 {
        0 => EventKind::Stage,
        1 => EventKind::Pool,
        2 => EventKind::Note,
        _ => EventKind::Gpu,
    }
}

fn lane_bits(l: Option<Lane>) -> u8 {
    match l {
        None => 0,
        Some(Lane::Realtime) => 1,
        Some(Lane::Background) => 2,
    }
}

fn lane_of(b: u8) -> Option<Lane> {
    match b & 3 {
        1 => Some(Lane::Realtime),
        2 => Some(Lane::Background),
        _ => None,
    }
}

fn outcome_bits(o: Outcome) -> u8 {
    match o {
        Outcome::Ok => 0,
        Outcome::Failed => 1,
        Outcome::Dropped => 2,
        Outcome::Cancelled => 3,
    }
}

fn outcome_of(b: u8) -> Outcome {
    match b & 3 {
        0 => Outcome::Ok,
        1 => Outcome::Failed,
        2 => Outcome::Dropped,
        _ => Outcome::Cancelled,
    }
}

/// Stage names, interned: names are `&'static str`, so there are few.
struct Names {
    ids: Mutex<HashMap<&'static str, u16>>,
    names: RwLock<Vec<&'static str>>,
}

fn names() -> &'static Names {
    static N: OnceLock<Names> = OnceLock::new();
    N.get_or_init(|| Names {
        ids: Mutex::new(HashMap::new()),
        names: RwLock::new(Vec::new()),
    })
}

/// The id of a stage name (`u16::MAX` when the table is full).
fn intern(name: &'static str) -> u16 {
    let n = names();
    let mut ids = n.ids.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let mut v = n.names.write().unwrap_or_else(|p| p.into_inner());
    if v.len() >= u16::MAX as usize {
        return u16::MAX;
    }
    let id = v.len() as u16;
    v.push(name);
    ids.insert(name, id);
    id
}

fn name_of(id: u16) -> &'static str {
    names()
        .names
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(id as usize)
        .copied()
        .unwrap_or("?")
}

/// A stage name that did not fit the table, back as a `&'static str`
/// (leaked once per distinct name, as the originals were static).
fn overflow_name(s: &str) -> &'static str {
    static O: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut m = O
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(&n) = m.get(s) {
        return n;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    m.insert(s.to_owned(), leaked);
    leaked
}

/// Pack `e`, appending what does not fit to `extra`.
pub(super) fn pack(e: &TelemetryEvent, extra: &mut Vec<u8>) -> Packed {
    let mut x = 0u8;
    let narrow = |v: u64, bit: u8, x: &mut u8| -> u32 {
        if v < WIDE as u64 {
            v as u32
        } else {
            *x |= bit;
            WIDE
        }
    };
    let frame_id = narrow(e.frame_id, X_FRAME, &mut x);
    let queue_ns = match e.start_ns.checked_sub(e.enqueue_ns) {
        Some(q) => narrow(q, X_START, &mut x),
        None => {
            x |= X_START;
            WIDE
        }
    };
    let run_ns = match e.end_ns.checked_sub(e.start_ns) {
        Some(r) => narrow(r, X_END, &mut x),
        None => {
            x |= X_END;
            WIDE
        }
    };
    let params_version = narrow(e.params_version, X_VERSION, &mut x);
    let worker = match e.worker {
        None => NO_WORKER,
        Some(w) if w < WIDE_WORKER as u16 => w as u8,
        Some(_) => {
            x |= X_WORKER;
            WIDE_WORKER
        }
    };
    let mut buffers = [0u32; 2];
    let nbuf = if e.buffers.len() <= 2 {
        buffers[..e.buffers.len()].copy_from_slice(&e.buffers);
        e.buffers.len() as u8
    } else {
        x |= X_BUFFERS;
        3
    };
    if !e.detail.is_empty() {
        x |= X_DETAIL;
    }
    let stage = match intern(e.stage) {
        u16::MAX => {
            x |= X_STAGE;
            u16::MAX
        }
        id => id,
    };
    let off = if x == 0 {
        0
    } else {
        let at = extra.len();
        extra.push(x);
        let put64 = |v: u64, extra: &mut Vec<u8>| extra.extend_from_slice(&v.to_le_bytes());
        let put_bytes = |b: &[u8], extra: &mut Vec<u8>| {
            extra.extend_from_slice(&(b.len() as u32).to_le_bytes());
            extra.extend_from_slice(b);
        };
        if x & X_FRAME != 0 {
            put64(e.frame_id, extra);
        }
        if x & X_START != 0 {
            put64(e.start_ns, extra);
        }
        if x & X_END != 0 {
            put64(e.end_ns, extra);
        }
        if x & X_VERSION != 0 {
            put64(e.params_version, extra);
        }
        if x & X_WORKER != 0 {
            extra.extend_from_slice(&e.worker.unwrap_or(0).to_le_bytes());
        }
        if x & X_BUFFERS != 0 {
            put_bytes(bytemuck::cast_slice(&e.buffers), extra);
        }
        if x & X_DETAIL != 0 {
            put_bytes(e.detail.as_bytes(), extra);
        }
        if x & X_STAGE != 0 {
            put_bytes(e.stage.as_bytes(), extra);
        }
        at as u32 + 1
    };
    Packed {
        enqueue_ns: e.enqueue_ns,
        frame_id,
        queue_ns,
        run_ns,
        params_version,
        buffers,
        extra: off,
        stage,
        worker,
        flags: kind_bits(e.kind)
            | (lane_bits(e.lane) << 2)
            | (outcome_bits(e.outcome) << 4)
            | (nbuf << 6),
    }
}

/// The extra fields of one event, read back.
#[derive(Default)]
struct Extra<'a> {
    frame_id: Option<u64>,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    params_version: Option<u64>,
    worker: Option<u16>,
    buffers: Option<&'a [u8]>,
    detail: Option<&'a [u8]>,
    stage: Option<&'a [u8]>,
}

fn read_extra(extra: &[u8], off: u32) -> Extra<'_> {
    struct Cursor<'a> {
        b: &'a [u8],
        at: usize,
    }
    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let s = self.b.get(self.at..self.at + n).unwrap_or(&[]);
            self.at += n;
            s
        }
        fn u64(&mut self) -> u64 {
            self.take(8).try_into().map(u64::from_le_bytes).unwrap_or(0)
        }
        fn bytes(&mut self) -> &'a [u8] {
            let n = self.take(4).try_into().map(u32::from_le_bytes).unwrap_or(0);
            self.take(n as usize)
        }
    }
    let mut x = Extra::default();
    if off == 0 {
        return x;
    }
    let mut c = Cursor {
        b: extra,
        at: off as usize - 1,
    };
    let Some(&mask) = c.take(1).first() else {
        return x;
    };
    let has = |bit: u8| mask & bit != 0;
    if has(X_FRAME) {
        x.frame_id = Some(c.u64());
    }
    if has(X_START) {
        x.start_ns = Some(c.u64());
    }
    if has(X_END) {
        x.end_ns = Some(c.u64());
    }
    if has(X_VERSION) {
        x.params_version = Some(c.u64());
    }
    if has(X_WORKER) {
        x.worker = c.take(2).try_into().map(u16::from_le_bytes).ok();
    }
    if has(X_BUFFERS) {
        x.buffers = Some(c.bytes());
    }
    if has(X_DETAIL) {
        x.detail = Some(c.bytes());
    }
    if has(X_STAGE) {
        x.stage = Some(c.bytes());
    }
    x
}

/// The fixed fields of an event: what the timeline draws (no allocation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventBrief {
    pub seq: u64,
    pub kind: EventKind,
    pub frame_id: u64,
    pub stage: &'static str,
    pub lane: Option<Lane>,
    pub worker: Option<u16>,
    pub enqueue_ns: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub params_version: u64,
    pub outcome: Outcome,
}

impl Packed {
    fn brief_with(&self, seq: u64, x: &Extra<'_>) -> EventBrief {
        let start_ns = x
            .start_ns
            .unwrap_or_else(|| self.enqueue_ns.saturating_add(self.queue_ns as u64));
        EventBrief {
            seq,
            kind: kind_of(self.flags),
            frame_id: x.frame_id.unwrap_or(self.frame_id as u64),
            stage: match (self.stage, x.stage) {
                (u16::MAX, Some(s)) => overflow_name(&String::from_utf8_lossy(s)),
                (id, _) => name_of(id),
            },
            lane: lane_of(self.flags >> 2),
            worker: match self.worker {
                NO_WORKER => None,
                WIDE_WORKER => x.worker,
                w => Some(w as u16),
            },
            enqueue_ns: self.enqueue_ns,
            start_ns,
            end_ns: x
                .end_ns
                .unwrap_or_else(|| start_ns.saturating_add(self.run_ns as u64)),
            params_version: x.params_version.unwrap_or(self.params_version as u64),
            outcome: outcome_of(self.flags >> 4),
        }
    }

    pub(super) fn brief(&self, seq: u64, extra: &[u8]) -> EventBrief {
        if self.extra == 0 {
            return self.brief_with(seq, &Extra::default());
        }
        self.brief_with(seq, &read_extra(extra, self.extra))
    }

    pub(super) fn unpack(&self, seq: u64, extra: &[u8]) -> TelemetryEvent {
        let x = read_extra(extra, self.extra);
        let b = self.brief_with(seq, &x);
        let n = (self.flags >> 6) as usize;
        let buffers = match (n, x.buffers) {
            (3, Some(bytes)) => bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            (n, _) => self.buffers[..n.min(2)].to_vec(),
        };
        TelemetryEvent {
            seq,
            kind: b.kind,
            frame_id: b.frame_id,
            stage: b.stage,
            lane: b.lane,
            worker: b.worker,
            enqueue_ns: b.enqueue_ns,
            start_ns: b.start_ns,
            end_ns: b.end_ns,
            buffers,
            params_version: b.params_version,
            outcome: b.outcome,
            detail: x
                .detail
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .unwrap_or_default(),
        }
    }
}
