//! Status bar and log: source, resolution, fps, backend and adapter, drops,
//! params version; errors (bad file, vanished camera, GPU fault) land here.

use super::Panel;
use crate::state::AppState;
use eframe::egui;

/// The one-line status bar (drawn by the studio at the bottom).
pub fn status_bar(ui: &mut egui::Ui, s: &AppState) {
    let p = s.player.status();
    let fmt = p
        .format
        .map(|f| f.describe())
        .unwrap_or_else(|| "no source".into());
    let drops: u64 = [
        isp_engine::types::Lane::Realtime,
        isp_engine::types::Lane::Background,
    ]
    .iter()
    .map(|l| s.engine.threading().stats(*l).dropped)
    .sum();
    let errors = s.log.iter().filter(|l| l.error).count();
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "{} | {fmt} | {:.1} fps | backend {} | dropped {drops} | params v{} | shown {}",
            p.name,
            s.fps(),
            s.engine.backend(),
            s.engine.params.version(),
            s.frames_shown,
        ));
        if let Some(f) = s.selected_frame {
            ui.label(format!("| selected frame {f}"));
        }
        if errors > 0 {
            ui.colored_label(ui.visuals().error_fg_color, format!("{errors} error(s)"));
        }
    });
}

#[derive(Default)]
pub struct Log;

impl Panel for Log {
    fn title(&self) -> &'static str {
        "Log"
    }
    fn default_rect(&self) -> [f32; 4] {
        [820.0, 615.0, 440.0, 105.0]
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        if ui.button("Clear").clicked() {
            s.log.clear();
        }
        egui::ScrollArea::vertical()
            .stick_to_bottom(true)
            .show(ui, |ui| {
                for l in &s.log {
                    let text = format!("{:8.2}s  {}", l.time, l.text);
                    if l.error {
                        ui.colored_label(ui.visuals().error_fg_color, text);
                    } else {
                        ui.label(text);
                    }
                }
            });
    }
}
