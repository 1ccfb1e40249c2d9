use super::*;

fn ev(frame: u64) -> TelemetryEvent {
    TelemetryEvent {
        seq: 99,
        kind: EventKind::Stage,
        frame_id: frame,
        stage: "fast_isp",
        lane: Some(Lane::Realtime),
        worker: Some(1),
        enqueue_ns: 10,
        start_ns: 1_000_010,
        end_ns: 3_000_010,
        buffers: vec![3, 4],
        params_version: 2,
        outcome: Outcome::Ok,
        detail: "a, \"quoted\" detail".into(),
    }
}

#[test]
fn append_assigns_sequence_and_snapshots_are_stable() {
    let t = TelemetryManager::new();
    for i in 0..(CHUNK as u64 * 2 + 5) {
        t.append(ev(i));
    }
    let snap = t.snapshot();
    t.append(ev(12345));
    assert_eq!(snap.len(), CHUNK * 2 + 5);
    assert_eq!(t.len(), CHUNK * 2 + 6);
    for (i, e) in snap.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
        assert_eq!(e.frame_id, i as u64);
    }
    assert_eq!(snap.get(CHUNK + 3).unwrap().seq, CHUNK as u64 + 3);
    assert!(snap.get(CHUNK * 3).is_none());
}

#[test]
fn csv_has_header_and_parses_back() {
    let t = TelemetryManager::new();
    t.append(ev(7));
    let mut out = Vec::new();
    t.write_csv(&mut out).unwrap();
    let mut r = csv::Reader::from_reader(out.as_slice());
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers, CSV_COLUMNS);
    let rec = r.records().next().unwrap().unwrap();
    assert_eq!(&rec[2], "7");
    assert_eq!(&rec[4], "realtime");
    assert_eq!(&rec[9], "1.000000");
    assert_eq!(&rec[10], "2.000000");
    assert_eq!(&rec[11], "3;4");
    assert_eq!(&rec[14], "a, \"quoted\" detail");
}

/// Events unlike each other in every field the packing treats apart.
fn varied(i: u64) -> TelemetryEvent {
    let kinds = [
        EventKind::Stage,
        EventKind::Pool,
        EventKind::Note,
        EventKind::Gpu,
    ];
    let outcomes = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Dropped,
        Outcome::Cancelled,
    ];
    let lanes = [None, Some(Lane::Realtime), Some(Lane::Background)];
    let stages = [
        "raw_isp",
        "fast_isp",
        "gpu_upload",
        "backend",
        "coordinator",
    ];
    let enqueue = 1_000_000 * i;
    let start = match i % 7 {
        // Before its enqueue, and far after it: both kept exactly.
        3 => enqueue.saturating_sub(5),
        4 => enqueue + (5u64 << 32),
        _ => enqueue + 1000 + i,
    };
    TelemetryEvent {
        seq: 0,
        kind: kinds[i as usize % 4],
        frame_id: if i % 11 == 5 { u64::MAX - i } else { i / 3 },
        stage: stages[i as usize % stages.len()],
        lane: lanes[i as usize % 3],
        worker: match i % 5 {
            0 => None,
            1 => Some(300 + i as u16 % 7),
            _ => Some((i % 4) as u16),
        },
        enqueue_ns: enqueue,
        start_ns: start,
        end_ns: if i % 13 == 6 {
            start - 1
        } else {
            start + 50_000 * (i % 9)
        },
        buffers: (0..(i % 5) as u32).map(|k| k * 1000 + i as u32).collect(),
        params_version: if i % 17 == 8 { 1 << 40 } else { 1 + i / 100 },
        outcome: outcomes[i as usize % 4],
        detail: match i % 6 {
            0 | 1 => String::new(),
            2 => "timer=cpu raw bytes into the staging buffer".into(),
            3 => format!("note {i}, with a comma and \"quotes\" and ünïcode"),
            _ => "timer=cpu RGBA8 and statistics out of the readback buffer".into(),
        },
    }
}

#[test]
fn packed_events_read_back_exactly() {
    let t = TelemetryManager::new();
    let n = CHUNK as u64 + 500;
    for i in 0..n {
        t.append(varied(i));
    }
    let snap = t.snapshot();
    assert_eq!(snap.len() as u64, n);
    for (i, e) in snap.iter().enumerate() {
        let mut want = varied(i as u64);
        want.seq = i as u64;
        assert_eq!(e, want, "event {i}");
        let b = snap.brief(i).unwrap();
        assert_eq!(
            (b.frame_id, b.stage, b.start_ns, b.end_ns, b.worker),
            (
                want.frame_id,
                want.stage,
                want.start_ns,
                want.end_ns,
                want.worker
            )
        );
    }
    // A stage name that was never seen before is kept too.
    let mut odd = varied(1);
    odd.stage = Box::leak(format!("stage_{n}").into_boxed_str());
    t.append(odd.clone());
    odd.seq = n;
    assert_eq!(t.snapshot().get(n as usize), Some(odd));
}

#[test]
fn old_chunks_spill_to_disk_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let t = TelemetryManager::with_spill(2, Some(dir.path().to_path_buf()));
    let n = CHUNK as u64 * 7 + 17;
    for i in 0..n {
        t.append(varied(i));
    }
    let m = t.memory();
    assert_eq!(m.events, n);
    assert_eq!(m.spilled, CHUNK as u64 * 5, "{m:?}");
    assert_eq!(m.in_memory, CHUNK as u64 * 2 + 17);
    assert!(m.spilled_bytes > 0);
    assert!(t.spill_error().is_none());
    let snap = t.snapshot();
    // Random access into spilled chunks, then everything in order.
    for i in [
        0,
        5,
        CHUNK + 1,
        3 * CHUNK - 1,
        4 * CHUNK + 7,
        n as usize - 1,
    ] {
        let mut want = varied(i as u64);
        want.seq = i as u64;
        assert_eq!(snap.get(i), Some(want), "event {i}");
    }
    assert_eq!(snap.get(n as usize), None);
    let mut count = 0;
    for (i, e) in snap.iter().enumerate() {
        let mut want = varied(i as u64);
        want.seq = i as u64;
        assert_eq!(e, want);
        count += 1;
    }
    assert_eq!(count, n);
    assert!(snap.read_error().is_none());
    // The CSV has every row, in order, with the spilled ones first.
    let mut out = Vec::new();
    t.write_csv(&mut out).unwrap();
    let mut r = csv::Reader::from_reader(out.as_slice());
    let seqs: Vec<u64> = r
        .records()
        .map(|rec| rec.unwrap()[0].parse().unwrap())
        .collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>());
    // The spill file has no name: the folder stays empty.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_spill_that_fails_keeps_everything_in_memory() {
    let t = TelemetryManager::with_spill(1, Some("/nonexistent/telemetry".into()));
    let n = CHUNK as u64 * 3;
    for i in 0..n {
        t.append(varied(i));
    }
    let why = t.spill_error().unwrap();
    assert!(why.contains("creating the spill file"), "{why}");
    assert_eq!(t.memory().in_memory, n);
    assert_eq!(t.snapshot().iter().count() as u64, n);
}

#[test]
fn a_running_engines_rows_take_at_most_48_bytes_each_in_memory() {
    // What a camera's realtime lane writes per frame: four stage rows
    // (AE's summary on the last, its numbers moving) and the
    // coordinator's note, times with jitter.
    let t = TelemetryManager::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut now = 1_000_000_000u64;
    for f in 0..40_000u64 {
        for (k, stage) in ["raw_isp", "raw_algo", "fast_isp", "fast_algo"]
            .iter()
            .enumerate()
        {
            let q = next() % 200_000;
            let run = 100_000 + next() % 900_000;
            t.append(TelemetryEvent {
                seq: 0,
                kind: EventKind::Stage,
                frame_id: f,
                stage,
                lane: Some(Lane::Realtime),
                worker: Some((next() % 2) as u16),
                enqueue_ns: now,
                start_ns: now + q,
                end_ns: now + q + run,
                buffers: if k == 3 {
                    vec![]
                } else {
                    vec![(next() % 40) as u32, 41]
                },
                params_version: 1 + f / 5000,
                outcome: Outcome::Ok,
                detail: if k == 3 {
                    let luma = (next() % 10_000) as f64 / 1e4;
                    let exp = 8000.0 + (next() % 4_000_000) as f64 / 1e3;
                    format!(
                        "ae_luma={luma:.4} ae_exposure_us={exp:.4} ae_gain={:.4}",
                        1.0 + (next() % 1000) as f64 / 1e3
                    )
                } else {
                    String::new()
                },
            });
            now += q + run;
        }
        t.note(
            "coordinator",
            format!(
                "[ExposureUs({}.0), AnalogueGain({:.4})] take effect at frame {}",
                8000 + next() % 4000,
                1.0 + (next() % 1000) as f64 / 1e3,
                f + 2
            ),
        );
    }
    let m = t.memory();
    assert!(m.spilled > 0, "{m:?}");
    assert!(
        m.bytes_per_event() <= 48.0,
        "{:.1} bytes per event: {m:?}",
        m.bytes_per_event()
    );
}
