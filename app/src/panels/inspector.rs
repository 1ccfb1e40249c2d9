//! Inspector: the pixel under the viewer's cursor in the frame on screen:
//! its raw Bayer value and every stage's value, all from one pass of the
//! chain over that one frame's raw bytes (the inspect thread's), so the
//! header and the rows never disagree. It follows the frame on screen.

use super::Panel;
use crate::presenter::{Job, StagesKey};
use crate::state::AppState;
use eframe::egui;
use isp_engine::stages::chain::{Tap, TapImage};

/// One stage's value at (x, y), as text.
pub fn stage_value(
    img: &isp_engine::stages::chain::TapImage,
    w: usize,
    x: usize,
    y: usize,
) -> String {
    use isp_engine::stages::chain::TapImage;
    let i = y * w + x;
    match img {
        TapImage::Mosaic(m) => m.get(i).map_or(String::new(), |v| v.to_string()),
        TapImage::Rgb16(v) => v
            .get(i * 3..i * 3 + 3)
            .map_or(String::new(), |p| format!("{} {} {}", p[0], p[1], p[2])),
        TapImage::Rgba8(v) => v
            .get(i * 4..i * 4 + 3)
            .map_or(String::new(), |p| format!("{} {} {}", p[0], p[1], p[2])),
    }
}

#[derive(Default)]
pub struct Inspector;

impl Panel for Inspector {
    fn title(&self) -> &'static str {
        "Inspector"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let Some((x, y)) = s.inspect_at else {
            ui.label("hover the image to inspect a pixel");
            return;
        };
        let (Some(frame), Some(fmt)) = (s.shown_frame(), s.latest.as_ref().map(|r| r.format))
        else {
            ui.label("waiting for a frame...");
            return;
        };
        let (w, h) = (fmt.width as usize, fmt.height as usize);
        if x >= w || y >= h {
            ui.label("hover the image to inspect a pixel");
            return;
        }
        // Every stage's value: one pass of the chain per frame and version.
        let key = StagesKey {
            frame,
            version: s.engine.params.version(),
        };
        if s.stages.as_ref().is_none_or(|(k, _)| *k != key)
            && let Some(raw) = s.player.raw_of(frame)
        {
            s.presenter.request(Job::Stages {
                key,
                raw,
                format: fmt,
            });
        }
        let Some((at, stages)) = &s.stages else {
            ui.label(format!("({x}, {y})  computing..."));
            return;
        };
        // The header from the same pass as the rows.
        let value = |t: Tap| {
            stages
                .iter()
                .find(|(tap, _)| *tap == t)
                .map(|(_, img)| stage_value(img, w, x, y))
                .unwrap_or_default()
        };
        let raw = value(Tap::Unpacked);
        let final_rgb = value(Tap::Tone);
        let frame_name = s.frame_name(at.frame);
        let stale = if *at == key { "" } else { "  (updating)" };
        ui.label(format!(
            "({x}, {y})  {frame_name} v{}  raw {:?} {raw}  final sRGB {final_rgb}{stale}",
            at.version,
            fmt.bayer.color_at(x, y)
        ));
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("stage-values")
                .striped(true)
                .num_columns(2)
                .show(ui, |ui| {
                    for (tap, img) in stages.iter() {
                        ui.label(tap.name());
                        let text = stage_value(img, w, x, y);
                        let kind = match img {
                            TapImage::Mosaic(_) => "mosaic",
                            TapImage::Rgb16(_) => "linear RGB16",
                            TapImage::Rgba8(_) => "sRGB8",
                        };
                        ui.monospace(text).on_hover_text(kind);
                        ui.end_row();
                    }
                });
        });
    }
}
