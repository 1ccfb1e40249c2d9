//! `isp calibrate`: black level, lens shading, CCMs per colour temperature,
//! the CT curve and the noise from captures (any source: DNG files or
//! folders, raw files, sessions; each source's frames averaged), written as
//! a tuning file and a report (`report.json`, `report.html`). `--synthetic`
//! calibrates a rendered set with known truth and says how close it came.

use crate::{Res, SourceArgs, opts};
use isp_engine::calibrate::{self, Capture, Inputs, Lit, synthetic};
use isp_engine::sources::{self, SourceOptions};
use isp_engine::tuning::Tuning;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    geometry: SourceArgs,
    /// Dark frames (a source; its frames averaged). Repeatable.
    #[arg(long = "dark")]
    darks: Vec<String>,
    /// A flat field, optionally with its colour temperature: SRC@5000.
    #[arg(long = "flat")]
    flats: Vec<String>,
    /// A ColorChecker capture and its light's colour temperature: SRC@6500.
    #[arg(long = "chart")]
    charts: Vec<String>,
    /// Frames of one still scene, for the temporal noise.
    #[arg(long)]
    burst: Option<String>,
    /// The centres of patches 1, 6, 19, 24 of the n-th --chart, in
    /// pixels: x1,y1,x6,y6,x19,y19,x24,y24.
    #[arg(long)]
    corners: Vec<String>,
    /// The lens-shading grid, WxH (default: the base tuning's).
    #[arg(long)]
    grid: Option<String>,
    /// The largest lens-shading gain (default 4).
    #[arg(long)]
    max_gain: Option<f32>,
    /// The base tuning (default: built in).
    #[arg(long)]
    tuning: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Calibrate a rendered set with known truth and report the accuracy.
    #[arg(long)]
    synthetic: bool,
}

pub fn run(a: Args) -> Res {
    let base = match &a.tuning {
        Some(p) => Tuning::load(p).map_err(|e| e.to_string())?,
        None => Tuning::default(),
    };
    let out = a.out.clone();
    calibrate(&a, &opts(&a.geometry), &out, base)
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

fn calibrate(a: &Args, opts: &SourceOptions, out: &Path, base: Tuning) -> Res {
    let grid = a
        .grid
        .as_deref()
        .map(|g| {
            g.split_once('x')
                .and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)))
                .ok_or_else(|| format!("--grid {g}: give WxH, e.g. 17x13"))
                .and_then(|(w, h)| {
                    if (2..=64).contains(&w) && (2..=64).contains(&h) {
                        Ok((w, h))
                    } else {
                        Err(format!("--grid {g}: each way 2 to 64 points"))
                    }
                })
        })
        .transpose()?;
    if let Some(m) = a.max_gain {
        calibrate::lsc::check_max_gain(m)
            .map_err(|_| format!("--max-gain {m}: a lens-shading gain limit is 1 to 16"))?;
    }
    if a.synthetic {
        // The synthetic set is rendered and calibrated as it is: options
        // that would shape it are refused, not ignored.
        let given: Vec<&str> = [
            ("--grid", a.grid.is_some()),
            ("--max-gain", a.max_gain.is_some()),
            ("--dark", !a.darks.is_empty()),
            ("--flat", !a.flats.is_empty()),
            ("--chart", !a.charts.is_empty()),
            ("--burst", a.burst.is_some()),
            ("--corners", !a.corners.is_empty()),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        if !given.is_empty() {
            return Err(format!(
                "--synthetic renders and calibrates its own captures: {} do(es) not apply",
                given.join(", ")
            ));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
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
    isp_engine::image_io::write_atomic(&rp, text + "\n")
        .map_err(|e| format!("{}: {e}", rp.display()))?;
    let hp = out.join("report.html");
    isp_engine::image_io::write_atomic(
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
    let mut raw = vec![0u8; fmt.frame_bytes()];
    let mut out = Vec::new();
    for i in 0..n {
        let Some(meta) = src.next_frame(&mut raw).map_err(|e| e.to_string())? else {
            break;
        };
        let name = format!("{} frame {i}", src.name());
        let c = Capture::from_frame(name, &fmt, &raw, meta.exposure_us, meta.analogue_gain)
            .ok_or_else(|| format!("{spec}: frame {i} is shorter than its format"))?;
        out.push(match src.levels() {
            Some(l) => c.with_levels(l.white, l.black),
            None => c,
        });
    }
    if out.len() < 2 {
        return Err(format!("{spec}: a burst needs 2 or more frames"));
    }
    Ok(out)
}
