//! Viewer: the current frame (from the GPU texture the engine fills when the
//! GPU path is on), any stage's output (a tap, computed on demand), zoom and
//! pan, a pixel inspector (raw Bayer value, the tapped stage, final sRGB) and
//! per-channel histograms (linear or log) of the frame's statistics.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};
use isp_engine::gpu::{Tap, TapImage};

pub struct Viewer {
    /// `None`: the final preview.
    tap: Option<Tap>,
    zoom: f32,
    fit: bool,
    log_hist: bool,
    texture: Option<egui::TextureHandle>,
    /// What the CPU texture holds: (frame id or raw pointer, tap, params version).
    shown: Option<(usize, Option<Tap>, u64)>,
    /// The displayed image's RGBA8 (for the inspector).
    rgba: std::sync::Arc<Vec<u8>>,
    size: [usize; 2],
}

impl Default for Viewer {
    fn default() -> Self {
        Viewer {
            tap: None,
            zoom: 1.0,
            fit: true,
            log_hist: false,
            texture: None,
            shown: None,
            rgba: Default::default(),
            size: [0, 0],
        }
    }
}

fn to_rgba(img: &TapImage, w: usize, h: usize) -> Vec<u8> {
    match img {
        TapImage::Rgba8(v) => v.clone(),
        TapImage::Mosaic(m) => m[..w * h]
            .iter()
            .flat_map(|&v| {
                let g = (v >> 8) as u8;
                [g, g, g, 255]
            })
            .collect(),
        TapImage::Rgb16(v) => v[..w * h * 3]
            .chunks_exact(3)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8, 255])
            .collect(),
    }
}

impl Viewer {
    fn refresh(&mut self, ui: &egui::Ui, s: &mut AppState) {
        let p = s.player.status();
        let version = s.engine.params.version();
        let key = match self.tap {
            None => s
                .latest
                .as_ref()
                .map(|r| (r.frame_id as usize, None, r.params_version)),
            Some(t) => p
                .last_raw
                .as_ref()
                .map(|r| (std::sync::Arc::as_ptr(r) as usize, Some(t), version)),
        };
        if key.is_none() || key == self.shown {
            return;
        }
        let (rgba, w, h) = match (self.tap, &s.latest) {
            (None, Some(r)) => {
                if s.gpu_texture.is_some() && s.engine.backend().starts_with("gpu") {
                    // Drawn from the GPU texture; copy for the inspector only.
                    self.shown = key;
                    self.size = [r.format.width as usize, r.format.height as usize];
                    self.rgba = Default::default();
                    return;
                }
                // The copy the state keeps of the newest preview, not another one.
                match s.recent.back().filter(|(id, _, _)| *id == r.frame_id) {
                    Some((_, px, [w, h])) => (px.clone(), *w, *h),
                    None => match r.preview_rgba() {
                        Some(px) => (
                            std::sync::Arc::new(px),
                            r.format.width as usize,
                            r.format.height as usize,
                        ),
                        None => return,
                    },
                }
            }
            (Some(t), _) => {
                let (Some(raw), Some(fmt)) = (p.last_raw.clone(), p.format) else {
                    return;
                };
                match s.engine.tap(&raw, fmt, t) {
                    Ok(img) => {
                        let (w, h) = (fmt.width as usize, fmt.height as usize);
                        (std::sync::Arc::new(to_rgba(&img, w, h)), w, h)
                    }
                    Err(e) => {
                        s.error(format!("tap {}: {e}", t.name()));
                        self.tap = None;
                        return;
                    }
                }
            }
            _ => return,
        };
        // Opaque pixels: premultiplied and unmultiplied are the same bytes.
        let img = egui::ColorImage::from_rgba_premultiplied([w, h], &rgba);
        match &mut self.texture {
            Some(t) => t.set(img, egui::TextureOptions::NEAREST),
            None => {
                self.texture = Some(ui.ctx().load_texture(
                    "viewer",
                    img,
                    egui::TextureOptions::NEAREST,
                ))
            }
        }
        self.rgba = rgba;
        self.size = [w, h];
        self.shown = key;
    }
}

impl Panel for Viewer {
    fn title(&self) -> &'static str {
        "Viewer"
    }
    fn default_rect(&self) -> [f32; 4] {
        [320.0, 30.0, 490.0, 520.0]
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("stage")
                .selected_text(self.tap.map_or("final", |t| t.name()))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.tap, None, "final");
                    for t in Tap::ALL {
                        ui.selectable_value(&mut self.tap, Some(t), t.name());
                    }
                });
            ui.checkbox(&mut self.fit, "fit");
            ui.add_enabled(
                !self.fit,
                egui::Slider::new(&mut self.zoom, 0.25..=16.0)
                    .logarithmic(true)
                    .text("zoom"),
            );
            if ui.button("1:1").clicked() {
                self.fit = false;
                self.zoom = 1.0;
            }
        });
        self.refresh(ui, s);
        let selected = self.tap.is_none() && s.selected_preview().is_some();
        if let Some(id) = s.selected_frame {
            ui.horizontal(|ui| {
                if selected {
                    ui.label(format!("showing frame {id} (selected in the timeline)"));
                } else {
                    ui.label(format!("frame {id} selected; no longer kept"));
                }
                if ui.button("Back to live").clicked() {
                    s.select_frame(None);
                }
            });
        }
        let use_gpu = !selected
            && self.tap.is_none()
            && s.engine.backend().starts_with("gpu")
            && s.gpu_texture.is_some()
            && s.latest.is_some();
        let (id, size) = match (&s.gpu_texture, &self.texture) {
            (Some((id, sz)), _) if use_gpu => (*id, *sz),
            (_, Some(t)) => (t.id(), self.size),
            _ => {
                ui.label("waiting for the first frame...");
                return;
            }
        };
        let full = egui::vec2(size[0] as f32, size[1] as f32);
        let hist_h = 110.0;
        let avail = ui.available_size() - egui::vec2(0.0, hist_h + 40.0);
        let scale = if self.fit {
            (avail.x / full.x).min(avail.y / full.y).max(0.05)
        } else {
            self.zoom
        };
        let resp = egui::ScrollArea::both()
            .max_height(avail.y.max(50.0))
            .show(ui, |ui| {
                ui.add(egui::Image::new((id, full * scale)).sense(egui::Sense::hover()))
            })
            .inner;
        // Pixel inspector.
        if let Some(pos) = resp.hover_pos() {
            let rel = (pos - resp.rect.min) / scale;
            let (x, y) = (rel.x as usize, rel.y as usize);
            if x < size[0] && y < size[1] {
                let mut text = format!("({x}, {y})");
                let p = s.player.status();
                if let (Some(raw), Some(fmt)) = (&p.last_raw, p.format) {
                    let mut row = vec![0u16; fmt.width as usize];
                    let start = y * fmt.stride as usize;
                    if let Some(bytes) = raw.get(start..start + fmt.min_stride() as usize) {
                        isp_engine::stages::unpack::unpack_row(&fmt, bytes, &mut row);
                        text += &format!("  raw {:?} {}", fmt.bayer.color_at(x, y), row[x]);
                    }
                }
                if self.rgba.len() >= (y * size[0] + x + 1) * 4 {
                    let i = (y * size[0] + x) * 4;
                    let px = &self.rgba[i..i + 3];
                    text += &format!(
                        "  {} rgb {} {} {}",
                        self.tap.map_or("final", |t| t.name()),
                        px[0],
                        px[1],
                        px[2]
                    );
                }
                ui.label(text);
            }
        } else {
            ui.label(" ");
        }
        ui.checkbox(&mut self.log_hist, "log histogram");
        if let Some(st) = s.latest.as_ref().and_then(|r| r.stats.clone()) {
            let log = self.log_hist;
            Plot::new("histogram")
                .height(hist_h)
                .show_axes([false, false])
                .show(ui, |plot| {
                    for (c, name) in ["R", "G", "B"].iter().enumerate() {
                        let pts: PlotPoints = st.histograms[c]
                            .iter()
                            .enumerate()
                            .map(|(i, &n)| {
                                let v = n as f64;
                                [i as f64, if log { (v + 1.0).log10() } else { v }]
                            })
                            .collect();
                        plot.line(Line::new(*name, pts));
                    }
                });
        }
    }
}
