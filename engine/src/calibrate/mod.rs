//! Calibration from captures, as Raspberry Pi's CTT and libcamera's
//! libtuning do it: black level from dark frames, lens shading from flat
//! fields, the ColorChecker found and measured, a CCM fitted by CIEDE2000
//! per colour temperature, the colour-temperature curve from the chart's
//! greys, and the sensor's noise from flat patches or a burst. [`run`] takes
//! the captures and a base tuning and gives the calibrated tuning and a
//! [`Report`] (JSON, and `report::html` a page to look at).

pub mod black;
pub mod chart;
pub mod colour;
pub mod fit;
pub mod lsc;
pub mod noise;
pub mod report;
pub mod synthetic;

use crate::tuning::{SensorNoise, Tuning};
use crate::types::{BayerOrder, RawFormat};
use serde::Serialize;

/// One capture: the frames of one source averaged, in sensor units.
#[derive(Clone, Debug)]
pub struct Capture {
    /// Where it came from (a file or source).
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub cfa: BayerOrder,
    /// Row-major samples (frames averaged), sensor units with the pedestal.
    pub data: Vec<f32>,
    pub white_level: f32,
    pub exposure_us: f32,
    pub analogue_gain: f32,
    /// Frames averaged into `data`.
    pub frames: usize,
    /// The pedestal per site the source itself states (a DNG's
    /// BlackLevel), used when no dark frames are given.
    pub black: Option<[f32; 4]>,
}

impl Capture {
    /// One raw frame of `fmt` unpacked into sensor units, white at the
    /// container's full scale and no stated black (a source that states
    /// its levels sets them with [`Capture::with_levels`]); `None` when
    /// `raw` holds less than the format says.
    pub fn from_frame(
        name: String,
        fmt: &RawFormat,
        raw: &[u8],
        exposure_us: f32,
        analogue_gain: f32,
    ) -> Option<Capture> {
        let (w, h) = (fmt.width as usize, fmt.height as usize);
        let mut data = Vec::with_capacity(w * h);
        let mut row = vec![0u16; w];
        for y in 0..h {
            let at = y * fmt.stride as usize;
            crate::stages::unpack::unpack_row(
                fmt,
                raw.get(at..at + fmt.min_stride() as usize)?,
                &mut row,
            );
            data.extend(row.iter().map(|&v| v as f32));
        }
        Some(Capture {
            name,
            width: w,
            height: h,
            cfa: fmt.bayer,
            data,
            white_level: fmt.max_value() as f32,
            exposure_us,
            analogue_gain,
            frames: 1,
            black: None,
        })
    }

    /// The white and per-site black levels its source states (a DNG's).
    pub fn with_levels(mut self, white: f32, black: [f32; 4]) -> Capture {
        self.white_level = white;
        self.black = Some(black);
        self
    }

    /// The site index (`[R, Gr, Gb, B]`) of (x, y).
    #[inline]
    pub fn site(&self, x: usize, y: usize) -> usize {
        self.cfa.color_at(x, y).index()
    }
}

/// A capture and the colour temperature of its light, where it is known.
#[derive(Clone, Debug)]
pub struct Lit {
    pub capture: Capture,
    pub ct: Option<f32>,
}

/// What to calibrate from.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub darks: Vec<Capture>,
    pub flats: Vec<Lit>,
    pub charts: Vec<Lit>,
    /// Frames of one still scene (the temporal noise), and their gain.
    pub burst: Vec<Capture>,
    /// The lens-shading grid (default: the base tuning's).
    pub grid: Option<(usize, usize)>,
    /// The largest lens-shading gain.
    pub max_gain: Option<f32>,
    /// Four patch centres (dark skin, bluish green, white, black) per chart
    /// capture, where automatic detection is not wanted or failed.
    pub corners: Vec<Option<[[f32; 2]; 4]>>,
}

/// Everything a calibration measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub black: Option<black::BlackResult>,
    pub lens_shading: Option<lsc::LscResult>,
    pub charts: Vec<fit::ChartFit>,
    pub ct_curve: Vec<[f32; 3]>,
    pub noise: Option<noise::NoiseResult>,
    /// What the calibrated tuning took, one line each.
    pub applied: Vec<String>,
    pub warnings: Vec<String>,
}

/// Calibrate `base` from `inputs`.
pub fn run(inputs: &Inputs, base: &Tuning) -> Result<(Tuning, Report), String> {
    let mut t = base.clone();
    let mut rep = Report::default();
    // Without dark frames, the captures' own black level (a DNG's tag),
    // else the base tuning's.
    let mut pedestal = inputs
        .flats
        .iter()
        .chain(&inputs.charts)
        .map(|l| &l.capture)
        .chain(&inputs.burst)
        .find_map(|c| c.black)
        .unwrap_or(base.stages.black_level.levels.map(|v| v as f32));

    if !inputs.darks.is_empty() {
        let b = black::black_level(&inputs.darks)?;
        pedestal = b.levels;
        t.stages.black_level.enabled = true;
        t.stages.black_level.levels = b.levels.map(|v| v.round().max(0.0) as u16);
        rep.applied.push(format!(
            "stages.black_level.levels = {:?} (from {} dark frame(s))",
            t.stages.black_level.levels, b.frames
        ));
        if !b.hot.is_empty() {
            t.stages.defect_pixel.enabled = true;
            t.stages.defect_pixel.map = b.hot.clone();
            rep.applied.push(format!(
                "stages.defect_pixel.map = {} hot pixel(s) from the dark frames (defect correction on)",
                b.hot.len()
            ));
        }
        rep.warnings.extend(b.warnings.iter().cloned());
        rep.black = Some(b);
    }

    let mut shading = None;
    if !inputs.flats.is_empty() {
        // The base tuning's grid, unless it is too coarse to hold shading.
        let (bw, bh) = (
            base.stages.lens_shading.grid_width,
            base.stages.lens_shading.grid_height,
        );
        let grid = inputs.grid.unwrap_or(if bw >= 8 && bh >= 6 {
            (bw, bh)
        } else {
            (17, 13)
        });
        let r = lsc::lens_shading(
            &inputs.flats,
            pedestal,
            grid,
            inputs.max_gain.unwrap_or(4.0),
        )?;
        t.stages.lens_shading = r.params.clone();
        rep.applied.push(format!(
            "stages.lens_shading = {}x{} grid (from {} flat field(s))",
            grid.0,
            grid.1,
            inputs.flats.len()
        ));
        rep.warnings.extend(r.warnings.iter().cloned());
        shading = Some(r.params.clone());
        rep.lens_shading = Some(r);
    }

    let mut by_ct = Vec::new();
    for (i, lit) in inputs.charts.iter().enumerate() {
        let corners = inputs.corners.get(i).copied().flatten();
        let found = match corners {
            Some(c) => chart::from_corners(&lit.capture, c)
                .map_err(|e| format!("{}: {e}", lit.capture.name))?,
            None => chart::detect(&lit.capture, pedestal)
                .map_err(|e| format!("{}: {e}", lit.capture.name))?,
        };
        let patches = chart::measure(&lit.capture, &found, pedestal, shading.as_ref());
        let f = fit::fit_chart(
            &lit.capture.name,
            lit.ct,
            found,
            patches,
            &base.stages.ccm.matrix,
        )
        .map_err(|e| format!("{}: {e}", lit.capture.name))?;
        rep.warnings.extend(f.warnings.iter().cloned());
        if let Some(ct) = lit.ct {
            by_ct.push(crate::stages::ccm::CcmAtCt {
                ct,
                matrix: f.ccm.map(|r| r.map(|v| v as f32)),
            });
            rep.ct_curve
                .push([ct, f.grey_rb[0] as f32, f.grey_rb[1] as f32]);
        }
        rep.charts.push(f);
    }
    if let Some(first) = rep.charts.first() {
        by_ct.sort_by(|a, b| a.ct.total_cmp(&b.ct));
        by_ct.dedup_by(|a, b| a.ct == b.ct);
        // The matrix for daylight (nearest 5000 K), or the only chart's.
        let nearest = by_ct
            .iter()
            .min_by(|a, b| (a.ct - 5000.0).abs().total_cmp(&(b.ct - 5000.0).abs()))
            .map(|c| c.matrix)
            .unwrap_or(first.ccm.map(|r| r.map(|v| v as f32)));
        t.stages.ccm.enabled = true;
        t.stages.ccm.matrix = nearest;
        rep.applied.push(format!(
            "stages.ccm.matrix (mean dE2000 {:.2} on {})",
            first.after.mean, first.name
        ));
        if by_ct.len() >= 2 {
            rep.applied.push(format!(
                "stages.ccm.by_ct = {} matrices ({} K)",
                by_ct.len(),
                by_ct
                    .iter()
                    .map(|c| format!("{:.0}", c.ct))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            t.stages.ccm.by_ct = by_ct;
        } else {
            t.stages.ccm.by_ct.clear();
        }
        t.stages.white_balance.gains = [first.wb_gains[0] as f32, 1.0, first.wb_gains[2] as f32];
    }
    rep.ct_curve.sort_by(|a, b| a[0].total_cmp(&b[0]));
    rep.ct_curve.dedup_by(|a, b| a[0] == b[0]);
    if rep.ct_curve.len() >= 2 {
        set_ct_curve(&mut t, &rep.ct_curve);
        rep.applied.push(format!(
            "algorithms: awb.ct_curve with {} points (replacing awb.grey_world)",
            rep.ct_curve.len()
        ));
    } else if rep.ct_curve.len() == 1 {
        rep.warnings.push(
            "one colour temperature: a CT curve needs charts under two or more illuminants".into(),
        );
    }

    let noise = if inputs.burst.len() >= 2 {
        Some(noise::from_burst(&inputs.burst, pedestal)?)
    } else if let (Some(f), Some(lit)) = (rep.charts.first(), inputs.charts.first()) {
        if lit.capture.frames == 1 {
            Some(noise::from_patches(&lit.capture, &f.found, pedestal)?)
        } else {
            // Averaging lowers the temporal noise but not the patches'
            // texture or the sensor's fixed pattern: the patches of an
            // averaged capture would overstate the noise.
            rep.warnings.push(format!(
                "{}: {} frames averaged, so its patches do not measure the noise: give --burst for it",
                lit.capture.name, lit.capture.frames
            ));
            None
        }
    } else {
        None
    };
    if let Some(n) = &noise {
        t.noise = Some(SensorNoise {
            shot: n.shot,
            read: n.read,
        });
        rep.applied.push(format!("noise (from {})", n.source));
        rep.warnings.extend(n.warnings.iter().cloned());
    }
    rep.noise = noise;
    t.check("calibrated tuning").map_err(|e| e.to_string())?;
    Ok((t, rep))
}

/// Put the CT curve into the tuning: an enabled `awb.ct_curve` block (its
/// other parameters kept if there was one), grey world switched off.
fn set_ct_curve(t: &mut Tuning, curve: &[[f32; 3]]) {
    use crate::algorithms::awb_ct::CtCurveAwb;
    let mut found = false;
    for b in &mut t.algorithms {
        if b.name == CtCurveAwb::NAME {
            found = true;
            b.enabled = true;
            if !b.params.is_object() {
                b.params = serde_json::json!({});
            }
            b.params["ct_curve"] = serde_json::json!(curve);
        } else if b.name == crate::algorithms::awb::GreyWorldAwb::NAME {
            b.enabled = false;
        }
    }
    if !found {
        t.algorithms.insert(
            0,
            crate::tuning::AlgorithmBlock {
                name: CtCurveAwb::NAME.into(),
                enabled: true,
                params: serde_json::json!({ "ct_curve": curve }),
            },
        );
    }
}

/// The trimmed mean of `v` (the `trim` fraction dropped at each end).
pub fn trimmed_mean(v: &mut [f32], trim: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    let k = ((v.len() as f32 * trim) as usize).min((v.len() - 1) / 2);
    let s = &v[k..v.len() - k];
    (s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Packing;

    #[test]
    fn a_frame_becomes_a_capture_of_its_samples_or_none_when_short() {
        // 4x2 RAW12 in 16-bit little-endian words, with 4 bytes of row
        // padding: the samples come back in order, white at 4095.
        let mut fmt = RawFormat::new(4, 2, 12, BayerOrder::Gbrg, Packing::Plain);
        fmt.stride = 12;
        let samples = [1u16, 200, 4095, 64, 7, 0, 1000, 2048];
        let mut raw = vec![0xEEu8; 24];
        for (i, s) in samples.iter().enumerate() {
            let at = (i / 4) * 12 + (i % 4) * 2;
            raw[at..at + 2].copy_from_slice(&s.to_le_bytes());
        }
        let c = Capture::from_frame("f".into(), &fmt, &raw, 5000.0, 2.0).unwrap();
        assert_eq!((c.width, c.height, c.cfa), (4, 2, BayerOrder::Gbrg));
        assert_eq!(c.data, samples.map(f32::from));
        assert_eq!(
            (c.white_level, c.exposure_us, c.analogue_gain),
            (4095.0, 5000.0, 2.0)
        );
        assert_eq!((c.frames, c.black), (1, None));
        // The last row's samples end at byte 20: 20 bytes are enough, 19 not.
        assert!(Capture::from_frame("f".into(), &fmt, &raw[..20], 0.0, 1.0).is_some());
        assert!(Capture::from_frame("f".into(), &fmt, &raw[..19], 0.0, 1.0).is_none());
    }
}
