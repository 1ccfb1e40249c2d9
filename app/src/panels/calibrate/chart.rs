//! The Calibrate panel's chart view: each chart's capture drawn with the
//! patches found on it, the four-corner pick, and the patch table (measured
//! and reference swatches, dE2000 before and after the fit).

use super::{Calibrate, Role};
use eframe::egui;
use isp_engine::calibrate::colour::{lab_d50_to_linear_srgb, srgb_encode};
use isp_engine::calibrate::{Capture, Report};
use std::sync::Arc;

fn swatch(ui: &mut egui::Ui, lab: [f64; 3]) {
    let c =
        lab_d50_to_linear_srgb(lab).map(|v| (srgb_encode(v.clamp(0.0, 1.0)) * 255.0).round() as u8);
    let (r, _) = ui.allocate_exact_size(egui::vec2(28.0, 14.0), egui::Sense::hover());
    ui.painter()
        .rect_filled(r, 2.0, egui::Color32::from_rgb(c[0], c[1], c[2]));
}

/// The capture as a small sRGB picture (quads, the chart's white balance and
/// exposure), at most 480 wide; and its scale (capture px per picture px).
fn picture(
    c: &Capture,
    pedestal: [f32; 4],
    wb: [f64; 3],
    exposure: f64,
) -> (egui::ColorImage, f32) {
    let step = (c.width / 480).max(2) & !1;
    let (w, h) = (c.width / step, c.height / step);
    let tile = c.cfa.tile();
    let mut px = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f64; 4];
            for (k, t) in tile.iter().enumerate() {
                let (sx, sy) = (x * step + k % 2, y * step + k / 2);
                acc[t.index()] = (c.data[sy * c.width + sx] - pedestal[t.index()]) as f64;
            }
            let rgb = [acc[0], (acc[1] + acc[2]) / 2.0, acc[3]];
            let v: [u8; 3] = std::array::from_fn(|i| {
                (srgb_encode((rgb[i] * wb[i] * exposure * 1.2).clamp(0.0, 1.0)) * 255.0) as u8
            });
            px.push(egui::Color32::from_rgb(v[0], v[1], v[2]));
        }
    }
    (
        egui::ColorImage {
            size: [w, h],
            source_size: egui::vec2(w as f32, h as f32),
            pixels: px,
        },
        step as f32,
    )
}

impl Calibrate {
    pub(super) fn chart_ui(
        &mut self,
        ui: &mut egui::Ui,
        rep: &Report,
        charts: &[Arc<Capture>],
        entries: &[usize],
    ) {
        if rep.charts.is_empty() {
            return;
        }
        ui.separator();
        self.chart = self.chart.min(rep.charts.len() - 1);
        ui.horizontal(|ui| {
            ui.label("Chart");
            egui::ComboBox::from_id_salt("calibrate chart")
                .selected_text(rep.charts[self.chart].name.clone())
                .show_ui(ui, |ui| {
                    for (i, c) in rep.charts.iter().enumerate() {
                        ui.selectable_value(&mut self.chart, i, &c.name);
                    }
                });
        });
        let f = &rep.charts[self.chart];
        ui.label(format!(
            "{}: mean dE2000 {:.2} (max {:.2}); with the tuning's CCM {:.2} (max {:.2})",
            f.found.method, f.after.mean, f.after.max, f.before.mean, f.before.max
        ));
        if let Some(c) = charts.get(self.chart) {
            let pedestal = rep.black.as_ref().map(|b| b.levels).unwrap_or([0.0; 4]);
            if self.texture.as_ref().is_none_or(|(i, _)| *i != self.chart) {
                let (img, _) = picture(c, pedestal, f.wb_gains, f.exposure);
                self.texture = Some((
                    self.chart,
                    ui.ctx()
                        .load_texture("calibrate chart", img, egui::TextureOptions::LINEAR),
                ));
            }
            let step = ((c.width / 480).max(2) & !1) as f32;
            if let Some((_, tex)) = &self.texture {
                // The picture fits the panel's width (every corner patch
                // within reach of a click).
                let fit = (ui.available_width() / tex.size_vec2().x).clamp(0.1, 1.0);
                let size = tex.size_vec2() * fit;
                let resp = ui.add(egui::Image::new((tex.id(), size)).sense(egui::Sense::click()));
                let r = resp.rect;
                let px = step / fit;
                let to_screen = |p: [f32; 2]| r.min + egui::vec2(p[0] / px, p[1] / px);
                let hw = f.found.half_window / px;
                for (i, p) in f.found.centres.iter().enumerate() {
                    let at = to_screen(*p);
                    let bad = f.patches[i].de_after > 3.0;
                    let col = if bad {
                        egui::Color32::RED
                    } else {
                        egui::Color32::from_rgb(60, 230, 90)
                    };
                    ui.painter().rect_stroke(
                        egui::Rect::from_center_size(at, egui::vec2(2.0 * hw, 2.0 * hw)),
                        0.0,
                        egui::Stroke::new(1.5, col),
                        egui::StrokeKind::Middle,
                    );
                    ui.painter().text(
                        at,
                        egui::Align2::CENTER_CENTER,
                        format!("{}", i + 1),
                        egui::FontId::proportional(10.0),
                        // Dark numbers on the light patches.
                        if f.patches[i].reference_lab[0] > 60.0 {
                            egui::Color32::BLACK
                        } else {
                            egui::Color32::WHITE
                        },
                    );
                }
                if let Some(pts) = &mut self.picking {
                    for p in pts.iter() {
                        ui.painter()
                            .circle_filled(to_screen(*p), 4.0, egui::Color32::YELLOW);
                    }
                    if resp.clicked()
                        && let Some(pos) = resp.interact_pointer_pos()
                    {
                        let d = pos - r.min;
                        pts.push([d.x * px, d.y * px]);
                    }
                }
            }
            ui.horizontal(|ui| {
                match &self.picking {
                    None => {
                        if ui.button("Pick corners").on_hover_text("click the centres of patches 1 (dark skin), 6 (bluish green), 19 (white), 24 (black)").clicked() {
                            self.picking = Some(Vec::new());
                        }
                    }
                    Some(p) => {
                        ui.label(format!("click patch {} of 1, 6, 19, 24", [1, 6, 19, 24].get(p.len()).copied().unwrap_or(24)));
                        if ui.button("Cancel").clicked() {
                            self.picking = None;
                        }
                    }
                }
            });
            if self.picking.as_ref().is_some_and(|p| p.len() == 4) {
                let p = self.picking.take().unwrap_or_default();
                let corners = [p[0], p[1], p[2], p[3]];
                // The entry this chart came from gets them (unless it was
                // removed since the run).
                if let Some(e) = entries
                    .get(self.chart)
                    .and_then(|&i| self.entries.get_mut(i))
                    && e.role == Role::Chart
                {
                    e.corners = Some(corners);
                }
            }
        }
        egui::Grid::new("calibrate patches")
            .striped(true)
            .show(ui, |ui| {
                for h in [
                    "#",
                    "patch",
                    "measured",
                    "reference",
                    "dE before",
                    "dE after",
                ] {
                    ui.strong(h);
                }
                ui.end_row();
                for (i, p) in f.patches.iter().enumerate() {
                    ui.label(format!("{}", i + 1));
                    ui.label(p.name);
                    swatch(ui, p.after_lab);
                    swatch(ui, p.reference_lab);
                    ui.label(format!("{:.2}", p.de_before));
                    let t = format!(
                        "{:.2}{}",
                        p.de_after,
                        if p.clipped { " (clipped)" } else { "" }
                    );
                    if p.de_after > 3.0 {
                        ui.colored_label(egui::Color32::from_rgb(230, 80, 60), t);
                    } else {
                        ui.label(t);
                    }
                    ui.end_row();
                }
            });
    }
}
