//! Buffers: every pool slot with its state, pins, owner and age, and a
//! timeline of pin lifetimes (a row per slot: the pins that ended, from the
//! ResourceManager's history, and the ones still held); pins the Housekeeper
//! would flag as stale are highlighted.

use super::Panel;
use crate::state::AppState;
use eframe::egui;

pub struct Buffers {
    /// Seconds of pin history shown.
    window_s: f64,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers { window_s: 2.0 }
    }
}

/// Pins held longer than this are stale (the Housekeeper's default).
const STALE_NS: u64 = 2_000_000_000;

impl Panel for Buffers {
    fn title(&self) -> &'static str {
        "Buffers"
    }
    fn default_rect(&self) -> [f32; 4] {
        [820.0, 362.0, 440.0, 200.0]
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let rm = &s.engine.rm;
        let st = rm.stats();
        ui.label(format!(
            "{} buffers, {} in use, {} pinned, {:.1} MB of {:.1} MB, {} allocations, {} reuses",
            st.total,
            st.allocated,
            st.pinned,
            st.bytes_in_use as f64 / 1e6,
            st.bytes_total as f64 / 1e6,
            st.allocations,
            st.reuses
        ));
        let now = isp_engine::clock::now_ns();
        let stale: Vec<_> = rm.stale_pins(now, STALE_NS);
        let slots = rm.snapshot();
        egui::ScrollArea::vertical()
            .max_height(ui.available_height() * 0.5)
            .show(ui, |ui| {
                egui::Grid::new("buffers").striped(true).show(ui, |ui| {
                    for h in ["id", "kind", "state", "owner", "pins", "age ms"] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    for b in &slots {
                        let is_stale = stale.iter().any(|p| p.id == b.id);
                        ui.label(format!("{}", b.id.index));
                        ui.label(format!(
                            "{:?} {}x{}",
                            b.spec.kind, b.spec.width, b.spec.height
                        ));
                        ui.label(b.state.name());
                        ui.label(&b.owner);
                        let pins: Vec<_> = b.pins.iter().map(|p| p.owner.as_str()).collect();
                        if is_stale {
                            ui.colored_label(ui.visuals().warn_fg_color, pins.join(", "));
                        } else {
                            ui.label(pins.join(", "));
                        }
                        ui.label(format!(
                            "{:.0}",
                            now.saturating_sub(b.since_ns) as f64 / 1e6
                        ));
                        ui.end_row();
                    }
                });
            });
        ui.horizontal(|ui| {
            ui.label("pin lifetimes");
            ui.add(
                egui::Slider::new(&mut self.window_s, 0.1..=30.0)
                    .logarithmic(true)
                    .text("s"),
            );
        });
        self.pin_timeline(ui, s, &slots, now);
    }
}

impl Buffers {
    /// A row per slot; a bar per pin from when it was taken to when it was
    /// dropped (or now, still held: outlined, in the warning colour when stale).
    fn pin_timeline(
        &self,
        ui: &mut egui::Ui,
        s: &AppState,
        slots: &[isp_engine::resource_manager::BufferInfo],
        now: u64,
    ) {
        let rows = slots.len().clamp(1, 32);
        let (rect, resp) = ui.allocate_exact_size(
            egui::vec2(ui.available_width(), (rows as f32 * 10.0).max(40.0)),
            egui::Sense::hover(),
        );
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "pin timeline"));
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
        let window = (self.window_s * 1e9) as u64;
        let start = now.saturating_sub(window);
        let x_of = |t: u64| {
            rect.left()
                + (t.saturating_sub(start) as f64 / window.max(1) as f64) as f32 * rect.width()
        };
        let row_h = rect.height() / rows as f32;
        let row_of = |slot: u32| {
            slots
                .iter()
                .position(|b| b.id.index == slot)
                .filter(|r| *r < rows)
        };
        let hover = resp.hover_pos();
        let mut tip = None;
        let mut bar = |row: usize, since: u64, b: u64, owner: &str, open: bool, stale: bool| {
            let a = since.max(start);
            let y = rect.top() + row as f32 * row_h;
            let r = egui::Rect::from_min_max(
                egui::pos2(x_of(a), y + 1.0),
                egui::pos2(x_of(b).max(x_of(a) + 1.0), y + row_h - 1.0),
            );
            let fill = if stale {
                ui.visuals().warn_fg_color
            } else {
                crate::widgets::name_colour(owner)
            };
            painter.rect_filled(r, 0.0, fill);
            if open {
                painter.rect_stroke(
                    r,
                    0.0,
                    (1.0, egui::Color32::WHITE),
                    egui::StrokeKind::Inside,
                );
            }
            if hover.is_some_and(|p| r.expand(1.0).contains(p)) {
                tip = Some(format!(
                    "{owner}: {:.1} ms{}{}",
                    b.saturating_sub(since) as f64 / 1e6,
                    if open { ", still held" } else { "" },
                    if stale { " (stale)" } else { "" }
                ));
            }
        };
        for p in s.engine.rm.pin_history() {
            if p.end_ns < start {
                continue;
            }
            if let Some(row) = row_of(p.slot) {
                bar(row, p.start_ns, p.end_ns, &p.owner, false, false);
            }
        }
        for (row, b) in slots.iter().enumerate().take(rows) {
            for p in &b.pins {
                let stale = now.saturating_sub(p.since_ns) > STALE_NS;
                bar(row, p.since_ns, now, &p.owner, true, stale);
            }
        }
        if let Some(t) = tip {
            resp.on_hover_text(t);
        }
    }
}
