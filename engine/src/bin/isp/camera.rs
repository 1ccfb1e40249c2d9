//! The CLI's camera verbs: `isp devices`, and recording a live source
//! through the engine (so AE runs while it records).

use isp_engine::resource_manager::{BufferRef, ResourceManager};
use isp_engine::sources::camera::list;
use isp_engine::sources::session::SessionRecorder;
use isp_engine::sources::{FrameMeta, FrameSource, SourceError};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `isp devices`: every capture device with formats, sizes, rates, controls.
pub fn devices(json: bool) -> Result<(), String> {
    let devs = list::devices();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&devs).unwrap_or_default()
        );
        return Ok(());
    }
    if devs.is_empty() {
        println!("no cameras found (no V4L2 capture device under /dev)");
        return Ok(());
    }
    for d in devs {
        println!("{}: {} ({}, {})", d.path.display(), d.card, d.driver, d.bus);
        println!(
            "  buffers: mmap{}",
            if d.dmabuf { ", DMA-BUF export" } else { "" }
        );
        println!("  formats:");
        for f in &d.formats {
            let raw = if f.raw { "" } else { " [not RAW: listed only]" };
            println!("    {} {}{raw}", f.fourcc, f.description);
            for s in &f.sizes {
                let fps: Vec<String> = s.fps.iter().map(|r| format!("{r:.2}")).collect();
                println!("      {}x{} @ {} fps", s.width, s.height, fps.join(", "));
            }
        }
        println!("  controls:");
        for c in &d.controls {
            println!("    {:#010x} {}", c.id, c.describe());
        }
    }
    Ok(())
}

/// A source whose every frame also goes into a session recording.
pub struct Recording<'a> {
    pub inner: &'a mut dyn FrameSource,
    pub rec: Option<SessionRecorder>,
    pub error: Option<String>,
}

impl Recording<'_> {
    fn keep(&mut self, meta: &FrameMeta, raw: &[u8]) -> bool {
        if let Some(rec) = self.rec.as_mut()
            && let Err(e) = rec.write_frame(meta, raw)
        {
            self.error = Some(e.to_string());
            return false;
        }
        true
    }
}

impl FrameSource for Recording<'_> {
    isp_engine::forward_frame_source!(inner);
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        if self.error.is_some() {
            return Ok(None);
        }
        let meta = self.inner.next_frame(dst)?;
        if let Some(m) = &meta {
            let n = self.inner.format().frame_bytes();
            if !self.keep(m, &dst[..n]) {
                return Ok(None);
            }
        }
        Ok(meta)
    }
    fn next_lent(
        &mut self,
        rm: &Arc<ResourceManager>,
    ) -> Result<Option<(BufferRef, FrameMeta)>, SourceError> {
        if self.error.is_some() {
            return Ok(None);
        }
        let lent = self.inner.next_lent(rm)?;
        if let Some((buf, meta)) = &lent {
            match buf.read() {
                Ok(mem) => {
                    let n = self.inner.format().frame_bytes().min(mem.len());
                    let raw = &mem.bytes()[..n];
                    // A failed write ends the feed at the next read; this
                    // frame (the engine's buffer now) goes through.
                    if let Some(rec) = self.rec.as_mut()
                        && let Err(e) = rec.write_frame(meta, raw)
                    {
                        self.error = Some(e.to_string());
                    }
                }
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        Ok(lent)
    }
}
