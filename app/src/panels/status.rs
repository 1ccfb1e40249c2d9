//! Status bar and log: source, resolution, fps, backend and adapter, drops,
//! params version; errors (bad file, vanished camera, GPU fault) land here.

use super::Panel;
use crate::state::AppState;
use eframe::egui;

/// The one-line status bar (drawn by the studio at the bottom): source,
/// format, fps, backend (short; the whole description on hover), drops,
/// parameters version, frames shown, the selection and the last error.
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
    let backend = s.engine.backend();
    let short = match &backend {
        isp_engine::pipeline::ActiveBackend::Gpu { adapter } => format!("GPU {adapter}"),
        isp_engine::pipeline::ActiveBackend::Cpu { .. } => "CPU".into(),
    };
    let mut line = format!(
        "{fmt} | {:.1} fps | {short} | dropped by the engine {drops} | lost by the camera {} | params v{} | shown {}",
        s.fps(),
        s.engine.device_dropped(),
        s.engine.params.version(),
        s.frames_shown,
    );
    if let Some(f) = s.selected_frame {
        line += &format!(" | selected {}", s.frame_name(f));
    }
    let last_error = s.log.iter().rev().find(|l| l.error);
    ui.horizontal(|ui| {
        ui.add(egui::Label::new(line).wrap_mode(egui::TextWrapMode::Extend))
            .on_hover_text(format!("backend: {backend}"));
        if let Some(e) = last_error {
            let errors = s.log.iter().filter(|l| l.error).count();
            ui.add(
                egui::Label::new(
                    egui::RichText::new(format!("{errors} error(s), last: {}", e.text))
                        .color(ui.visuals().error_fg_color),
                )
                .truncate(),
            )
            .on_hover_text(&e.text);
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.add(egui::Label::new(crate::state::tidy_path(&p.name)).truncate())
                .on_hover_text(crate::state::tidy_path(&p.name));
        });
    });
}

#[derive(Default)]
pub struct Log;

impl Panel for Log {
    fn title(&self) -> &'static str {
        "Log"
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
