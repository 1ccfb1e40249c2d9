//! Highlights and the exposure of stills, through `isp process` (issue 23's
//! case): a 12-bit raw file whose left third the sensor clipped (4095) and
//! whose rest is a grey card, developed with the built-in tuning (grey-world
//! AWB and AE settle on the still). The clipped area must come out neutral
//! white and the card neutral at a sensible exposure, whatever the digital
//! gain AE asks for (above or below 1) and whatever the white balance's
//! gains (one below 1 included), on the slow path and on the CPU and GPU
//! previews.
//!
//! The expected values are the definition, not the engine's: white is full
//! scale in every channel; a grey card is neutral and lands between 0.30 and
//! 0.75 once encoded.

use crate::common::*;
use std::path::Path;

const W: usize = 192;
const H: usize = 128;
const PEDESTAL: u16 = 64;

/// The scene: left third 4095, the rest `card` (R, G, B above the pedestal,
/// sampled through RGGB).
fn scene(dir: &Path, name: &str, card: [f32; 3]) -> String {
    let p = dir.join(name);
    write_raw16(&p, W, H, |x, y| {
        if x < W / 3 {
            return 4095;
        }
        let c = match (x & 1, y & 1) {
            (0, 0) => 0,
            (1, 1) => 2,
            _ => 1,
        };
        PEDESTAL + card[c].round() as u16
    });
    format!("raw:{}", s(&p))
}

/// Mean R, G, B (0..=1) of columns `x0..x1`.
fn mean(png: &Png, x0: usize, x1: usize) -> [f64; 3] {
    let full = if png.depth == png::BitDepth::Sixteen {
        65535.0
    } else {
        255.0
    };
    let mut m = [0.0f64; 3];
    for y in 0..png.height {
        for x in x0..x1 {
            for (c, v) in m.iter_mut().enumerate() {
                *v += png.at(x, y, c) as f64;
            }
        }
    }
    m.map(|v| v / ((x1 - x0) * png.height) as f64 / full)
}

/// The frame `raw` develops to on `path` ("slow", or "fast" on `backend`).
fn develop(dir: &Path, raw: &str, path: &str, backend: &str) -> (Png, String) {
    let out = dir.join(format!("out-{path}-{backend}"));
    let r = isp(&[
        "process",
        raw,
        "--width",
        &W.to_string(),
        "--height",
        &H.to_string(),
        "--bits",
        "12",
        "--bayer",
        "RGGB",
        "--path",
        path,
        "--backend",
        backend,
        "--out",
        &s(&out),
    ])
    .ok();
    let note = telemetry(&out)
        .iter()
        .find(|r| &r[3] == "still")
        .map(|r| r[14].to_string())
        .unwrap_or_default();
    drop(r);
    (read_png(&out.join("frame_000000.png")), note)
}

fn spread(m: [f64; 3]) -> f64 {
    let (lo, hi) = (
        m.iter().cloned().fold(9.0, f64::min),
        m.iter().cloned().fold(0.0, f64::max),
    );
    hi / lo.max(1e-9) - 1.0
}

#[track_caller]
fn assert_white(m: [f64; 3], what: &str) {
    assert!(
        spread(m) < 0.02 && m.iter().all(|&v| v >= 0.9),
        "{what}: clipped area {m:.3?}, want neutral white (channels within 2%, each >= 0.9)"
    );
}

#[test]
fn clipped_whites_stay_white_and_the_card_keeps_its_exposure() {
    let tmp = tempfile::tempdir().unwrap();
    // A grey card neutral under the built-in gains (1.8, 1, 1.6): dim (AE
    // asks for more than 1) and bright (less than 1).
    let cards = [("dim", 600.0f32), ("bright", 3400.0)];
    for (name, g) in cards {
        let raw = scene(tmp.path(), &format!("{name}.raw"), [g / 1.8, g, g / 1.6]);
        for (path, backend) in [("slow", "cpu"), ("fast", "cpu"), ("fast", "gpu")] {
            let (png, note) = develop(tmp.path(), &raw, path, backend);
            let what = format!("{name} card, {path} path on the {backend}: {note}");
            // Clear of the demosaic's reach across the edge.
            assert_white(mean(&png, 0, W / 3 - 4), &what);
            let card = mean(&png, W / 3 + 4, W);
            assert!(
                spread(card) < 0.02 && card.iter().all(|v| (0.30..=0.75).contains(v)),
                "{what}: grey card {card:.3?}, want neutral within 0.30..=0.75"
            );
        }
    }
}

#[test]
fn a_white_balance_gain_below_one_leaves_a_clipped_sun_white() {
    // A red scene: grey world balances it with a red gain well below the
    // green's. Scaled so the smallest gain is 1, the clipped area stays
    // clipped in every channel.
    let tmp = tempfile::tempdir().unwrap();
    let raw = scene(tmp.path(), "red.raw", [1500.0, 500.0, 420.0]);
    for (path, backend) in [("slow", "cpu"), ("fast", "cpu"), ("fast", "gpu")] {
        let (png, note) = develop(tmp.path(), &raw, path, backend);
        assert!(note.contains("wb gains"), "{note}");
        let gains: Vec<f64> = note
            .split("wb gains ")
            .nth(1)
            .unwrap()
            .split([' ', ','])
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(gains[0] < 0.8 * gains[1], "grey world's gains {gains:?}");
        assert_white(
            mean(&png, 0, W / 3 - 4),
            &format!("{path} path on the {backend}: {note}"),
        );
    }
}
