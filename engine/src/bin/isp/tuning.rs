//! `isp tuning`: the built-in tuning, a tuning file checked and normalised,
//! and libcamera's tuning files in (`--import`: Raspberry Pi JSON, rkisp1 or
//! simple YAML) and out (`--export rpi|rkisp1|simple`), saying what mapped
//! and what has no counterpart.

use crate::Res;
use isp_engine::libcamera::{self, LibcameraFormat};
use isp_engine::tuning::Tuning;
use std::path::Path;

/// What the command line asked for.
pub struct Args<'a> {
    pub file: Option<&'a Path>,
    pub radial_lsc: Option<f32>,
    pub import: Option<&'a Path>,
    pub export: Option<&'a str>,
    pub format: Option<&'a str>,
    pub bits: u8,
    pub out: Option<&'a Path>,
}

fn format_of(s: &str) -> Result<LibcameraFormat, String> {
    LibcameraFormat::parse(s).ok_or_else(|| format!("`{s}` is not rpi, rkisp1 or simple"))
}

fn emit(text: &str, out: Option<&Path>) -> Res {
    match out {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

pub fn tuning_cmd(a: Args<'_>) -> Res {
    let mut t = match a.file {
        Some(p) => Tuning::load(p).map_err(|e| e.to_string())?,
        None => Tuning::default(),
    };
    if let Some(k) = a.radial_lsc {
        t.stages.lens_shading =
            isp_engine::stages::lens_shading::LensShadingParams::radial(17, 13, [k; 4]);
        t.check(&format!("--radial-lsc {k}"))
            .map_err(|e| e.to_string())?;
    }
    if let Some(p) = a.import {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let hint = a.format.map(format_of).transpose()?;
        let imp = libcamera::import(&text, &p.display().to_string(), &t, a.bits, hint)
            .map_err(|e| e.to_string())?;
        eprintln!("isp: {} tuning file {}", imp.format.name(), p.display());
        for m in &imp.mapped {
            eprintln!("isp: mapped: {m}");
        }
        for u in &imp.unmapped {
            eprintln!("isp: not mapped: {u}");
        }
        t = imp.tuning;
    }
    if let Some(f) = a.export {
        let (text, notes) = libcamera::export(&t, format_of(f)?, a.bits)?;
        for n in &notes {
            eprintln!("isp: not exported: {n}");
        }
        return emit(&text, a.out);
    }
    emit(&(t.to_json() + "\n"), a.out)
}
