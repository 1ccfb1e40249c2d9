use super::*;

/// A camera's sensor reconfigures the algorithms: AE asks for no more
/// exposure than the new sensor has, in this version and the next.
#[test]
fn a_new_sensor_reconfigures_the_algorithms() {
    use crate::algorithms::{AlgoResult, Control, IpaContext};
    let store = ParamStore::new(Tuning::default());
    let v1 = store.version();
    let short = SensorConfig {
        max_exposure_us: 5_000.0,
        max_gain: 4.0,
        ..SensorConfig::default()
    };
    let v2 = store.set_sensor(short);
    assert_eq!(v2, v1 + 1);
    assert_eq!(store.set_sensor(short), v2, "the same sensor again");
    assert_eq!(store.sensor(), short);
    // A black frame: AE wants all the exposure and gain there is.
    let (w, h) = (32, 24);
    let dark = crate::stages::stats::compute(
        &crate::stages::stats::StatsParams::default(),
        crate::types::BayerOrder::Rggb,
        w,
        h,
        &crate::stages::lifted(&crate::stages::demosaic::mosaic(
            crate::types::BayerOrder::Rggb,
            w,
            h,
            &vec![200; w * h * 3],
        )),
    );
    let asks = |store: &ParamStore| {
        let set = store.snapshot();
        let ctx = IpaContext {
            exposure_us: 1_000.0,
            analogue_gain: 1.0,
            wb_gains: [1.0; 3],
            ..Default::default()
        };
        let mut r = AlgoResult::new(&ctx);
        for a in set.algorithms.iter() {
            a.process(&dark, &mut r);
        }
        r.controls
    };
    for _ in 0..2 {
        let c = asks(&store);
        assert!(
            c.iter()
                .any(|c| matches!(c, Control::ExposureUs(e) if *e <= 5_000.0)),
            "{c:?}"
        );
        assert!(
            !c.iter()
                .any(|c| matches!(c, Control::ExposureUs(e) if *e > 5_000.0)
                    || matches!(c, Control::AnalogueGain(g) if *g > 4.0)),
            "{c:?}"
        );
        // An edit keeps the sensor.
        store.edit(|t| t.stages.tone.contrast += 0.1).unwrap();
    }
}

#[test]
fn default_round_trips_through_json() {
    let t = Tuning::default();
    let back = Tuning::from_json(&t.to_json(), "mem").unwrap();
    assert_eq!(t, back);
}

#[test]
fn malformed_files_name_the_field() {
    let e = Tuning::from_json(
        r#"{"schema_version":1,"stages":{"ccm":{"matrix":[[1,0,0],[0,"x",0],[0,0,1]]}}}"#,
        "t.json",
    )
    .unwrap_err();
    let m = e.to_string();
    assert!(
        m.starts_with("t.json: field `stages.ccm.matrix[1][1]`"),
        "{m}"
    );

    let e = Tuning::from_json(
        r#"{"schema_version":1,"stages":{"tone":{"contrats":2}}}"#,
        "t.json",
    )
    .unwrap_err();
    assert!(e.to_string().contains("stages.tone"), "{e}");

    let e = Tuning::from_json(
        r#"{"schema_version":1,"stages":{"white_balance":{"gains":[1,1,-3]}}}"#,
        "t.json",
    )
    .unwrap_err();
    assert!(e.to_string().contains("stages.white_balance.gains"), "{e}");

    let e = Tuning::from_json(
        r#"{"schema_version":1,"algorithms":[{"name":"awb.nope"}]}"#,
        "t.json",
    )
    .unwrap_err();
    assert!(e.to_string().contains("algorithms[0].name"), "{e}");

    let e = Tuning::from_json(r#"{"schema_version":1,"algorithms":[{"name":"ae.mean_luminance","params":{"target":"high"}}]}"#, "t.json").unwrap_err();
    assert!(e.to_string().contains("algorithms[0].params.target"), "{e}");

    let e = Tuning::from_json(r#"{"schema_version":9}"#, "t.json").unwrap_err();
    assert!(matches!(e, TuningError::Schema { found: 9, .. }));

    let e = Tuning::from_json("{not json", "t.json").unwrap_err();
    assert!(e.to_string().starts_with("t.json: field"), "{e}");
}

#[test]
fn updates_bump_the_version_and_bad_updates_change_nothing() {
    let store = ParamStore::new(Tuning::default());
    assert_eq!(store.version(), 1);
    let v = store.edit(|t| t.stages.tone.contrast = 1.5).unwrap();
    assert_eq!(v, 2);
    let snap = store.snapshot();
    assert_eq!(snap.tuning.stages.tone.contrast, 1.5);
    let e = store
        .edit(|t| t.stages.tone.contrast = -1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("contrast -1 is outside (0, 8]"), "{e}");
    assert_eq!(store.version(), 2);
    // A snapshot taken before an update keeps its version.
    store.edit(|t| t.stages.tone.contrast = 1.2).unwrap();
    assert_eq!(snap.version, 2);
    assert_eq!(store.version(), 3);
    // The same values again make no version.
    assert_eq!(store.edit(|t| t.stages.tone.contrast = 1.2).unwrap(), 3);
    assert_eq!(store.update((*store.snapshot().tuning).clone()).unwrap(), 3);
}

#[test]
fn an_algorithm_block_without_enabled_is_enabled() {
    let mut v: serde_json::Value = serde_json::from_str(&Tuning::default().to_json()).unwrap();
    v["algorithms"] = serde_json::json!([{ "name": "ae.mean_luminance" }]);
    let t = Tuning::from_json(&v.to_string(), "t.json").unwrap();
    assert!(t.algorithms[0].enabled);
    assert_eq!(t.algorithms[0].params, serde_json::Value::Null);
}

#[test]
fn load_reads_the_file_and_names_it_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuning.json");
    let mut t = Tuning::default();
    t.stages.tone.contrast = 1.7;
    std::fs::write(&path, t.to_json()).unwrap();
    assert_eq!(Tuning::load(&path).unwrap(), t);
    let missing = dir.path().join("missing.json");
    let e = Tuning::load(&missing).unwrap_err().to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
}

/// The algorithms are rebuilt when their blocks change, shared when not.
#[test]
fn an_update_rebuilds_the_algorithms_only_when_their_blocks_change() {
    let store = ParamStore::new(Tuning::default());
    let v1 = store.snapshot();
    assert_eq!(format!("{v1:?}"), "ParamSet(v1)");
    store.edit(|t| t.stages.tone.contrast = 1.5).unwrap();
    let v2 = store.snapshot();
    assert!(Arc::ptr_eq(&v1.algorithms, &v2.algorithms));
    store
        .edit(|t| {
            let ae = t
                .algorithms
                .iter_mut()
                .find(|a| a.name == "ae.mean_luminance")
                .unwrap();
            ae.params = serde_json::json!({ "target": 0.3 });
        })
        .unwrap();
    let v3 = store.snapshot();
    assert!(!Arc::ptr_eq(&v2.algorithms, &v3.algorithms));
    let target = v3
        .algorithms
        .iter()
        .find(|a| a.name() == "ae.mean_luminance")
        .unwrap()
        .params()["target"]
        .as_f64()
        .unwrap();
    assert!((target - 0.3).abs() < 1e-6, "{target}");
}

/// The first number at or under `v` (a grid's or matrix's first entry).
fn first_number(v: &mut serde_json::Value) -> Option<&mut serde_json::Value> {
    match v {
        serde_json::Value::Number(_) => Some(v),
        serde_json::Value::Array(a) => a.iter_mut().find_map(first_number),
        _ => None,
    }
}

#[test]
fn every_described_field_refuses_values_past_its_range_by_name() {
    use crate::stages::fields::{Domain, blocks};
    let default = serde_json::to_value(Tuning::default()).unwrap();
    let mut tried = 0;
    for (path, fields) in blocks() {
        for f in fields {
            // Values the field's description says it does not take.
            let bad: Vec<serde_json::Value> = match f.domain {
                Domain::Range {
                    min,
                    max,
                    min_open,
                    max_open,
                    ..
                } => [
                    max.is_finite().then(|| max + max.abs().max(1.0)),
                    min.is_finite().then(|| min - min.abs().max(1.0)),
                    (max.is_finite() && max_open).then_some(max),
                    (min.is_finite() && min_open).then_some(min),
                ]
                .into_iter()
                .flatten()
                .map(|x| {
                    // An integer field is spelled as one (else the reader
                    // refuses the type, not the value).
                    if x.fract() == 0.0 && x.abs() < 1e15 {
                        serde_json::json!(x as i64)
                    } else {
                        serde_json::json!(x)
                    }
                })
                .collect(),
                Domain::Choice(_) => vec![serde_json::json!("no-such-choice")],
            };
            for b in bad {
                let mut doc = default.clone();
                let block = path
                    .split('.')
                    .try_fold(&mut doc, |v, k| v.get_mut(k))
                    .unwrap_or_else(|| panic!("{path}: not in the default tuning"));
                // The power's value is there when the gamma is a power.
                if path == "stages.tone.gamma" {
                    *block = serde_json::json!({"kind": "power", "value": 2.2});
                }
                let slot = block
                    .get_mut(f.name)
                    .unwrap_or_else(|| panic!("{path}.{}: not in the default tuning", f.name));
                match first_number(slot) {
                    Some(n) if b.is_number() => *n = b.clone(),
                    _ => *slot = b.clone(),
                }
                let e = Tuning::from_json(&doc.to_string(), "t.json")
                    .err()
                    .unwrap_or_else(|| panic!("{path}.{} = {b} was accepted", f.name));
                // Named by its path (`stages.ccm.matrix[0][0]`), or by a
                // block that holds it where a check of the whole block
                // refused it (the black level against the white).
                let full = format!("{path}.{}", f.name);
                match &e {
                    TuningError::Field { origin, field, .. } => assert!(
                        origin == "t.json"
                            && (field.starts_with(&full) || full.starts_with(field.as_str())),
                        "{full} = {b}: {e}"
                    ),
                    _ => panic!("{full} = {b}: {e}"),
                }
                tried += 1;
            }
        }
    }
    // Every field of every block, on each side it has an end.
    assert!(tried >= 30, "only {tried} values tried");
}

#[test]
fn the_sensor_noise_mean_is_the_four_sites_mean() {
    let n = SensorNoise {
        shot: [0.5, 1.0, 1.5, 3.0],
        read: [4.0, 8.0, 8.0, 12.0],
    };
    assert_eq!(n.mean(), (1.5, 8.0));
}

#[test]
fn a_models_path_beside_the_tuning_file_is_taken_from_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("awb.onnx"), b"model").unwrap();
    let t = Tuning {
        folder: Folder(Some(dir.path().to_path_buf())),
        ..Tuning::default()
    };
    let block = |model: &str| AlgorithmBlock {
        name: "awb.model".into(),
        enabled: true,
        params: serde_json::json!({ "model": model }),
    };
    let b = block("awb.onnx");
    let want = dir.path().join("awb.onnx").display().to_string();
    assert_eq!(t.block_params(&b)["model"], want.as_str());
    // The tuning keeps the path as written.
    assert_eq!(b.params["model"], "awb.onnx");
    // Nothing to resolve: no name, a file not there, an absolute path.
    for kept in ["", "missing.onnx", "/abs/awb.onnx"] {
        let b = block(kept);
        assert_eq!(t.block_params(&b)["model"], kept, "{kept:?}");
    }
    // A folder of that name is not a model.
    std::fs::create_dir(dir.path().join("m")).unwrap();
    let b = block("m");
    assert_eq!(t.block_params(&b)["model"], "m");
}
