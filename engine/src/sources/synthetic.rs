//! Synthetic scenes with known ground truth, seen through a simulated
//! sensor: a colour cast (the illuminant and the colour filters), the colour
//! response of a real camera (the published Adobe DNG matrix of the Canon EOS
//! 5D Mark III, independent of the engine's default CCM), radial vignetting, exposure and
//! gain that respond to controls (with the two-frame delay real sensors have),
//! shot and read noise, quantisation to the bit depth and packing.

use super::{FrameMeta, FrameSource, SourceError};
use crate::algorithms::Control;
use crate::stages::unpack::pack;
use crate::types::RawFormat;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// The 24 patches of the classic colour checker on a dark background.
    Checker,
    /// Red rising left to right, green top to bottom, blue falling.
    Gradient,
    /// A circular zone plate up to the Nyquist frequency at the edges.
    ZonePlate,
    /// 18% grey everywhere.
    Flat,
}

/// The classic colour checker in 8-bit sRGB, row by row.
pub const CHECKER_SRGB: [[u8; 3]; 24] = [
    [115, 82, 68],
    [194, 150, 130],
    [98, 122, 157],
    [87, 108, 67],
    [133, 128, 177],
    [103, 189, 170],
    [214, 126, 44],
    [80, 91, 166],
    [193, 90, 99],
    [94, 60, 108],
    [157, 188, 64],
    [224, 163, 46],
    [56, 61, 150],
    [70, 148, 73],
    [175, 54, 60],
    [231, 199, 31],
    [187, 86, 149],
    [8, 133, 161],
    [243, 243, 242],
    [200, 200, 200],
    [160, 160, 160],
    [122, 122, 121],
    [85, 85, 85],
    [52, 52, 52],
];

pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

impl Scene {
    pub const NAMES: [&'static str; 4] = ["checker", "gradient", "zoneplate", "flat"];

    pub fn parse(s: &str) -> Option<Scene> {
        match s {
            "checker" => Some(Scene::Checker),
            "gradient" => Some(Scene::Gradient),
            "zoneplate" | "zone_plate" => Some(Scene::ZonePlate),
            "flat" => Some(Scene::Flat),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scene::Checker => "checker",
            Scene::Gradient => "gradient",
            Scene::ZonePlate => "zoneplate",
            Scene::Flat => "flat",
        }
    }

    /// The checker patch under pixel (x, y), if any: (index, inside margin).
    pub fn checker_patch(x: usize, y: usize, w: usize, h: usize) -> Option<usize> {
        let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
        let (u0, v0, cw, ch) = (0.05, 0.08, 0.9 / 6.0, 0.84 / 4.0);
        let (fu, fv) = ((u - u0) / cw, (v - v0) / ch);
        if !(0.0..6.0).contains(&fu) || !(0.0..4.0).contains(&fv) {
            return None;
        }
        let (iu, iv) = (fu as usize, fv as usize);
        let (du, dv) = (fu - iu as f32, fv - iv as f32);
        if !(0.1..0.9).contains(&du) || !(0.1..0.9).contains(&dv) {
            return None;
        }
        Some(iv * 6 + iu)
    }

    /// Centre pixel of checker patch `i` in a `w`x`h` frame.
    pub fn checker_centre(i: usize, w: usize, h: usize) -> (usize, usize) {
        let (cw, ch) = (0.9 / 6.0, 0.84 / 4.0);
        let u = 0.05 + (i % 6) as f32 * cw + cw / 2.0;
        let v = 0.08 + (i / 6) as f32 * ch + ch / 2.0;
        ((u * w as f32) as usize, (v * h as f32) as usize)
    }

    /// Scene-linear sRGB reflectance at pixel (x, y).
    pub fn truth(self, x: usize, y: usize, w: usize, h: usize) -> [f32; 3] {
        let (u, v) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
        match self {
            Scene::Checker => match Self::checker_patch(x, y, w, h) {
                Some(i) => CHECKER_SRGB[i].map(|c| srgb_to_linear(c as f32 / 255.0)),
                None => [0.03; 3],
            },
            Scene::Gradient => [u * 0.9, v * 0.9, (1.0 - u) * 0.9],
            Scene::ZonePlate => {
                let (dx, dy) = (x as f32 - w as f32 / 2.0, y as f32 - h as f32 / 2.0);
                let r2 = dx * dx + dy * dy;
                let g = 0.4 + 0.35 * (std::f32::consts::PI * r2 / w as f32).cos();
                [g; 3]
            }
            Scene::Flat => [0.18; 3],
        }
    }
}

/// The simulated sensor's fixed properties.
#[derive(Clone, Debug)]
pub struct SensorModel {
    /// Camera response to white in each channel (what WB gains undo).
    pub cast: [f32; 3],
    /// Camera RGB = crosstalk . scene RGB.
    pub crosstalk: [[f32; 3]; 3],
    /// Relative fall-off at the corners is `1 / (1 + vignetting * r^2 / 2)`.
    pub vignetting: f32,
    pub black_level: u16,
    /// Full-scale electrons at unity gain.
    pub full_well: f32,
    /// Read noise, in sensor units.
    pub read_noise: f32,
    /// Scene reflectance 1.0 at 10 ms, gain 1 reaches this fraction of full scale.
    pub sensitivity: f32,
    /// Frames between writing a control and seeing it take effect.
    pub delays: crate::controls::ControlDelays,
    pub seed: u64,
    pub fps: f32,
}

impl Default for SensorModel {
    fn default() -> Self {
        SensorModel {
            cast: [1.0 / 1.8, 1.0, 1.0 / 1.6],
            crosstalk: camera_from_srgb(CANON_5D3_CAMERA_FROM_XYZ),
            vignetting: 0.4,
            black_level: 64,
            full_well: 12000.0,
            read_noise: 1.2,
            sensitivity: 0.5,
            delays: crate::controls::ControlDelays::default(),
            seed: 0x15b5_7d10,
            fps: 30.0,
        }
    }
}

/// The Canon EOS 5D Mark III's colour matrix (XYZ, D65 -> camera RGB) as
/// Adobe's DNG Converter publishes it (ColorMatrix2, in 1/10000; the same
/// numbers stand in dcraw's and LibRaw's `adobe_coeff` tables).
pub const CANON_5D3_CAMERA_FROM_XYZ: [i16; 9] =
    [6722, -635, -963, -4287, 12460, 2028, -908, 2162, 5668];

/// Linear sRGB -> XYZ (D65), IEC 61966-2-1.
pub const XYZ_FROM_SRGB: [[f32; 3]; 3] = [
    [0.412_453, 0.357_580, 0.180_423],
    [0.212_671, 0.715_160, 0.072_169],
    [0.019_334, 0.119_193, 0.950_227],
];

/// Camera RGB from linear sRGB for a published XYZ -> camera matrix, each
/// row scaled so that white gives equal camera channels (the colour cast is
/// modelled separately).
pub fn camera_from_srgb(camera_from_xyz: [i16; 9]) -> [[f32; 3]; 3] {
    let mut m = [[0.0f32; 3]; 3];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (0..3)
                .map(|k| camera_from_xyz[r * 3 + k] as f32 / 10_000.0 * XYZ_FROM_SRGB[k][c])
                .sum();
        }
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    m
}

/// Inverse of a 3x3 matrix (the identity for a singular one).
pub fn invert3(m: [[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-9 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    [
        [
            c(1, 1, 2, 2) / det,
            -c(0, 1, 2, 2) / det,
            c(0, 1, 1, 2) / det,
        ],
        [
            -c(1, 0, 2, 2) / det,
            c(0, 0, 2, 2) / det,
            -c(0, 0, 1, 2) / det,
        ],
        [
            c(1, 0, 2, 1) / det,
            -c(0, 0, 2, 1) / det,
            c(0, 0, 1, 1) / det,
        ],
    ]
}

/// Deterministic noise: splitmix64 and Box-Muller. Hand-written on purpose:
/// recordings and tests must give the same frames on every platform and
/// every version, which general-purpose RNG crates do not promise.
struct Noise(u64);

impl Noise {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }
    /// A standard normal sample.
    fn gauss(&mut self) -> f32 {
        let (a, b) = (self.uniform(), self.uniform());
        (-2.0 * a.ln()).sqrt() * (std::f32::consts::TAU * b).cos()
    }
}

#[derive(Debug)]
pub struct SyntheticSource {
    scene: Scene,
    fmt: RawFormat,
    pub model: SensorModel,
    /// Camera signal per pixel (its CFA channel) at 10 ms, gain 1, no noise.
    base: Vec<f32>,
    samples: Vec<u16>,
    frame: u64,
    exposure_us: f32,
    gain: f32,
    /// Control writes waiting to take effect: (frame they apply at, controls).
    pending: VecDeque<(u64, Vec<Control>)>,
    pub frame_limit: Option<u64>,
}

impl SyntheticSource {
    pub fn new(scene: Scene, fmt: RawFormat) -> Self {
        Self::with_model(scene, fmt, SensorModel::default())
    }

    pub fn with_model(scene: Scene, fmt: RawFormat, model: SensorModel) -> Self {
        let (w, h) = (fmt.width as usize, fmt.height as usize);
        let mut base = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let t = scene.truth(x, y, w, h);
                let c = fmt.bayer.color_at(x, y).rgb();
                let m = model.crosstalk[c];
                let cam = (m[0] * t[0] + m[1] * t[1] + m[2] * t[2]).max(0.0) * model.cast[c];
                let dx = (x as f32 + 0.5) / w as f32 * 2.0 - 1.0;
                let dy = (y as f32 + 0.5) / h as f32 * 2.0 - 1.0;
                let vig = 1.0 / (1.0 + model.vignetting * (dx * dx + dy * dy) / 2.0);
                base[y * w + x] = cam * vig * model.sensitivity;
            }
        }
        SyntheticSource {
            scene,
            fmt,
            model,
            base,
            samples: vec![0; w * h],
            frame: 0,
            exposure_us: 10_000.0,
            gain: 1.0,
            pending: VecDeque::new(),
            frame_limit: None,
        }
    }

    pub fn scene(&self) -> Scene {
        self.scene
    }

    /// Scene-linear sRGB ground truth, interleaved, one triple per pixel.
    pub fn ground_truth(&self) -> Vec<f32> {
        let (w, h) = (self.fmt.width as usize, self.fmt.height as usize);
        (0..w * h)
            .flat_map(|i| self.scene.truth(i % w, i / w, w, h))
            .collect()
    }

    /// Exposure and gain in effect for the next frame.
    pub fn exposure(&self) -> (f32, f32) {
        (self.exposure_us, self.gain)
    }

    /// Render frame `n` with the current exposure into 16-bit samples.
    fn render(&mut self, n: u64) {
        use rayon::prelude::*;
        let (w, max) = (self.fmt.width as usize, self.fmt.max_value() as f32);
        let m = &self.model;
        let bl = m.black_level as f32;
        let range = max - bl;
        let scale = self.exposure_us / 10_000.0 * self.gain;
        let gain = self.gain;
        let seed = m.seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407);
        let base = &self.base;
        self.samples
            .par_chunks_mut(w)
            .enumerate()
            .for_each(|(y, row)| {
                let mut rng = Noise(seed ^ (y as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25));
                for (x, o) in row.iter_mut().enumerate() {
                    let signal = (base[y * w + x] * scale).min(1.5);
                    // Electrons at this gain: shot noise is Poisson, ~ sqrt(e).
                    let e = signal * m.full_well / gain;
                    let e = (e + e.max(0.0).sqrt() * rng.gauss()).max(0.0);
                    let dn = e * gain / m.full_well * range + bl + m.read_noise * rng.gauss();
                    *o = (dn + 0.5).clamp(0.0, max) as u16;
                }
            });
    }
}

impl FrameSource for SyntheticSource {
    fn name(&self) -> String {
        format!("synthetic:{}", self.scene.name())
    }
    fn format(&self) -> RawFormat {
        self.fmt
    }
    fn frame_count(&self) -> Option<u64> {
        self.frame_limit
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        if self.frame_limit.is_some_and(|l| self.frame >= l) {
            return Ok(None);
        }
        let n = self.frame;
        while self.pending.front().is_some_and(|p| p.0 <= n) {
            if let Some((_, controls)) = self.pending.pop_front() {
                for c in controls {
                    match c {
                        Control::ExposureUs(e) => self.exposure_us = e.clamp(10.0, 1_000_000.0),
                        Control::AnalogueGain(g) => self.gain = g.clamp(1.0, 64.0),
                    }
                }
            }
        }
        self.render(n);
        pack(&self.fmt, &self.samples, dst).map_err(|e| SourceError::Invalid {
            path: self.name(),
            message: e.to_string(),
        })?;
        self.frame += 1;
        Ok(Some(FrameMeta {
            sequence: n,
            timestamp_ns: (n as f64 * 1e9 / self.model.fps as f64) as u64,
            exposure_us: self.exposure_us,
            analogue_gain: self.gain,
            ..Default::default()
        }))
    }
    fn seek(&mut self, index: u64) -> Result<(), SourceError> {
        self.frame = index;
        Ok(())
    }
    fn set_controls(&mut self, controls: &[Control]) -> Result<(), SourceError> {
        for c in controls {
            self.pending
                .push_back((self.frame + self.model.delays.of(c), vec![*c]));
        }
        self.pending.make_contiguous().sort_by_key(|p| p.0);
        Ok(())
    }
    fn fps(&self) -> Option<f32> {
        Some(self.model.fps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::unpack::unpack;
    use crate::types::{BayerOrder, Packing};

    #[test]
    fn frames_are_deterministic_and_noisy() {
        let fmt = RawFormat::new(64, 48, 10, BayerOrder::Rggb, Packing::Csi2);
        let mut a = SyntheticSource::new(Scene::Flat, fmt);
        let mut b = SyntheticSource::new(Scene::Flat, fmt);
        let mut fa = vec![0u8; fmt.frame_bytes()];
        let mut fb = vec![0u8; fmt.frame_bytes()];
        a.next_frame(&mut fa).unwrap();
        b.next_frame(&mut fb).unwrap();
        assert_eq!(fa, fb);
        let mut f2 = vec![0u8; fmt.frame_bytes()];
        a.next_frame(&mut f2).unwrap();
        assert_ne!(fa, f2, "noise differs frame to frame");
        let mut px = vec![0u16; fmt.pixels()];
        unpack(&fmt, &fa, &mut px).unwrap();
        // Green at the centre: 0.18 * 0.5 of the range above the pedestal.
        let g = px[24 * 64 + 33] as f32;
        let want = 64.0 + 0.18 * 0.5 * 959.0 / (1.0 + 0.4 * (1.0f32 / 64.0).powi(2));
        assert!((g - want).abs() < 12.0, "{g} vs {want}");
    }

    #[test]
    fn controls_take_effect_after_the_delay() {
        let fmt = RawFormat::new(16, 16, 12, BayerOrder::Rggb, Packing::Plain);
        let mut s = SyntheticSource::new(Scene::Flat, fmt);
        let mut buf = vec![0u8; fmt.frame_bytes()];
        s.set_controls(&[Control::ExposureUs(20_000.0)]).unwrap();
        let m0 = s.next_frame(&mut buf).unwrap().unwrap();
        let m1 = s.next_frame(&mut buf).unwrap().unwrap();
        let m2 = s.next_frame(&mut buf).unwrap().unwrap();
        assert_eq!(
            (m0.exposure_us, m1.exposure_us, m2.exposure_us),
            (10_000.0, 10_000.0, 20_000.0)
        );
    }

    #[test]
    fn inverse_is_an_inverse() {
        let m = crate::stages::ccm::CcmParams::default().matrix;
        let i = invert3(m);
        for r in 0..3 {
            for c in 0..3 {
                let v: f32 = (0..3).map(|k| m[r][k] * i[k][c]).sum();
                assert!((v - if r == c { 1.0 } else { 0.0 }).abs() < 1e-5);
            }
        }
    }
}
