//! Calibration captures with known truth: a sensor with a known response to
//! XYZ (`cam_from_xyz`), lens shading (`1 / (1 + k r^2)` per site, r = 1 at
//! the corners), a pedestal per site, and shot and read noise; dark frames,
//! flat fields and the ColorChecker (its published Lab values under D50,
//! carried to the illuminant's white by Bradford) under a light of a given
//! colour temperature. What `isp calibrate --synthetic` and the accuracy
//! tests calibrate from.

use super::Capture;
use super::colour::{COLORCHECKER_24, D50_XYZ, bradford, lab_to_xyz};
use crate::tuning::SensorNoise;
use crate::types::BayerOrder;

/// A sensor whose every property is known.
#[derive(Clone, Debug)]
pub struct SynthSensor {
    pub width: usize,
    pub height: usize,
    pub cfa: BayerOrder,
    pub bits: u8,
    pub black: [f32; 4],
    /// Camera RGB of XYZ (Y = 1 -> a camera value of about 1).
    pub cam_from_xyz: [[f64; 3]; 3],
    /// Per site `k`: the corners get `1 / (1 + k)` of the centre's light.
    pub falloff: [f32; 4],
    /// At unity gain.
    pub noise: SensorNoise,
    pub gain: f32,
    pub seed: u64,
}

impl Default for SynthSensor {
    fn default() -> Self {
        SynthSensor {
            width: 1280,
            height: 960,
            cfa: BayerOrder::Grbg,
            bits: 12,
            black: [255.0, 256.5, 257.0, 254.0],
            cam_from_xyz: [[0.9, 0.25, -0.2], [-0.25, 1.15, 0.05], [0.05, -0.05, 0.95]],
            falloff: [0.75, 0.6, 0.62, 0.5],
            noise: SensorNoise {
                shot: [0.30, 0.28, 0.28, 0.32],
                read: [4.0, 4.2, 4.1, 3.9],
            },
            gain: 2.0,
            seed: 7,
        }
    }
}

/// Where the chart sits: its centre (fractions of the frame), its width (a
/// fraction of the frame's) and its rotation (degrees).
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub cx: f64,
    pub cy: f64,
    pub width: f64,
    pub angle_deg: f64,
}

/// A placed chart's size (`cw` x `ch`), patch side `s` and `gap`, the sine
/// and cosine of its rotation and its centre (`ox`, `oy`).
struct ChartGeometry {
    cw: f64,
    ch: f64,
    s: f64,
    gap: f64,
    sn: f64,
    cs: f64,
    ox: f64,
    oy: f64,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            cx: 0.5,
            cy: 0.52,
            width: 0.62,
            angle_deg: 4.0,
        }
    }
}

/// The white point (XYZ, Y = 1) of a light of colour temperature `ct`: the
/// CIE daylight locus from 4000 K, the Planckian locus (Kim et al.'s
/// approximation) below.
pub fn white_of_ct(ct: f64) -> [f64; 3] {
    let t = ct.clamp(1667.0, 25000.0);
    let (x, y) = if t >= 4000.0 {
        let x = if t <= 7000.0 {
            -4.6070e9 / t.powi(3) + 2.9678e6 / t.powi(2) + 0.09911e3 / t + 0.244063
        } else {
            -2.0064e9 / t.powi(3) + 1.9018e6 / t.powi(2) + 0.24748e3 / t + 0.237040
        };
        (x, -3.0 * x * x + 2.87 * x - 0.275)
    } else {
        let x = -0.2661239e9 / t.powi(3) - 0.2343589e6 / t.powi(2) + 0.8776956e3 / t + 0.179910;
        let y = if t <= 2222.0 {
            -1.1063814 * x.powi(3) - 1.34811020 * x * x + 2.18555832 * x - 0.20219683
        } else {
            -0.9549476 * x.powi(3) - 1.37418593 * x * x + 2.09137015 * x - 0.16748867
        };
        (x, y)
    };
    [x / y, 1.0, (1.0 - x - y) / y]
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn mat_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2])
}

impl SynthSensor {
    pub fn white_level(&self) -> f32 {
        ((1u32 << self.bits) - 1) as f32
    }

    /// The camera's response (per site, above black, before shading and
    /// gain) to a surface of XYZ `xyz`.
    fn site_values(&self, xyz: [f64; 3]) -> [f64; 4] {
        let c = mat_vec(&self.cam_from_xyz, xyz);
        [c[0], c[1], c[1], c[2]]
    }

    /// The light reaching site `s` at (x, y), as a fraction of the centre's.
    pub fn shading(&self, s: usize, x: usize, y: usize) -> f64 {
        let dx = (x as f64 / (self.width - 1) as f64) * 2.0 - 1.0;
        let dy = (y as f64 / (self.height - 1) as f64) * 2.0 - 1.0;
        let r2 = (dx * dx + dy * dy) / 2.0;
        1.0 / (1.0 + self.falloff[s] as f64 * r2)
    }

    /// Render `frames` frames of a scene (`scene(x, y)`: per-site camera
    /// values, 1 = the range above black at unity gain... before shading),
    /// averaged into one capture.
    fn render(
        &self,
        name: &str,
        frames: usize,
        seed: u64,
        scene: &dyn Fn(usize, usize) -> [f64; 4],
    ) -> Capture {
        let white = self.white_level();
        let range = (white - self.black.iter().cloned().fold(0.0, f32::max)) as f64;
        let g = self.gain as f64;
        let mut rng = Rng(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed ^ 0x5DEE_CE66);
        let mut data = vec![0.0f32; self.width * self.height];
        for _ in 0..frames.max(1) {
            for y in 0..self.height {
                for x in 0..self.width {
                    let s = self.cfa.color_at(x, y).index();
                    let signal = (scene(x, y)[s] * self.shading(s, x, y) * range).max(0.0);
                    let var =
                        self.noise.shot[s] as f64 * g * signal + self.noise.read[s] as f64 * g * g;
                    let v = (self.black[s] as f64 + signal + var.sqrt() * rng.gauss())
                        .round()
                        .clamp(0.0, white as f64);
                    data[y * self.width + x] += v as f32;
                }
            }
        }
        let n = frames.max(1) as f32;
        data.iter_mut().for_each(|v| *v /= n);
        Capture {
            name: name.to_string(),
            width: self.width,
            height: self.height,
            cfa: self.cfa,
            data,
            white_level: white,
            exposure_us: 10_000.0,
            analogue_gain: self.gain,
            frames: frames.max(1),
            black: None,
        }
    }

    /// Dark frames averaged (a few hot pixels in them).
    pub fn dark(&self, frames: usize) -> Capture {
        let mut c = self.render("synthetic dark", frames, 1, &|_, _| [0.0; 4]);
        for i in 0..24 {
            let at = (i * 7919 * 31 + 17) % c.data.len();
            c.data[at] = self.white_level() * 0.8;
        }
        c
    }

    /// A flat field lit at `ct`, the centre's green at `level` of the range.
    pub fn flat(&self, ct: f64, level: f64, frames: usize) -> Capture {
        let w = white_of_ct(ct);
        let v = self.site_values(w);
        let k = level / v[1];
        self.render(
            &format!("synthetic flat {ct:.0} K"),
            frames,
            2 + ct as u64,
            &|_, _| v.map(|x| x * k),
        )
    }

    /// The ColorChecker lit at `ct` on a dark grey background; its white
    /// patch's green at about 0.8 of the range.
    pub fn chart(&self, ct: f64, place: Placement, frames: usize, seed: u64) -> Capture {
        let to_ct = bradford(D50_XYZ, white_of_ct(ct));
        let patch: Vec<[f64; 4]> = COLORCHECKER_24
            .iter()
            .map(|(_, lab)| self.site_values(mat_vec(&to_ct, lab_to_xyz(*lab, D50_XYZ))))
            .collect();
        let grey = |l: f64| self.site_values(mat_vec(&to_ct, lab_to_xyz([l, 0.0, 0.0], D50_XYZ)));
        let (body, back) = (grey(18.0), grey(40.0));
        let k = 0.8 / patch[18][1];
        let ChartGeometry {
            cw,
            ch,
            s,
            gap,
            sn,
            cs,
            ox,
            oy,
        } = self.geometry(place);
        let scene = move |x: usize, y: usize| -> [f64; 4] {
            let (dx, dy) = (x as f64 - ox, y as f64 - oy);
            // Into the chart's frame.
            let (u, v) = (dx * cs + dy * sn + cw / 2.0, -dx * sn + dy * cs + ch / 2.0);
            let v4 = if u < 0.0 || v < 0.0 || u >= cw || v >= ch {
                back
            } else {
                let (cu, cv) = ((u - gap) / (s + gap), (v - gap) / (s + gap));
                let (i, j) = (cu.floor(), cv.floor());
                let inside = cu - i < s / (s + gap) && cv - j < s / (s + gap);
                if inside && (0.0..6.0).contains(&i) && (0.0..4.0).contains(&j) {
                    patch[j as usize * 6 + i as usize]
                } else {
                    body
                }
            };
            v4.map(|x| x * k)
        };
        self.render(
            &format!("synthetic chart {ct:.0} K"),
            frames,
            3 + seed + ct as u64,
            &scene,
        )
    }

    /// A chart placed at `place`: its size, patch side and gap, rotation
    /// and centre, in capture pixels.
    fn geometry(&self, place: Placement) -> ChartGeometry {
        let (w, h) = (self.width as f64, self.height as f64);
        let cw = place.width * w;
        let s = cw / (6.0 + 7.0 * 0.25);
        let gap = 0.25 * s;
        let (sn, cs) = place.angle_deg.to_radians().sin_cos();
        ChartGeometry {
            cw,
            ch: 4.0 * s + 5.0 * gap,
            s,
            gap,
            sn,
            cs,
            ox: place.cx * w,
            oy: place.cy * h,
        }
    }

    /// Where the centres of the 24 patches of a chart placed at `place`
    /// fall, in capture pixels (patch 1 first, row by row).
    pub fn chart_centres(&self, place: Placement) -> Vec<[f64; 2]> {
        let ChartGeometry {
            cw,
            ch,
            s,
            gap,
            sn,
            cs,
            ox,
            oy,
        } = self.geometry(place);
        (0..24)
            .map(|k| {
                let (i, j) = ((k % 6) as f64, (k / 6) as f64);
                // In the chart's frame, then back by the inverse rotation.
                let u = gap + i * (s + gap) + s / 2.0 - cw / 2.0;
                let v = gap + j * (s + gap) + s / 2.0 - ch / 2.0;
                [ox + u * cs - v * sn, oy + u * sn + v * cs]
            })
            .collect()
    }

    /// `n` single frames of the chart at `ct` (a burst for the noise).
    pub fn burst(&self, ct: f64, n: usize) -> Vec<Capture> {
        (0..n)
            .map(|i| {
                let mut c = self.chart(ct, Placement::default(), 1, 100 + i as u64);
                c.name = format!("synthetic burst {i}");
                c
            })
            .collect()
    }

    /// The true lens-shading gain of site `s` at (x, y) (1 at the centre).
    pub fn true_gain(&self, s: usize, x: usize, y: usize) -> f64 {
        1.0 / self.shading(s, x, y)
    }
}

/// How close a calibration of synthetic captures came to their truth.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Accuracy {
    /// Largest |written - true| black level over the sites (DN): the
    /// levels as the calibrated tuning holds them (whole DN), not the
    /// report's measurement.
    pub black_error_dn: f32,
    /// Largest residual shading (relative) on a fresh flat at each CT,
    /// after the calibrated correction.
    pub shading_residual: f32,
    /// Per chart CT: mean and max dE2000 of a fresh chart capture (another
    /// placement and noise) developed with the calibrated CCM for its CT.
    pub charts: Vec<(f32, f64, f64)>,
    /// Largest relative error of the shot and of the read noise over sites.
    pub shot_error: f32,
    pub read_error: f32,
}

/// The colour temperatures the synthetic set is lit at.
pub const CTS: [f64; 3] = [2856.0, 4100.0, 6500.0];

/// Render a full set (darks, flats at two CTs, charts at three, a burst),
/// calibrate `base` from it and hold the result to the truth.
pub fn calibrate_and_measure(
    s: &SynthSensor,
    base: &crate::tuning::Tuning,
) -> Result<(crate::tuning::Tuning, super::Report, Accuracy), String> {
    use super::{Inputs, Lit};
    let lit = |c: Capture, ct: f64| Lit {
        capture: c,
        ct: Some(ct as f32),
    };
    let inputs = Inputs {
        darks: vec![s.dark(16)],
        flats: [3000.0, 6500.0]
            .iter()
            .map(|&ct| lit(s.flat(ct, 0.6, 4), ct))
            .collect(),
        charts: CTS
            .iter()
            .map(|&ct| lit(s.chart(ct, Placement::default(), 4, 0), ct))
            .collect(),
        burst: s.burst(5000.0, 8),
        ..Default::default()
    };
    let (t, rep) = super::run(&inputs, base)?;
    let black_error_dn = t
        .stages
        .black_level
        .levels
        .iter()
        .zip(s.black)
        .map(|(&written, truth)| (written as f32 - truth).abs())
        .fold(0.0, f32::max);
    let pedestal = rep.black.as_ref().map(|b| b.levels).unwrap_or(s.black);
    let mut shading_residual = 0.0f32;
    for ct in [3000.0, 6500.0] {
        let mut fresh = s.clone();
        fresh.seed += 1000;
        let (_, max, _) = super::lsc::residual(
            &fresh.flat(ct, 0.6, 4),
            pedestal,
            Some(&t.stages.lens_shading),
        );
        shading_residual = max.iter().cloned().fold(shading_residual, f32::max);
    }
    let mut charts = Vec::new();
    for &ct in &CTS {
        let mut fresh = s.clone();
        fresh.seed += 2000;
        let place = Placement {
            cx: 0.47,
            cy: 0.5,
            width: 0.7,
            angle_deg: -3.0,
        };
        let c = fresh.chart(ct, place, 4, 9);
        let found = super::chart::detect(&c, pedestal)?;
        let m = super::chart::measure(&c, &found, pedestal, Some(&t.stages.lens_shading));
        let matrix = t.stages.ccm.for_ct(ct as f32);
        // Developed as the pipeline would: its own grey balance, the CCM for
        // its CT; the fit is only used for its dE accounting.
        let f = super::fit::fit_chart(&c.name, Some(ct as f32), found, m, &matrix)?;
        charts.push((ct as f32, f.before.mean, f.before.max));
    }
    let (mut shot_error, mut read_error) = (0.0f32, 0.0f32);
    if let Some(n) = &t.noise {
        for i in 0..4 {
            shot_error = shot_error.max((n.shot[i] / s.noise.shot[i] - 1.0).abs());
            read_error = read_error.max((n.read[i] / s.noise.read[i] - 1.0).abs());
        }
    }
    Ok((
        t,
        rep,
        Accuracy {
            black_error_dn,
            shading_residual,
            charts,
            shot_error,
            read_error,
        },
    ))
}
