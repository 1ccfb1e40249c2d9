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
    let key = rm.take_lifecycle().unwrap();
    let b = rm.allocate(spec(), "test").unwrap();
    assert_eq!(rm.pin(b.id, "a").unwrap(), 1);
    assert_eq!(rm.pin(b.id, "b").unwrap(), 2);
    assert_eq!(
        rm.release(&key, b.id),
        Err(RmError::StillPinned { id: b.id, pins: 2 })
    );
    assert_eq!(rm.unpin(&key, b.id, "a").unwrap(), 1);
    assert!(matches!(
        rm.unpin(&key, b.id, "a"),
        Err(RmError::NotPinned { .. })
    ));
    rm.unpin(&key, b.id, "b").unwrap();
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
    rm.release(&key, b.id).unwrap();
    assert_eq!(rm.release(&key, b.id), Err(RmError::AlreadyReleased(b.id)));
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
    let key = rm.take_lifecycle().unwrap();
    let b = rm.allocate(spec(), "test").unwrap();
    for i in 0..PIN_HISTORY + 10 {
        rm.pin(b.id, &format!("p{i}")).unwrap();
        rm.unpin(&key, b.id, &format!("p{i}")).unwrap();
    }
    let h = rm.pin_history();
    assert_eq!(h.len(), PIN_HISTORY);
    assert_eq!(h[0].owner, "p10");
}

#[test]
fn reservations_commit_or_expire() {
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
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
    // A refused commit ends nothing: the sweep (the lifecycle's holder) does.
    assert_eq!(rm.stats().reserved, 2);
    assert_eq!(rm.expire_reservations(&key, now_ns()), vec![8]);
    assert_eq!(rm.stats().reserved, 0);

    rm.reserve_for_plan(9, 2, spec(), 5).unwrap();
    assert_eq!(rm.expire_reservations(&key, now_ns() + 10), vec![9]);
    assert_eq!(rm.stats().reserved, 0);
    assert_eq!(rm.cancel_reservation(&key, 9), Err(RmError::UnknownPlan(9)));
}

#[test]
fn reserved_buffers_cannot_be_pinned_or_released() {
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    rm.reserve_for_plan(1, 1, spec(), u64::MAX / 2).unwrap();
    let id = rm.snapshot()[0].id;
    assert!(matches!(rm.pin(id, "x"), Err(RmError::NotAllocated { .. })));
    assert!(matches!(
        rm.release(&key, id),
        Err(RmError::NotAllocated { .. })
    ));
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
    let key = rm.take_lifecycle().unwrap();
    let a = rm.allocate(spec(), "a").unwrap();
    rm.release(&key, a.id).unwrap();
    let b = rm
        .allocate(BufferSpec::new(BufferKind::Rgba8, 16, 16), "b")
        .unwrap();
    assert_eq!(b.read().unwrap().len(), 16 * 16 * 4);
    assert!(matches!(a.read(), Err(RmError::UseAfterRelease(_))));
}

#[test]
fn memfd_buffers_carry_their_fd() {
    let rm = ResourceManager::new(Box::new(MemfdAllocator), PoolConfig::default());
    let key = rm.take_lifecycle().unwrap();
    let b = rm
        .allocate(BufferSpec::new(BufferKind::Rgba8, 8, 4), "m")
        .unwrap();
    assert!(b.fd().is_some());
    b.write().unwrap().bytes_mut()[0] = 9;
    assert_eq!(b.read().unwrap().bytes()[0], 9);
    assert!(rm.snapshot()[0].fd.is_some());
    // A scratch mosaic of the same size stays on the heap and is not
    // mixed up with the exportable buffer when the pool recycles.
    rm.release(&key, b.id).unwrap();
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
    let key = rm.take_lifecycle().unwrap();
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
    rm.release(&key, a.id).unwrap();
    let c = rm
        .allocate(BufferSpec::new(BufferKind::Other, 64, 1), "c")
        .unwrap();
    assert_eq!(live(&rm), 32 + 64);
    assert!(matches!(a.read(), Err(RmError::UseAfterRelease(_))));
    rm.release(&key, b.id).unwrap();
    rm.release(&key, c.id).unwrap();
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
    let key = rm.take_lifecycle().unwrap();
    let other = |w| BufferSpec::new(BufferKind::Other, w, 1);
    let a = rm.allocate(other(16), "a").unwrap();
    let b = rm.allocate(other(32), "b").unwrap();
    rm.release(&key, a.id).unwrap();
    // a's memory goes to make room, and 64 still does not fit: a's slot
    // is left empty.
    assert!(rm.allocate(other(64), "c").is_err());
    assert_eq!(rm.stats().total, 1);
    let d = rm.allocate(other(8), "d").unwrap();
    assert_eq!(d.id.index, a.id.index);
    assert_eq!(rm.stats().total, 2);
    rm.release(&key, b.id).unwrap();
    rm.release(&key, d.id).unwrap();
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
    let key = rm.take_lifecycle().unwrap();
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
    rm.release(&key, a.id).unwrap();
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
    rm.release(&key, b.id).unwrap();
    rm.release(&key, d.id).unwrap();
}

#[test]
fn cancelling_one_plan_leaves_the_others() {
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    rm.reserve_for_plan(1, 2, spec(), 1_000_000_000_000)
        .unwrap();
    rm.reserve_for_plan(2, 1, spec(), 1_000_000_000_000)
        .unwrap();
    rm.cancel_reservation(&key, 2).unwrap();
    assert_eq!(rm.stats().reserved, 2);
    assert_eq!(rm.cancel_reservation(&key, 2), Err(RmError::UnknownPlan(2)));
    let bufs = rm.commit_reservation(1, "fusion").unwrap();
    assert_eq!(bufs.len(), 2);
    for b in bufs {
        rm.release(&key, b.id).unwrap();
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
    let key = rm.take_lifecycle().unwrap();
    let other = |w| BufferSpec::new(BufferKind::Other, w, 1);
    let a = rm.allocate(other(10), "a").unwrap();
    let b = rm.allocate(other(20), "b").unwrap();
    rm.pin(b.id, "x").unwrap();
    rm.pin(b.id, "y").unwrap();
    rm.reserve_for_plan(7, 1, other(30), u64::MAX / 2).unwrap();
    let c = rm.allocate(other(5), "c").unwrap();
    rm.release(&key, c.id).unwrap();
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
            imported: 0,
        }
    );
    let snap = rm.snapshot();
    assert_eq!(snap.len(), 3);
    assert_eq!(
        snap.iter().map(|s| s.state.name()).collect::<Vec<_>>(),
        ["allocated", "allocated", "reserved"]
    );
    rm.unpin(&key, b.id, "x").unwrap();
    rm.unpin(&key, b.id, "y").unwrap();
    rm.release(&key, a.id).unwrap();
    rm.release(&key, b.id).unwrap();
}

/// A pin is stale once it is held longer than the threshold, not at it.
#[test]
fn a_pin_is_stale_only_past_the_threshold() {
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
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
    rm.unpin(&key, b.id, "holder").unwrap();
    rm.release(&key, b.id).unwrap();
}

/// A memfd standing in for a camera's exported DMA-BUF, with `fill` in it.
fn foreign(len: usize, fill: u8) -> crate::allocator::Memory {
    use crate::allocator::PlatformAllocator;
    let m = MemfdAllocator.allocate(len, "foreign").unwrap();
    // SAFETY: nobody else writes this memfd.
    let fd = unsafe { m.export_fd() }.unwrap().unwrap();
    // SAFETY: the test is the only writer.
    let mut f = unsafe {
        crate::allocator::Memory::map_foreign(fd, len, crate::allocator::AllocatorKind::Dmabuf)
    }
    .unwrap();
    f.bytes_mut().fill(fill);
    f
}

/// Imported memory is lent a frame at a time, goes back to its owner (not
/// the pool) at release, is never handed out by `allocate`, and counts
/// against no pool limit.
#[test]
fn imported_memory_is_lent_and_given_back_to_its_owner() {
    let rm = ResourceManager::new(
        Box::new(HeapAllocator),
        PoolConfig {
            max_buffers: 1,
            max_bytes: 64,
        },
    );
    let key = rm.take_lifecycle().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let raw = BufferSpec::raw(8, 8, 8);
    let a = rm
        .import(foreign(4096, 7), raw, "camera", tx.clone(), 3)
        .unwrap();
    let b = rm.import(foreign(4096, 9), raw, "camera", tx, 4).unwrap();
    assert_ne!(a, b);
    // The pool still has room for its own buffer (limits are 1 and 64
    // bytes), and `allocate` takes none of the imported slots.
    let own = rm.allocate(raw, "source").unwrap();
    assert!(own.id.index != a && own.id.index != b);
    assert!(own.fd().is_none(), "the heap pool's own buffer");
    let st = rm.stats();
    assert_eq!((st.total, st.imported, st.free, st.allocated), (3, 2, 2, 1));

    let lent = rm.lend(a, "frame 1").unwrap();
    assert_eq!(lent.read().unwrap().bytes()[..4], [7, 7, 7, 7]);
    assert!(lent.fd().is_some());
    assert!(matches!(
        rm.lend(a, "again"),
        Err(RmError::NotAllocated { .. })
    ));
    assert!(matches!(
        rm.lend(own.id.index, "x"),
        Err(RmError::NotImported(_))
    ));
    rm.pin(lent.id, "preview").unwrap();
    assert!(rx.try_recv().is_err(), "nothing given back while lent");
    rm.unpin(&key, lent.id, "preview").unwrap();
    rm.release(&key, lent.id).unwrap();
    assert_eq!(rx.try_recv(), Ok(3), "the owner's token comes back");
    assert!(matches!(lent.read(), Err(RmError::UseAfterRelease(_))));
    let snap = rm.snapshot();
    let slot = snap.iter().find(|i| i.id.index == a).unwrap();
    assert!(slot.imported);
    assert_eq!((slot.state.name(), slot.owner.as_str()), ("free", "camera"));

    // Lent again: the same memory, a new generation.
    let again = rm.lend(a, "frame 2").unwrap();
    assert_eq!(again.id.index, lent.id.index);
    assert_ne!(again.id.generation, lent.id.generation);

    // Retired while lent: the frame keeps its bytes to the end, then the
    // memory goes and nothing is given back; retired while free: at once.
    rm.retire(a);
    rm.retire(b);
    assert_eq!(again.read().unwrap().bytes()[0], 7);
    assert!(matches!(rm.lend(b, "late"), Err(RmError::NotImported(_))));
    assert_eq!(rm.stats().imported, 1);
    rm.release(&key, again.id).unwrap();
    assert!(rx.try_recv().is_err());
    assert_eq!(rm.stats().imported, 0);
    assert!(matches!(rm.lend(a, "late"), Err(RmError::NotImported(_))));
    rm.release(&key, own.id).unwrap();
    // The emptied import slots are reused for the pool's own buffers (a
    // new size: `own`'s memory goes, the first empty slot takes it).
    let next = rm.allocate(BufferSpec::raw(8, 4, 8), "source").unwrap();
    assert_eq!(next.id.index, a.min(b));
}

/// An owner that went away (its receiver dropped) does not break release.
#[test]
fn releasing_memory_whose_owner_is_gone_is_quiet() {
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let raw = BufferSpec::raw(8, 8, 8);
    let i = rm.import(foreign(4096, 1), raw, "camera", tx, 0).unwrap();
    drop(rx);
    let b = rm.lend(i, "frame").unwrap();
    rm.release(&key, b.id).unwrap();
    // Memory too small for the spec is refused.
    let (tx, _rx) = crossbeam_channel::unbounded();
    assert!(matches!(
        rm.import(
            foreign(4096, 1),
            BufferSpec::raw(100, 100, 100),
            "camera",
            tx,
            0
        ),
        Err(RmError::Alloc(_))
    ));
}
