//! DNG reading held to LibRaw: `scripts/dng_reference.py make` wrote the
//! files in `tests/data/dng` with an independent writer (tifffile,
//! imagecodecs and a small lossless-JPEG encoder of its own) and recorded
//! what LibRaw 0.22 (rawpy 0.28) reads from each: `raw_image_visible`
//! (`NAME.visible.u16`), levels, pattern, white balance, ISO, shutter, and
//! the values written (`truth`). Every sample must be equal, bit for bit.

#![allow(clippy::unwrap_used)]

use isp_engine::dng::{self, DngImage};
use isp_engine::sources::dng::{DngSource, dng_tuning, lens_shading_of};
use isp_engine::sources::{self, FrameSource};
use isp_engine::tuning::Tuning;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dng")
}

/// (name, expectations) of every fixture LibRaw reads.
fn fixtures() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.strip_suffix(".json")?.to_string();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            v.get("error").is_none().then_some((name, v))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 12, "fixtures: {}", out.len());
    out
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn usize_of(v: &Value, k: &str) -> usize {
    v[k].as_u64().unwrap() as usize
}

#[test]
fn every_fixture_reads_bit_exact_with_libraw() {
    for (name, exp) in fixtures() {
        let img =
            dng::read(&dir().join(format!("{name}.dng"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let truth = &exp["truth"];
        // LibRaw moves an odd ActiveArea margin in by one sample; the
        // script says where its image sits inside the ActiveArea.
        let crop = &truth["libraw_crop"];
        let (top, left) = (usize_of(crop, "top"), usize_of(crop, "left"));
        let (w, h) = (usize_of(&exp, "width"), usize_of(&exp, "height"));
        let want: Vec<u16> = std::fs::read(dir().join(format!("{name}.visible.u16")))
            .unwrap()
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(want.len(), w * h, "{name}");
        let mut mism = 0;
        for y in 0..h {
            for x in 0..w {
                if img.data[(y + top) * img.width + x + left] != want[y * w + x] {
                    mism += 1;
                }
            }
        }
        assert_eq!(
            mism,
            0,
            "{name}: {mism} of {} samples differ from LibRaw",
            w * h
        );
        // The whole ActiveArea, against the values written.
        let bytes: Vec<u8> = img.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let sha = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(sha, truth["visible_sha256"].as_str().unwrap(), "{name}");
        let area = f64s(&truth["active_area"]);
        assert_eq!(
            (img.width, img.height),
            ((area[3] - area[1]) as usize, (area[2] - area[0]) as usize),
            "{name}"
        );

        // The pattern: ours is the ActiveArea's; LibRaw's is its crop's.
        assert_eq!(
            img.cfa.name(),
            truth["visible_pattern"].as_str().unwrap(),
            "{name}"
        );
        let shifted: String = (0..4)
            .map(|i| {
                let c = img.cfa.color_at(left + i % 2, top + i / 2);
                ["R", "G", "G", "B"][c.index()]
            })
            .collect();
        assert_eq!(shifted, exp["raw_pattern_str"].as_str().unwrap(), "{name}");

        // Levels: LibRaw's black per colour (R, G, B, G2), white as read.
        let bl = f64s(&exp["black_level_per_channel"]);
        assert_eq!(img.black_level[0] as f64, bl[0], "{name}: R black");
        assert_eq!(img.black_level[3] as f64, bl[2], "{name}: B black");
        let mut ours = [img.black_level[1] as f64, img.black_level[2] as f64];
        let mut theirs = [bl[1], bl[3]];
        ours.sort_by(f64::total_cmp);
        theirs.sort_by(f64::total_cmp);
        assert_eq!(ours, theirs, "{name}: green blacks");
        assert_eq!(
            img.white_level as u64,
            exp["white_level"].as_u64().unwrap(),
            "{name}"
        );

        // White balance, exposure, ISO.
        if let Some(n) = truth["as_shot_neutral"].as_array() {
            let n: Vec<f64> = n.iter().map(|x| x.as_f64().unwrap()).collect();
            let ours = img.as_shot_neutral.unwrap();
            let wb = f64s(&exp["camera_whitebalance"]);
            for c in 0..3 {
                assert!((ours[c] - n[c]).abs() < 1e-6, "{name}: neutral {ours:?}");
                assert!(
                    (1.0 / ours[c] - wb[c]).abs() < 1e-5,
                    "{name}: LibRaw's wb {wb:?}"
                );
            }
        }
        let shutter = exp["shutter"].as_f64().unwrap();
        // LibRaw keeps the shutter as f32.
        let ours = img.exposure_time.unwrap_or(0.0);
        assert!(
            (ours - shutter).abs() <= shutter * 1e-6,
            "{name}: shutter {ours} vs {shutter}"
        );
        let iso = exp["iso"].as_f64().unwrap();
        assert_eq!(img.iso.unwrap_or(0.0), iso, "{name}: ISO");
        for (k, i) in [("color_matrix1", 0), ("color_matrix2", 1)] {
            if let Some(m) = truth[k].as_array() {
                let m: Vec<f64> = m.iter().map(|x| x.as_f64().unwrap()).collect();
                let (ill, got) = img.color_matrices[i];
                let ill_key = if i == 0 {
                    "calibration_illuminant1"
                } else {
                    "calibration_illuminant2"
                };
                assert_eq!(ill as u64, truth[ill_key].as_u64().unwrap(), "{name}");
                for (a, b) in got.iter().flatten().zip(&m) {
                    assert!((a - b).abs() < 1e-6, "{name}: {k}");
                }
            }
        }
    }
}

#[test]
fn gain_maps_are_read_as_written_and_become_the_lens_shading_grid() {
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("gainmap_rggb.json")).unwrap())
            .unwrap();
    let img = dng::read(&dir().join("gainmap_rggb.dng")).unwrap();
    let maps = exp["truth"]["gain_maps"].as_array().unwrap();
    assert_eq!(img.gain_maps.len(), maps.len());
    for (m, t) in img.gain_maps.iter().zip(maps) {
        assert_eq!(
            (m.top, m.left, m.bottom, m.right, m.row_pitch, m.col_pitch),
            (
                t["top"].as_u64().unwrap() as u32,
                t["left"].as_u64().unwrap() as u32,
                t["bottom"].as_u64().unwrap() as u32,
                t["right"].as_u64().unwrap() as u32,
                t["row_pitch"].as_u64().unwrap() as u32,
                t["col_pitch"].as_u64().unwrap() as u32,
            )
        );
        assert_eq!((m.points_v, m.points_h), (5, 7));
        assert_eq!(m.spacing_h, t["map_spacing_h"].as_f64().unwrap());
        let g = f64s(&t["gains"]);
        assert_eq!(m.gains.len(), g.len());
        for (a, b) in m.gains.iter().zip(&g) {
            assert_eq!(*a as f64, (*b as f32) as f64);
        }
    }
    // The grid, applied by the lens-shading stage, gives every sample the
    // gain its site's map gives it as the DNG spec places the map (points
    // over the map's area, bilinear between them) within 0.5%.
    let lsc = lens_shading_of(&img).unwrap();
    assert_eq!((lsc.grid_width, lsc.grid_height), (49, 33));
    let (w, h) = (img.width, img.height);
    let mut worst = 0.0f32;
    for y in 0..h {
        for x in 0..w {
            let m = img
                .gain_maps
                .iter()
                .find(|m| m.left as usize == x % 2 && m.top as usize == y % 2)
                .unwrap();
            let want = m.gain_at(
                (y as f64 - m.top as f64) / (m.bottom - m.top) as f64,
                (x as f64 - m.left as f64) / (m.right - m.left) as f64,
            );
            let site = img.cfa.color_at(x, y).index();
            let got = lsc.gain_at(site, x, y, w, h);
            worst = worst.max((got / want - 1.0).abs());
        }
    }
    assert!(worst < 0.005, "worst relative gain difference {worst}");
    assert!(worst > 0.0);
    let (t, notes) = dng_tuning(&img, &Tuning::default());
    assert_eq!(t.stages.lens_shading, lsc);
    // The file has no colour matrix, and says so; its AsShotNeutral is the
    // white balance it opens with (AWB off); nothing else was left.
    assert_eq!(
        notes,
        [
            "no ColorMatrix: the CCM is left as it was",
            "AsShotNeutral is the white balance: awb.grey_world off (turn it on to estimate one)"
        ]
    );
    assert!(
        t.algorithms
            .iter()
            .all(|a| !(a.enabled && a.name.starts_with("awb.")))
    );
    assert!(
        t.algorithms
            .iter()
            .any(|a| a.enabled && a.name.starts_with("ae."))
    );
    assert!(t.check("dng").is_ok());
}

#[test]
fn a_dng_makes_the_tuning_of_its_sensor() {
    let img = dng::read(&dir().join("two_matrices_be.dng")).unwrap();
    let (t, _) = dng_tuning(&img, &Tuning::default());
    let bl = &t.stages.black_level;
    assert_eq!(bl.levels, [128; 4]);
    assert_eq!(bl.white_level, Some(4095));
    // AsShotNeutral 0.4, 1, 0.75 -> gains 2.5, 1, 1.333.
    let g = t.stages.white_balance.gains;
    assert!(
        (g[0] - 2.5).abs() < 1e-5 && (g[2] - 4.0 / 3.0).abs() < 1e-5,
        "{g:?}"
    );
    assert!(t.check("dng").is_ok());
}

/// LibRaw's colour, read from the file's own ColorMatrix tags, is the
/// outside reference: its `rgb_cam` (white-balanced camera RGB -> linear
/// sRGB, dcraw's `cam_xyz_coeff`) must be the CCM the tuning gets, and its
/// white balance (1/AsShotNeutral) the tuning's gains. Tolerance 2e-3 per
/// CCM entry: LibRaw computes in f32 with dcraw's rounded sRGB->XYZ
/// constants (0.412453 ...), the engine in f64 with IEC 61966-2-1's
/// (0.4124564 ...); measured gap 4e-5 on these files.
#[test]
fn a_dngs_ccm_and_white_balance_are_libraws() {
    let mut with_matrix = 0;
    let mut distinct: Vec<[f64; 9]> = Vec::new();
    for (name, exp) in fixtures() {
        let img = dng::read(&dir().join(format!("{name}.dng"))).unwrap();
        let (t, notes) = dng_tuning(&img, &Tuning::default());
        let theirs = &exp["rgb_cam"];
        let rows: Vec<Vec<f64>> = theirs.as_array().unwrap().iter().map(f64s).collect();
        if img.color_matrices.is_empty() {
            // LibRaw has no colour either (its rgb_cam stays zero).
            assert!(rows.iter().flatten().all(|v| *v == 0.0), "{name}");
            assert!(notes.iter().any(|n| n.contains("no ColorMatrix")), "{name}");
            assert_eq!(t.stages.ccm.matrix, Tuning::default().stages.ccm.matrix);
            continue;
        }
        with_matrix += 1;
        // LibRaw takes one matrix (the D65 one): with two, the tuning's CCM
        // is the whole profile's at the white balance (held to the numpy
        // oracle in `dual_illuminant_profiles_are_the_specifications`), and
        // the single-matrix derivation is what LibRaw's equals.
        let ccm = if img.color_matrices.len() > 1 {
            dng::ccm_from_color_matrix(&img.daylight_matrix().unwrap())
                .unwrap()
                .map(|r| r.map(|v| v as f32))
        } else {
            t.stages.ccm.matrix
        };
        let mut worst = 0.0f64;
        for (r, w) in ccm.iter().zip(&rows) {
            for (a, b) in r.iter().zip(w) {
                worst = worst.max((*a as f64 - b).abs());
            }
        }
        assert!(
            worst < 2e-3,
            "{name}: CCM {ccm:?} vs LibRaw's rgb_cam {rows:?} (max gap {worst})"
        );
        let flat: [f64; 9] = std::array::from_fn(|i| rows[i / 3][i % 3]);
        if !distinct
            .iter()
            .any(|d| d.iter().zip(&flat).all(|(a, b)| (a - b).abs() < 1e-3))
        {
            distinct.push(flat);
        }
        let wb = f64s(&exp["camera_whitebalance"]);
        let g = t.stages.white_balance.gains;
        for c in 0..3 {
            assert!(
                (g[c] as f64 / g[1] as f64 - wb[c] / wb[1]).abs() < 1e-5,
                "{name}: gains {g:?} vs LibRaw's {wb:?}"
            );
        }
    }
    // Five files with a matrix, three different matrices chosen (D65 of
    // two, either order; Standard Light A when it is the only one).
    assert!(with_matrix >= 5, "{with_matrix}");
    assert_eq!(distinct.len(), 3, "{distinct:?}");
}

/// The other way: a CCM written into a DNG as a ColorMatrix comes back from
/// LibRaw as the same CCM, and the neutral it was written with as LibRaw's
/// daylight white balance (`tests/tests/cli/dng.rs` checks the same through
/// `isp export-dng`; this is the matrix alone, against numbers LibRaw
/// computed from fixtures it read).
#[test]
fn libraws_daylight_balance_is_the_matrix_rows_neutral() {
    for (name, exp) in fixtures() {
        let img = dng::read(&dir().join(format!("{name}.dng"))).unwrap();
        let Some(cm) = img.daylight_matrix() else {
            continue;
        };
        let ccm = dng::ccm_from_color_matrix(&cm).unwrap();
        // The D65 neutral a ColorMatrix implies: 1 / its pre_mul.
        let pre = f64s(&exp["daylight_whitebalance"]);
        let neutral = [1.0 / pre[0], 1.0 / pre[1], 1.0 / pre[2]];
        let back = dng::color_matrix_from_ccm(&ccm, neutral).unwrap();
        for (r, w) in back.iter().zip(&cm) {
            for (a, b) in r.iter().zip(w) {
                assert!((a - b).abs() < 1e-3, "{name}: {back:?} vs {cm:?}");
            }
        }
    }
}

#[test]
fn a_folder_of_dngs_is_a_session_of_stills_and_odd_sizes_are_cut_to_even() {
    let tmp = tempfile::tempdir().unwrap();
    for n in ["u16_strips_rggb", "lj92_tiles_rggb"] {
        std::fs::copy(
            dir().join(format!("{n}.dng")),
            tmp.path().join(format!("{n}.dng")),
        )
        .unwrap();
    }
    // Two sizes in one folder: the second file is refused by name.
    let spec = tmp.path().to_str().unwrap().to_string();
    let mut src = sources::open(Some(&spec), &Default::default()).unwrap();
    assert!(src.stills());
    assert_eq!(src.frame_count(), Some(2));
    let f = src.format();
    assert_eq!((f.width, f.height, f.bits), (96, 64, 12));
    let mut buf = vec![0u8; f.frame_bytes()];
    let m = src.next_frame(&mut buf).unwrap().unwrap();
    assert_eq!(m.sequence, 0);
    let e = src.next_frame(&mut buf).unwrap_err().to_string();
    assert!(
        e.contains("u16_strips_rggb.dng") && e.contains("differs"),
        "{e}"
    );

    // An odd-width ActiveArea: the source cuts the last column.
    let mut one = DngSource::open(&dir().join("u12_packed_bggr.dng")).unwrap();
    let img = dng::read(&dir().join("u12_packed_bggr.dng")).unwrap();
    let f = one.format();
    assert_eq!(
        (f.width as usize, f.height as usize),
        (img.width & !1, img.height & !1)
    );
    let mut buf = vec![0u8; f.frame_bytes()];
    one.next_frame(&mut buf).unwrap().unwrap();
    let row1: Vec<u16> = buf[f.stride as usize..f.stride as usize + 2 * f.width as usize]
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(row1, img.data[img.width..img.width + f.width as usize]);
    assert!(one.next_frame(&mut buf).unwrap().is_none());
}

#[test]
fn bad_files_are_refused_by_name_and_never_panic() {
    for (name, want) in [
        ("bad_truncated", "truncated"),
        ("bad_not_tiff", "not a TIFF/DNG"),
    ] {
        let p = dir().join(format!("{name}.dng"));
        let e = dng::read(&p).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{name}.dng")) && e.contains(want),
            "{e}"
        );
        let e = sources::open(Some(&format!("dng:{}", p.display())), &Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&format!("{name}.dng")), "{e}");
    }
    let e = dng::read(Path::new("/nonexistent/x.dng"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/x.dng"), "{e}");
    // Every prefix of every fixture, and each with bytes flipped: an error
    // or an image, never a panic.
    let tmp = tempfile::tempdir().unwrap();
    for (name, _) in fixtures() {
        let bytes = std::fs::read(dir().join(format!("{name}.dng"))).unwrap();
        let p = tmp.path().join("cut.dng");
        for cut in (0..bytes.len()).step_by(97) {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let _ = dng::read(&p);
            let _ = dng::read_tags(&p);
        }
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng % b.len().min(4096) as u64) as usize;
                b[i] ^= (rng >> 32) as u8 | 1;
            }
            std::fs::write(&p, &b).unwrap();
            let _ = dng::read(&p);
            let _ = dng::read_tags(&p);
        }
    }
}

/// The byte offset of tag `tag`'s entry in IFD 0 of a little-endian TIFF.
fn entry(bytes: &[u8], tag: u16) -> usize {
    let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let ifd = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    (0..le16(ifd) as usize)
        .map(|i| ifd + 2 + 12 * i)
        .find(|&e| le16(e) == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"))
}

#[test]
fn hostile_sizes_and_levels_are_refused_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.dng");
    let read_patched = |name: &str, patch: &dyn Fn(&mut Vec<u8>)| -> String {
        let mut b = std::fs::read(dir().join(format!("{name}.dng"))).unwrap();
        patch(&mut b);
        std::fs::write(&p, &b).unwrap();
        dng::read(&p).unwrap_err().to_string()
    };
    // WhiteLevel 0.
    let e = read_patched("u16_strips_rggb", &|b| {
        let at = entry(b, 50717) + 8;
        b[at..at + 4].fill(0);
    });
    assert!(e.contains("WhiteLevel"), "{e}");
    // A black-level pattern of 65535 x 65535.
    let e = read_patched("u12_packed_bggr", &|b| {
        let at = entry(b, 50713) + 8;
        b[at..at + 4].fill(0xFF);
    });
    assert!(e.contains("BlackLevelRepeatDim"), "{e}");
    // Tiles of 65535 x 65535 samples.
    let e = read_patched("u10_tiles_grbg", &|b| {
        for tag in [322u16, 323] {
            let at = entry(b, tag) + 8;
            b[at..at + 2].fill(0xFF);
        }
    });
    assert!(e.contains("tile size"), "{e}");
    // Tiles 0 samples wide (their length as it was).
    let e = read_patched("u10_tiles_grbg", &|b| {
        let at = entry(b, 322) + 8;
        b[at..at + 2].fill(0);
    });
    assert!(e.contains("tile size 0x"), "{e}");
    // An image 0 samples wide, and one 0 rows long.
    for tag in [256u16, 257] {
        let e = read_patched("u16_strips_rggb", &|b| {
            let at = entry(b, tag) + 8;
            b[at..at + 2].fill(0);
        });
        assert!(e.contains("is empty or too large"), "{tag}: {e}");
    }
    // A GainMap claiming 2^31 x 2^31 points.
    let e = read_patched("gainmap_rggb", &|b| {
        let e = entry(b, 51009);
        let list = u32::from_le_bytes([b[e + 8], b[e + 9], b[e + 10], b[e + 11]]) as usize;
        // count, then the first opcode's id, version, flags, size; its
        // points are the 9th and 10th u32 of its parameters.
        let params = list + 4 + 16;
        for k in [8, 9] {
            b[params + 4 * k..params + 4 * k + 4].copy_from_slice(&0x8000_0000u32.to_be_bytes());
        }
    });
    assert!(e.contains("GainMap"), "{e}");
    // 20000 x 20000 samples of 1 bit: 50 MB in a file, 1.6 GB decoded.
    let e = read_patched("u16_strips_rggb", &|b| {
        for tag in [256u16, 257] {
            let at = entry(b, tag) + 8;
            b[at..at + 2].copy_from_slice(&20000u16.to_le_bytes());
        }
        let at = entry(b, 258) + 8;
        b[at..at + 2].copy_from_slice(&1u16.to_le_bytes());
    });
    assert!(
        e.contains("20000x20000 needs 1525 MB decoded, over the 1024 MB"),
        "{e}"
    );
}

#[test]
fn a_dng_states_its_levels_to_calibration() {
    // WhiteLevel 4000 in a 12-bit container, a different pedestal per site.
    let path = dir().join("u12_packed_bggr.dng");
    let img = dng::read(&path).unwrap();
    assert_eq!(img.white_level, 4000);
    let src = DngSource::open(&path).unwrap();
    let l = src.levels().unwrap();
    assert_eq!((l.white, l.black), (4000.0, img.black_level));
    // A source without tags states nothing.
    let syn = sources::open(Some("synthetic:checker"), &Default::default()).unwrap();
    assert!(syn.levels().is_none());

    // A calibration capture takes them, and its samples are the file's.
    let spec = format!("dng:{}", path.display());
    let c = sources::read_capture(&spec, &Default::default(), 4).unwrap();
    assert_eq!(c.white_level, 4000.0);
    assert_eq!(c.black, Some(img.black_level));
    assert_eq!(
        (c.frames, c.width, c.height),
        (1, img.width & !1, img.height & !1)
    );
    for y in [0, 1, c.height - 1] {
        for x in [0, 1, c.width - 1] {
            assert_eq!(c.data[y * c.width + x], img.data[y * img.width + x] as f32);
        }
    }
    // The same frame read by hand into a capture is the same capture.
    let mut s = DngSource::open(&path).unwrap();
    let f = s.format();
    let mut raw = vec![0u8; f.frame_bytes()];
    let m = s.next_frame(&mut raw).unwrap().unwrap();
    let one = isp_engine::calibrate::Capture::from_frame(
        "x".into(),
        &f,
        &raw,
        m.exposure_us,
        m.analogue_gain,
    )
    .unwrap();
    assert_eq!(one.data, c.data);
    assert_eq!(one.white_level, f.max_value() as f32);
    assert!(one.black.is_none());
    // Short of its format: no capture.
    assert!(
        isp_engine::calibrate::Capture::from_frame("x".into(), &f, &raw[..raw.len() - 1], 0.0, 1.0)
            .is_none()
    );
}

#[test]
fn the_tags_alone_are_read_without_the_samples_and_make_the_same_tuning() {
    for (name, _) in fixtures() {
        let path = dir().join(format!("{name}.dng"));
        let full = dng::read(&path).unwrap();
        let tags = dng::read_tags(&path).unwrap();
        assert!(tags.data.is_empty(), "{name}");
        assert_eq!(
            format!(
                "{:?}",
                DngImage {
                    data: Vec::new(),
                    ..full.clone()
                }
            ),
            format!("{tags:?}"),
            "{name}"
        );
        // The source's tuning comes from the tags alone, and is the one the
        // decoded image makes.
        let spec = format!("dng:{}", path.display());
        let t = sources::session_tuning(Some(&spec)).unwrap().unwrap();
        assert_eq!(
            t.to_json(),
            dng_tuning(&full, &Tuning::default()).0.to_json(),
            "{name}"
        );
        assert_eq!(
            sources::source_notes(Some(&spec)),
            dng_tuning(&full, &Tuning::default()).1,
            "{name}"
        );
    }
}

/// What LibRaw leaves out, held to the DNG specification's chapter 6 as
/// `scripts/dng_colour.py` computes it in numpy (colour-science's CCT,
/// Bradford and sRGB): two calibrations interpolated at the as-shot white
/// balance, ForwardMatrix, CameraCalibration, AnalogBalance, and the
/// BaselineExposure as the tone's exposure. The files are that script's
/// (tifffile), not the engine's writer's. 2e-3 per CCM entry: colour's
/// sRGB matrix is derived from the primaries, the engine's is IEC
/// 61966-2-1's rounded one.
#[test]
fn dual_illuminant_profiles_are_the_specifications() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dng_colour");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "json").then_some(p)
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    for j in names {
        let exp: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
        let name = exp["file"].as_str().unwrap();
        let img = dng::read(&dir.join(name)).unwrap();
        let n = f64s(&exp["as_shot_neutral"]);
        let c = img.colour_for_neutral([n[0], n[1], n[2]]).unwrap();
        let want_ct = exp["expected"]["cct"].as_f64().unwrap();
        assert!(
            (c.ct / want_ct - 1.0).abs() < 0.002,
            "{name}: CT {} vs the oracle's {want_ct}",
            c.ct
        );
        let (t, notes) = dng_tuning(&img, &Tuning::default());
        let want: Vec<Vec<f64>> = exp["expected"]["ccm"]
            .as_array()
            .unwrap()
            .iter()
            .map(f64s)
            .collect();
        let mut worst = 0.0f64;
        for (r, w) in t.stages.ccm.matrix.iter().zip(&want) {
            for (a, b) in r.iter().zip(w) {
                worst = worst.max((*a as f64 - b).abs());
            }
        }
        eprintln!(
            "{name}: CT {:.0} K (oracle {want_ct:.0}), CCM max gap {worst:.2e}",
            c.ct
        );
        assert!(
            worst < 2e-3,
            "{name}: CCM {:?} vs the oracle's {want:?} (max gap {worst})",
            t.stages.ccm.matrix
        );
        assert!(
            notes.iter().any(|n| n.contains("DNG chapter 6")),
            "{name}: {notes:?}"
        );
        let ev = exp["baseline_exposure"].as_f64().unwrap_or(0.0);
        assert!(
            (t.stages.tone.exposure as f64 - 2f64.powf(ev)).abs() < 1e-4,
            "{name}: exposure {}",
            t.stages.tone.exposure
        );
    }
}
