//! `isp info`: describe a source (a session or raw file is read through,
//! so a corrupt frame is named).

use crate::{Res, SourceArgs, opts};
use isp_engine::sources;

#[derive(clap::Args)]
pub struct Args {
    source: Option<String>,
    #[command(flatten)]
    geometry: SourceArgs,
}

pub fn run(a: Args) -> Res {
    info(a.source.as_deref(), &a.geometry)
}

fn info(spec: Option<&str>, g: &SourceArgs) -> Res {
    let mut src = sources::open(spec, &opts(g)).map_err(|e| e.to_string())?;
    let fmt = src.format();
    // A session or raw file is read through once: every frame's size (and a
    // session's CRC-32) is checked, so a corrupt one is named here.
    if let (Some(n), false) = (src.frame_count(), src.is_live()) {
        let mut buf = vec![0u8; fmt.frame_bytes()];
        for _ in 0..n {
            if src
                .next_frame(&mut buf)
                .map_err(|e| e.to_string())?
                .is_none()
            {
                break;
            }
        }
    }
    let v = serde_json::json!({
        "source": src.name(),
        "format": fmt,
        "describe": fmt.describe(),
        "frame_bytes": fmt.frame_bytes(),
        "frames": src.frame_count(),
        "live": src.is_live(),
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(())
}
