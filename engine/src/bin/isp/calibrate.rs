//! `isp calibrate`: black level, lens shading, CCMs per colour temperature,
//! the CT curve and the noise from captures (any source: DNG files or
//! folders, raw files, sessions; each source's frames averaged), written as
//! a tuning file and a report (`report.json`, `report.html`). `--synthetic`
//! calibrates a rendered set with known truth and says how close it came.

use crate::Res;
use isp_engine::calibrate::{self, Capture, Inputs, Lit, synthetic};
use isp_engine::sources::{self, SourceOptions};
use isp_engine::tuning::Tuning;
use std::path::Path;

/// What the command line asked for.
pub struct Args {
    pub darks: Vec<String>,
    pub flats: Vec<String>,
    pub charts: Vec<String>,
    pub burst: Option<String>,
    pub corners: Vec<String>,
    pub grid: Option<String>,
    pub max_gain: Option<f32>,
    pub synthetic: bool,
}

/// `SRC@CT` -> (SRC, CT).
fn split_ct(s: &str) -> Result<(String, Option<f32>), String> {
    match s.rsplit_once('@') {
        Some((src, ct)) => {
            let k = ct
                .trim_end_matches(['K', 'k'])
                .parse::<f32>()
                .ok()
                .filter(|v| *v >= 1000.0 && *v <= 25000.0)
                .ok_or_else(|| {
                    format!("{s}: `{ct}` is not a colour temperature (1000 to 25000 K)")
                })?;
            Ok((src.to_string(), Some(k)))
        }
        None => Ok((s.to_string(), None)),
    }
}

fn load(spec: &str, opts: &SourceOptions) -> Result<Capture, String> {
    sources::read_capture(spec, opts, 256).map_err(|e| e.to_string())
}

fn parse_corners(s: &str) -> Result<[[f32; 2]; 4], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<f32>()
                .map_err(|_| format!("--corners {s}: `{w}` is not a number"))
        })
        .collect::<Result<_, _>>()?;
    if v.len() != 8 {
        return Err(format!(
            "--corners {s}: needs 8 numbers (x,y of patches 1, 6, 19, 24)"
        ));
    }
    Ok([[v[0], v[1]], [v[2], v[3]], [v[4], v[5]], [v[6], v[7]]])
}

pub fn calibrate(a: Args, opts: &SourceOptions, out: &Path, base: Tuning) -> Res {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let grid = a
        .grid
        .as_deref()
        .map(|g| {
            g.split_once('x')
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                .ok_or_else(|| format!("--grid {g}: give WxH, e.g. 17x13"))
        })
        .transpose()?;
    let (tuning, report, accuracy) = if a.synthetic {
        let s = synthetic::SynthSensor::default();
        let (t, r, acc) = synthetic::calibrate_and_measure(&s, &base)?;
        (t, r, Some(acc))
    } else {
        let mut inputs = Inputs {
            grid,
            max_gain: a.max_gain,
            ..Default::default()
        };
        for d in &a.darks {
            inputs.darks.push(load(d, opts)?);
        }
        for f in &a.flats {
            let (src, ct) = split_ct(f)?;
            inputs.flats.push(Lit {
                capture: load(&src, opts)?,
                ct,
            });
        }
        for c in &a.charts {
            let (src, ct) = split_ct(c)?;
            inputs.charts.push(Lit {
                capture: load(&src, opts)?,
                ct,
            });
        }
        if a.corners.len() > inputs.charts.len() {
            return Err("more --corners than --chart captures".into());
        }
        inputs.corners = a
            .corners
            .iter()
            .map(|c| parse_corners(c).map(Some))
            .collect::<Result<_, _>>()?;
        if let Some(b) = &a.burst {
            inputs.burst = burst_frames(b, opts, 64)?;
        }
        if inputs.darks.is_empty()
            && inputs.flats.is_empty()
            && inputs.charts.is_empty()
            && inputs.burst.is_empty()
        {
            return Err("nothing to calibrate from: give --dark, --flat, --chart or --burst (or --synthetic)".into());
        }
        let (t, r) = calibrate::run(&inputs, &base)?;
        (t, r, None)
    };
    let tp = out.join("tuning.json");
    tuning.save(&tp).map_err(|e| e.to_string())?;
    let mut json = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    if let Some(acc) = &accuracy {
        json["accuracy"] = serde_json::to_value(acc).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    let rp = out.join("report.json");
    std::fs::write(&rp, text + "\n").map_err(|e| format!("{}: {e}", rp.display()))?;
    let hp = out.join("report.html");
    std::fs::write(
        &hp,
        calibrate::report::html(&report, Some(&tuning.stages.lens_shading)),
    )
    .map_err(|e| format!("{}: {e}", hp.display()))?;
    for w in &report.warnings {
        eprintln!("isp: warning: {w}");
    }
    let summary = serde_json::json!({
        "tuning": tp.display().to_string(),
        "report": rp.display().to_string(),
        "page": hp.display().to_string(),
        "applied": report.applied,
        "charts": report.charts.iter().map(|c| serde_json::json!({
            "name": c.name, "ct": c.ct, "found": c.found.method,
            "mean_de2000": c.after.mean, "max_de2000": c.after.max,
        })).collect::<Vec<_>>(),
        "accuracy": accuracy,
        "warnings": report.warnings,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// A burst: each frame of `spec` a capture of its own.
fn burst_frames(spec: &str, opts: &SourceOptions, n: u64) -> Result<Vec<Capture>, String> {
    let mut src = sources::open(Some(spec), opts).map_err(|e| e.to_string())?;
    let fmt = src.format();
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let mut raw = vec![0u8; fmt.frame_bytes()];
    let mut row = vec![0u16; w];
    let mut out = Vec::new();
    for i in 0..n {
        let Some(meta) = src.next_frame(&mut raw).map_err(|e| e.to_string())? else {
            break;
        };
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            let st = y * fmt.stride as usize;
            isp_engine::stages::unpack::unpack_row(
                &fmt,
                &raw[st..st + fmt.min_stride() as usize],
                &mut row,
            );
            data.extend(row.iter().map(|&v| v as f32));
        }
        out.push(Capture {
            name: format!("{} frame {i}", src.name()),
            width: w,
            height: h,
            cfa: fmt.bayer,
            data,
            white_level: fmt.max_value() as f32,
            exposure_us: meta.exposure_us,
            analogue_gain: meta.analogue_gain,
            frames: 1,
            black: None,
        });
    }
    if out.len() < 2 {
        return Err(format!("{spec}: a burst needs 2 or more frames"));
    }
    Ok(out)
}
