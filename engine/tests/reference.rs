//! The CPU reference stages held to code this project did not write.
//!
//! `scripts/references.py` ran colour-demosaicing, colour-science, OpenCV and a
//! numpy implementation of the MIPI CSI-2 packing on small deterministic
//! inputs and committed inputs + expected outputs under
//! `engine/tests/data/reference/` (raw little-endian arrays described by
//! `manifest.json`, which also records the package versions). These tests
//! need no Python: they read that data and compare.
//!
//! Tolerances, in the engine's output units (16-bit code values unless said):
//!
//! | stage | reference | tolerance |
//! |---|---|---|
//! | demosaic bilinear / Malvar | colour-demosaicing (float, exact: multiples of 1/16) | 0 after rounding it half up and clamping |
//! | yuv 601/709 full/limited | `colour.RGB_to_YCbCr` | 0.5 + 1/32 (f32 arithmetic) |
//! | yuv 601 full | OpenCV `RGB2YCrCb` float32 | Y 0.5 + 1/32; Cr 13, Cb 20 (OpenCV rounds the Cr/Cb factors to 0.713/0.564) |
//! | yuv 601 full | OpenCV `RGB2YCrCb` uint8 | 1 LSB of 8 bits (OpenCV rounds Y before Cr/Cb) |
//! | `srgb_oetf` | `colour.cctf_encoding(.., "sRGB")` | 1e-6 absolute (f32 `powf`) |
//! | tone LUT, sRGB, contrast 1 | same | to16 0.5 + 1/32; to8 0.5 + 1/256 (LSB8) |
//! | ccm | `colour.algebra.vecmul` float64 | 0.5 + 1/16 (f32 sums up to 2^18) |
//! | unpack RAW8/10/12/16, RAW10P/RAW12P | numpy packing from the CSI-2 spec | exact |

#![allow(clippy::unwrap_used)]

use isp_engine::stages::ccm;
use isp_engine::stages::demosaic::{self, DemosaicMethod, DemosaicParams};
use isp_engine::stages::tone::{self, Gamma, ToneLut, ToneParams};
use isp_engine::stages::unpack;
use isp_engine::stages::yuv::{self, YuvMatrix, YuvParams, YuvRange};
use isp_engine::types::{BayerOrder, Packing, RawFormat};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference")
}

fn manifest() -> &'static Value {
    static M: OnceLock<Value> = OnceLock::new();
    M.get_or_init(|| {
        let p = dir().join("manifest.json");
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/references.py)", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    })
}

/// An array the script wrote: its values and shape.
struct Array {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Array {
    fn u16s(&self) -> Vec<u16> {
        self.data.iter().map(|&v| v as u16).collect()
    }
    fn u8s(&self) -> Vec<u8> {
        self.data.iter().map(|&v| v as u8).collect()
    }
}

fn load(desc: &Value) -> Array {
    let file = desc["file"].as_str().unwrap();
    let shape: Vec<usize> = desc["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let p = dir().join(file);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let data: Vec<f64> = match desc["dtype"].as_str().unwrap() {
        "u8" => bytes.iter().map(|&b| b as f64).collect(),
        "u16" => bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as f64)
            .collect(),
        "f64" => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        other => panic!("{file}: unknown dtype {other}"),
    };
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{file}: size does not match its shape {shape:?}"
    );
    Array { shape, data }
}

/// The worst difference found in a comparison.
#[derive(Debug, Default)]
struct Worst {
    diff: f64,
    index: usize,
    got: f64,
    want: f64,
}

/// Compare `got` to `want` (clamped to `lo..=hi` first, as the engine clamps)
/// element by element; returns the worst difference.
fn worst(got: &[f64], want: &[f64], lo: f64, hi: f64) -> Worst {
    assert_eq!(got.len(), want.len());
    let mut w = Worst::default();
    for (i, (&g, &r)) in got.iter().zip(want).enumerate() {
        let r = r.clamp(lo, hi);
        let d = (g - r).abs();
        if d > w.diff || i == 0 {
            w = Worst {
                diff: d,
                index: i,
                got: g,
                want: r,
            };
        }
    }
    w
}

fn f64s(v: &[u16]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn order_of(name: &str) -> BayerOrder {
    BayerOrder::parse(name).unwrap()
}

// ----------------------------------------------------------------- demosaic

/// colour-demosaicing's float output is exact here (16-bit integers times
/// kernels in sixteenths); the engine rounds half up and clamps, so after the
/// same rounding the two must agree exactly.
const DEMOSAIC_TOL: f64 = 0.0;

fn half_up(v: f64) -> f64 {
    (v + 0.5).floor()
}

#[test]
fn demosaic_matches_colour_demosaicing() {
    let m = &manifest()["demosaic"];
    let (w, h) = (
        m["width"].as_u64().unwrap() as usize,
        m["height"].as_u64().unwrap() as usize,
    );
    let margin = m["interior_margin"].as_u64().unwrap() as usize;
    let mut report = Vec::new();
    for case in m["cases"].as_array().unwrap() {
        let order_name = case["order"].as_str().unwrap();
        let order = order_of(order_name);
        let mosaic = load(&case["input"]);
        assert_eq!(mosaic.shape, [h, w]);
        let mosaic = mosaic.u16s();
        for (key, method) in [
            ("bilinear", DemosaicMethod::Bilinear),
            ("malvar", DemosaicMethod::Malvar),
        ] {
            let mut out = vec![0u16; w * h * 3];
            demosaic::apply(&DemosaicParams { method }, order, w, h, &mosaic, &mut out);
            let got = f64s(&out);
            // The plain call: only pixels whose neighbourhood lies inside the frame.
            let plain = load(&case[key]["plain"]);
            let inside: Vec<usize> = (0..w * h * 3)
                .filter(|i| {
                    let (x, y) = ((i / 3) % w, i / 3 / w);
                    (margin..w - margin).contains(&x) && (margin..h - margin).contains(&y)
                })
                .collect();
            let g: Vec<f64> = inside.iter().map(|&i| got[i]).collect();
            let r: Vec<f64> = inside.iter().map(|&i| half_up(plain.data[i])).collect();
            let wi = worst(&g, &r, 0.0, 65535.0);
            let wi = Worst {
                index: inside[wi.index],
                ..wi
            };
            // The mirror-padded call: the engine's border rule, whole frame.
            let padded = load(&case[key]["mirror_padded"]);
            let r: Vec<f64> = padded.data.iter().map(|&v| half_up(v)).collect();
            let wf = worst(&got, &r, 0.0, 65535.0);
            for (what, wv) in [
                ("interior vs plain call", &wi),
                ("whole frame vs mirror-padded call", &wf),
            ] {
                let (x, y, c) = ((wv.index / 3) % w, wv.index / 3 / w, wv.index % 3);
                assert!(
                    wv.diff <= DEMOSAIC_TOL,
                    "demosaic {key} {order_name} ({what}): worst pixel ({x},{y}) channel {} \
                     engine {} vs colour-demosaicing {} (rounded half up, clamped), \
                     diff {} > {DEMOSAIC_TOL}",
                    ["R", "G", "B"][c],
                    wv.got,
                    wv.want,
                    wv.diff
                );
            }
            report.push(format!(
                "{key} {order_name}: interior {:.4}, whole {:.4}",
                wi.diff, wf.diff
            ));
        }
    }
    eprintln!(
        "demosaic worst |engine - reference| (LSB16):\n  {}",
        report.join("\n  ")
    );
}

// ---------------------------------------------------------------------- yuv

const YUV_TOL: f64 = 0.5 + 1.0 / 32.0;
/// In the engine's plane order Y, Cb (U), Cr (V).
const YUV_OPENCV_F32_TOL: [f64; 3] = [YUV_TOL, 20.0, 13.0];
const YUV_OPENCV_U8_TOL: f64 = 1.0;

fn run_yuv(p: &YuvParams, rgb: &[u16]) -> [Vec<u16>; 3] {
    let n = rgb.len() / 3;
    let (mut y, mut u, mut v) = (vec![0u16; n], vec![0u16; n], vec![0u16; n]);
    yuv::apply(p, rgb, &mut y, &mut u, &mut v);
    [y, u, v]
}

/// The worst of three planes against a `[n, 3]` reference with columns in
/// `cols` order, as (channel, worst).
fn worst_planes(
    planes: &[Vec<f64>; 3],
    reference: &Array,
    cols: [usize; 3],
    tol: [f64; 3],
    hi: f64,
) -> Vec<(usize, Worst, f64)> {
    (0..3)
        .map(|c| {
            let want: Vec<f64> = reference
                .data
                .chunks_exact(3)
                .map(|row| row[cols[c]])
                .collect();
            (c, worst(&planes[c], &want, 0.0, hi), tol[c])
        })
        .collect()
}

#[test]
fn yuv_matches_colour_science() {
    let m = &manifest()["yuv"];
    let rgb = load(&m["input"]).u16s();
    let mut report = Vec::new();
    for case in m["colour"]["cases"].as_array().unwrap() {
        let matrix = match case["matrix"].as_str().unwrap() {
            "bt601" => YuvMatrix::Bt601,
            "bt709" => YuvMatrix::Bt709,
            other => panic!("matrix {other}"),
        };
        let range = match case["range"].as_str().unwrap() {
            "full" => YuvRange::Full,
            "limited" => YuvRange::Limited,
            other => panic!("range {other}"),
        };
        let got = run_yuv(&YuvParams { matrix, range }, &rgb);
        let planes = got.map(|p| f64s(&p));
        let want = load(&case["expected"]); // columns Y Cb Cr
        for (c, wv, tol) in worst_planes(&planes, &want, [0, 1, 2], [YUV_TOL; 3], 65535.0) {
            let px = &rgb[wv.index * 3..wv.index * 3 + 3];
            assert!(
                wv.diff <= tol,
                "yuv {matrix:?} {range:?} vs colour.RGB_to_YCbCr: {} of pixel {} (RGB {px:?}) \
                 engine {} vs {:.4}, diff {:.4} > {tol}",
                ["Y", "Cb", "Cr"][c],
                wv.index,
                wv.got,
                wv.want,
                wv.diff
            );
            report.push(format!(
                "{matrix:?} {range:?} {}: {:.4}",
                ["Y", "Cb", "Cr"][c],
                wv.diff
            ));
        }
    }
    eprintln!(
        "yuv vs colour-science worst (LSB16):\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn yuv_bt601_full_matches_opencv() {
    let m = &manifest()["yuv"];
    let p = YuvParams {
        matrix: YuvMatrix::Bt601,
        range: YuvRange::Full,
    };
    // float32: OpenCV's output is 0..1 in Y Cr Cb order.
    let rgb = load(&m["input"]).u16s();
    let planes = run_yuv(&p, &rgb).map(|p| f64s(&p));
    let mut cv = load(&m["opencv"]["float32"]["expected"]);
    cv.data.iter_mut().for_each(|v| *v *= 65535.0);
    let mut report = Vec::new();
    for (c, wv, tol) in worst_planes(&planes, &cv, [0, 2, 1], YUV_OPENCV_F32_TOL, 65535.0) {
        let px = &rgb[wv.index * 3..wv.index * 3 + 3];
        assert!(
            wv.diff <= tol,
            "yuv Bt601 Full vs cv2.cvtColor(float32, RGB2YCrCb): {} of pixel {} (RGB {px:?}) \
             engine {} vs {:.4}, diff {:.4} > {tol}",
            ["Y", "Cb", "Cr"][c],
            wv.index,
            wv.got,
            wv.want,
            wv.diff
        );
        report.push(format!("f32 {}: {:.4}", ["Y", "Cb", "Cr"][c], wv.diff));
    }
    // uint8: the engine sees v * 257 (the same v / 255). Its output in 8-bit
    // units: Y * 255 / 65535; chroma is centred on 0.5 of full scale in the
    // engine and on 128 (2^(n-1)) in 8-bit practice and OpenCV, so
    // C8 = 255 * (C / 65535 - 0.5) + 128.
    let rgb8 = load(&m["opencv"]["uint8"]["input"]).u8s();
    let rgb16: Vec<u16> = rgb8.iter().map(|&v| v as u16 * 257).collect();
    let [y16, u16_, v16] = run_yuv(&p, &rgb16);
    let luma = |v: &u16| *v as f64 * 255.0 / 65535.0;
    let chroma = |v: &u16| 255.0 * (*v as f64 / 65535.0 - 0.5) + 128.0;
    let planes = [
        y16.iter().map(luma).collect(),
        u16_.iter().map(chroma).collect(),
        v16.iter().map(chroma).collect(),
    ];
    let cv8 = load(&m["opencv"]["uint8"]["expected"]);
    for (c, wv, tol) in worst_planes(&planes, &cv8, [0, 2, 1], [YUV_OPENCV_U8_TOL; 3], 255.0) {
        let px = &rgb8[wv.index * 3..wv.index * 3 + 3];
        assert!(
            wv.diff <= tol,
            "yuv Bt601 Full vs cv2.cvtColor(uint8, RGB2YCrCb): {} of pixel {} (RGB8 {px:?}) \
             engine (in 8-bit units) {:.3} vs {}, diff {:.3} > {tol} LSB8",
            ["Y", "Cb", "Cr"][c],
            wv.index,
            wv.got,
            wv.want,
            wv.diff
        );
        report.push(format!("u8 {}: {:.4} LSB8", ["Y", "Cb", "Cr"][c], wv.diff));
    }
    eprintln!(
        "yuv vs OpenCV worst (LSB16 unless said):\n  {}",
        report.join("\n  ")
    );
}

// --------------------------------------------------------------------- tone

const SRGB_OETF_TOL: f64 = 1e-6;
const TONE16_TOL: f64 = 0.5 + 1.0 / 32.0;
const TONE8_TOL: f64 = 0.5 + 1.0 / 256.0;

fn srgb_only() -> ToneParams {
    ToneParams {
        enabled: true,
        gamma: Gamma::Srgb,
        contrast: 1.0,
        curve: Vec::new(),
        ..Default::default()
    }
}

#[test]
fn srgb_oetf_matches_colour_science() {
    let m = &manifest()["tone"];
    let codes = load(&m["codes"]).u16s();
    let want = load(&m["srgb"]).data;
    let got: Vec<f64> = codes
        .iter()
        .map(|&c| tone::srgb_oetf(c as f32 / 65535.0) as f64)
        .collect();
    let wv = worst(&got, &want, f64::MIN, f64::MAX);
    assert!(
        wv.diff <= SRGB_OETF_TOL,
        "tone::srgb_oetf vs colour.cctf_encoding(sRGB): code {} engine {} vs {}, diff {:e} > {SRGB_OETF_TOL:e}",
        codes[wv.index],
        wv.got,
        wv.want,
        wv.diff
    );
    eprintln!("srgb_oetf worst: {:e} at code {}", wv.diff, codes[wv.index]);
}

#[test]
fn tone_stage_in_srgb_mode_matches_colour_science() {
    let m = &manifest()["tone"];
    let codes = load(&m["codes"]).u16s();
    let want = load(&m["srgb"]).data;
    let lut = ToneLut::build(&srgb_only());
    // The stage itself, on an RGB image whose samples are the codes.
    let mut rgb: Vec<u16> = codes.clone();
    while !rgb.len().is_multiple_of(3) {
        rgb.push(codes[0]);
    }
    let mut enc16 = rgb.clone();
    tone::apply_rgb16(&lut, &mut enc16);
    let mut rgba = vec![0u8; rgb.len() / 3 * 4];
    tone::apply_rgba8(&lut, &rgb, &mut rgba);
    let got16 = f64s(&enc16[..codes.len()]);
    let got8: Vec<f64> = (0..codes.len())
        .map(|i| rgba[i / 3 * 4 + i % 3] as f64)
        .collect();
    assert!(
        rgba.chunks_exact(4).all(|p| p[3] == 255),
        "tone: alpha must be 255"
    );
    let w16 = worst(
        &got16,
        &want.iter().map(|v| v * 65535.0).collect::<Vec<_>>(),
        0.0,
        65535.0,
    );
    let w8 = worst(
        &got8,
        &want.iter().map(|v| v * 255.0).collect::<Vec<_>>(),
        0.0,
        255.0,
    );
    for (what, wv, tol) in [("rgb16", &w16, TONE16_TOL), ("rgba8", &w8, TONE8_TOL)] {
        assert!(
            wv.diff <= tol,
            "tone (sRGB, contrast 1) {what} vs colour.cctf_encoding: input code {} \
             engine {} vs {:.4}, diff {:.4} > {tol}",
            codes[wv.index],
            wv.got,
            wv.want,
            wv.diff
        );
    }
    eprintln!(
        "tone sRGB worst: to16 {:.4} LSB16 (code {}), to8 {:.4} LSB8 (code {})",
        w16.diff, codes[w16.index], w8.diff, codes[w8.index]
    );
}

// ---------------------------------------------------------------------- ccm

const CCM_TOL: f64 = 0.5 + 1.0 / 16.0;

#[test]
fn ccm_matches_colour_vecmul() {
    let m = &manifest()["ccm"];
    let rgb = load(&m["input"]).u16s();
    for case in m["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut matrix = [[0f32; 3]; 3];
        for (r, row) in case["matrix"].as_array().unwrap().iter().enumerate() {
            for (c, v) in row.as_array().unwrap().iter().enumerate() {
                matrix[r][c] = v.as_f64().unwrap() as f32;
            }
        }
        // The matrix product itself (`ccm::apply` takes the pedestal off
        // first and scales white back to full scale; its unit test holds
        // that by hand).
        let out: Vec<u16> = rgb
            .chunks_exact(3)
            .flat_map(|p| ccm::mul(&matrix, p[0] as f32, p[1] as f32, p[2] as f32))
            .collect();
        let want = load(&case["expected"]);
        let wv = worst(&f64s(&out), &want.data, 0.0, 65535.0);
        let px = wv.index / 3;
        assert!(
            wv.diff <= CCM_TOL,
            "ccm ({name} matrix) vs colour.algebra.vecmul: pixel {px} (RGB {:?}) channel {} \
             engine {} vs {:.4} (clamped), diff {:.4} > {CCM_TOL}",
            &rgb[px * 3..px * 3 + 3],
            ["R", "G", "B"][wv.index % 3],
            wv.got,
            wv.want,
            wv.diff
        );
        eprintln!("ccm {name}: worst {:.4} LSB16", wv.diff);
    }
}

// ------------------------------------------------------------------- unpack

#[test]
fn unpack_matches_numpy_csi2_and_plain() {
    let m = &manifest()["unpack"];
    for case in m["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let get = |k: &str| case[k].as_u64().unwrap() as u32;
        let packing = match case["packing"].as_str().unwrap() {
            "csi2" => Packing::Csi2,
            _ => Packing::Plain,
        };
        let mut fmt = RawFormat::new(
            get("width"),
            get("height"),
            get("bits") as u8,
            BayerOrder::Rggb,
            packing,
        );
        assert_eq!(
            fmt.min_stride(),
            get("min_stride"),
            "unpack {name}: the engine's row size differs from the spec's"
        );
        fmt.stride = get("stride");
        let bytes = load(&case["bytes"]).u8s();
        let want = load(&case["samples"]).u16s();
        let mut got = vec![0u16; fmt.pixels()];
        unpack::unpack(&fmt, &bytes, &mut got)
            .unwrap_or_else(|e| panic!("unpack {name} ({}): {e}", fmt.describe()));
        if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
            let w = fmt.width as usize;
            panic!(
                "unpack {name} ({}): first wrong pixel ({},{}) engine {:#x} vs numpy {:#x}",
                fmt.describe(),
                i % w,
                i / w,
                got[i],
                want[i]
            );
        }
        // And the engine's packer writes the spec's bytes (row padding aside;
        // plain words of less than 16 bits carry noise above the depth here,
        // which a packer does not reproduce).
        if packing == Packing::Plain && !matches!(fmt.bits, 8 | 16) {
            continue;
        }
        let mut packed = vec![0u8; fmt.frame_bytes()];
        unpack::pack(&fmt, &want, &mut packed).unwrap();
        let (stride, row) = (fmt.stride as usize, fmt.min_stride() as usize);
        for y in 0..fmt.height as usize {
            let (a, b) = (
                &packed[y * stride..y * stride + row],
                &bytes[y * stride..y * stride + row],
            );
            if let Some(i) = (0..row).find(|&i| a[i] != b[i]) {
                panic!(
                    "pack {name} ({}): row {y} byte {i} engine {:#04x} vs numpy {:#04x}",
                    fmt.describe(),
                    a[i],
                    b[i]
                );
            }
        }
    }
}

#[test]
fn the_data_names_the_versions_that_made_it() {
    let v = &manifest()["versions"];
    for k in ["numpy", "colour-science", "colour-demosaicing", "opencv"] {
        assert!(v[k].is_string(), "manifest.json: versions.{k} missing");
    }
}
