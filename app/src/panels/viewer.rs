//! Viewer: the current frame (from the GPU texture the engine fills when the
//! GPU path is on, else the presenter's ready-made image, box-downscaled to
//! what is shown), any stage's output (a tap, computed off the UI thread),
//! zoom and pan, a before/after split (before: the tuning as loaded, or any
//! stage), a clipped-pixel overlay, a pixel inspector (raw Bayer value, every
//! stage's value, final sRGB) and per-channel histograms (linear or log).

use super::Panel;
use crate::presenter::{DisplayImage, Job, TapKey};
use crate::state::AppState;
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};
use isp_engine::stages::chain::{Tap, TapImage};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What the left side of the split shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before {
    /// The final image with the tuning as loaded (before any edit).
    Loaded,
    /// One stage's output.
    Stage(Tap),
}

impl Before {
    fn name(self) -> String {
        match self {
            Before::Loaded => "tuning as loaded".into(),
            Before::Stage(t) => format!("after {}", t.name()),
        }
    }
}

/// A texture and the image it holds.
#[derive(Default)]
struct Slot {
    texture: Option<egui::TextureHandle>,
    holds: Option<usize>,
}

impl Slot {
    /// Show `img` (a swap of the `Arc`, no pixel copy on this thread).
    fn set(&mut self, ctx: &egui::Context, name: &str, img: &DisplayImage) -> egui::TextureId {
        let ptr = Arc::as_ptr(&img.image) as usize;
        let data = egui::ImageData::Color(img.image.clone());
        match &mut self.texture {
            Some(t) if self.holds == Some(ptr) => return t.id(),
            Some(t) => t.set(data, egui::TextureOptions::NEAREST),
            None => {
                self.texture = Some(ctx.load_texture(name, data, egui::TextureOptions::NEAREST))
            }
        }
        self.holds = Some(ptr);
        self.texture
            .as_ref()
            .map_or(egui::TextureId::default(), |t| t.id())
    }
}

pub struct Viewer {
    /// `None`: the final preview.
    pub tap: Option<Tap>,
    pub zoom: f32,
    pub fit: bool,
    pub log_hist: bool,
    pub overlay: bool,
    pub split: bool,
    pub before: Before,
    /// Where the split is, 0..1 of the width.
    pub split_at: f32,
    main: Slot,
    left: Slot,
    /// The last (x, y) inspected, for the test and the label.
    pub inspected: Option<(usize, usize)>,
}

impl Default for Viewer {
    fn default() -> Self {
        Viewer {
            tap: None,
            zoom: 1.0,
            fit: true,
            log_hist: false,
            overlay: false,
            split: false,
            before: Before::Loaded,
            split_at: 0.5,
            main: Slot::default(),
            left: Slot::default(),
            inspected: None,
        }
    }
}

impl Viewer {
    /// A viewer at `zoom` (`None`: fitting the window).
    pub fn at_zoom(zoom: Option<f32>) -> Self {
        Viewer {
            fit: zoom.is_none(),
            zoom: zoom.unwrap_or(1.0).clamp(0.25, 16.0),
            ..Default::default()
        }
    }
}

/// One stage's value at (x, y), as text.
pub fn stage_value(img: &TapImage, w: usize, x: usize, y: usize) -> String {
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

impl Viewer {
    /// Ask the inspect thread for a tap image when the one we have is stale.
    fn want_tap(&self, s: &AppState, tap: Option<Tap>, before: bool, loaded: bool) {
        let p = s.player.status();
        let (Some(raw), Some(format)) = (p.last_raw, p.format) else {
            return;
        };
        let key = TapKey {
            raw: Arc::as_ptr(&raw) as usize,
            tap,
            version: s.engine.params.version(),
            before,
            factor: s.presenter.settings.factor(),
            overlay: self.overlay,
            crop: s.presenter.settings.crop(),
        };
        let side = usize::from(before);
        if s.taps[side].as_ref().is_some_and(|(k, _, _)| *k == key) {
            return;
        }
        s.presenter.request(Job::Tap {
            key,
            raw,
            format,
            tuning: loaded.then(|| Arc::new(s.tuning.loaded.clone())),
        });
    }

    /// The image for one side, when there is one for what is asked.
    fn side<'a>(
        &self,
        s: &'a AppState,
        tap: Option<Tap>,
        before: bool,
    ) -> Option<&'a DisplayImage> {
        s.taps[usize::from(before)]
            .as_ref()
            .filter(|(k, _, _)| k.tap == tap)
            .map(|(_, _, img)| img)
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
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
            ui.checkbox(&mut self.overlay, "clipped");
            ui.checkbox(&mut self.split, "before/after");
            if self.split {
                egui::ComboBox::from_label("before")
                    .selected_text(self.before.name())
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.before, Before::Loaded, "tuning as loaded");
                        for t in Tap::ALL {
                            ui.selectable_value(
                                &mut self.before,
                                Before::Stage(t),
                                format!("after {}", t.name()),
                            );
                        }
                    });
            }
        });
    }
}

impl Panel for Viewer {
    fn title(&self) -> &'static str {
        "Viewer"
    }
    fn default_rect(&self) -> [f32; 4] {
        [320.0, 30.0, 490.0, 560.0]
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        self.toolbar(ui);
        let selected = s.selected_preview();
        if let Some(id) = s.selected_frame {
            ui.horizontal(|ui| {
                if selected.is_some() && self.tap.is_none() {
                    ui.label(format!("showing frame {id} (selected in the timeline)"));
                } else {
                    ui.label(format!("frame {id} selected; no longer kept"));
                }
                if ui.button("Back to live").clicked() {
                    s.select_frame(None);
                }
            });
        }
        let settings = s.presenter.settings.clone();
        if settings.overlay.swap(self.overlay, Ordering::Relaxed) != self.overlay {
            s.presenter.refresh();
        }
        // The GPU texture only when it holds a frame of the current size.
        let latest_size = s
            .latest
            .as_ref()
            .map(|r| [r.format.width as usize, r.format.height as usize]);
        let on_gpu = s.engine.backend().is_gpu()
            && s.gpu_texture
                .is_some_and(|(_, size)| Some(size) == latest_size)
            && s.engine.gpu().is_some_and(|g| g.display_writes() > 0);
        let use_gpu = on_gpu && selected.is_none() && self.tap.is_none() && !self.overlay;
        let want = !use_gpu;
        if settings.want_image.swap(want, Ordering::Relaxed) != want && want {
            s.presenter.refresh();
        }
        let Some(full) = s
            .latest
            .as_ref()
            .map(|r| [r.format.width as usize, r.format.height as usize])
        else {
            ui.label("waiting for the first frame...");
            return;
        };
        // The main (after) image.
        let ctx = ui.ctx().clone();
        let whole = [0, 0, full[0], full[1]];
        let main = if let Some((fid, px, size)) = &selected {
            // A selected frame: converted here once (it changes on a click only).
            let key = *fid as usize ^ 0x5e1e_c7ed;
            match &mut self.main.texture {
                Some(t) if self.main.holds == Some(key) => Some((t.id(), [0, 0, size[0], size[1]])),
                _ => {
                    let img = DisplayImage::whole(px, *size);
                    let id = self.main.set(&ctx, "viewer", &img);
                    self.main.holds = Some(key);
                    Some((id, img.region))
                }
            }
        } else if self.tap.is_some() {
            self.want_tap(s, self.tap, false, false);
            self.side(s, self.tap, false)
                .map(|img| (self.main.set(&ctx, "viewer", img), img.region))
        } else if use_gpu {
            s.gpu_texture.map(|(id, _)| (id, whole))
        } else {
            s.frame_image
                .as_ref()
                .map(|img| (self.main.set(&ctx, "viewer", img), img.region))
        };
        let Some((main_id, main_region)) = main else {
            ui.label("computing...");
            return;
        };
        // The before side of the split.
        let before_id = if self.split {
            let (tap, loaded) = match self.before {
                Before::Loaded => (None, true),
                Before::Stage(t) => (Some(t), false),
            };
            self.want_tap(s, tap, true, loaded);
            self.side(s, tap, true)
                .map(|img| (self.left.set(&ctx, "viewer-before", img), img.region))
        } else {
            None
        };

        let full_v = egui::vec2(full[0] as f32, full[1] as f32);
        let hist_h = 110.0;
        // Below the image: the inspector (a line, or a grid once a pixel is
        // inspected), the histogram's controls and the histogram.
        let below = hist_h
            + if self.inspected.is_some() {
                150.0
            } else {
                60.0
            };
        let avail = ui.available_size() - egui::vec2(0.0, below);
        let scale = if self.fit {
            (avail.x / full_v.x).min(avail.y / full_v.y).max(0.05)
        } else {
            self.zoom
        };
        // Upload no more pixels than the screen shows.
        let physical = scale * ui.ctx().pixels_per_point();
        let factor = if physical >= 1.0 {
            1
        } else {
            ((1.0 / physical).floor() as usize).clamp(1, 16)
        };
        if settings.factor.swap(factor, Ordering::Relaxed) != factor {
            s.presenter.refresh();
        }
        let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        let (rect, resp, clip) = egui::ScrollArea::both()
            .max_height(avail.y.max(50.0))
            .show(ui, |ui| {
                let (rect, resp) = ui.allocate_exact_size(full_v * scale, egui::Sense::hover());
                let painter = ui.painter_at(rect);
                // An image showing `region` of the frame, where that region lies.
                let at = |r: [usize; 4]| {
                    egui::Rect::from_min_max(
                        rect.min + egui::vec2(r[0] as f32, r[1] as f32) * scale,
                        rect.min + egui::vec2(r[2] as f32, r[3] as f32) * scale,
                    )
                };
                painter.image(main_id, at(main_region), uv, egui::Color32::WHITE);
                s.viewer_drawn = Some((main_id, at(main_region).intersect(painter.clip_rect())));
                if let Some((bid, bregion)) = before_id {
                    let x = rect.min.x + rect.width() * self.split_at;
                    let left = egui::Rect::from_min_max(rect.min, egui::pos2(x, rect.max.y));
                    painter
                        .with_clip_rect(left.intersect(painter.clip_rect()))
                        .image(bid, at(bregion), uv, egui::Color32::WHITE);
                    // The divider: drag it.
                    let handle = egui::Rect::from_center_size(
                        egui::pos2(x, rect.center().y),
                        egui::vec2(8.0, rect.height()),
                    );
                    let h =
                        ui.interact(handle, ui.make_persistent_id("split"), egui::Sense::drag());
                    if h.dragged() && rect.width() > 0.0 {
                        self.split_at =
                            (self.split_at + h.drag_delta().x / rect.width()).clamp(0.0, 1.0);
                    }
                    let stroke = egui::Stroke::new(2.0, egui::Color32::YELLOW);
                    painter.vline(x, rect.y_range(), stroke);
                    let font = egui::FontId::proportional(12.0);
                    painter.text(
                        rect.left_top() + egui::vec2(4.0, 4.0),
                        egui::Align2::LEFT_TOP,
                        format!("before: {}", self.before.name()),
                        font.clone(),
                        egui::Color32::YELLOW,
                    );
                    painter.text(
                        rect.right_top() + egui::vec2(-4.0, 4.0),
                        egui::Align2::RIGHT_TOP,
                        "after",
                        font,
                        egui::Color32::YELLOW,
                    );
                }
                (rect, resp, ui.clip_rect())
            })
            .inner;
        self.follow_crop(s, rect, clip, scale, full, main_region);
        // Ctrl + wheel (or a pinch) zooms.
        if resp.hovered() {
            let z = ui.input(|i| i.zoom_delta());
            if (z - 1.0).abs() > 1e-4 {
                self.zoom = (scale * z).clamp(0.25, 16.0);
                self.fit = false;
            }
        }
        if self.split {
            ui.label(match before_id {
                Some(_) => format!("before: {} | after: now", self.before.name()),
                None => "computing the before image...".into(),
            });
        }
        self.inspector(ui, s, rect, &resp, scale, full, selected.as_ref());
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.log_hist, "log histogram");
            ui.label(format!(
                "clipped: {:.2}% high, {:.2}% low",
                s.clipped[0] * 100.0,
                s.clipped[1] * 100.0
            ));
        });
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

impl Viewer {
    /// Zoomed in, only the visible part of the frame (with a margin for
    /// panning) is converted and uploaded: ask for another part when the
    /// view leaves the one shown.
    fn follow_crop(
        &self,
        s: &AppState,
        rect: egui::Rect,
        clip: egui::Rect,
        scale: f32,
        full: [usize; 2],
        shown: [usize; 4],
    ) {
        let vis = rect.intersect(clip);
        let to_px = |p: egui::Pos2| ((p - rect.min) / scale).max(egui::Vec2::ZERO);
        let (a, b) = (to_px(vis.min), to_px(vis.max));
        let v = [
            (a.x.floor() as usize).min(full[0]),
            (a.y.floor() as usize).min(full[1]),
            (b.x.ceil() as usize).min(full[0]),
            (b.y.ceil() as usize).min(full[1]),
        ];
        let settings = &s.presenter.settings;
        let everything = v[0] == 0 && v[1] == 0 && v[2] >= full[0] && v[3] >= full[1];
        let want = if everything || v[2] <= v[0] || v[3] <= v[1] {
            None
        } else {
            let inside =
                shown[0] <= v[0] && shown[1] <= v[1] && shown[2] >= v[2] && shown[3] >= v[3];
            if inside && settings.crop().is_some() {
                return;
            }
            // Half the visible size again on each side.
            let (mx, my) = ((v[2] - v[0]) / 2, (v[3] - v[1]) / 2);
            Some([
                v[0].saturating_sub(mx),
                v[1].saturating_sub(my),
                (v[2] + mx).min(full[0]),
                (v[3] + my).min(full[1]),
            ])
        };
        if settings.set_crop(want) {
            s.presenter.refresh();
        }
    }

    /// The pixel under the cursor: raw Bayer value, every stage's value (from
    /// the inspect thread's one pass of the chain), the shown sRGB.
    #[allow(clippy::too_many_arguments)] // the image's geometry, as laid out this frame
    fn inspector(
        &mut self,
        ui: &mut egui::Ui,
        s: &mut AppState,
        rect: egui::Rect,
        resp: &egui::Response,
        scale: f32,
        full: [usize; 2],
        selected: Option<&crate::state::Preview>,
    ) {
        let hovered = resp
            .hover_pos()
            .map(|pos| (pos - rect.min) / scale)
            .filter(|r| r.x >= 0.0 && r.y >= 0.0)
            .map(|r| (r.x as usize, r.y as usize))
            .filter(|(x, y)| *x < full[0] && *y < full[1]);
        if hovered.is_some() {
            self.inspected = hovered;
        }
        let Some((x, y)) = self.inspected else {
            ui.label("hover the image to inspect a pixel");
            return;
        };
        let p = s.player.status();
        let mut header = format!("({x}, {y})");
        if let (Some(raw), Some(fmt)) = (&p.last_raw, p.format) {
            let mut row = vec![0u16; fmt.width as usize];
            let start = y * fmt.stride as usize;
            if let Some(bytes) = raw.get(start..start + fmt.min_stride() as usize) {
                isp_engine::stages::unpack::unpack_row(&fmt, bytes, &mut row);
                header += &format!("  raw {:?} {}", fmt.bayer.color_at(x, y), row[x]);
            }
            // Every stage's value: one pass of the chain per frame and version.
            let key = (Arc::as_ptr(raw) as usize, s.engine.params.version());
            if hovered.is_some() && s.stages.as_ref().is_none_or(|(k, _)| *k != key) {
                s.presenter.request(Job::Stages {
                    key,
                    raw: raw.clone(),
                    format: fmt,
                });
            }
        }
        let shown = match (selected, &self.tap) {
            (Some((_, px, _)), None) => Some(px.clone()),
            (None, None) => s.recent.back().map(|(_, px, _)| px.clone()),
            (_, Some(_)) => s.taps[0].as_ref().map(|(_, px, _)| px.clone()),
        };
        if let Some(px) = shown.and_then(|px| {
            let i = (y * full[0] + x) * 4;
            px.get(i..i + 3).map(|v| [v[0], v[1], v[2]])
        }) {
            header += &format!(
                "  {} sRGB {} {} {}",
                self.tap.map_or("final", |t| t.name()),
                px[0],
                px[1],
                px[2]
            );
        }
        ui.label(header);
        egui::CollapsingHeader::new("every stage at this pixel")
            .id_salt("stages")
            .default_open(true)
            .show(ui, |ui| match &s.stages {
                Some((_, stages)) => {
                    egui::Grid::new("stage-values")
                        .striped(true)
                        .show(ui, |ui| {
                            for (i, (tap, img)) in stages.iter().enumerate() {
                                ui.label(tap.name());
                                ui.monospace(stage_value(img, full[0], x, y));
                                if i % 2 == 1 {
                                    ui.end_row();
                                }
                            }
                        });
                }
                None => {
                    ui.label("computing...");
                }
            });
    }
}
