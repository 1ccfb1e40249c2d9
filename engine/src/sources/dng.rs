//! DNG files as a source: `dng:FILE`, `dng:FOLDER` or a folder of DNGs
//! given as a session. Every file is a still: the engine settles AWB and AE
//! on each frame's own statistics before rendering it. The first file's
//! tags make the source's tuning ([`dng_tuning`]).

use super::{FrameMeta, FrameSource, Levels, SourceError};
use crate::dng::{self, DngImage};
use crate::stages::lens_shading::LensShadingParams;
use crate::tuning::Tuning;
use crate::types::{Packing, RawFormat};
use std::path::{Path, PathBuf};

/// The DNG files of a folder, by name.
pub fn dng_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SourceError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("dng")))
        .collect();
    files.sort();
    // A link to a file outside the folder is refused, as in a session.
    for f in &files {
        super::session::inside(dir, f)?;
    }
    Ok(files)
}

/// The tags of the first DNG of `path` (a file, or a folder's first by
/// name), no samples decoded: what the source's tuning is made from.
pub fn first_tags(path: &Path) -> Result<DngImage, SourceError> {
    let first = if path.is_dir() {
        dng_files(path)?
            .into_iter()
            .next()
            .ok_or_else(|| SourceError::invalid(path, "no .dng files in this folder"))?
    } else {
        path.to_path_buf()
    };
    dng::read_tags(&first).map_err(|e| SourceError::Invalid {
        path: e.path,
        message: e.message,
    })
}

#[derive(Debug)]
pub struct DngSource {
    name: String,
    files: Vec<PathBuf>,
    fmt: RawFormat,
    next: usize,
    /// The first file, decoded while opening (read again at its turn only
    /// after a seek).
    first: Option<DngImage>,
    /// The first file's levels (the source's tuning is made from them).
    levels: Levels,
}

fn read(path: &Path) -> Result<DngImage, SourceError> {
    dng::read(path).map_err(|e| SourceError::Invalid {
        path: e.path,
        message: e.message,
    })
}

/// The engine's format for a DNG: its visible size cut to even, Plain
/// samples of the bit depth that holds the white level.
fn format_of(img: &DngImage) -> RawFormat {
    RawFormat::new(
        (img.width & !1) as u32,
        (img.height & !1) as u32,
        img.bit_depth(),
        img.cfa,
        Packing::Plain,
    )
}

impl DngSource {
    /// One DNG file, or every DNG of a folder (by name).
    pub fn open(path: &Path) -> Result<DngSource, SourceError> {
        let files = if path.is_dir() {
            let f = dng_files(path)?;
            if f.is_empty() {
                return Err(SourceError::invalid(path, "no .dng files in this folder"));
            }
            f
        } else {
            vec![path.to_path_buf()]
        };
        let first = read(&files[0])?;
        let fmt = format_of(&first);
        fmt.validate()
            .map_err(|e| SourceError::invalid(&files[0], format!("bad geometry: {e}")))?;
        let levels = Levels {
            white: first.white_level.min(fmt.max_value() as u32) as f32,
            black: first.black_level,
        };
        Ok(DngSource {
            name: format!("dng:{}", path.display()),
            files,
            fmt,
            next: 0,
            first: Some(first),
            levels,
        })
    }
}

impl FrameSource for DngSource {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn format(&self) -> RawFormat {
        self.fmt
    }
    fn frame_count(&self) -> Option<u64> {
        Some(self.files.len() as u64)
    }
    fn stills(&self) -> bool {
        true
    }
    fn levels(&self) -> Option<Levels> {
        Some(self.levels)
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        let img = match (self.next, self.first.take()) {
            (0, Some(i)) => i,
            _ => read(path)?,
        };
        let f = format_of(&img);
        if (f.width, f.height, f.bayer) != (self.fmt.width, self.fmt.height, self.fmt.bayer)
            || f.bits > self.fmt.bits
        {
            return Err(SourceError::invalid(
                path,
                format!(
                    "{} differs from the first file's {} (a folder's DNGs must share one sensor mode)",
                    f.describe(),
                    self.fmt.describe()
                ),
            ));
        }
        let (w, h) = (f.width as usize, f.height as usize);
        let max = self.fmt.max_value();
        let stride = self.fmt.stride as usize;
        for y in 0..h {
            let src = &img.data[y * img.width..y * img.width + w];
            let row = &mut dst[y * stride..];
            if self.fmt.bits == 8 {
                for (o, v) in row.iter_mut().zip(src) {
                    *o = (*v).min(max) as u8;
                }
            } else {
                for (o, v) in row.chunks_exact_mut(2).zip(src) {
                    o.copy_from_slice(&(*v).min(max).to_le_bytes());
                }
            }
        }
        let i = self.next as u64;
        self.next += 1;
        Ok(Some(FrameMeta {
            sequence: i,
            timestamp_ns: i * 33_333_333,
            exposure_us: img.exposure_time.map_or(0.0, |t| (t * 1e6) as f32),
            // ISO 100 taken as unity gain.
            analogue_gain: img.iso.map_or(1.0, |iso| (iso / 100.0).max(0.01) as f32),
            ..Default::default()
        }))
    }
    fn seek(&mut self, index: u64) -> Result<(), SourceError> {
        if index as usize >= self.files.len() {
            return Err(SourceError::Spec(format!(
                "{}: frame {index} is past the last file ({})",
                self.name,
                self.files.len()
            )));
        }
        self.next = index as usize;
        self.first = None;
        Ok(())
    }
}

/// `base` with what a DNG says about its sensor: black and white levels,
/// the CCM (of its daylight ColorMatrix, or of the whole camera profile at
/// the as-shot white balance: [`DngImage::colour_for_neutral`]), the
/// BaselineExposure as the tone's exposure, white-balance gains from
/// AsShotNeutral (and AWB turned off: the file's balance is the one it
/// opens with), lens shading from OpcodeList2's
/// GainMaps. Also what was not taken, one line each.
pub fn dng_tuning(img: &DngImage, base: &Tuning) -> (Tuning, Vec<String>) {
    let mut t = base.clone();
    let mut notes = img.notes.clone();
    let white = img.white_level.min(u16::MAX as u32) as u16;
    t.stages.black_level.enabled = true;
    t.stages.black_level.levels = img
        .black_level
        .map(|b| b.round().clamp(0.0, white.max(1) as f32 - 1.0) as u16);
    t.stages.black_level.white_level = Some(white);
    // A profile with two calibrations, a ForwardMatrix, CameraCalibration
    // or AnalogBalance is taken as the specification's chapter 6 says, at
    // the as-shot white balance; a single plain ColorMatrix as dcraw and
    // LibRaw take it.
    let spec = img.color_matrices.len() > 1
        || img.forward_matrices.iter().any(Option::is_some)
        || img.camera_calibrations.iter().any(Option::is_some)
        || img.analog_balance.is_some();
    let spec_colour = img
        .as_shot_neutral
        .filter(|_| spec)
        .and_then(|n| img.colour_for_neutral(n));
    if let Some(c) = spec_colour {
        notes.push(format!(
            "colour: the camera profile at the as-shot white balance ({:.0} K, DNG chapter 6)",
            c.ct
        ));
    }
    if let Some(ev) = img.baseline_exposure {
        let k = 2f64.powf(ev).clamp(1.0 / 64.0, 64.0) as f32;
        t.stages.tone.exposure = k;
    }
    match spec_colour.map(|c| c.ccm).or_else(|| {
        img.daylight_matrix()
            .and_then(|m| dng::ccm_from_color_matrix(&m))
    }) {
        Some(ccm) => {
            t.stages.ccm.enabled = true;
            t.stages.ccm.matrix = ccm.map(|r| r.map(|v| v as f32));
        }
        None if img.color_matrices.is_empty() => {
            notes.push("no ColorMatrix: the CCM is left as it was".into())
        }
        None => notes.push("the ColorMatrix is singular: the CCM is left as it was".into()),
    }
    if let Some(n) = img.as_shot_neutral {
        t.stages.white_balance.gains = [
            (n[1] / n[0]).clamp(0.0, 16.0) as f32,
            1.0,
            (n[1] / n[2]).clamp(0.0, 16.0) as f32,
        ];
        // The file's white balance is the one it opens with, as LibRaw,
        // darktable and Lightroom do; an AWB is a choice made after.
        let awb: Vec<String> = t
            .algorithms
            .iter_mut()
            .filter(|a| a.enabled && a.name.starts_with("awb."))
            .map(|a| {
                a.enabled = false;
                a.name.clone()
            })
            .collect();
        if !awb.is_empty() {
            notes.push(format!(
                "AsShotNeutral is the white balance: {} off (turn it on to estimate one)",
                awb.join(", ")
            ));
        }
    }
    if let Some(lsc) = lens_shading_of(img) {
        t.stages.lens_shading = lsc;
    }
    // What the file says must still be a tuning this build accepts: a part
    // that is not goes back to the base's, and says why.
    let st = &mut t.stages;
    if let Err(e) = st.ccm.check() {
        notes.push(format!(
            "the ColorMatrix gives a CCM out of range ({e}): the CCM is left as it was"
        ));
        st.ccm = base.stages.ccm.clone();
    }
    if let Err(e) = st.white_balance.check() {
        notes.push(format!(
            "AsShotNeutral gives white balance out of range ({e}): left as it was"
        ));
        st.white_balance = base.stages.white_balance.clone();
    }
    if let Err(e) = st.lens_shading.check() {
        notes.push(format!(
            "the GainMaps give lens shading out of range ({e}): left as it was"
        ));
        st.lens_shading = base.stages.lens_shading.clone();
    }
    (t, notes)
}

/// OpcodeList2's GainMaps as the lens-shading grid: one map per CFA site
/// (pitch 2) or one for all (pitch 1), sampled at the grid's points:
/// eight times as many intervals as the maps have (the grid's corners are the
/// frame's, the maps' points sit over their area), at most 64 x 64.
pub fn lens_shading_of(img: &DngImage) -> Option<LensShadingParams> {
    if img.gain_maps.is_empty() {
        return None;
    }
    let dense = |n: u32| (8 * n.saturating_sub(1) + 1).clamp(2, 64) as usize;
    let gw = dense(img.gain_maps.iter().map(|m| m.points_h).max()?);
    let gh = dense(img.gain_maps.iter().map(|m| m.points_v).max()?);
    let (w, h) = (img.width as f64, img.height as f64);
    let tile = img.cfa.tile();
    let mut gains: [Vec<f32>; 4] = std::array::from_fn(|_| vec![1.0; gw * gh]);
    for (pos, site) in tile.iter().enumerate() {
        let (sx, sy) = ((pos % 2) as u32, (pos / 2) as u32);
        let map = img.gain_maps.iter().find(|m| {
            let hits =
                |start: u32, pitch: u32, s: u32| pitch == 1 || (pitch == 2 && start % 2 == s);
            m.plane == 0 && hits(m.left, m.col_pitch, sx) && hits(m.top, m.row_pitch, sy)
        })?;
        let g = &mut gains[site.index()];
        let (mh, mw) = (
            (map.bottom.saturating_sub(map.top)).max(1) as f64,
            (map.right.saturating_sub(map.left)).max(1) as f64,
        );
        for j in 0..gh {
            for i in 0..gw {
                let x = i as f64 * (w - 1.0) / (gw - 1) as f64;
                let y = j as f64 * (h - 1.0) / (gh - 1) as f64;
                g[j * gw + i] =
                    map.gain_extrapolated((y - map.top as f64) / mh, (x - map.left as f64) / mw);
            }
        }
    }
    Some(LensShadingParams {
        enabled: true,
        grid_width: gw,
        grid_height: gh,
        gains,
    })
}
