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
    let img = isp_engine::dng::read(&dng).unwrap();
    let t = &h.state().state.tuning.current;
    assert_eq!(
        t.stages.black_level.levels,
        img.black_level.map(|b| b.round() as u16)
    );
    assert_eq!(
        t.stages.black_level.white_level,
        Some(img.white_level as u16)
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
