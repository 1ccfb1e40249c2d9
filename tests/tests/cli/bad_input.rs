//! Bad input the fuzzers found, each refused by name: tuning values past
//! their range, arrays where a block is expected, hostile libcamera files,
//! calibration options out of range, a full disk, links out of a session,
//! a session with no frames.

use crate::calibrate::write_dng;
use crate::common::*;
use isp_engine::calibrate::synthetic::SynthSensor;
use std::path::Path;

/// The synthetic sensor at `w`x`h`.
fn sensor(width: usize, height: usize) -> SynthSensor {
    SynthSensor {
        width,
        height,
        ..Default::default()
    }
}

#[test]
fn tuning_values_past_their_range_and_arrays_for_blocks_are_refused_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &[&str])> = vec![
        (
            "lsc_huge.json",
            Box::new(|t| t["stages"]["lens_shading"]["gains"][2][1] = 9.2e18.into()),
            &["stages.lens_shading", "9200000000000000000", "0..=16"],
        ),
        (
            "lsc_1e38.json",
            Box::new(|t| t["stages"]["lens_shading"]["gains"][0][0] = 1e38.into()),
            &["stages.lens_shading", "0..=16"],
        ),
        (
            "lsc_grid.json",
            Box::new(|t| {
                t["stages"]["lens_shading"] = serde_json::json!({
                    "grid_width": 100, "grid_height": 2,
                    "gains": [vec![1.0; 200], vec![1.0; 200], vec![1.0; 200], vec![1.0; 200]],
                })
            }),
            &["stages.lens_shading", "2x2 to 64x64"],
        ),
        (
            "wb_array.json",
            Box::new(|t| t["stages"]["white_balance"] = serde_json::json!([])),
            &["stages.white_balance", "an object"],
        ),
        (
            "stages_array.json",
            Box::new(|t| t["stages"] = serde_json::json!([])),
            &["`stages`", "an object"],
        ),
        (
            "params_array.json",
            Box::new(|t| {
                t["algorithms"] = serde_json::json!([{"name": "awb.grey_world", "params": [0.5]}])
            }),
            &["algorithms[0].params", "an object"],
        ),
        (
            "black_white.json",
            Box::new(|t| t["stages"]["black_level"]["white_level"] = 0.into()),
            &["stages.black_level", "not below the white level 0"],
        ),
    ];
    for (name, edit, wants) in cases {
        let p = tuning_file(d, name, edit);
        let mut want = vec![name];
        want.extend_from_slice(wants);
        isp(&["tuning", &s(&p)]).error(&want);
        // `process` refuses it too, before writing anything.
        let out = d.join(format!("out_{name}"));
        isp(&["process", "--tuning", &s(&p), "--out", &s(&out)]).error(&[name]);
        assert!(!out.exists(), "{name}: process made {}", out.display());
    }
    // Nested far past any tuning: refused by the JSON reader at once.
    let deep = d.join("deep.json");
    std::fs::write(&deep, "[".repeat(100_000)).unwrap();
    isp(&["tuning", &s(&deep)]).error(&["deep.json", "recursion limit"]);
}

#[test]
fn hostile_libcamera_files_are_refused_before_they_cost() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A lens-shading table entry of 1e30 in a real Raspberry Pi file: the
    // imported tuning goes through the same checks as any other.
    let rpi = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../engine/tests/data/libcamera/rpi_vc4_imx219.json"),
    )
    .unwrap();
    let at = rpi.find("\"luminance_lut\"").unwrap();
    let open = at + rpi[at..].find('[').unwrap() + 1;
    let first = open + rpi[open..].find(|c: char| c.is_ascii_digit()).unwrap();
    let end = first + rpi[first..].find(',').unwrap();
    let hot = format!("{}1e30{}", &rpi[..first], &rpi[end..]);
    let p = d.join("hot.json");
    std::fs::write(&p, hot).unwrap();
    isp(&["tuning", "--import", &s(&p)]).error(&["hot.json", "stages.lens_shading", "0..=16"]);
    // 100,000 levels deep, as JSON and as YAML: refused by a linear scan,
    // not by a parser whose cost grows with the square of the depth.
    for (name, text, depth) in [
        (
            "deep.json",
            format!("{{\"a\": {}", "[".repeat(100_000)),
            100_001,
        ),
        ("deep.yaml", format!("a: {}", "[".repeat(100_000)), 100_000),
    ] {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        isp(&["tuning", "--import", &s(&p)]).error(&[
            name,
            &format!("nested {depth} deep"),
            "at most 64",
        ]);
    }
    // A billion laughs: aliases are refused before anything expands.
    let mut laughs = String::from("version: 1\na0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..30 {
        let p = i - 1;
        laughs += &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
    }
    let p = d.join("laughs.yaml");
    std::fs::write(&p, laughs).unwrap();
    isp(&["tuning", "--import", &s(&p), "--format", "rkisp1"]).error(&[
        "laughs.yaml",
        "line 3",
        "YAML alias",
    ]);
}

#[test]
fn calibration_options_out_of_range_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = s(&d.join("o"));
    let sensor = sensor(320, 240);
    write_dng(&sensor.dark(2), &d.join("dark.dng"));
    write_dng(&sensor.dark(2), &d.join("black_flat.dng"));
    write_dng(&sensor.flat(5000.0, 0.6, 2), &d.join("flat.dng"));
    let dng = |n: &str| format!("dng:{}", s(&d.join(n)));
    let flat = format!("{}@5000", dng("flat.dng"));
    for bad in ["0", "nan", "inf", "1e300", "-1", "0.5", "17"] {
        isp(&[
            "calibrate",
            "--flat",
            &flat,
            &format!("--max-gain={bad}"),
            "--out",
            &out,
        ])
        .error(&["--max-gain", "1 to 16"]);
    }
    for bad in ["0x0", "1000x1000", "1x13"] {
        isp(&["calibrate", "--flat", &flat, "--grid", bad, "--out", &out])
            .error(&[&format!("--grid {bad}"), "2 to 64"]);
    }
    for extra in [
        &["--grid", "17x13"][..],
        &["--max-gain", "4"],
        &["--flat", &flat],
    ] {
        let mut args = vec!["calibrate", "--synthetic", "--out", &out];
        args.extend_from_slice(extra);
        isp(&args).error(&["--synthetic", extra[0], "not apply"]);
    }
    assert!(
        !Path::new(&out).exists(),
        "a refused calibration made {out}"
    );
    // A flat with no light on it (dark frames given as the flat).
    isp(&[
        "calibrate",
        "--dark",
        &dng("dark.dng"),
        "--flat",
        &format!("{}@5000", dng("black_flat.dng")),
        "--out",
        &out,
    ])
    .error(&["black_flat.dng", "the flat field is dark"]);
}

/// Every file left on a full disk is whole: no temporary, and each
/// output that is there reads.
fn assert_whole(disk: &SmallDisk) {
    for f in disk.files() {
        assert!(
            !f.contains(".partial") && !f.ends_with(".tmp"),
            "a temporary was left behind: {f} (all: {:?})",
            disk.files()
        );
        let p = disk.path().join(&f);
        let bytes = std::fs::read(&p).unwrap();
        if f.ends_with(".png") {
            let _ = read_png(&p);
        } else if f.ends_with(".json") {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .unwrap_or_else(|e| panic!("{f} is not whole JSON: {e}"));
        } else if f.ends_with(".html") {
            assert!(
                String::from_utf8_lossy(&bytes)
                    .trim_end()
                    .ends_with("</html>"),
                "{f}"
            );
        } else if f.ends_with(".dng") {
            isp_engine::dng::read(&p).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
}

#[test]
fn a_full_disk_leaves_no_half_written_file_and_no_temporary() {
    // process: a 320x240 zone plate's PNG does not fit 48 KB.
    let Some(disk) = SmallDisk::new(48 << 10) else {
        return;
    };
    let out = disk.path().join("out");
    let e = isp(&[
        "process",
        "synthetic:zoneplate",
        "--width",
        "320",
        "--height",
        "240",
        "--frames",
        "3",
        "--backend",
        "cpu",
        "--out",
        &s(&out),
    ])
    .error(&[]);
    assert!(e.contains("No space left on device"), "{e}");
    assert_whole(&disk);
    drop(disk);

    // calibrate: the tuning, report.json and report.html whole or absent.
    let tmp = tempfile::tempdir().unwrap();
    let sensor = sensor(320, 240);
    write_dng(&sensor.dark(2), &tmp.path().join("dark.dng"));
    write_dng(&sensor.flat(5000.0, 0.6, 2), &tmp.path().join("flat.dng"));
    for size in [4 << 10, 24 << 10, 40 << 10] {
        let Some(disk) = SmallDisk::new(size) else {
            return;
        };
        let r = isp(&[
            "calibrate",
            "--dark",
            &format!("dng:{}", s(&tmp.path().join("dark.dng"))),
            "--flat",
            &format!("dng:{}@5000", s(&tmp.path().join("flat.dng"))),
            "--out",
            &s(&disk.path().join("cal")),
        ]);
        if r.code != Some(0) {
            r.error(&["No space left on device"]);
        }
        assert_whole(&disk);
    }

    // export-dng: a 150 KB DNG on a 64 KB disk.
    let Some(disk) = SmallDisk::new(64 << 10) else {
        return;
    };
    isp(&[
        "export-dng",
        "synthetic:checker",
        "--width",
        "320",
        "--height",
        "240",
        "--frames",
        "2",
        "--out",
        &s(&disk.path().join("dng")),
    ])
    .error(&["frame_000000.dng", "No space left on device"]);
    assert_whole(&disk);
    drop(disk);

    // record: the first frame does not fit; the session left has no frame,
    // which `info` and `process` refuse.
    let Some(disk) = SmallDisk::new(32 << 10) else {
        return;
    };
    let sess = disk.path().join("sess");
    isp(&[
        "record",
        "synthetic:checker",
        "--width",
        "320",
        "--height",
        "240",
        "--frames",
        "3",
        "--out",
        &s(&sess),
    ])
    .error(&["No space left on device"]);
    assert_whole(&disk);
    if sess.join("session.json").exists() {
        isp(&["info", &s(&sess)]).error(&["no frames"]);
        isp(&["process", &s(&sess), "--out", &s(&disk.path().join("p"))]).error(&["no frames"]);
    } else {
        isp(&["info", &s(&sess)]).error(&["not a session"]);
    }
}

#[test]
fn links_out_of_a_session_or_a_dng_folder_are_refused_and_an_empty_session_too() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sess = d.join("sess");
    isp(&[
        "record",
        "synthetic:checker",
        "--width",
        "64",
        "--height",
        "48",
        "--frames",
        "2",
        "--out",
        &s(&sess),
    ])
    .ok();
    // A frame file replaced by a link to a file outside the session, of the
    // same size (a secret it must not read, nor say anything of).
    let frame = sess.join("frames/000001.raw");
    let secret = d.join("secret");
    std::fs::write(
        &secret,
        vec![7u8; std::fs::metadata(&frame).unwrap().len() as usize],
    )
    .unwrap();
    std::fs::remove_file(&frame).unwrap();
    std::os::unix::fs::symlink(&secret, &frame).unwrap();
    let e = isp(&["info", &s(&sess)]).error(&["000001.raw", "outside"]);
    assert!(!e.contains("CRC"), "the linked file was read: {e}");
    // A DNG folder with a link to a DNG elsewhere.
    let folder = d.join("dngs");
    std::fs::create_dir(&folder).unwrap();
    let sensor = sensor(64, 48);
    write_dng(&sensor.dark(1), &folder.join("a.dng"));
    write_dng(&sensor.dark(1), &d.join("elsewhere.dng"));
    std::os::unix::fs::symlink(d.join("elsewhere.dng"), folder.join("b.dng")).unwrap();
    isp(&["info", &format!("dng:{}", s(&folder))]).error(&["b.dng", "outside"]);
    // A session that ended before its first frame.
    let empty = d.join("empty");
    let fmt = isp_engine::types::RawFormat::new(
        64,
        48,
        10,
        isp_engine::types::BayerOrder::Rggb,
        isp_engine::types::Packing::Csi2,
    );
    isp_engine::sources::session::SessionRecorder::create(&empty, fmt, "test")
        .unwrap()
        .finish()
        .unwrap();
    isp(&["info", &s(&empty)]).error(&["empty", "no frames"]);
    isp(&["process", &s(&empty), "--out", &s(&d.join("p"))]).error(&["no frames"]);
}
