//! The README's "Telemetry CSV" table is the contract: this test reads the
//! table and checks every column of a real export against it: names and
//! order, the kinds, lanes and outcomes it lists, pool and note rows, the
//! ms columns against the ns columns, `dropped` rows for dropped frames. The
//! CLI's `telemetry.csv` has the same header.

#![allow(clippy::unwrap_used)]

use isp_e2e::isp_bin;
use isp_engine::bench::MemorySource;
use isp_engine::envelope::StageId;
use isp_engine::pipeline::{Engine, EngineConfig};
use isp_engine::sources::synthetic::Scene;
use isp_engine::tuning::Tuning;
use isp_engine::types::{BayerOrder, Packing, RawFormat};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The README's table: each column with its meaning, in order (a row that
/// names several columns, `a, b`, gives each of them that meaning).
fn readme_columns() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Telemetry CSV")
        .nth(1)
        .expect("a Telemetry CSV section");
    let section = section.split("\n## ").next().unwrap();
    let mut cols = Vec::new();
    for line in section.lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = line.trim_matches('|').splitn(2, '|').collect();
        let (names, meaning) = (cells[0].trim(), cells[1].trim());
        for n in names.split(',') {
            cols.push((n.trim().to_string(), meaning.to_string()));
        }
    }
    cols
}

/// The `code` spans in a meaning: the values the README allows.
fn code_spans(meaning: &str) -> BTreeSet<String> {
    meaning
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// An engine run with every kind of row: frames, frames dropped (the one
/// realtime worker held while ten frames arrive), a Housekeeper sweep, notes.
fn real_run() -> (Engine, Vec<u64>) {
    let mut cfg = EngineConfig {
        max_in_flight: 1000,
        ..Default::default()
    };
    cfg.threading.realtime = isp_engine::threading_manager::LaneConfig {
        workers: 1,
        queue: 2,
        data_threads: 1,
    };
    cfg.housekeeper.period = Duration::from_secs(3600);
    let engine = Engine::new(cfg, Tuning::default()).unwrap();
    let rx = engine.subscribe(true);
    let fmt = RawFormat::new(96, 64, 10, BayerOrder::Rggb, Packing::Csi2);
    let mut src = MemorySource::synthetic(Scene::Checker, fmt, 1, 10);
    let hold = engine.threading().holds().hold(StageId::RawIsp, 1);
    engine.feed(&mut src, Some(1), |_| {}).unwrap();
    assert!(hold.wait_entered(Duration::from_secs(60)));
    engine.feed(&mut src, Some(9), |_| {}).unwrap();
    hold.release();
    let mut dropped: Vec<u64> = (0..10)
        .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap())
        .filter(|r| r.outcome == isp_engine::types::Outcome::Dropped)
        .map(|r| r.frame_id)
        .collect();
    dropped.sort();
    assert!(engine.flush(Duration::from_secs(60)));
    engine.sweep(isp_engine::clock::now_ns()).unwrap();
    engine
        .telemetry
        .note("engine", "a note, with a comma".into());
    (engine, dropped)
}

#[test]
fn the_exported_csv_is_what_the_readme_says() {
    let cols = readme_columns();
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, isp_engine::telemetry::CSV_COLUMNS, "README vs code");
    let meaning: BTreeMap<&str, &str> =
        cols.iter().map(|(n, m)| (n.as_str(), m.as_str())).collect();
    let kinds = code_spans(meaning["kind"]);
    let lanes = code_spans(meaning["lane"]);
    let outcomes = code_spans(meaning["outcome"]);
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");

    let (engine, dropped) = real_run();
    assert_eq!(dropped, (2..=8).collect::<Vec<u64>>());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.csv");
    engine.telemetry.export_csv(&path).unwrap();
    let events = engine.telemetry.len();
    engine.shutdown();

    let mut r = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, names);
    let col = |name: &str| names.iter().position(|n| *n == name).unwrap();
    let num = |rec: &csv::StringRecord, name: &str| -> u64 {
        rec[col(name)]
            .parse()
            .unwrap_or_else(|e| panic!("{name} {:?}: {e}", &rec[col(name)]))
    };
    let ms = |rec: &csv::StringRecord, name: &str| -> f64 { rec[col(name)].parse().unwrap() };
    let mut seen_kinds = BTreeSet::new();
    let mut dropped_rows = Vec::new();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), events, "one row per event");
    for (i, rec) in rows.iter().enumerate() {
        assert_eq!(rec.len(), names.len());
        assert_eq!(num(rec, "seq"), i as u64, "seq is the order of append");
        let kind = &rec[col("kind")];
        assert!(kinds.contains(kind), "kind {kind}");
        seen_kinds.insert(kind.to_string());
        let (lane, frame) = (&rec[col("lane")], num(rec, "frame_id"));
        match kind {
            "pool" | "note" => {
                assert_eq!((frame, lane, &rec[col("worker")]), (0, "", ""), "{rec:?}");
            }
            _ => {
                assert!(frame >= 1, "{rec:?}");
                assert!(lanes.contains(lane), "lane {lane:?}");
                assert!(num(rec, "params_version") >= 1, "{rec:?}");
            }
        }
        let (q, s, e) = (
            num(rec, "enqueue_ns"),
            num(rec, "start_ns"),
            num(rec, "end_ns"),
        );
        assert!(s <= e, "{rec:?}");
        // queue_ms and run_ms are the ns columns' differences in ms.
        assert!(
            (ms(rec, "queue_ms") - s.saturating_sub(q) as f64 / 1e6).abs() < 1e-6,
            "{rec:?}"
        );
        assert!(
            (ms(rec, "run_ms") - (e - s) as f64 / 1e6).abs() < 1e-6,
            "{rec:?}"
        );
        let bufs = &rec[col("buffers")];
        if !bufs.is_empty() {
            for b in bufs.split(';') {
                b.parse::<u32>()
                    .unwrap_or_else(|_| panic!("buffers {bufs:?}"));
            }
        }
        let outcome = &rec[col("outcome")];
        assert!(outcomes.contains(outcome), "outcome {outcome}");
        if outcome == "dropped" {
            assert_eq!((kind, lane), ("stage", "realtime"));
            dropped_rows.push(frame);
        }
        if &rec[col("stage")] == "raw_isp" {
            assert!(!bufs.is_empty(), "RawISP pins its buffers: {rec:?}");
        }
    }
    // Every kind but `gpu` (the CPU backend) appears; a dropped frame is one
    // `dropped` row.
    let want: BTreeSet<String> = ["stage", "pool", "note"].map(String::from).into();
    assert_eq!(seen_kinds, want);
    assert_eq!(dropped_rows, dropped);
    // The note with a comma survived quoting; the pool row holds statistics.
    assert!(
        rows.iter()
            .any(|r| &r[col("detail")] == "a note, with a comma")
    );
    assert!(
        rows.iter()
            .any(|r| &r[col("kind")] == "pool" && r[col("detail")].contains("free="))
    );
}

#[test]
fn the_clis_telemetry_csv_has_the_readme_header() {
    let cols = readme_columns();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = std::process::Command::new(isp_bin())
        .args([
            "process",
            "--backend",
            "cpu",
            "--frames",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = csv::Reader::from_path(out.join("telemetry.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, cols.iter().map(|c| c.0.clone()).collect::<Vec<_>>());
    // Two frames, four realtime stages each.
    let stage_rows = r
        .records()
        .map(|x| x.unwrap())
        .filter(|x| &x[1] == "stage")
        .count();
    assert_eq!(stage_rows, 8);
}

#[test]
fn a_long_run_spills_and_still_exports_every_event_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        EngineConfig {
            // One sealed chunk in memory: everything older is read back
            // from the spill file for the export.
            telemetry_memory_chunks: 1,
            telemetry_spill_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
        Tuning::default(),
    )
    .unwrap();
    let fmt = RawFormat::new(32, 16, 10, BayerOrder::Rggb, Packing::Plain);
    let frames = 5000;
    let mut src = MemorySource::synthetic(Scene::Checker, fmt, 2, frames);
    assert_eq!(engine.feed(&mut src, None, |_| {}).unwrap(), frames);
    assert!(engine.flush(Duration::from_secs(120)));
    engine.shutdown();
    let m = engine.telemetry.memory();
    assert!(m.spilled >= 3 * 4096, "{m:?}");
    assert!(m.in_memory <= 2 * 4096, "{m:?}");
    assert!(engine.telemetry.spill_error().is_none());
    let csv = dir.path().join("telemetry.csv");
    engine.telemetry.export_csv(&csv).unwrap();
    let mut r = csv::Reader::from_path(&csv).unwrap();
    let mut seq = 0u64;
    let mut stages: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        assert_eq!(
            rec[0].parse::<u64>().unwrap(),
            seq,
            "rows out of order or missing"
        );
        seq += 1;
        if &rec[1] == "stage" {
            stages
                .entry(rec[2].parse().unwrap())
                .or_default()
                .push(rec[3].to_string());
        }
    }
    assert_eq!(seq, m.events);
    // Every frame's four realtime stages, each once.
    assert_eq!(stages.len() as u64, frames);
    for (f, s) in &stages {
        let mut s = s.clone();
        s.sort();
        assert_eq!(
            s,
            ["fast_algo", "fast_isp", "raw_algo", "raw_isp"],
            "frame {f}"
        );
    }
    // The spill file has no name: only the export is in the folder.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["telemetry.csv"]);
}
