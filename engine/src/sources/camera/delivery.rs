//! How frames leave the driver: the stream's buffer queue (REQBUFS, the
//! mappings and DMA-BUF exports, STREAMON), each buffer imported into the
//! ResourceManager once and lent frame by frame, dequeueing with the frame's
//! metadata, and how many frames were lent or copied.

use super::*;

/// The driver's buffers as imported into one ResourceManager.
pub(super) struct Lending {
    pub(super) rm: Weak<ResourceManager>,
    /// The pool slot of each driver buffer.
    pub(super) slots: Vec<u32>,
    /// Each buffer's DMA-BUF descriptor (owned by its pool slot).
    pub(super) fds: Vec<RawFd>,
    /// Buffers the engine holds now.
    pub(super) out: Vec<bool>,
    /// Released buffers, by index, back from the ResourceManager.
    pub(super) returns: crossbeam_channel::Receiver<u32>,
}

/// How the frames of a stream reached the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Lent as the driver's own buffer (DMA-BUF, no copy).
    pub lent: u64,
    /// Copied into a pooled buffer.
    pub copied: u64,
}

impl V4l2Source {
    /// The driver's buffers, streaming: on the first call REQBUFS, the
    /// mappings and exports, every buffer queued, STREAMON; after that,
    /// the buffers the engine gave back are queued again.
    pub(super) fn streaming(&mut self) -> Result<&mut DriverQueue, SourceError> {
        if self.stream.is_none() {
            let timeout = (self.interval_s * 8.0 * 1000.0).max(2000.0) as i32;
            let mut q = DriverQueue::new(&self.device, BUFFERS, timeout)
                .map_err(|e| self.fail("VIDIOC_REQBUFS", e))?;
            let n = q.len();
            q.start(0..n)
                .map_err(|e| self.fail("VIDIOC_QBUF/STREAMON", e))?;
            self.stream = Some(q);
        }
        let mut pool_gone = false;
        let returned: Vec<u32> = match &mut self.lending {
            Some(Ok(l)) => {
                let back: Vec<u32> = l.returns.try_iter().collect();
                // The descriptors belong to the pool's slots: with the pool
                // gone they are closed (their numbers maybe reused).
                let alive = l.rm.upgrade().is_some();
                pool_gone = !alive;
                for &i in &back {
                    if let Some(o) = l.out.get_mut(i as usize) {
                        *o = false;
                    }
                    if let Some(&fd) = l.fds.get(i as usize)
                        && alive
                    {
                        // The CPU is done with it: the device may write it.
                        let _ = stream::dma_buf_sync(fd, true);
                    }
                }
                back
            }
            _ => Vec::new(),
        };
        if pool_gone {
            self.lending = Some(Err(
                "the ResourceManager the buffers were imported into is gone".into(),
            ));
            self.applied.push(
                "frames are copied from now on: the engine that held the buffers is gone".into(),
            );
        }
        for i in returned {
            let r = match self.stream.as_mut() {
                Some(q) => q.queue(i as usize),
                None => Ok(()),
            };
            if let Err(e) = r {
                return Err(self.fail("VIDIOC_QBUF", e));
            }
        }
        let path = &self.path;
        self.stream
            .as_mut()
            .ok_or_else(|| SourceError::invalid(path, "the stream stopped"))
    }

    /// Import the driver's exported buffers into `rm`, once; the result
    /// (or why not) is kept and logged.
    pub(super) fn import_into(&mut self, rm: &Arc<ResourceManager>) {
        let spec = BufferSpec::raw(self.fmt.width, self.fmt.height, self.fmt.stride);
        let owner = format!("camera {}", self.path.display());
        let Some(q) = self.stream.as_mut() else {
            return;
        };
        let lengths = q.lengths.clone();
        let result = q.take_exports().and_then(|fds| {
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut l = Lending {
                rm: Arc::downgrade(rm),
                slots: Vec::new(),
                fds: Vec::new(),
                out: vec![false; fds.len()],
                returns: rx,
            };
            for (i, (fd, len)) in fds.into_iter().zip(lengths).enumerate() {
                let raw = fd.as_raw_fd();
                // SAFETY: the driver writes a capture buffer only while it
                // is queued; the engine reads it only while it is lent,
                // between a dequeue and the queue that follows its release.
                let imported = unsafe { Memory::map_foreign(fd, len, AllocatorKind::Dmabuf) }
                    .map_err(|e| e.to_string())
                    .and_then(|mem| {
                        rm.import(mem, spec, &owner, tx.clone(), i as u32)
                            .map_err(|e| e.to_string())
                    });
                match imported {
                    Ok(slot) => {
                        l.slots.push(slot);
                        l.fds.push(raw);
                    }
                    Err(e) => {
                        for &slot in &l.slots {
                            rm.retire(slot);
                        }
                        return Err(format!("import of buffer {i}: {e}"));
                    }
                }
            }
            Ok(l)
        });
        self.applied.push(match &result {
            Ok(l) => format!(
                "VIDIOC_EXPBUF: {} buffers exported as DMA-BUF and imported into the ResourceManager: frames are lent, not copied",
                l.slots.len()
            ),
            Err(e) => format!("frames are copied into pooled buffers ({e})"),
        });
        self.lending = Some(result);
    }

    /// Dequeue the next good frame and work out its metadata (sequence,
    /// timestamp, lost frames, the controls that exposed it).
    pub(super) fn dequeue(&mut self) -> Result<(usize, FrameMeta), SourceError> {
        let need = self.fmt.frame_bytes();
        let d: Dequeued = loop {
            let q = self.streaming()?;
            let d = match q.dequeue() {
                Ok(d) => d,
                Err(e) => {
                    let what = if e.kind() == std::io::ErrorKind::TimedOut {
                        format!("no frame in {:.1} s", self.interval_s * 8.0)
                    } else {
                        "VIDIOC_DQBUF".to_string()
                    };
                    return Err(self.fail(&what, e));
                }
            };
            if !d.is_error() {
                if (d.bytesused as usize) < need || q.lengths[d.index] < need {
                    let err = SourceError::invalid(
                        &self.path,
                        format!("short frame: {} bytes, {need} expected", d.bytesused),
                    );
                    self.stop();
                    return Err(err);
                }
                break d;
            }
            // A frame the driver says is corrupted: skipped, counted lost.
            let r = q.queue(d.index);
            self.skipped += 1;
            if let Err(e) = r {
                return Err(self.fail("VIDIOC_QBUF", e));
            }
        };
        let meta = self.frame_meta(&d);
        Ok((d.index, meta))
    }

    pub(super) fn frame_meta(&mut self, d: &Dequeued) -> FrameMeta {
        // The driver's sequence is a u32 that wraps: extend it past the last.
        let seq = match self.last {
            Some((last, _)) => last + (d.sequence.wrapping_sub(last as u32)) as u64,
            None => d.sequence as u64,
        };
        let ts = d.timestamp_ns;
        let gap = match self.last {
            Some((last, _)) if seq > last + 1 => seq - last - 1,
            _ => 0,
        };
        // Frames skipped as corrupted are inside the gap already when the
        // driver numbered them; count each loss once.
        let dropped_before = gap.max(std::mem::take(&mut self.skipped));
        self.dropped += dropped_before;
        self.last = Some((seq, ts));
        // Each write lands at its own frame (a gain written after an
        // exposure may land before it), in the order they were made.
        for &(_, id, v) in self.landing.iter().filter(|l| l.0 <= seq) {
            self.effective.insert(id, v);
        }
        self.landing.retain(|l| l.0 > seq);
        let value = |c: &Option<(ControlInfo, f32)>| {
            c.as_ref()
                .and_then(|(c, _)| self.effective.get(&c.id).copied())
        };
        let exposure_us = value(&self.map.exposure)
            .and_then(|v| self.map.exposure_us(v))
            .unwrap_or(0.0);
        let analogue_gain = value(&self.map.gain)
            .and_then(|v| self.map.gain(v))
            .unwrap_or(1.0);
        let controls = self
            .controls
            .iter()
            .filter(|c| !c.read_only)
            .filter_map(|c| Some((c.name.clone(), *self.effective.get(&c.id)? as f64)))
            .collect();
        FrameMeta {
            sequence: seq,
            timestamp_ns: ts,
            exposure_us,
            analogue_gain,
            controls,
            dropped_before,
        }
    }
}
