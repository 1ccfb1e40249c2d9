//! Buffers and the sensor's clock: one frame per interval while streaming.

use super::*;
pub(super) fn new_buffer(len: usize) -> Result<Buf, c_int> {
    // SAFETY: a fresh anonymous file, sized and mapped here.
    unsafe {
        let memfd = libc::memfd_create(c"isp-vcam-buffer".as_ptr(), libc::MFD_CLOEXEC);
        if memfd < 0 {
            return Err(libc::ENOMEM);
        }
        if libc::ftruncate(memfd, len as off_t) != 0 {
            libc::close(memfd);
            return Err(libc::ENOMEM);
        }
        let map = real_mmap(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            memfd,
            0,
        );
        if map == libc::MAP_FAILED {
            libc::close(memfd);
            return Err(libc::ENOMEM);
        }
        Ok(Buf {
            mem: Arc::new(Memory {
                memfd,
                len,
                map: map as usize,
            }),
            state: BufState::Idle,
            error: false,
            seq: 0,
            ts: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        })
    }
}

/// Nanoseconds on CLOCK_MONOTONIC (the clock of V4L2 timestamps).
pub(super) fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The sensor: one frame per interval while streaming. Frame k is exposed
/// and read out from `t0 + k * interval` to its end of frame a frame later:
/// it takes the controls landed by its start and the buffer queued first
/// (none queued: the frame is lost, the sequence number moves on), is
/// rendered meanwhile, and is done at its end of frame.
pub(super) fn produce(generation: u64) {
    let mut scratch = Vec::new();
    loop {
        let (start, interval) = {
            let d = dev();
            if !d.streaming || d.generation != generation {
                return;
            }
            let interval = Duration::from_secs_f64(d.interval.0 as f64 / d.interval.1 as f64);
            (d.t0 + interval * d.next_seq as u32, interval)
        };
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
        let job = {
            let mut d = dev();
            if !d.streaming || d.generation != generation {
                return;
            }
            // A sensor does not wait: frames whose time passed while this
            // thread was late (starved of CPU) are lost. A virtual one does.
            let seq = if CONFIG.virtual_clock {
                d.next_seq
            } else {
                d.next_seq.max(d.exposing())
            };
            d.next_seq = seq + 1;
            // Writes land in the order they were made, each at its own frame
            // (a gain written after an exposure may land before it).
            let due: Vec<(u32, i64)> = d
                .pending
                .iter()
                .filter(|p| p.0 <= seq)
                .map(|p| (p.1, p.2))
                .collect();
            d.pending.retain(|p| p.0 > seq);
            for (id, v) in due {
                d.land(id, v);
            }
            let faults = &CONFIG.faults;
            // From frame N on (a late producer may have skipped N itself).
            let vanish = faults.from(seq, |f| matches!(f, Fault::Vanish(_)));
            if vanish || faults.from(seq, |f| matches!(f, Fault::Eio(_))) {
                // The fault strikes at the end of this frame: the frames
                // before it were delivered a frame earlier.
                let end = d.t0 + interval * (seq as u32 + 1);
                drop(d);
                let now = Instant::now();
                if end > now {
                    std::thread::sleep(end - now);
                }
                let mut d = dev();
                // A virtual sensor first waits for its client to dequeue
                // every frame it finished: then exactly the frames before
                // the fault were delivered.
                while CONFIG.virtual_clock
                    && d.streaming
                    && d.generation == generation
                    && (!d.done.is_empty() || d.rendering > 0)
                {
                    d = DEV.1.wait(d).unwrap_or_else(|p| p.into_inner());
                }
                if !d.streaming || d.generation != generation {
                    return;
                }
                if vanish {
                    d.vanished = true;
                    for &(fd, _) in &d.open {
                        signal(fd);
                    }
                } else {
                    d.eio = true;
                    if let Some(o) = d.owner {
                        signal(o);
                    }
                }
                DEV.1.notify_all();
                return;
            }
            // A virtual sensor waits for a buffer instead of losing the
            // frame.
            while CONFIG.virtual_clock
                && !faults.has(Fault::Gap(seq))
                && d.queued.is_empty()
                && d.streaming
                && d.generation == generation
            {
                d = DEV.1.wait(d).unwrap_or_else(|p| p.into_inner());
            }
            if !d.streaming || d.generation != generation {
                return;
            }
            if faults.has(Fault::Gap(seq)) {
                None
            } else if let Some(i) = d.queued.pop_front() {
                d.bufs[i].state = BufState::Filling;
                d.rendering += 1;
                let base = d.base_now();
                Some((i, seq, d.bufs[i].mem.clone(), d.fmt, d.live, base))
            } else {
                None
            }
        };
        let Some((i, seq, mem, fmt, look, base)) = job else {
            continue;
        };
        // SAFETY: the buffer is Filling: nothing else writes it until it is
        // Done (the caller may read it only after a dequeue), and `mem`
        // keeps the mapping alive if the buffers are freed meanwhile.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(mem.map as *mut u8, fmt.sizeimage as usize) };
        render::frame(&fmt, &base, &look, seq, dst, &mut scratch);
        let end_of_frame = {
            let mut d = dev();
            d.rendering -= 1;
            DEV.1.notify_all();
            d.t0 + interval * (seq as u32 + 1)
        };
        let now = Instant::now();
        if end_of_frame > now {
            std::thread::sleep(end_of_frame - now);
        }
        let mut d = dev();
        if !d.streaming || d.generation != generation {
            return;
        }
        // Stamped at its end of frame, as a driver stamps the end-of-frame
        // interrupt.
        let end =
            d.t0_ns + ((seq + 1) as f64 * d.interval.0 as f64 / d.interval.1 as f64 * 1e9) as u64;
        let ts = libc::timeval {
            tv_sec: (end / 1_000_000_000) as libc::time_t,
            tv_usec: ((end % 1_000_000_000) / 1000) as libc::suseconds_t,
        };
        let b = &mut d.bufs[i];
        b.state = BufState::Done;
        b.error = CONFIG.faults.has(Fault::Corrupt(seq));
        b.seq = seq as u32;
        b.ts = ts;
        d.done.push_back(i);
        if let Some(o) = d.owner {
            signal(o);
        }
        DEV.1.notify_all();
    }
}
