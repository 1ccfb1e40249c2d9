//! The ResourceManager's vocabulary: handles, specs, states, pins, errors,
//! and the reference through which a buffer's bytes are reached.

use crate::allocator::{AllocError, Memory};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub type PlanId = u64;

/// A buffer handle: pool slot and the generation it was handed out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BufferId {
    pub index: u32,
    pub generation: u32,
}

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.index, self.generation)
    }
}

/// What a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferKind {
    /// Sensor bytes as delivered (any packing).
    Raw,
    /// One u16 per pixel, Bayer mosaic.
    Bayer16,
    /// RGBA, 8 bits a sample (preview).
    Rgba8,
    /// RGB, 16 bits a sample (capture).
    Rgb16,
    Other,
}

/// Format, geometry and size of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct BufferSpec {
    pub kind: BufferKind,
    pub width: u32,
    pub height: u32,
    /// Bytes per row.
    pub stride: u32,
    pub bytes: usize,
}

impl BufferKind {
    /// Intermediates that never leave the process live in heap memory: the
    /// platform allocator's shared mappings (memfd, dmabuf) are for buffers
    /// that are handed to devices or other processes, and cost page-table
    /// work a scratch mosaic does not need (measured: stats 6.3 -> 4.0 ms at
    /// 1080p on this machine).
    pub fn is_scratch(self) -> bool {
        matches!(self, BufferKind::Bayer16)
    }
}

impl BufferSpec {
    pub fn new(kind: BufferKind, width: u32, height: u32) -> Self {
        let bpp = match kind {
            BufferKind::Raw | BufferKind::Other => 1,
            BufferKind::Bayer16 => 2,
            BufferKind::Rgba8 => 4,
            BufferKind::Rgb16 => 6,
        };
        BufferSpec {
            kind,
            width,
            height,
            stride: width * bpp,
            bytes: (width * bpp) as usize * height as usize,
        }
    }
    pub fn raw(width: u32, height: u32, stride: u32) -> Self {
        BufferSpec {
            kind: BufferKind::Raw,
            width,
            height,
            stride,
            bytes: stride as usize * height as usize,
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RmError {
    #[error("buffer {0} does not exist in this pool")]
    UnknownBuffer(BufferId),
    #[error("buffer {0} was already released")]
    AlreadyReleased(BufferId),
    #[error("buffer {0} was used after it was released")]
    UseAfterRelease(BufferId),
    #[error("buffer {id} is {state}, not allocated")]
    NotAllocated { id: BufferId, state: &'static str },
    #[error("unpin of buffer {id} by {owner}, which holds no pin on it")]
    NotPinned { id: BufferId, owner: String },
    #[error("release of buffer {id} while {pins} pin(s) are held")]
    StillPinned { id: BufferId, pins: usize },
    #[error("plan {0} has no reservation")]
    UnknownPlan(PlanId),
    #[error("plan {0} already holds a reservation")]
    PlanAlreadyReserved(PlanId),
    #[error("the reservation of plan {0} expired")]
    ReservationExpired(PlanId),
    #[error("pool exhausted: {requested} bytes asked, {in_use} of {limit} bytes in use")]
    PoolExhausted {
        requested: usize,
        in_use: usize,
        limit: usize,
    },
    #[error("a reservation needs at least one buffer")]
    EmptyReservation,
    #[error("allocation failed: {0}")]
    Alloc(String),
    #[error("slot {0} holds no imported memory (or its owner took it back)")]
    NotImported(u32),
    #[error("a lifecycle change with another pool's Lifecycle")]
    ForeignLifecycle,
}

impl From<AllocError> for RmError {
    fn from(e: AllocError) -> Self {
        RmError::Alloc(e.to_string())
    }
}

/// Limits on the pool.
#[derive(Clone, Copy, Debug)]
pub struct PoolConfig {
    pub max_buffers: usize,
    pub max_bytes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_buffers: 256,
            max_bytes: 2 << 30,
        }
    }
}

/// The memory of one pool slot, shared with whoever holds a [`BufferRef`].
pub struct BufferMem {
    pub(super) generation: AtomicU32,
    pub(super) mem: RwLock<Memory>,
    pub(super) fd: Option<i32>,
}

impl BufferMem {
    pub(super) fn empty(generation: u32) -> Arc<Self> {
        Arc::new(BufferMem {
            generation: AtomicU32::new(generation),
            mem: RwLock::new(Memory::Heap {
                words: Vec::new(),
                len: 0,
            }),
            fd: None,
        })
    }
}

/// Access to a buffer's bytes for whoever it was handed to. Reads and writes
/// check the generation, so a reference kept past release gets
/// [`RmError::UseAfterRelease`].
#[derive(Clone)]
pub struct BufferRef {
    pub id: BufferId,
    pub spec: BufferSpec,
    pub(super) mem: Arc<BufferMem>,
}

impl fmt::Debug for BufferRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BufferRef({}, {:?})", self.id, self.spec.kind)
    }
}

impl BufferRef {
    fn check(&self) -> Result<(), RmError> {
        if self.mem.generation.load(Ordering::Acquire) != self.id.generation {
            return Err(RmError::UseAfterRelease(self.id));
        }
        Ok(())
    }
    pub fn read(&self) -> Result<RwLockReadGuard<'_, Memory>, RmError> {
        let g = self.mem.mem.read().unwrap_or_else(|p| p.into_inner());
        self.check()?;
        Ok(g)
    }
    pub fn write(&self) -> Result<RwLockWriteGuard<'_, Memory>, RmError> {
        let g = self.mem.mem.write().unwrap_or_else(|p| p.into_inner());
        self.check()?;
        Ok(g)
    }
    /// The file descriptor behind the buffer (memfd or dmabuf), if any.
    pub fn fd(&self) -> Option<i32> {
        self.mem.fd
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BufferState {
    Free,
    Allocated,
    Reserved { plan: PlanId, expires_ns: u64 },
}

impl BufferState {
    pub fn name(&self) -> &'static str {
        match self {
            BufferState::Free => "free",
            BufferState::Allocated => "allocated",
            BufferState::Reserved { .. } => "reserved",
        }
    }
}

/// One pin on a buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pin {
    pub owner: String,
    pub since_ns: u64,
}

/// One pin's lifetime, after it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PinSpan {
    /// The slot's index.
    pub slot: u32,
    pub owner: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// Ended pins kept for [`ResourceManager::pin_history`].
pub const PIN_HISTORY: usize = 4096;

/// A buffer as the UI and the Housekeeper see it.
#[derive(Clone, Debug, Serialize)]
pub struct BufferInfo {
    pub id: BufferId,
    pub spec: BufferSpec,
    pub state: BufferState,
    pub owner: String,
    pub pins: Vec<Pin>,
    pub since_ns: u64,
    pub fd: Option<i32>,
    /// Memory from elsewhere (a camera's DMA-BUF), lent frame by frame.
    pub imported: bool,
}

/// Counts over the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    pub total: usize,
    pub free: usize,
    pub allocated: usize,
    pub reserved: usize,
    pub pinned: usize,
    pub pins: usize,
    pub bytes_total: usize,
    pub bytes_in_use: usize,
    pub allocations: u64,
    pub reuses: u64,
    /// Buffers whose memory was imported (counted in `total` too).
    pub imported: usize,
}

/// A pin held longer than the Housekeeper's threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StalePin {
    pub id: BufferId,
    pub owner: String,
    pub age_ns: u64,
}
