//! `isp tuning`: the built-in tuning, a tuning file checked and normalised,
//! and libcamera's tuning files in (`--import`: Raspberry Pi JSON, rkisp1 or
//! simple YAML) and out (`--export rpi|rkisp1|simple`), saying what mapped
//! and what has no counterpart.

use crate::Res;
use isp_engine::libcamera::{self, LibcameraFormat};
use isp_engine::tuning::Tuning;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A tuning file to check (the base of an import or an export).
    file: Option<PathBuf>,
    /// Lens-shading grid matching a radial fall-off of this strength (17x13).
    #[arg(long)]
    radial_lsc: Option<f32>,
    /// A libcamera tuning file (Raspberry Pi JSON 2.0, rkisp1 or simple
    /// YAML) to map onto the tuning; what maps and what has no
    /// counterpart is said on stderr.
    #[arg(long)]
    import: Option<PathBuf>,
    /// Write the tuning as a libcamera tuning file: rpi, rkisp1 or simple.
    #[arg(long)]
    export: Option<String>,
    /// The libcamera format of --import, where detection should not decide.
    #[arg(long)]
    format: Option<String>,
    /// The sensor's bit depth (libcamera writes black levels in 16-bit units).
    #[arg(long, default_value_t = 10)]
    bits: u8,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn format_of(s: &str) -> Result<LibcameraFormat, String> {
    LibcameraFormat::parse(s).ok_or_else(|| format!("`{s}` is not rpi, rkisp1 or simple"))
}

fn emit(text: &str, out: Option<&Path>) -> Res {
    match out {
        Some(p) => {
            isp_engine::image_io::write_atomic(p, text).map_err(|e| format!("{}: {e}", p.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

pub fn run(a: Args) -> Res {
    let mut t = match a.file.as_deref() {
        Some(p) => Tuning::load(p).map_err(|e| e.to_string())?,
        None => Tuning::default(),
    };
    if let Some(k) = a.radial_lsc {
        t.stages.lens_shading =
            isp_engine::stages::lens_shading::LensShadingParams::radial(17, 13, [k; 4]);
        t.check(&format!("--radial-lsc {k}"))
            .map_err(|e| e.to_string())?;
    }
    if let Some(p) = a.import.as_deref() {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let hint = a.format.as_deref().map(format_of).transpose()?;
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
    if let Some(f) = a.export.as_deref() {
        let (text, notes) = libcamera::export(&t, format_of(f)?, a.bits)?;
        for n in &notes {
            eprintln!("isp: not exported: {n}");
        }
        return emit(&text, a.out.as_deref());
    }
    emit(&(t.to_json() + "\n"), a.out.as_deref())
}
