//! Where events live: the open chunk (packed rows, appended to), sealed
//! chunks (compressed with zstd when they fill: rows of one run are much
//! alike), and past the newest few sealed chunks, an append-only unnamed
//! spill file. Readers get chunks back through a small cache of
//! decompressed chunks shared by the manager and its snapshots.

use super::TelemetryEvent;
use super::packed::{Packed, pack};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Events per chunk.
pub const CHUNK: usize = 4096;
/// Sealed chunks kept in memory; older ones go to the spill file.
pub(super) const KEEP_IN_MEMORY: usize = 16;
/// Decompressed chunks kept for readers.
const CACHE: usize = 8;
/// zstd level for sealed chunks: fast, and 4-8x on telemetry rows.
const LEVEL: i32 = 3;
const PACKED: usize = std::mem::size_of::<Packed>();

/// Up to [`CHUNK`] packed events and their extra bytes.
#[derive(Debug, Default, Clone)]
pub(super) struct Chunk {
    pub events: Vec<Packed>,
    pub extra: Vec<u8>,
}

impl Chunk {
    fn open() -> Self {
        Chunk {
            events: Vec::with_capacity(CHUNK),
            extra: Vec::new(),
        }
    }
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.events.capacity() * PACKED + self.extra.capacity()
    }
}

/// A full chunk: the packed rows, then the extra bytes, compressed (or
/// stored as they are, where compression failed).
#[derive(Debug)]
pub(super) struct Sealed {
    z: Box<[u8]>,
    events: u32,
    extra: u32,
    compressed: bool,
}

impl Sealed {
    fn seal(c: &Chunk) -> Sealed {
        let mut raw = Vec::with_capacity(c.events.len() * PACKED + c.extra.len());
        raw.extend_from_slice(bytemuck::cast_slice(&c.events));
        raw.extend_from_slice(&c.extra);
        let z = zstd::bulk::compress(&raw, LEVEL);
        Sealed {
            compressed: z.is_ok(),
            z: z.unwrap_or(raw).into_boxed_slice(),
            events: c.events.len() as u32,
            extra: c.extra.len() as u32,
        }
    }

    fn open(&self) -> std::io::Result<Chunk> {
        let n = self.events as usize * PACKED;
        let raw = if self.compressed {
            zstd::bulk::decompress(&self.z, n + self.extra as usize)?
        } else {
            self.z.to_vec()
        };
        if raw.len() != n + self.extra as usize {
            return Err(std::io::Error::other(format!(
                "a telemetry chunk unpacked to {} bytes, not {}",
                raw.len(),
                n + self.extra as usize
            )));
        }
        let mut events = vec![Packed::default(); self.events as usize];
        bytemuck::cast_slice_mut(&mut events).copy_from_slice(&raw[..n]);
        Ok(Chunk {
            events,
            extra: raw[n..].to_vec(),
        })
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.z.len()
    }
}

/// Where a spilled chunk lies in the file.
#[derive(Debug, Clone, Copy)]
struct SpillEntry {
    offset: u64,
    len: u32,
    events: u32,
    extra: u32,
    compressed: bool,
}

/// The spill file: unnamed, so it goes when the last holder does.
#[derive(Debug)]
pub(super) struct Spill {
    file: std::fs::File,
    index: RwLock<Vec<SpillEntry>>,
}

impl Spill {
    fn create(dir: Option<&Path>) -> std::io::Result<Spill> {
        let file = match dir {
            Some(d) => tempfile::tempfile_in(d)?,
            None => tempfile::tempfile()?,
        };
        Ok(Spill {
            file,
            index: Default::default(),
        })
    }

    fn write(&self, s: &Sealed) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        let offset = index.last().map_or(0, |e| e.offset + e.len as u64);
        self.file.write_all_at(&s.z, offset)?;
        index.push(SpillEntry {
            offset,
            len: s.z.len() as u32,
            events: s.events,
            extra: s.extra,
            compressed: s.compressed,
        });
        Ok(())
    }

    /// Spilled chunk `i`, still compressed.
    pub(super) fn read(&self, i: usize) -> std::io::Result<Sealed> {
        use std::os::unix::fs::FileExt;
        let e = self
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(i)
            .copied()
            .ok_or_else(|| std::io::Error::other(format!("no spilled chunk {i}")))?;
        let mut z = vec![0u8; e.len as usize];
        self.file.read_exact_at(&mut z, e.offset)?;
        Ok(Sealed {
            z: z.into_boxed_slice(),
            events: e.events,
            extra: e.extra,
            compressed: e.compressed,
        })
    }

    fn bytes(&self) -> u64 {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index.last().map_or(0, |e| e.offset + e.len as u64)
    }
}

/// Decompressed chunks, newest use first.
#[derive(Debug, Default)]
pub(super) struct Cache {
    chunks: Mutex<VecDeque<(usize, Arc<Chunk>)>>,
    error: Mutex<Option<String>>,
}

impl Cache {
    fn get_or(
        &self,
        i: usize,
        load: impl FnOnce() -> std::io::Result<Chunk>,
    ) -> Option<Arc<Chunk>> {
        let mut cache = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.iter().position(|(c, _)| *c == i) {
            let hit = cache.remove(k)?;
            let chunk = hit.1.clone();
            cache.push_front(hit);
            return Some(chunk);
        }
        match load() {
            Ok(c) => {
                let c = Arc::new(c);
                cache.push_front((i, c.clone()));
                cache.truncate(CACHE);
                Some(c)
            }
            Err(e) => {
                *self.error.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("reading telemetry chunk {i}: {e}"));
                None
            }
        }
    }

    fn bytes(&self) -> usize {
        let cache = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        cache.iter().map(|(_, c)| c.bytes()).sum()
    }

    pub(super) fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The chunks of a log at one moment; what snapshots hold.
#[derive(Clone, Debug, Default)]
pub(super) struct Chunks {
    spill: Option<Arc<Spill>>,
    spilled: usize,
    sealed: Vec<Arc<Sealed>>,
    open: Arc<Chunk>,
    cache: Arc<Cache>,
}

impl Chunks {
    pub(super) fn len(&self) -> usize {
        (self.spilled + self.sealed.len()) * CHUNK + self.open.events.len()
    }

    pub(super) fn count(&self) -> usize {
        self.spilled + self.sealed.len() + 1
    }

    /// Chunk `c`, through the cache (the open one directly).
    pub(super) fn get(&self, c: usize) -> Option<Arc<Chunk>> {
        let open = self.spilled + self.sealed.len();
        if c == open {
            return Some(self.open.clone());
        }
        if c > open {
            return None;
        }
        self.cache.get_or(c, || self.load(c))
    }

    /// Chunk `c` decompressed, bypassing the cache (an export reads each
    /// once and must not evict what the timeline uses).
    pub(super) fn load(&self, c: usize) -> std::io::Result<Chunk> {
        let open = self.spilled + self.sealed.len();
        if c < self.spilled {
            let spill = self
                .spill
                .as_ref()
                .ok_or_else(|| std::io::Error::other("spilled telemetry without a file"))?;
            spill.read(c)?.open()
        } else if c < open {
            self.sealed[c - self.spilled].open()
        } else if c == open {
            Ok((*self.open).clone())
        } else {
            Err(std::io::Error::other(format!("no telemetry chunk {c}")))
        }
    }

    pub(super) fn open(&self) -> &Chunk {
        &self.open
    }

    pub(super) fn error(&self) -> Option<String> {
        self.cache.error()
    }
}

/// The log's storage; the manager holds it behind its lock.
#[derive(Debug)]
pub(super) struct Store {
    spilled: usize,
    sealed: VecDeque<Arc<Sealed>>,
    open: Chunk,
    /// Offsets and lengths of the open chunk's last extra records: a record
    /// equal to one of them is shared (GPU rows repeat their details).
    recent_extra: [(u32, u32); 4],
    keep: usize,
    spill_dir: Option<PathBuf>,
    spill: Option<Arc<Spill>>,
    pub(super) spill_error: Option<String>,
    cache: Arc<Cache>,
    pub(super) next_seq: u64,
}

impl Store {
    pub(super) fn new(keep: usize, spill_dir: Option<PathBuf>) -> Self {
        Store {
            spilled: 0,
            sealed: VecDeque::new(),
            open: Chunk::open(),
            recent_extra: [(0, 0); 4],
            keep,
            spill_dir,
            spill: None,
            spill_error: None,
            cache: Arc::default(),
            next_seq: 0,
        }
    }

    pub(super) fn push(&mut self, ev: &TelemetryEvent) {
        let before = self.open.extra.len();
        let mut p = pack(ev, &mut self.open.extra);
        if p.extra != 0 {
            let len = (self.open.extra.len() - before) as u32;
            let (old, new) = self.open.extra.split_at(before);
            let same = self.recent_extra.iter().find(|&&(off, l)| {
                l == len
                    && off > 0
                    && old.get(off as usize - 1..(off - 1 + l) as usize) == Some(new)
            });
            if let Some(&(off, _)) = same {
                self.open.extra.truncate(before);
                p.extra = off;
            } else {
                self.recent_extra.rotate_right(1);
                self.recent_extra[0] = (p.extra, len);
            }
        }
        self.open.events.push(p);
        self.next_seq += 1;
        if self.open.events.len() == CHUNK {
            self.seal();
        }
    }

    fn seal(&mut self) {
        self.recent_extra = [(0, 0); 4];
        let sealed = Sealed::seal(&self.open);
        self.open.events.clear();
        self.open.extra.clear();
        self.open.extra.shrink_to(4096);
        self.sealed.push_back(Arc::new(sealed));
        while self.sealed.len() > self.keep {
            if !self.spill_oldest() {
                break;
            }
        }
    }

    /// Move the oldest sealed chunk to the spill file. On an I/O error
    /// nothing is lost: chunks stay in memory from then on.
    fn spill_oldest(&mut self) -> bool {
        let Some(oldest) = self.sealed.front().cloned() else {
            return false;
        };
        let spill = match &self.spill {
            Some(s) => s.clone(),
            None => match Spill::create(self.spill_dir.as_deref()) {
                Ok(s) => {
                    let s = Arc::new(s);
                    self.spill = Some(s.clone());
                    s
                }
                Err(e) => return self.stop_spilling(format!("creating the spill file: {e}")),
            },
        };
        if let Err(e) = spill.write(&oldest) {
            return self.stop_spilling(format!("writing the spill file: {e}"));
        }
        self.sealed.pop_front();
        self.spilled += 1;
        true
    }

    fn stop_spilling(&mut self, why: String) -> bool {
        self.keep = usize::MAX;
        self.spill_error = Some(why);
        false
    }

    pub(super) fn len(&self) -> usize {
        (self.spilled + self.sealed.len()) * CHUNK + self.open.events.len()
    }

    pub(super) fn chunks(&self) -> Chunks {
        Chunks {
            spill: self.spill.clone(),
            spilled: self.spilled,
            sealed: self.sealed.iter().cloned().collect(),
            open: Arc::new(self.open.clone()),
            cache: self.cache.clone(),
        }
    }

    pub(super) fn memory(&self) -> super::TelemetryMemory {
        let in_memory = (self.sealed.len() * CHUNK + self.open.events.len()) as u64;
        let bytes = self.sealed.iter().map(|c| c.bytes()).sum::<usize>()
            + self.open.bytes()
            + self.sealed.capacity() * std::mem::size_of::<Arc<Sealed>>()
            + self.cache.bytes();
        super::TelemetryMemory {
            events: self.len() as u64,
            in_memory,
            bytes_in_memory: bytes as u64,
            spilled: (self.spilled * CHUNK) as u64,
            spilled_bytes: self.spill.as_ref().map_or(0, |s| s.bytes()),
        }
    }
}
