//! What the sensor sees: the engine's synthetic scenes (or a test pattern)
//! through the simulated sensor's colour response and vignetting, scaled by
//! exposure and gains, with shot and read noise, quantised and packed into
//! the format asked for. Noise comes from a fixed table of normal samples
//! walked from a per-row offset, so a 1080p frame renders in a few
//! milliseconds.

use crate::device::Fmt;
use isp_engine::sources::synthetic::{Scene, SensorModel};
use isp_engine::stages::unpack::pack;
use isp_engine::types::RawFormat;
use std::sync::LazyLock;

/// The pixel layout a format asks for.
#[derive(Clone, Copy, Debug)]
pub enum Pixels {
    Bayer(RawFormat),
    Yuyv,
    Grey,
}

/// Control values in effect for one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub exposure_us: f32,
    pub analogue_gain: f32,
    pub digital_gain: f32,
    pub red: f32,
    pub blue: f32,
    pub hflip: bool,
    pub vflip: bool,
    pub pattern: u8,
    pub light: f32,
}

impl Default for Look {
    fn default() -> Self {
        Look {
            exposure_us: 10_000.0,
            analogue_gain: 1.0,
            digital_gain: 1.0,
            red: 1.0,
            blue: 1.0,
            hflip: false,
            vflip: false,
            pattern: 0,
            light: 1.0,
        }
    }
}

/// What the noiseless signal depends on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BaseKey {
    pub fmt: Fmt,
    pub scene: Scene,
    pub pattern: u8,
    pub hflip: bool,
    pub vflip: bool,
}

/// Eight vertical bars: white, yellow, cyan, green, magenta, red, blue, black.
fn bars(x: usize, w: usize) -> [f32; 3] {
    const B: [[f32; 3]; 8] = [
        [1.0, 1.0, 1.0],
        [1.0, 1.0, 0.0],
        [0.0, 1.0, 1.0],
        [0.0, 1.0, 0.0],
        [1.0, 0.0, 1.0],
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0],
    ];
    B[(x * 8 / w).min(7)].map(|v| v * 0.75)
}

/// Scene-linear RGB at a pixel, before the sensor.
fn scene_rgb(key: &BaseKey, x: usize, y: usize) -> [f32; 3] {
    let (w, h) = (key.fmt.width as usize, key.fmt.height as usize);
    let x = if key.hflip { w - 1 - x } else { x };
    let y = if key.vflip { h - 1 - y } else { y };
    match key.pattern {
        1 => bars(x, w),
        2 => [0.18; 3],
        _ => key.scene.truth(x, y, w, h),
    }
}

/// The noiseless signal per pixel at 10 ms, unity gain, as a fraction of
/// full scale: one value per Bayer site, or three per pixel (linear RGB)
/// for YUYV and GREY.
pub fn base(key: &BaseKey) -> Vec<f32> {
    let m = SensorModel::default();
    let (w, h) = (key.fmt.width as usize, key.fmt.height as usize);
    let vig = |x: usize, y: usize| {
        let dx = (x as f32 + 0.5) / w as f32 * 2.0 - 1.0;
        let dy = (y as f32 + 0.5) / h as f32 * 2.0 - 1.0;
        1.0 / (1.0 + m.vignetting * (dx * dx + dy * dy) / 2.0)
    };
    match key.fmt.pixels() {
        Pixels::Bayer(f) => {
            // The signal, then its square root (shot noise scales with it).
            let mut v = vec![0.0f32; w * h * 2];
            for y in 0..h {
                for x in 0..w {
                    let t = scene_rgb(key, x, y);
                    let c = f.bayer.color_at(x, y).rgb();
                    let k = m.crosstalk[c];
                    let cam = (k[0] * t[0] + k[1] * t[1] + k[2] * t[2]).max(0.0) * m.cast[c];
                    v[y * w + x] = cam * vig(x, y) * m.sensitivity;
                }
            }
            let (signal, root) = v.split_at_mut(w * h);
            for (r, s) in root.iter_mut().zip(signal.iter()) {
                *r = s.sqrt();
            }
            v
        }
        Pixels::Yuyv | Pixels::Grey => {
            let mut v = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                for x in 0..w {
                    let g = vig(x, y) * m.sensitivity;
                    v.extend(scene_rgb(key, x, y).map(|c| c * g));
                }
            }
            v
        }
    }
}

/// 64 Ki standard normal samples (splitmix64 and Box-Muller).
static NORMAL: LazyLock<Vec<f32>> = LazyLock::new(|| {
    let mut s: u64 = 0x15b5_7d10_cafe;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    };
    (0..1 << 16)
        .map(|_| {
            let (a, b) = (next(), next());
            (-2.0 * a.ln()).sqrt() * (std::f32::consts::TAU * b).cos()
        })
        .collect()
});

fn hash(a: u64, b: u64) -> usize {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z ^ (z >> 32)) as usize
}

/// Render frame `seq` into `dst` (the buffer, `sizeimage` long).
pub fn frame(
    fmt: &Fmt,
    base: &[f32],
    look: &Look,
    seq: u64,
    dst: &mut [u8],
    scratch: &mut Vec<u16>,
) {
    let m = SensorModel::default();
    let normal = &*NORMAL;
    let mask = normal.len() - 1;
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let scale = look.exposure_us / 10_000.0 * look.analogue_gain * look.light;
    match fmt.pixels() {
        Pixels::Bayer(f) => {
            let max = f.max_value() as f32;
            let bl = m.black_level as f32 * (max + 1.0) / 1024.0;
            let range = max - bl;
            let read = m.read_noise * (max + 1.0) / 1024.0;
            // Electrons e = s * full_well / gain, shot noise sqrt(e), back to
            // signal units: sqrt(b) * sqrt(scale * gain / full_well).
            let shot = (scale * look.analogue_gain / m.full_well).sqrt();
            let (signal, root) = base.split_at(w * h);
            scratch.resize(w * h, 0);
            let tile = f.bayer.tile();
            for y in 0..h {
                let mut k = hash(seq, y as u64);
                let row = &signal[y * w..(y + 1) * w];
                let roots = &root[y * w..(y + 1) * w];
                let out = &mut scratch[y * w..(y + 1) * w];
                let wb = [0, 1].map(|x| {
                    let c = tile[(y & 1) * 2 + x].rgb();
                    look.digital_gain
                        * match c {
                            0 => look.red,
                            2 => look.blue,
                            _ => 1.0,
                        }
                });
                for (x, ((o, &b), &rb)) in out.iter_mut().zip(row).zip(roots).enumerate() {
                    let s = (b * scale).min(1.5) + rb * shot * normal[k & mask];
                    let dn = s.max(0.0) * range * wb[x & 1] + bl + read * normal[(k >> 17) & mask];
                    *o = (dn + 0.5).clamp(0.0, max) as u16;
                    k = k.wrapping_add(0x9E37);
                }
            }
            // The format was validated when it was chosen.
            let _ = pack(&f, scratch, dst);
        }
        Pixels::Yuyv | Pixels::Grey => {
            let bpl = fmt.bytesperline as usize;
            let enc = |v: f32| -> f32 {
                let v = v.clamp(0.0, 1.0);
                if v <= 0.003_130_8 {
                    v * 12.92
                } else {
                    1.055 * v.powf(1.0 / 2.4) - 0.055
                }
            };
            for y in 0..h {
                let mut k = hash(seq, y as u64);
                let row = &mut dst[y * bpl..];
                for x in 0..w {
                    let p = &base[(y * w + x) * 3..][..3];
                    let n = 0.004 * normal[k & mask];
                    k = k.wrapping_add(0x9E37);
                    let [r, g, b] = [0, 1, 2].map(|c| {
                        let gain = look.digital_gain
                            * match c {
                                0 => look.red,
                                2 => look.blue,
                                _ => 1.0,
                            };
                        enc(p[c] * scale * 2.0 * gain + n)
                    });
                    let luma = 0.299 * r + 0.587 * g + 0.114 * b;
                    if let Pixels::Grey = fmt.pixels() {
                        row[x] = (luma * 255.0 + 0.5) as u8;
                    } else {
                        let c = if x % 2 == 0 {
                            (b - luma) * 0.564
                        } else {
                            (r - luma) * 0.713
                        };
                        row[x * 2] = (16.0 + 219.0 * luma + 0.5) as u8;
                        row[x * 2 + 1] = (128.0 + 224.0 * c + 0.5).clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isp_engine::sources::camera::formats::code;
    use isp_engine::stages::unpack::unpack;

    fn fmt(cc: &[u8; 4]) -> Fmt {
        let f = isp_engine::sources::camera::formats::raw_format(code(cc), 64, 48, 0);
        let bpl = f.map_or(128, |f| f.min_stride().div_ceil(64) * 64);
        Fmt {
            fourcc: code(cc),
            width: 64,
            height: 48,
            bytesperline: bpl,
            sizeimage: bpl * 48,
        }
    }

    fn mean_green(f: &Fmt, look: &Look) -> f32 {
        let key = BaseKey {
            fmt: *f,
            scene: Scene::Flat,
            pattern: 0,
            hflip: false,
            vflip: false,
        };
        let b = base(&key);
        let mut dst = vec![0u8; f.sizeimage as usize];
        frame(f, &b, look, 3, &mut dst, &mut Vec::new());
        let Pixels::Bayer(rf) = f.pixels() else {
            panic!()
        };
        let mut px = vec![0u16; 64 * 48];
        unpack(&rf, &dst, &mut px).unwrap();
        let g: Vec<f32> = (0..64 * 48)
            .filter(|i| (i % 64 + i / 64) % 2 == 1)
            .map(|i| px[i] as f32)
            .collect();
        g.iter().sum::<f32>() / g.len() as f32
    }

    #[test]
    fn exposure_and_gain_scale_the_signal_above_the_pedestal() {
        let f = fmt(b"pRAA");
        let one = mean_green(&f, &Look::default()) - 64.0;
        let two = mean_green(
            &f,
            &Look {
                exposure_us: 20_000.0,
                ..Look::default()
            },
        ) - 64.0;
        let gain = mean_green(
            &f,
            &Look {
                analogue_gain: 2.0,
                ..Look::default()
            },
        ) - 64.0;
        // 18% grey at half sensitivity, vignetting of a few percent.
        assert!((one - 0.18 * 0.5 * 959.0).abs() < 10.0, "{one}");
        assert!((two / one - 2.0).abs() < 0.05, "{two} {one}");
        assert!((gain / one - 2.0).abs() < 0.05, "{gain} {one}");
        // 12 bits: the pedestal is 256.
        let f12 = fmt(b"RG12");
        let v = mean_green(&f12, &Look::default()) - 256.0;
        assert!((v / one - 4.0).abs() < 0.1, "{v}");
    }
}
