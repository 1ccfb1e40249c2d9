//! ResourceManager invariants under random operation sequences and threads.

use isp_engine::allocator::{HeapAllocator, MemfdAllocator};
use isp_engine::resource_manager::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Alloc(u8),
    Pin(usize, u8),
    Unpin(usize, u8),
    Release(usize),
    Reserve(u8, u8),
    Commit(u8),
    Expire,
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3).prop_map(Op::Alloc),
        (0usize..16, 0u8..3).prop_map(|(i, o)| Op::Pin(i, o)),
        (0usize..16, 0u8..3).prop_map(|(i, o)| Op::Unpin(i, o)),
        (0usize..16).prop_map(Op::Release),
        (0u8..4, 1u8..3).prop_map(|(p, n)| Op::Reserve(p, n)),
        (0u8..4).prop_map(Op::Commit),
        Just(Op::Expire),
        (0usize..16).prop_map(Op::Read),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..80)) {
        let rm = ResourceManager::new(Box::new(HeapAllocator), PoolConfig { max_buffers: 8, max_bytes: 1 << 20 });
        let key = rm.take_lifecycle().unwrap();
        // Every handle ever handed out, and the model's view of it.
        let mut handles: Vec<BufferRef> = Vec::new();
        let mut live: HashMap<usize, HashMap<u8, usize>> = HashMap::new(); // handle -> pins per owner
        let sizes = [64usize, 128, 256];
        for op in ops {
            match op {
                Op::Alloc(s) => {
                    let spec = BufferSpec { kind: BufferKind::Other, width: 1, height: 1, stride: 1, bytes: sizes[s as usize] };
                    if let Ok(b) = rm.allocate(spec, "t") {
                        // Never a buffer that is live (pinned or not).
                        for (&h, _) in live.iter() {
                            prop_assert!(handles[h].id.index != b.id.index, "live buffer handed out again");
                        }
                        live.insert(handles.len(), HashMap::new());
                        handles.push(b);
                    }
                }
                Op::Pin(i, o) => if let Some(b) = handles.get(i) {
                    let r = rm.pin(b.id, &o.to_string());
                    prop_assert_eq!(r.is_ok(), live.contains_key(&i));
                    if r.is_ok() { *live.get_mut(&i).unwrap().entry(o).or_default() += 1; }
                }
                Op::Unpin(i, o) => if let Some(b) = handles.get(i) {
                    let held = live.get(&i).and_then(|m| m.get(&o)).copied().unwrap_or(0);
                    let r = rm.unpin(&key, b.id, &o.to_string());
                    prop_assert_eq!(r.is_ok(), held > 0);
                    if held > 0 { *live.get_mut(&i).unwrap().get_mut(&o).unwrap() -= 1; }
                }
                Op::Release(i) => if let Some(b) = handles.get(i) {
                    let pins: usize = live.get(&i).map(|m| m.values().sum()).unwrap_or(0);
                    let r = rm.release(&key, b.id);
                    match (live.contains_key(&i), pins) {
                        (false, _) => prop_assert!(matches!(r, Err(RmError::AlreadyReleased(_)))),
                        (true, 0) => { prop_assert!(r.is_ok()); live.remove(&i); }
                        (true, n) => prop_assert_eq!(r, Err(RmError::StillPinned { id: b.id, pins: n })),
                    }
                }
                Op::Reserve(p, n) => { let _ = rm.reserve_for_plan(p as u64, n as usize, BufferSpec { kind: BufferKind::Other, width: 1, height: 1, stride: 1, bytes: 64 }, 1_000_000_000_000); }
                Op::Commit(p) => if let Ok(bs) = rm.commit_reservation(p as u64, "plan") {
                    for b in bs { live.insert(handles.len(), HashMap::new()); handles.push(b); }
                }
                Op::Expire => { rm.expire_reservations(&key, u64::MAX); }
                Op::Read(i) => if let Some(b) = handles.get(i) {
                    prop_assert_eq!(b.read().is_ok(), live.contains_key(&i));
                }
            }
            let st = rm.stats();
            prop_assert_eq!(st.free + st.allocated + st.reserved, st.total);
            prop_assert_eq!(st.allocated, live.len());
            let pins: usize = live.values().flat_map(|m| m.values()).sum();
            prop_assert_eq!(st.pins, pins);
        }
    }
}

#[test]
fn concurrent_use_never_shares_a_buffer() {
    let rm = Arc::new(ResourceManager::new(
        Box::new(MemfdAllocator),
        PoolConfig {
            max_buffers: 12,
            max_bytes: 1 << 24,
        },
    ));
    let key = Arc::new(rm.take_lifecycle().unwrap());
    let threads: Vec<_> = (0..6u8)
        .map(|t| {
            let rm = rm.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                let spec = BufferSpec::new(BufferKind::Rgba8, 16, 16);
                let mut done = 0;
                for i in 0..2000u32 {
                    let Ok(b) = rm.allocate(spec, "worker") else {
                        continue;
                    };
                    let owner = format!("t{t}");
                    rm.pin(b.id, &owner).unwrap();
                    b.write().unwrap().bytes_mut().fill(t);
                    if i % 7 == 0 {
                        std::thread::yield_now();
                    }
                    // Nobody else wrote into our buffer meanwhile.
                    assert!(b.read().unwrap().bytes().iter().all(|&v| v == t));
                    assert!(matches!(
                        rm.release(&key, b.id),
                        Err(RmError::StillPinned { .. })
                    ));
                    rm.unpin(&key, b.id, &owner).unwrap();
                    rm.release(&key, b.id).unwrap();
                    assert!(matches!(
                        rm.release(&key, b.id),
                        Err(RmError::AlreadyReleased(_))
                    ));
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(total > 6000);
    let st = rm.stats();
    assert_eq!(st.allocated, 0);
    assert_eq!(st.pins, 0);
}
