//! Unit tests of the Raspberry Pi mapping's helpers.

use super::*;

/// libcamera's `generateLut` (src/ipa/rpi/controller/rpi/alsc.cpp) for a
/// 16x12 table, corner strength 2: values worked out from its formula by
/// hand (f1 = 1, f2 = 1 + sqrt 2, R2 = 16 * 12 / 4 * (1 + asymmetry^2),
/// r2 = (dx^2 + dy^2) / R2 with dx, dy from the cell's centre).
#[test]
fn the_generated_table_is_libcameras() {
    let lut = generated_lut(16, 12, 2.0, 1.0);
    assert_eq!(lut.len(), 16 * 12);
    let at = |i: usize, j: usize| lut[j * 16 + i];
    // Corner: dx = -7.5, dy = -5.5, r2 = 86.5 / 96.
    assert!((at(0, 0) - 1.885_743_271).abs() < 1e-8, "{}", at(0, 0));
    // The opposite corner is the same distance out.
    assert!((at(15, 11) - 1.885_743_271).abs() < 1e-8);
    // Next to the centre: dx = dy = 0.5, r2 = 0.5 / 96.
    assert!((at(8, 6) - 1.004_319_379).abs() < 1e-8, "{}", at(8, 6));
    // Asymmetry 2 stretches x: corner r2 = (225 + 30.25) / 240.
    let wide = generated_lut(16, 12, 2.0, 2.0);
    assert!((wide[0] - 2.075_136_426).abs() < 1e-8, "{}", wide[0]);
}

#[test]
fn every_algorithm_without_a_counterpart_says_why() {
    for name in [
        "rpi.lux",
        "rpi.dpc",
        "rpi.geq",
        "rpi.sdn",
        "rpi.denoise",
        "rpi.sharpen",
        "rpi.hdr",
        "rpi.af",
        "rpi.focus",
        "rpi.cac",
        "rpi.tonemap",
        "rpi.saturation",
        "rpi.decompand",
        "rpi.nn.awb",
    ] {
        assert_ne!(reason(name), reason("rpi.unknown"), "{name}");
    }
    assert_eq!(reason("rpi.cac"), "chromatic aberration correction");
}
