//! FusionManager: multi-frame plans on the background lane. A plan reserves
//! its buffers up front (`reserve_for_plan`, with an expiry the Housekeeper
//! enforces), selects the frames to merge, and merges them: here, temporal
//! averaging of aligned RAW mosaics (a multi-frame denoise). The reservation
//! either commits into the merge or expires; it never leaks.

use crate::resource_manager::{
    BufferKind, BufferRef, BufferSpec, PlanId, ResourceManager, RmError,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a plan will merge.
#[derive(Clone, Debug, PartialEq)]
pub struct FusionPlan {
    pub id: PlanId,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Default)]
pub struct FusionManager {
    next: AtomicU64,
}

impl FusionManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Plan a merge of `frames` mosaics of `width`x`height`.
    pub fn create_plan(&self, frames: usize, width: u32, height: u32) -> FusionPlan {
        FusionPlan {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            frames,
            width,
            height,
        }
    }

    /// Reserve the plan's input buffers and its output for `ttl_ns`.
    pub fn reserve(
        &self,
        rm: &ResourceManager,
        plan: &FusionPlan,
        ttl_ns: u64,
    ) -> Result<(), RmError> {
        rm.reserve_for_plan(
            plan.id,
            plan.frames + 1,
            BufferSpec::new(BufferKind::Bayer16, plan.width, plan.height),
            ttl_ns,
        )
    }

    /// Take the reserved buffers: `frames` inputs then the output.
    pub fn commit(
        &self,
        rm: &ResourceManager,
        plan: &FusionPlan,
    ) -> Result<Vec<BufferRef>, RmError> {
        rm.commit_reservation(plan.id, &format!("fusion plan {}", plan.id))
    }

    /// Pick the `n` sharpest frames by a focus score.
    pub fn select_frames(scores: &[f64], n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        idx.truncate(n);
        idx.sort();
        idx
    }

    /// Average the mosaics of `inputs` into `output` (rounding to nearest).
    pub fn merge(inputs: &[BufferRef], output: &BufferRef, pixels: usize) -> Result<(), RmError> {
        let mut acc = vec![0u32; pixels];
        for b in inputs {
            let m = b.read()?;
            for (a, &v) in acc.iter_mut().zip(&m.u16s()[..pixels]) {
                *a += v as u32;
            }
        }
        let n = inputs.len().max(1) as u32;
        let mut out = output.write()?;
        for (o, a) in out.u16s_mut()[..pixels].iter_mut().zip(acc) {
            *o = ((a + n / 2) / n) as u16;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::HeapAllocator;
    use crate::resource_manager::PoolConfig;

    #[test]
    fn plan_reserve_commit_merge() {
        let rm = ResourceManager::new(Box::new(HeapAllocator), PoolConfig::default());
        let fm = FusionManager::new();
        let plan = fm.create_plan(3, 4, 2);
        fm.reserve(&rm, &plan, 1_000_000_000).unwrap();
        assert_eq!(rm.stats().reserved, 4);
        let bufs = fm.commit(&rm, &plan).unwrap();
        for (i, b) in bufs[..3].iter().enumerate() {
            b.write().unwrap().u16s_mut().fill(100 * (i as u16 + 1));
        }
        FusionManager::merge(&bufs[..3], &bufs[3], 8).unwrap();
        assert!(bufs[3].read().unwrap().u16s().iter().all(|&v| v == 200));
        assert_eq!(
            FusionManager::select_frames(&[0.1, 0.5, 0.3, 0.9], 2),
            vec![1, 3]
        );
    }

    #[test]
    fn unused_reservations_expire() {
        let rm = ResourceManager::new(Box::new(HeapAllocator), PoolConfig::default());
        let key = rm.take_lifecycle().unwrap();
        let fm = FusionManager::new();
        let plan = fm.create_plan(2, 4, 2);
        fm.reserve(&rm, &plan, 0).unwrap();
        assert_eq!(
            fm.commit(&rm, &plan).unwrap_err(),
            RmError::ReservationExpired(plan.id)
        );
        // The Housekeeper's sweep frees it (on the dispatcher, in an engine).
        assert_eq!(rm.stats().reserved, 3);
        assert_eq!(
            rm.expire_reservations(&key, crate::clock::now_ns()),
            vec![plan.id]
        );
        assert_eq!(rm.stats().reserved, 0);
    }
}
