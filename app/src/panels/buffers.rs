//! Buffers: every pool slot with its state, pins, owner and age; pins the
//! Housekeeper would flag as stale are highlighted.

use super::Panel;
use crate::state::AppState;
use eframe::egui;

#[derive(Default)]
pub struct Buffers;

/// Pins held longer than this are stale (the Housekeeper's default).
const STALE_NS: u64 = 2_000_000_000;

impl Panel for Buffers {
    fn title(&self) -> &'static str {
        "Buffers"
    }
    fn default_rect(&self) -> [f32; 4] {
        [820.0, 410.0, 440.0, 140.0]
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
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("buffers").striped(true).show(ui, |ui| {
                for h in ["id", "kind", "state", "owner", "pins", "age ms"] {
                    ui.strong(h);
                }
                ui.end_row();
                for b in rm.snapshot() {
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
    }
}
