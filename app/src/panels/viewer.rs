//! Viewer: the frame on screen (from the GPU texture the engine fills when
//! the GPU path is on, else the presenter's ready-made image, box-downscaled
//! to what is shown), any stage's output (a tap, computed off the UI thread,
//! linear stages through a display gain and the sRGB curve), zoom about the
//! cursor and drag to pan, a before/after split of like with like (the same
//! stage under the tuning as loaded, or the stage's input) and a
//! clipped-pixel overlay. Hovering sets the pixel the Inspector shows.

use super::Panel;
use crate::presenter::{DisplayImage, Job, TapKey};
use crate::state::AppState;
use eframe::egui;
use isp_engine::stages::chain::Tap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use super::inspector::stage_value;
pub use super::zoom::{MAX_ZOOM, MIN_ZOOM, zoom_step};
use super::zoom::{WHEEL_STEP, wheel_and_pinch};

/// What the left side of the split shows, for the stage in view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before {
    /// The same stage with the tuning as loaded (before any edit).
    Loaded,
    /// The stage's input: the stage before it in the chain, now.
    Input,
}

impl Before {
    fn name(self, view: Option<Tap>) -> String {
        match (self, input_of(view)) {
            (Before::Loaded, _) => "tuning as loaded".into(),
            (Before::Input, Some(t)) => format!("input (after {})", t.name()),
            (Before::Input, None) => "input (none: first stage)".into(),
        }
    }
}

/// The stage before `view` in the chain (`None` view: the final image,
/// whose input is the colour matrix's output).
fn input_of(view: Option<Tap>) -> Option<Tap> {
    let i = view.map_or(Tap::ALL.len() - 1, |t| t as usize);
    i.checked_sub(1).map(|j| Tap::ALL[j])
}

/// A texture and the image it holds.
#[derive(Default)]
struct Slot {
    texture: Option<egui::TextureHandle>,
    holds: Option<usize>,
}

impl Slot {
    /// Show `img` (a swap of the `Arc`, no pixel copy on this thread).
    fn set(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        img: &Arc<egui::ColorImage>,
    ) -> egui::TextureId {
        let ptr = Arc::as_ptr(img) as usize;
        let data = egui::ImageData::Color(img.clone());
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
    /// The zoom when not fitting (1: one image pixel per point).
    pub zoom: f32,
    pub fit: bool,
    /// The image point at the middle of the view, in frame pixels.
    pub center: egui::Vec2,
    pub overlay: bool,
    pub split: bool,
    pub before: Before,
    /// Where the split is, 0..1 of the width.
    pub split_at: f32,
    /// Display gain for linear stages, in stops.
    pub ev: f32,
    /// The scale drawn last (fit or zoom).
    pub scale: f32,
    wheel: f32,
    main: Slot,
    back: Slot,
    left: Slot,
}

impl Default for Viewer {
    fn default() -> Self {
        Viewer {
            tap: None,
            zoom: 1.0,
            fit: true,
            center: egui::Vec2::ZERO,
            overlay: false,
            split: false,
            before: Before::Loaded,
            split_at: 0.5,
            ev: 0.0,
            scale: 1.0,
            wheel: 0.0,
            main: Slot::default(),
            back: Slot::default(),
            left: Slot::default(),
        }
    }
}

impl Viewer {
    /// A viewer at `zoom` (`None`: fitting the window).
    pub fn at_zoom(zoom: Option<f32>) -> Self {
        Viewer {
            fit: zoom.is_none(),
            zoom: zoom.unwrap_or(1.0).clamp(MIN_ZOOM, MAX_ZOOM),
            ..Default::default()
        }
    }
}

impl Viewer {
    /// Ask the inspect thread for a tap image of the frame on screen when
    /// the one we have is for something else.
    fn want_tap(&self, s: &AppState, tap: Option<Tap>, before: bool, loaded: bool) {
        let (Some(frame), Some(format)) = (s.shown_frame(), s.latest.as_ref().map(|r| r.format))
        else {
            return;
        };
        let Some(raw) = s.player.raw_of(frame) else {
            return;
        };
        let key = TapKey {
            frame,
            tap,
            ev_centi: (self.ev * 100.0).round() as i32,
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
            // The zoom box: the scale shown, also while fitting.
            let mut pct = self.scale * 100.0;
            let l = ui.label("zoom");
            let r = ui
                .add(
                    egui::DragValue::new(&mut pct)
                        .range(MIN_ZOOM * 100.0..=MAX_ZOOM * 100.0)
                        .suffix("%")
                        .max_decimals(0)
                        .speed(1.0),
                )
                .labelled_by(l.id)
                .on_hover_text("+ / - zoom in steps, F fit, 1 for 1:1, wheel zooms about the cursor, drag pans");
            if r.changed() {
                self.set_zoom(pct / 100.0);
            }
            if ui
                .selectable_label(self.fit, "Fit")
                .on_hover_text("F")
                .clicked()
            {
                self.fit = true;
            }
            if ui.button("1:1").on_hover_text("1").clicked() {
                self.set_zoom(1.0);
            }
            ui.checkbox(&mut self.overlay, "clipped");
            ui.checkbox(&mut self.split, "before/after");
            if self.split {
                let view = self.tap;
                egui::ComboBox::from_label("before")
                    .selected_text(self.before.name(view))
                    .show_ui(ui, |ui| {
                        ui.selectable_value(
                            &mut self.before,
                            Before::Loaded,
                            Before::Loaded.name(view),
                        );
                        if input_of(view).is_some() {
                            ui.selectable_value(
                                &mut self.before,
                                Before::Input,
                                Before::Input.name(view),
                            );
                        }
                    });
            }
            let linear = self.tap.is_some_and(|t| t != Tap::Tone);
            if linear || (self.split && self.before == Before::Input) {
                ui.add(
                    egui::Slider::new(&mut self.ev, -4.0..=8.0)
                        .step_by(0.25)
                        .text("display EV"),
                )
                .on_hover_text("gain for linear stages before the sRGB display curve");
            }
        });
    }

    /// Zoom to `z` about the middle of the view.
    pub fn set_zoom(&mut self, z: f32) {
        self.fit = false;
        self.zoom = z.clamp(MIN_ZOOM, MAX_ZOOM);
    }

    /// Zoom to `z`, keeping the image point under `at` (screen) in place.
    fn zoom_about(&mut self, z: f32, at: egui::Pos2, view: egui::Rect) {
        let z = z.clamp(MIN_ZOOM, MAX_ZOOM);
        let off = at - view.center();
        let p = self.center + off / self.scale;
        self.center = p - off / z;
        self.zoom = z;
        self.scale = z;
        self.fit = false;
    }

    /// Keyboard requests (the studio's shortcuts).
    fn take_requests(&mut self, s: &mut AppState) {
        let r = std::mem::take(&mut s.view_requests);
        if r.fit {
            self.fit = true;
        }
        if r.one_to_one {
            self.set_zoom(1.0);
        }
        if r.zoom_steps != 0 {
            let mut z = self.scale;
            for _ in 0..r.zoom_steps.unsigned_abs() {
                z = zoom_step(z, r.zoom_steps);
            }
            self.set_zoom(z);
        }
    }
}

impl Panel for Viewer {
    fn title(&self) -> &'static str {
        "Viewer"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        if let Some(v) = s.capture_view.as_mut().filter(|v| v.visible) {
            super::capture::pair(ui, v);
            return;
        }
        self.take_requests(s);
        self.toolbar(ui);
        let selected = s.selected_preview();
        if let Some(id) = s.selected_frame {
            ui.horizontal(|ui| {
                let name = s
                    .selected_source
                    .map_or_else(|| s.frame_name(id), |sf| format!("frame {}", sf.index));
                if s.selection_rerenders() {
                    if s.shown_source().map(|f| f.index) == s.selected_source.map(|f| f.index) {
                        ui.label(format!("showing {name} (selected in the timeline)"));
                    } else {
                        ui.label(format!("rendering {name} from the session..."));
                    }
                } else if selected.is_some() && self.tap.is_none() {
                    ui.label(format!("showing {name} (selected in the timeline)"));
                } else {
                    ui.label(format!("{name} selected; no longer kept"));
                }
                if ui.button("Back to live").clicked() {
                    s.back_to_live();
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
        let Some(full) = latest_size else {
            ui.label("waiting for the first frame...");
            return;
        };
        // The main (after) image, and what lies under it while a crop is made.
        let ctx = ui.ctx().clone();
        let whole = [0, 0, full[0], full[1]];
        let mut backdrop = None;
        let main = if let Some((fid, px, size)) = &selected {
            // A kept preview of a live source: converted here once (on a click).
            let key = *fid as usize ^ 0x5e1e_c7ed;
            match &mut self.main.texture {
                Some(t) if self.main.holds == Some(key) => Some((t.id(), [0, 0, size[0], size[1]])),
                _ => {
                    let img = DisplayImage::whole(px, *size);
                    let id = self.main.set(&ctx, "viewer", &img.image);
                    self.main.holds = Some(key);
                    Some((id, img.region))
                }
            }
        } else if self.tap.is_some() {
            self.want_tap(s, self.tap, false, false);
            self.side(s, self.tap, false).map(|img| {
                backdrop = img.backdrop.clone();
                (self.main.set(&ctx, "viewer", &img.image), img.region)
            })
        } else if use_gpu {
            s.gpu_texture.map(|(id, _)| (id, whole))
        } else {
            s.frame_image.as_ref().map(|img| {
                backdrop = img.backdrop.clone();
                (self.main.set(&ctx, "viewer", &img.image), img.region)
            })
        };
        let Some((main_id, main_region)) = main else {
            ui.label("computing...");
            return;
        };
        // The backdrop under a crop: the newest one made (the presenter
        // makes one when the crop moves, not every frame).
        let cropped = main_region != whole;
        let back_id = match backdrop {
            Some(b) => Some(self.back.set(&ctx, "viewer-backdrop", &b)),
            None => self.back.texture.as_ref().map(|t| t.id()),
        }
        .filter(|_| cropped);
        // The before side of the split: the same stage, like with like.
        let before_id = if self.split {
            let (tap, loaded) = match self.before {
                Before::Loaded => (self.tap, true),
                Before::Input => (input_of(self.tap), false),
            };
            self.want_tap(s, tap, true, loaded);
            self.side(s, tap, true)
                .map(|img| (self.left.set(&ctx, "viewer-before", &img.image), img.region))
        } else {
            None
        };
        if self.split {
            ui.label(match before_id {
                Some(_) => format!("before: {} | after: now", self.before.name(self.tap)),
                None => "computing the before image...".into(),
            });
        }
        self.canvas(ui, s, full, (main_id, main_region), back_id, before_id);
    }
}

impl Viewer {
    /// The image itself: all the space left, zoom about the cursor, drag
    /// to pan, the split's divider.
    fn canvas(
        &mut self,
        ui: &mut egui::Ui,
        s: &mut AppState,
        full: [usize; 2],
        (main_id, main_region): (egui::TextureId, [usize; 4]),
        back_id: Option<egui::TextureId>,
        before_id: Option<(egui::TextureId, [usize; 4])>,
    ) {
        let view = ui.available_rect_before_wrap();
        let resp = ui.allocate_rect(view, egui::Sense::click_and_drag());
        let full_v = egui::vec2(full[0] as f32, full[1] as f32);
        let fit_scale = (view.width() / full_v.x)
            .min(view.height() / full_v.y)
            .max(0.01);
        if self.fit {
            self.scale = fit_scale;
            self.center = full_v / 2.0;
        } else {
            self.scale = self.zoom;
        }
        // The wheel zooms about the cursor in steady steps; so does a pinch.
        if let Some(at) = resp.hover_pos() {
            let (wheel, pinch) = ui.input(wheel_and_pinch);
            self.wheel += wheel;
            let mut z = self.scale;
            while self.wheel.abs() >= WHEEL_STEP {
                let dir = self.wheel.signum() as i32;
                z = zoom_step(z, dir);
                self.wheel -= WHEEL_STEP * dir as f32;
            }
            if (pinch - 1.0).abs() > 1e-4 {
                z *= pinch;
            }
            if z != self.scale {
                self.zoom_about(z, at, view);
            }
        } else {
            self.wheel = 0.0;
        }
        // Drag pans (from fit, at the fitted scale).
        if resp.dragged() {
            if self.fit {
                self.zoom = self.scale;
                self.fit = false;
            }
            self.center -= resp.drag_delta() / self.scale;
        }
        self.center = self.center.clamp(egui::Vec2::ZERO, full_v);
        let scale = self.scale;
        let origin = view.center() - self.center * scale;
        let rect = egui::Rect::from_min_size(origin, full_v * scale);
        let painter = ui.painter_at(view);
        let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        // An image showing `region` of the frame, where that region lies.
        let at = |r: [usize; 4]| {
            egui::Rect::from_min_max(
                origin + egui::vec2(r[0] as f32, r[1] as f32) * scale,
                origin + egui::vec2(r[2] as f32, r[3] as f32) * scale,
            )
        };
        if let Some(b) = back_id {
            painter.image(b, rect, uv, egui::Color32::WHITE);
        }
        painter.image(main_id, at(main_region), uv, egui::Color32::WHITE);
        s.viewer_drawn = Some((main_id, at(main_region).intersect(view)));
        s.viewer_image = Some((rect, scale));
        if let Some((bid, bregion)) = before_id {
            let x = rect.min.x + rect.width() * self.split_at;
            let left = egui::Rect::from_min_max(rect.min, egui::pos2(x, rect.max.y));
            painter.with_clip_rect(left.intersect(view)).image(
                bid,
                at(bregion),
                uv,
                egui::Color32::WHITE,
            );
            // The divider: drag it.
            let handle = egui::Rect::from_center_size(
                egui::pos2(x, rect.center().y),
                egui::vec2(8.0, rect.height()),
            )
            .intersect(view);
            let h = ui.interact(handle, ui.make_persistent_id("split"), egui::Sense::drag());
            if h.dragged() && rect.width() > 0.0 {
                self.split_at = (self.split_at + h.drag_delta().x / rect.width()).clamp(0.0, 1.0);
            }
            let stroke = egui::Stroke::new(2.0, egui::Color32::YELLOW);
            painter.vline(x, rect.y_range(), stroke);
            let font = egui::FontId::proportional(12.0);
            let top = rect.top().max(view.top());
            painter.text(
                egui::pos2(rect.left().max(view.left()) + 4.0, top + 4.0),
                egui::Align2::LEFT_TOP,
                format!("before: {}", self.before.name(self.tap)),
                font.clone(),
                egui::Color32::YELLOW,
            );
            painter.text(
                egui::pos2(rect.right().min(view.right()) - 4.0, top + 4.0),
                egui::Align2::RIGHT_TOP,
                "after",
                font,
                egui::Color32::YELLOW,
            );
        }
        // Upload no more pixels than the screen shows.
        let settings = &s.presenter.settings;
        let physical = scale * ui.ctx().pixels_per_point();
        let factor = if physical >= 1.0 {
            1
        } else {
            ((1.0 / physical).floor() as usize).clamp(1, 16)
        };
        if settings.factor.swap(factor, Ordering::Relaxed) != factor {
            s.presenter.refresh();
        }
        self.follow_crop(s, rect, view, scale, full, main_region);
        // The pixel under the cursor goes to the Inspector.
        if let Some(pos) = resp.hover_pos() {
            let r = (pos - rect.min) / scale;
            if r.x >= 0.0 && r.y >= 0.0 && (r.x as usize) < full[0] && (r.y as usize) < full[1] {
                s.inspect_at = Some((r.x as usize, r.y as usize));
            }
        }
    }

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
            // Keep the crop while the view is in it and it is not far
            // bigger than the view (zoomed in since).
            let area = |r: [usize; 4]| (r[2] - r[0]) * (r[3] - r[1]);
            if inside && settings.crop().is_some() && area(shown) <= 5 * area(v) {
                return;
            }
            // Half the visible size again on each side.
            let (mx, my) = ((v[2] - v[0]) / 2, (v[3] - v[1]) / 2);
            let c = [
                v[0].saturating_sub(mx),
                v[1].saturating_sub(my),
                (v[2] + mx).min(full[0]),
                (v[3] + my).min(full[1]),
            ];
            // A crop of everything is no crop.
            (c != [0, 0, full[0], full[1]]).then_some(c)
        };
        if settings.set_crop(want) {
            s.presenter.refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_of_a_stage_is_the_one_before_it() {
        assert_eq!(input_of(Some(Tap::Unpacked)), None);
        assert_eq!(input_of(None), Some(Tap::Ccm));
        assert_eq!(input_of(Some(Tap::Demosaic)), Some(Tap::WhiteBalance));
    }
}
