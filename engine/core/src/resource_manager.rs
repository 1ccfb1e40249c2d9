//! ResourceManager: the authority on frame buffers.
//!
//! Buffers live in a pool and move through `Free -> Allocated -> Free` or
//! `Free -> Reserved(plan) -> Allocated | Free (expired/cancelled)`. Allocated
//! buffers carry pins (owner + time). Every handle is a [`BufferId`] with a
//! generation, so a handle kept past `release` is recognised and refused.
//! Every misuse is a typed [`RmError`]; nothing here panics on bad calls.

use crate::allocator::{HeapAllocator, Memory, PlatformAllocator};
use crate::clock::now_ns;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

mod imports;
mod types;

pub use types::*;

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
    /// Memory imported from elsewhere, and where a release sends it back.
    import: Option<Import>,
}

struct Import {
    returns: crossbeam_channel::Sender<u32>,
    token: u32,
    /// Who it belongs to (shown while it is not lent).
    owner: String,
    /// The owner withdrew it: the memory is dropped at its release.
    retired: bool,
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
    /// This manager's identity, for its [`Lifecycle`].
    id: u64,
    lifecycle_taken: std::sync::atomic::AtomicBool,
}

/// The right to end buffer lifecycles in one [`ResourceManager`]: release,
/// unpin, cancel and expire reservations all take `&Lifecycle`. There is one
/// per manager ([`ResourceManager::take_lifecycle`] hands it out once); it
/// cannot be cloned or made elsewhere. The engine gives it to the
/// CompletionDispatcher, so no other code can end a lifecycle: a rule the
/// compiler keeps, not a comment.
#[derive(Debug)]
pub struct Lifecycle {
    rm: u64,
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
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
            lifecycle_taken: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The one [`Lifecycle`] of this manager; `None` once it was taken.
    pub fn take_lifecycle(&self) -> Option<Lifecycle> {
        (!self.lifecycle_taken.swap(true, Ordering::AcqRel)).then_some(Lifecycle { rm: self.id })
    }

    fn check(&self, key: &Lifecycle) -> Result<(), RmError> {
        if key.rm == self.id {
            Ok(())
        } else {
            Err(RmError::ForeignLifecycle)
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
                && s.import.is_none()
                && s.len == spec.bytes
                && s.scratch == spec.kind.is_scratch()
        }) {
            inner.reuses += 1;
            return Ok(i);
        }
        // Imported memory is not the pool's: it counts against no limit.
        let own = |s: &&Slot| s.import.is_none();
        let mut bytes_total: usize = inner.slots.iter().filter(own).map(|s| s.len).sum();
        let mut live = inner.slots.iter().filter(own).filter(|s| s.len > 0).count();
        // Over the limits: drop the memory of free buffers of other sizes.
        while live >= self.config.max_buffers || bytes_total + spec.bytes > self.config.max_bytes {
            let Some(i) = inner
                .slots
                .iter()
                .position(|s| s.state == BufferState::Free && s.len > 0 && s.import.is_none())
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
            Self::empty(s);
        }
        let mem = if spec.kind.is_scratch() {
            HeapAllocator.allocate(spec.bytes, label)?
        } else {
            self.allocator.allocate(spec.bytes, label)?
        };
        inner.allocations += 1;
        let len = mem.len();
        let i = Self::empty_slot(inner, spec);
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

    /// A slot without memory: an emptied one is reused before the pool
    /// grows, so indices stay few.
    fn empty_slot(inner: &mut Inner, spec: BufferSpec) -> usize {
        if let Some(i) = inner.slots.iter().position(|s| s.len == 0) {
            return i;
        }
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
            import: None,
        });
        inner.slots.len() - 1
    }

    /// Drop a slot's memory; every reference to it is dead afterwards.
    fn empty(s: &mut Slot) {
        s.generation = s.generation.wrapping_add(1);
        s.mem.generation.store(s.generation, Ordering::Release);
        s.mem = BufferMem::empty(s.generation);
        s.len = 0;
        s.import = None;
        s.owner.clear();
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

    /// Commit a reservation: its buffers become allocated to `owner`. An
    /// expired one is refused and left for the Housekeeper's sweep to free
    /// (on the dispatcher: nothing here ends a lifecycle).
    pub fn commit_reservation(&self, plan: PlanId, owner: &str) -> Result<Vec<BufferRef>, RmError> {
        let mut inner = self.lock();
        let pos = inner
            .reservations
            .iter()
            .position(|r| r.0 == plan)
            .ok_or(RmError::UnknownPlan(plan))?;
        if now_ns() >= inner.reservations[pos].2 {
            return Err(RmError::ReservationExpired(plan));
        }
        let (_, slots, _) = inner.reservations.remove(pos);
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
    pub fn cancel_reservation(&self, key: &Lifecycle, plan: PlanId) -> Result<(), RmError> {
        self.check(key)?;
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
    pub fn expire_reservations(&self, key: &Lifecycle, now: u64) -> Vec<PlanId> {
        if self.check(key).is_err() {
            return Vec::new();
        }
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
    pub fn unpin(&self, key: &Lifecycle, id: BufferId, owner: &str) -> Result<usize, RmError> {
        self.check(key)?;
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
    pub fn release(&self, key: &Lifecycle, id: BufferId) -> Result<(), RmError> {
        self.check(key)?;
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
        s.since_ns = now_ns();
        match &s.import {
            Some(imp) if imp.retired => Self::empty(s),
            Some(imp) => {
                s.owner.clone_from(&imp.owner);
                s.generation = s.generation.wrapping_add(1);
                s.mem.generation.store(s.generation, Ordering::Release);
                // Back to its owner (gone already: nothing to give back to).
                let _ = imp.returns.send(imp.token);
            }
            None => {
                s.owner.clear();
                s.generation = s.generation.wrapping_add(1);
                s.mem.generation.store(s.generation, Ordering::Release);
            }
        }
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
            if s.import.is_some() {
                st.imported += 1;
            }
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
                imported: s.import.is_some(),
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
mod tests;
