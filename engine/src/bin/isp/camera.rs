//! The CLI's camera verbs: `isp devices`, and recording a live source
//! through the engine (so AE runs while it records).

use isp_engine::algorithms::Control;
use isp_engine::controls::SensorCaps;
use isp_engine::sources::camera::controls::ControlInfo;
use isp_engine::sources::camera::list;
use isp_engine::sources::session::SessionRecorder;
use isp_engine::sources::{FrameMeta, FrameSource, SourceError};
use isp_engine::types::RawFormat;

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

impl FrameSource for Recording<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn format(&self) -> RawFormat {
        self.inner.format()
    }
    fn frame_count(&self) -> Option<u64> {
        self.inner.frame_count()
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        let meta = self.inner.next_frame(dst)?;
        if let (Some(m), Some(rec)) = (&meta, self.rec.as_mut()) {
            let n = self.inner.format().frame_bytes();
            if let Err(e) = rec.write_frame(m, &dst[..n]) {
                self.error = Some(e.to_string());
                return Ok(None);
            }
        }
        Ok(meta)
    }
    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
    fn set_controls(&mut self, controls: &[Control]) -> Result<(), SourceError> {
        self.inner.set_controls(controls)
    }
    fn fps(&self) -> Option<f32> {
        self.inner.fps()
    }
    fn sensor_caps(&self) -> Option<SensorCaps> {
        self.inner.sensor_caps()
    }
    fn take_applied(&mut self) -> Vec<String> {
        self.inner.take_applied()
    }
    fn device_controls(&self) -> Vec<ControlInfo> {
        self.inner.device_controls()
    }
    fn set_device_control(&mut self, id: u32, value: i64) -> Result<(), SourceError> {
        self.inner.set_device_control(id, value)
    }
}
