//! A DNG in the studio: File > Open DNG asks for a file, the DNG's tags
//! become the tuning being edited, and the still is developed with 3A
//! settled on its own statistics.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use egui_kittest::kittest::Queryable;
use isp_engine::gpu::Backend;
use isp_studio::files::FileAction;
use std::path::Path;

#[test]
fn a_dng_opens_with_its_own_tuning_and_settled_3a() {
    let mut h = studio(Backend::Cpu);
    // The Session panel's button asks for a file (the in-app dialog).
    h.get_by_label("Open DNG...").click();
    h.run_steps(2);
    assert!(h.query_all_by_label_contains("Open a DNG file").count() >= 1);
    let dng =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/data/dng/lj92_2comp_bggr.dng");
    h.state_mut().state.file_picked(FileAction::OpenDng, &dng);
    wait_for(&mut h, "the DNG's frame", |s| {
        s.state
            .latest
            .as_ref()
            .is_some_and(|r| (r.format.width, r.format.height) == (96, 64))
    });
    // The levels LibRaw reads from the file (its fixture JSON, written by
    // scripts/dng_reference.py with rawpy), not our own reader's.
    let libraw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dng.with_extension("json")).unwrap())
            .unwrap();
    let bl: Vec<u16> = libraw["black_level_per_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u16)
        .collect();
    // LibRaw's channels are R, G, B, G2 by `raw_pattern`; ours are the
    // sites R, Gr (the green of R's row), Gb, B.
    let pat: Vec<Vec<usize>> = serde_json::from_value(libraw["raw_pattern"].clone()).unwrap();
    let red_row = pat.iter().position(|r| r.contains(&0)).unwrap();
    let green_of = |row: usize| *pat[row].iter().find(|&&c| c == 1 || c == 3).unwrap();
    let want = [
        bl[0],
        bl[green_of(red_row)],
        bl[green_of(1 - red_row)],
        bl[2],
    ];
    let t = &h.state().state.tuning.current;
    assert_eq!(t.stages.black_level.levels, want);
    assert_eq!(
        t.stages.black_level.white_level,
        Some(libraw["white_level"].as_u64().unwrap() as u16)
    );
    let note = h
        .state()
        .state
        .engine
        .telemetry
        .snapshot()
        .iter()
        .find(|e| e.stage == "still")
        .map(|e| e.detail.clone())
        .expect("a still note");
    assert!(note.contains("settled"), "{note}");
    let r = h.state().state.latest.clone().unwrap();
    assert!(r.ipa.digital_gain != 1.0 || note.contains("digital gain 1.000"));
    assert!(h.query_all_by_label_contains("96x64").count() >= 1);
}
