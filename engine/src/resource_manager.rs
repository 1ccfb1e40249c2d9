//! ResourceManager: the authority on frame buffers.
//!
//! Buffers live in a pool and move through `Free -> Allocated -> Free` or
//! `Free -> Reserved(plan) -> Allocated | Free (expired/cancelled)`. Allocated
//! buffers carry pins (owner + time). Every handle is a [`BufferId`] with a
//! generation, so a handle kept past `release` is recognised and refused.
//! Every misuse is a typed [`RmError`]; nothing here panics on bad calls.

use crate::allocator::{AllocError, HeapAllocator, Memory, PlatformAllocator};
use crate::clock::now_ns;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    generation: AtomicU32,
    mem: RwLock<Memory>,
    fd: Option<i32>,
}

impl BufferMem {
    fn empty(generation: u32) -> Arc<Self> {
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
    mem: Arc<BufferMem>,
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
}

/// A pin held longer than the Housekeeper's threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StalePin {
    pub id: BufferId,
    pub owner: String,
    pub age_ns: u64,
}

struct Slot {
    spec: BufferSpec,
    state: BufferState,
    generation: u32,
    owner: String,
    since_ns: u64,
    pins: Vec<Pin>,
    /// Bytes of memory behind the slot; 0 once its memory was dropped.
    len: usize,
    /// Process-private scratch memory (heap) rather than the platform's.
    scratch: bool,
    mem: Arc<BufferMem>,
}

struct Inner {
    slots: Vec<Slot>,
    /// The last pins that ended (for the UI's pin timeline), oldest first.
    pin_history: std::collections::VecDeque<PinSpan>,
    /// plan -> (slot indices, expiry)
    reservations: Vec<(PlanId, Vec<u32>, u64)>,
    allocations: u64,
    reuses: u64,
}

/// The authoritative owner of every frame buffer.
pub struct ResourceManager {
    inner: Mutex<Inner>,
    allocator: Box<dyn PlatformAllocator>,
    config: PoolConfig,
}

impl fmt::Debug for ResourceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceManager({})", self.allocator.describe())
    }
}

impl ResourceManager {
    pub fn new(allocator: Box<dyn PlatformAllocator>, config: PoolConfig) -> Self {
        ResourceManager {
            inner: Mutex::new(Inner {
                slots: Vec::new(),
                pin_history: Default::default(),
                reservations: Vec::new(),
                allocations: 0,
                reuses: 0,
            }),
            allocator,
            config,
        }
    }

    pub fn allocator_name(&self) -> String {
        self.allocator.describe()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(inner: &mut Inner, id: BufferId) -> Result<&mut Slot, RmError> {
        let slot = inner
            .slots
            .get_mut(id.index as usize)
            .ok_or(RmError::UnknownBuffer(id))?;
        if slot.generation != id.generation {
            return Err(if id.generation < slot.generation {
                RmError::AlreadyReleased(id)
            } else {
                RmError::UnknownBuffer(id)
            });
        }
        Ok(slot)
    }

    fn make_ref(slot: &Slot, index: usize) -> BufferRef {
        BufferRef {
            id: BufferId {
                index: index as u32,
                generation: slot.generation,
            },
            spec: slot.spec,
            mem: slot.mem.clone(),
        }
    }

    /// Find a free slot of the same size, or make one. Returns its index.
    fn take_free(
        &self,
        inner: &mut Inner,
        spec: BufferSpec,
        label: &str,
    ) -> Result<usize, RmError> {
        if let Some(i) = inner.slots.iter().position(|s| {
            s.state == BufferState::Free
                && s.len == spec.bytes
                && s.scratch == spec.kind.is_scratch()
        }) {
            inner.reuses += 1;
            return Ok(i);
        }
        let mut bytes_total: usize = inner.slots.iter().map(|s| s.len).sum();
        let mut live = inner.slots.iter().filter(|s| s.len > 0).count();
        // Over the limits: drop the memory of free buffers of other sizes.
        while live >= self.config.max_buffers || bytes_total + spec.bytes > self.config.max_bytes {
            let Some(i) = inner
                .slots
                .iter()
                .position(|s| s.state == BufferState::Free && s.len > 0)
            else {
                return Err(RmError::PoolExhausted {
                    requested: spec.bytes,
                    in_use: bytes_total,
                    limit: self.config.max_bytes,
                });
            };
            let s = &mut inner.slots[i];
            bytes_total -= s.len;
            live -= 1;
            s.generation = s.generation.wrapping_add(1);
            s.mem.generation.store(s.generation, Ordering::Release);
            s.mem = BufferMem::empty(s.generation);
            s.len = 0;
        }
        let mem = if spec.kind.is_scratch() {
            HeapAllocator.allocate(spec.bytes, label)?
        } else {
            self.allocator.allocate(spec.bytes, label)?
        };
        inner.allocations += 1;
        let len = mem.len();
        // An emptied slot is reused before the pool grows, so indices stay few.
        let i = match inner.slots.iter().position(|s| s.len == 0) {
            Some(i) => i,
            None => {
                inner.slots.push(Slot {
                    spec,
                    state: BufferState::Free,
                    generation: 1,
                    owner: String::new(),
                    since_ns: now_ns(),
                    pins: Vec::new(),
                    len: 0,
                    scratch: false,
                    mem: BufferMem::empty(1),
                });
                inner.slots.len() - 1
            }
        };
        let s = &mut inner.slots[i];
        s.mem = Arc::new(BufferMem {
            generation: AtomicU32::new(s.generation),
            fd: mem.raw_fd(),
            mem: RwLock::new(mem),
        });
        s.len = len;
        s.scratch = spec.kind.is_scratch();
        s.spec = spec;
        Ok(i)
    }

    /// Hand out a buffer of `spec.bytes` bytes to `owner`.
    pub fn allocate(&self, spec: BufferSpec, owner: &str) -> Result<BufferRef, RmError> {
        if spec.bytes == 0 {
            return Err(RmError::Alloc("zero-byte buffer".into()));
        }
        let mut inner = self.lock();
        let i = self.take_free(&mut inner, spec, owner)?;
        let s = &mut inner.slots[i];
        s.spec = spec;
        s.state = BufferState::Allocated;
        s.owner = owner.to_string();
        s.since_ns = now_ns();
        Ok(Self::make_ref(s, i))
    }

    /// Set aside `n` buffers for a multi-frame plan until `ttl_ns` from now.
    pub fn reserve_for_plan(
        &self,
        plan: PlanId,
        n: usize,
        spec: BufferSpec,
        ttl_ns: u64,
    ) -> Result<(), RmError> {
        if n == 0 {
            return Err(RmError::EmptyReservation);
        }
        let mut inner = self.lock();
        if inner.reservations.iter().any(|r| r.0 == plan) {
            return Err(RmError::PlanAlreadyReserved(plan));
        }
        let expires = now_ns().saturating_add(ttl_ns);
        let mut taken = Vec::with_capacity(n);
        for _ in 0..n {
            match self.take_free(&mut inner, spec, "reservation") {
                Ok(i) => {
                    let s = &mut inner.slots[i];
                    s.spec = spec;
                    s.state = BufferState::Reserved {
                        plan,
                        expires_ns: expires,
                    };
                    s.owner = format!("plan {plan}");
                    s.since_ns = now_ns();
                    taken.push(i as u32);
                }
                Err(e) => {
                    // All or nothing.
                    for &i in &taken {
                        inner.slots[i as usize].state = BufferState::Free;
                    }
                    return Err(e);
                }
            }
        }
        inner.reservations.push((plan, taken, expires));
        Ok(())
    }

    /// Commit a reservation: its buffers become allocated to `owner`.
    pub fn commit_reservation(&self, plan: PlanId, owner: &str) -> Result<Vec<BufferRef>, RmError> {
        let mut inner = self.lock();
        let pos = inner
            .reservations
            .iter()
            .position(|r| r.0 == plan)
            .ok_or(RmError::UnknownPlan(plan))?;
        let (_, slots, expires) = inner.reservations.remove(pos);
        if now_ns() >= expires {
            for &i in &slots {
                let s = &mut inner.slots[i as usize];
                s.state = BufferState::Free;
                s.owner.clear();
            }
            return Err(RmError::ReservationExpired(plan));
        }
        let now = now_ns();
        Ok(slots
            .iter()
            .map(|&i| {
                let s = &mut inner.slots[i as usize];
                s.state = BufferState::Allocated;
                s.owner = owner.to_string();
                s.since_ns = now;
                Self::make_ref(s, i as usize)
            })
            .collect())
    }

    /// Give a reservation back unused.
    pub fn cancel_reservation(&self, plan: PlanId) -> Result<(), RmError> {
        let mut inner = self.lock();
        let pos = inner
            .reservations
            .iter()
            .position(|r| r.0 == plan)
            .ok_or(RmError::UnknownPlan(plan))?;
        let (_, slots, _) = inner.reservations.remove(pos);
        for i in slots {
            let s = &mut inner.slots[i as usize];
            s.state = BufferState::Free;
            s.owner.clear();
        }
        Ok(())
    }

    /// Free every reservation whose time ran out at `now`; returns their plans.
    pub fn expire_reservations(&self, now: u64) -> Vec<PlanId> {
        let mut inner = self.lock();
        let mut expired = Vec::new();
        let mut k = 0;
        while k < inner.reservations.len() {
            if now >= inner.reservations[k].2 {
                let (plan, slots, _) = inner.reservations.remove(k);
                for i in slots {
                    let s = &mut inner.slots[i as usize];
                    s.state = BufferState::Free;
                    s.owner.clear();
                }
                expired.push(plan);
            } else {
                k += 1;
            }
        }
        expired
    }

    /// Add a pin held by `owner`. Only allocated buffers can be pinned.
    pub fn pin(&self, id: BufferId, owner: &str) -> Result<usize, RmError> {
        let mut inner = self.lock();
        let s = Self::slot(&mut inner, id)?;
        if s.state != BufferState::Allocated {
            return Err(RmError::NotAllocated {
                id,
                state: s.state.name(),
            });
        }
        s.pins.push(Pin {
            owner: owner.to_string(),
            since_ns: now_ns(),
        });
        Ok(s.pins.len())
    }

    /// Drop one pin held by `owner`; returns the pins left.
    pub fn unpin(&self, id: BufferId, owner: &str) -> Result<usize, RmError> {
        let mut inner = self.lock();
        let s = Self::slot(&mut inner, id)?;
        let Some(p) = s.pins.iter().position(|p| p.owner == owner) else {
            return Err(RmError::NotPinned {
                id,
                owner: owner.to_string(),
            });
        };
        let pin = s.pins.remove(p);
        let left = s.pins.len();
        if inner.pin_history.len() == PIN_HISTORY {
            inner.pin_history.pop_front();
        }
        inner.pin_history.push_back(PinSpan {
            slot: id.index,
            owner: pin.owner,
            start_ns: pin.since_ns,
            end_ns: now_ns(),
        });
        Ok(left)
    }

    /// The last [`PIN_HISTORY`] pins that ended, oldest first (pins still
    /// held are in [`ResourceManager::snapshot`]).
    pub fn pin_history(&self) -> Vec<PinSpan> {
        self.lock().pin_history.iter().cloned().collect()
    }

    /// Return an allocated, unpinned buffer to the pool. The handle (and every
    /// [`BufferRef`] to it) is dead afterwards.
    pub fn release(&self, id: BufferId) -> Result<(), RmError> {
        let mut inner = self.lock();
        let s = Self::slot(&mut inner, id)?;
        match s.state {
            BufferState::Allocated => {}
            BufferState::Free => return Err(RmError::AlreadyReleased(id)),
            BufferState::Reserved { .. } => {
                return Err(RmError::NotAllocated {
                    id,
                    state: "reserved",
                });
            }
        }
        if !s.pins.is_empty() {
            return Err(RmError::StillPinned {
                id,
                pins: s.pins.len(),
            });
        }
        s.state = BufferState::Free;
        s.owner.clear();
        s.since_ns = now_ns();
        s.generation = s.generation.wrapping_add(1);
        s.mem.generation.store(s.generation, Ordering::Release);
        Ok(())
    }

    /// Pins on a buffer right now.
    pub fn pin_count(&self, id: BufferId) -> Result<usize, RmError> {
        let mut inner = self.lock();
        Ok(Self::slot(&mut inner, id)?.pins.len())
    }

    pub fn stats(&self) -> PoolStats {
        let inner = self.lock();
        let mut st = PoolStats {
            total: inner.slots.iter().filter(|s| s.len > 0).count(),
            allocations: inner.allocations,
            reuses: inner.reuses,
            ..Default::default()
        };
        for s in inner.slots.iter().filter(|s| s.len > 0) {
            st.bytes_total += s.len;
            match s.state {
                BufferState::Free => st.free += 1,
                BufferState::Allocated => {
                    st.allocated += 1;
                    st.bytes_in_use += s.len;
                }
                BufferState::Reserved { .. } => {
                    st.reserved += 1;
                    st.bytes_in_use += s.len;
                }
            }
            if !s.pins.is_empty() {
                st.pinned += 1;
                st.pins += s.pins.len();
            }
        }
        st
    }

    /// Every buffer, for the UI's buffer panel.
    pub fn snapshot(&self) -> Vec<BufferInfo> {
        let inner = self.lock();
        inner
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.len > 0)
            .map(|(i, s)| BufferInfo {
                id: BufferId {
                    index: i as u32,
                    generation: s.generation,
                },
                spec: s.spec,
                state: s.state.clone(),
                owner: s.owner.clone(),
                pins: s.pins.clone(),
                since_ns: s.since_ns,
                fd: s.mem.fd,
            })
            .collect()
    }

    /// Pins held for longer than `threshold_ns` at `now`.
    pub fn stale_pins(&self, now: u64, threshold_ns: u64) -> Vec<StalePin> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (i, s) in inner.slots.iter().enumerate() {
            for p in &s.pins {
                let age = now.saturating_sub(p.since_ns);
                if age > threshold_ns {
                    out.push(StalePin {
                        id: BufferId {
                            index: i as u32,
                            generation: s.generation,
                        },
                        owner: p.owner.clone(),
                        age_ns: age,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::{HeapAllocator, MemfdAllocator};

    fn rm() -> ResourceManager {
        ResourceManager::new(Box::new(HeapAllocator), PoolConfig::default())
    }
    fn spec() -> BufferSpec {
        BufferSpec::new(BufferKind::Bayer16, 8, 4)
    }

    #[test]
    fn allocate_pin_unpin_release() {
        let rm = rm();
        let b = rm.allocate(spec(), "test").unwrap();
        assert_eq!(rm.pin(b.id, "a").unwrap(), 1);
        assert_eq!(rm.pin(b.id, "b").unwrap(), 2);
        assert_eq!(
            rm.release(b.id),
            Err(RmError::StillPinned { id: b.id, pins: 2 })
        );
        assert_eq!(rm.unpin(b.id, "a").unwrap(), 1);
        assert!(matches!(
            rm.unpin(b.id, "a"),
            Err(RmError::NotPinned { .. })
        ));
        rm.unpin(b.id, "b").unwrap();
        // Both pins' lifetimes are in the history, in the order they ended.
        let h = rm.pin_history();
        assert_eq!(
            h.iter()
                .map(|p| (p.slot, p.owner.as_str()))
                .collect::<Vec<_>>(),
            vec![(b.id.index, "a"), (b.id.index, "b")]
        );
        assert!(h.iter().all(|p| p.start_ns <= p.end_ns));
        assert!(h[0].start_ns <= h[1].start_ns);
        rm.release(b.id).unwrap();
        assert_eq!(rm.release(b.id), Err(RmError::AlreadyReleased(b.id)));
        assert!(matches!(b.read(), Err(RmError::UseAfterRelease(_))));
        assert!(matches!(
            rm.pin(b.id, "x"),
            Err(RmError::AlreadyReleased(_))
        ));
        // The slot is reused with a new generation.
        let c = rm.allocate(spec(), "again").unwrap();
        assert_eq!(c.id.index, b.id.index);
        assert_ne!(c.id.generation, b.id.generation);
        assert_eq!(rm.stats().reuses, 1);
    }

    #[test]
    fn pin_history_is_bounded() {
        let rm = rm();
        let b = rm.allocate(spec(), "test").unwrap();
        for i in 0..PIN_HISTORY + 10 {
            rm.pin(b.id, &format!("p{i}")).unwrap();
            rm.unpin(b.id, &format!("p{i}")).unwrap();
        }
        let h = rm.pin_history();
        assert_eq!(h.len(), PIN_HISTORY);
        assert_eq!(h[0].owner, "p10");
    }

    #[test]
    fn reservations_commit_or_expire() {
        let rm = rm();
        rm.reserve_for_plan(7, 3, spec(), 1_000_000_000).unwrap();
        assert_eq!(
            rm.reserve_for_plan(7, 1, spec(), 10),
            Err(RmError::PlanAlreadyReserved(7))
        );
        assert_eq!(rm.stats().reserved, 3);
        let got = rm.commit_reservation(7, "fusion").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(rm.stats().allocated, 3);
        assert_eq!(
            rm.commit_reservation(7, "fusion").unwrap_err(),
            RmError::UnknownPlan(7)
        );

        rm.reserve_for_plan(8, 2, spec(), 0).unwrap();
        assert_eq!(
            rm.commit_reservation(8, "f").unwrap_err(),
            RmError::ReservationExpired(8)
        );
        assert_eq!(rm.stats().reserved, 0);

        rm.reserve_for_plan(9, 2, spec(), 5).unwrap();
        assert_eq!(rm.expire_reservations(now_ns() + 10), vec![9]);
        assert_eq!(rm.stats().reserved, 0);
        assert_eq!(rm.cancel_reservation(9), Err(RmError::UnknownPlan(9)));
    }

    #[test]
    fn reserved_buffers_cannot_be_pinned_or_released() {
        let rm = rm();
        rm.reserve_for_plan(1, 1, spec(), u64::MAX / 2).unwrap();
        let id = rm.snapshot()[0].id;
        assert!(matches!(rm.pin(id, "x"), Err(RmError::NotAllocated { .. })));
        assert!(matches!(rm.release(id), Err(RmError::NotAllocated { .. })));
    }

    #[test]
    fn pool_limit_is_a_typed_error() {
        let rm = ResourceManager::new(
            Box::new(HeapAllocator),
            PoolConfig {
                max_buffers: 2,
                max_bytes: 1 << 20,
            },
        );
        let _a = rm.allocate(spec(), "a").unwrap();
        let _b = rm.allocate(spec(), "b").unwrap();
        assert!(matches!(
            rm.allocate(spec(), "c"),
            Err(RmError::PoolExhausted { .. })
        ));
    }

    #[test]
    fn free_buffers_of_another_size_are_recycled_at_the_limit() {
        let rm = ResourceManager::new(
            Box::new(HeapAllocator),
            PoolConfig {
                max_buffers: 1,
                max_bytes: 1 << 20,
            },
        );
        let a = rm.allocate(spec(), "a").unwrap();
        rm.release(a.id).unwrap();
        let b = rm
            .allocate(BufferSpec::new(BufferKind::Rgba8, 16, 16), "b")
            .unwrap();
        assert_eq!(b.read().unwrap().len(), 16 * 16 * 4);
        assert!(matches!(a.read(), Err(RmError::UseAfterRelease(_))));
    }

    #[test]
    fn memfd_buffers_carry_their_fd() {
        let rm = ResourceManager::new(Box::new(MemfdAllocator), PoolConfig::default());
        let b = rm
            .allocate(BufferSpec::new(BufferKind::Rgba8, 8, 4), "m")
            .unwrap();
        assert!(b.fd().is_some());
        b.write().unwrap().bytes_mut()[0] = 9;
        assert_eq!(b.read().unwrap().bytes()[0], 9);
        assert!(rm.snapshot()[0].fd.is_some());
        // A scratch mosaic of the same size stays on the heap and is not
        // mixed up with the exportable buffer when the pool recycles.
        rm.release(b.id).unwrap();
        let raw_sized = BufferSpec {
            kind: BufferKind::Bayer16,
            width: 4,
            height: 8,
            stride: 8,
            bytes: 8 * 4 * 4,
        };
        let m = rm.allocate(raw_sized, "mosaic").unwrap();
        assert!(m.fd().is_none());
        assert_ne!(m.id.index, b.id.index);
    }

    #[test]
    fn stale_pins_are_reported() {
        let rm = rm();
        let b = rm.allocate(spec(), "t").unwrap();
        rm.pin(b.id, "slow consumer").unwrap();
        let stale = rm.stale_pins(now_ns() + 5_000_000_000, 1_000_000_000);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].owner, "slow consumer");
        assert!(rm.stale_pins(now_ns(), 1_000_000_000).is_empty());
    }

    #[test]
    fn names_and_debug_output_are_what_logs_and_the_ui_show() {
        let rm = rm();
        assert_eq!(rm.allocator_name(), "heap");
        assert_eq!(format!("{rm:?}"), "ResourceManager(heap)");
        let b = rm.allocate(spec(), "t").unwrap();
        assert_eq!(
            b.id.to_string(),
            format!("b{}.{}", b.id.index, b.id.generation)
        );
        assert_eq!(format!("{b:?}"), format!("BufferRef({}, Bayer16)", b.id));
        assert_eq!(BufferState::Free.name(), "free");
        assert_eq!(BufferState::Allocated.name(), "allocated");
        let r = BufferState::Reserved {
            plan: 1,
            expires_ns: 0,
        };
        assert_eq!(r.name(), "reserved");
        let memfd = ResourceManager::new(Box::new(MemfdAllocator), PoolConfig::default());
        assert_eq!(memfd.allocator_name(), "memfd");
    }

    /// The pool holds at most `max_buffers` buffers with memory: at the limit
    /// a free one of another size gives its memory back; with none free the
    /// allocation is refused.
    #[test]
    fn max_buffers_is_a_hard_limit() {
        let rm = ResourceManager::new(
            Box::new(HeapAllocator),
            PoolConfig {
                max_buffers: 2,
                max_bytes: 1 << 20,
            },
        );
        let live = |rm: &ResourceManager| rm.stats().bytes_total;
        let a = rm
            .allocate(BufferSpec::new(BufferKind::Other, 16, 1), "a")
            .unwrap();
        let b = rm
            .allocate(BufferSpec::new(BufferKind::Other, 32, 1), "b")
            .unwrap();
        assert_eq!(live(&rm), 48);
        // Both held: a third is refused.
        assert!(matches!(
            rm.allocate(BufferSpec::new(BufferKind::Other, 64, 1), "c"),
            Err(RmError::PoolExhausted { .. })
        ));
        // One free: its memory goes, the pool stays at two buffers.
        rm.release(a.id).unwrap();
        let c = rm
            .allocate(BufferSpec::new(BufferKind::Other, 64, 1), "c")
            .unwrap();
        assert_eq!(live(&rm), 32 + 64);
        assert!(matches!(a.read(), Err(RmError::UseAfterRelease(_))));
        rm.release(b.id).unwrap();
        rm.release(c.id).unwrap();
    }

    /// `max_bytes` may be filled exactly, never exceeded.
    /// A slot whose memory was given back does not count against
    /// `max_buffers`: the next buffer goes into it.
    #[test]
    fn an_emptied_slot_is_not_a_live_buffer() {
        let rm = ResourceManager::new(
            Box::new(HeapAllocator),
            PoolConfig {
                max_buffers: 2,
                max_bytes: 60,
            },
        );
        let other = |w| BufferSpec::new(BufferKind::Other, w, 1);
        let a = rm.allocate(other(16), "a").unwrap();
        let b = rm.allocate(other(32), "b").unwrap();
        rm.release(a.id).unwrap();
        // a's memory goes to make room, and 64 still does not fit: a's slot
        // is left empty.
        assert!(rm.allocate(other(64), "c").is_err());
        assert_eq!(rm.stats().total, 1);
        let d = rm.allocate(other(8), "d").unwrap();
        assert_eq!(d.id.index, a.id.index);
        assert_eq!(rm.stats().total, 2);
        rm.release(b.id).unwrap();
        rm.release(d.id).unwrap();
    }

    #[test]
    fn max_bytes_fills_exactly_and_no_further() {
        let rm = ResourceManager::new(
            Box::new(HeapAllocator),
            PoolConfig {
                max_buffers: 16,
                max_bytes: 200,
            },
        );
        let a = rm
            .allocate(BufferSpec::new(BufferKind::Other, 100, 1), "a")
            .unwrap();
        let b = rm
            .allocate(BufferSpec::new(BufferKind::Other, 100, 1), "b")
            .unwrap();
        assert_eq!(rm.stats().bytes_total, 200);
        let e = rm
            .allocate(BufferSpec::new(BufferKind::Other, 1, 1), "c")
            .unwrap_err();
        assert_eq!(
            e,
            RmError::PoolExhausted {
                requested: 1,
                in_use: 200,
                limit: 200
            }
        );
        assert_eq!(rm.stats().allocations, 2);
        rm.release(a.id).unwrap();
        // 100 free bytes of another size are dropped to make room for 150,
        // which still does not fit beside the 100 held.
        let c = rm.allocate(BufferSpec::new(BufferKind::Other, 150, 1), "c");
        let full = |requested, in_use| RmError::PoolExhausted {
            requested,
            in_use,
            limit: 200,
        };
        assert_eq!(c.unwrap_err(), full(150, 100));
        assert_eq!(rm.stats().bytes_total, 100);
        // Nothing left to drop: the same answer, at once.
        let c = rm.allocate(BufferSpec::new(BufferKind::Other, 150, 1), "c");
        assert_eq!(c.unwrap_err(), full(150, 100));
        let d = rm
            .allocate(BufferSpec::new(BufferKind::Other, 50, 2), "d")
            .unwrap();
        assert_eq!(rm.stats().bytes_total, 200);
        assert_eq!(rm.stats().allocations, 3);
        rm.release(b.id).unwrap();
        rm.release(d.id).unwrap();
    }

    #[test]
    fn cancelling_one_plan_leaves_the_others() {
        let rm = rm();
        rm.reserve_for_plan(1, 2, spec(), 1_000_000_000_000)
            .unwrap();
        rm.reserve_for_plan(2, 1, spec(), 1_000_000_000_000)
            .unwrap();
        rm.cancel_reservation(2).unwrap();
        assert_eq!(rm.stats().reserved, 2);
        assert_eq!(rm.cancel_reservation(2), Err(RmError::UnknownPlan(2)));
        let bufs = rm.commit_reservation(1, "fusion").unwrap();
        assert_eq!(bufs.len(), 2);
        for b in bufs {
            rm.release(b.id).unwrap();
        }
    }

    /// Every count of `stats` and `snapshot` after a known history, emptied
    /// slots (memory given back) not counted.
    #[test]
    fn stats_and_snapshot_count_exactly() {
        let rm = ResourceManager::new(
            Box::new(HeapAllocator),
            PoolConfig {
                max_buffers: 16,
                max_bytes: 100,
            },
        );
        let other = |w| BufferSpec::new(BufferKind::Other, w, 1);
        let a = rm.allocate(other(10), "a").unwrap();
        let b = rm.allocate(other(20), "b").unwrap();
        rm.pin(b.id, "x").unwrap();
        rm.pin(b.id, "y").unwrap();
        rm.reserve_for_plan(7, 1, other(30), u64::MAX / 2).unwrap();
        let c = rm.allocate(other(5), "c").unwrap();
        rm.release(c.id).unwrap();
        // 65 bytes live; 50 more do not fit even without c's 5: c's memory
        // goes back, its slot stays, empty.
        assert!(rm.allocate(other(50), "d").is_err());
        assert_eq!(
            rm.stats(),
            PoolStats {
                total: 3,
                free: 0,
                allocated: 2,
                reserved: 1,
                pinned: 1,
                pins: 2,
                bytes_total: 60,
                bytes_in_use: 60,
                allocations: 4,
                reuses: 0,
            }
        );
        let snap = rm.snapshot();
        assert_eq!(snap.len(), 3);
        assert_eq!(
            snap.iter().map(|s| s.state.name()).collect::<Vec<_>>(),
            ["allocated", "allocated", "reserved"]
        );
        rm.unpin(b.id, "x").unwrap();
        rm.unpin(b.id, "y").unwrap();
        rm.release(a.id).unwrap();
        rm.release(b.id).unwrap();
    }

    /// A pin is stale once it is held longer than the threshold, not at it.
    #[test]
    fn a_pin_is_stale_only_past_the_threshold() {
        let rm = rm();
        let b = rm.allocate(spec(), "t").unwrap();
        rm.pin(b.id, "holder").unwrap();
        let since = rm.snapshot()[0].pins[0].since_ns;
        assert!(rm.stale_pins(since + 1000, 1000).is_empty());
        let stale = rm.stale_pins(since + 1001, 1000);
        assert_eq!(
            stale,
            vec![StalePin {
                id: b.id,
                owner: "holder".into(),
                age_ns: 1001
            }]
        );
        rm.unpin(b.id, "holder").unwrap();
        rm.release(b.id).unwrap();
    }
}
