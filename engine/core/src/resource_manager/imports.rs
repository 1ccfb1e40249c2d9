//! Memory from elsewhere in the pool: a camera's exported DMA-BUFs imported
//! once, lent frame by frame, sent back to their owner at each release, and
//! retired when the owner's stream stops.

use super::*;

impl ResourceManager {
    /// Take in memory that belongs to someone else (a camera's exported
    /// DMA-BUF) as a buffer of this pool: it is never handed out by
    /// [`ResourceManager::allocate`], only lent with
    /// [`ResourceManager::lend`], and each release sends `token` back
    /// through `returns` (the owner queues it to the driver again) instead
    /// of freeing it. Returns the slot's index.
    pub fn import(
        &self,
        mem: Memory,
        spec: BufferSpec,
        owner: &str,
        returns: crossbeam_channel::Sender<u32>,
        token: u32,
    ) -> Result<u32, RmError> {
        if mem.is_empty() || mem.len() < spec.bytes {
            return Err(RmError::Alloc(format!(
                "imported memory of {} bytes for a {}-byte buffer",
                mem.len(),
                spec.bytes
            )));
        }
        let mut inner = self.lock();
        let i = Self::empty_slot(&mut inner, spec);
        let s = &mut inner.slots[i];
        s.len = mem.len();
        s.mem = Arc::new(BufferMem {
            generation: AtomicU32::new(s.generation),
            fd: mem.raw_fd(),
            mem: RwLock::new(mem),
        });
        s.spec = spec;
        s.scratch = false;
        s.state = BufferState::Free;
        s.owner = owner.to_string();
        s.since_ns = now_ns();
        s.import = Some(Import {
            returns,
            token,
            owner: owner.to_string(),
            retired: false,
        });
        Ok(i as u32)
    }

    /// Lend imported slot `index` to `owner` for one frame: it is an
    /// allocated buffer like any other until released.
    pub fn lend(&self, index: u32, owner: &str) -> Result<BufferRef, RmError> {
        let mut inner = self.lock();
        let s = inner
            .slots
            .get_mut(index as usize)
            .filter(|s| s.import.as_ref().is_some_and(|i| !i.retired))
            .ok_or(RmError::NotImported(index))?;
        if s.state != BufferState::Free {
            let id = BufferId {
                index,
                generation: s.generation,
            };
            return Err(RmError::NotAllocated {
                id,
                state: s.state.name(),
            });
        }
        s.state = BufferState::Allocated;
        s.owner = owner.to_string();
        s.since_ns = now_ns();
        Ok(Self::make_ref(s, index as usize))
    }

    /// The owner of imported slot `index` takes its memory back: dropped now
    /// if it is not lent out, else at its release (the memory outlives the
    /// owner's stream until the frame that holds it is done).
    pub fn retire(&self, index: u32) {
        let mut inner = self.lock();
        let Some(s) = inner.slots.get_mut(index as usize) else {
            return;
        };
        match (&mut s.import, &s.state) {
            (Some(_), BufferState::Free) => Self::empty(s),
            (Some(imp), _) => imp.retired = true,
            (None, _) => {}
        }
    }
}
