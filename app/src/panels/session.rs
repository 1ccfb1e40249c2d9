//! Session: open a recorded session (folder dialog, drag and drop, or the
//! command line), play, pause, step, seek, loop; record the source into a
//! new session; export the telemetry CSV.

use super::Panel;
use crate::files::FileAction;
use crate::player::PlayerCmd;
use crate::state::AppState;
use eframe::egui;

#[derive(Default)]
pub struct Session {
    seek: u64,
}

impl Panel for Session {
    fn title(&self) -> &'static str {
        "Session"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let p = s.player.status();
        ui.add(egui::Label::new(crate::state::tidy_path(&p.name)).truncate());
        ui.horizontal(|ui| {
            if p.playing {
                if ui.button("Pause").clicked() {
                    s.player.send(PlayerCmd::Pause);
                }
            } else if ui.button("Play").clicked() {
                s.player.send(PlayerCmd::Play);
            }
            if ui.button("Step").clicked() {
                s.player.send(PlayerCmd::Pause);
                s.player.send(PlayerCmd::Step);
            }
            let mut looping = p.looping;
            if ui.checkbox(&mut looping, "Loop").changed() {
                s.player.send(PlayerCmd::Loop(looping));
            }
        });
        if let Some(n) = p.count.filter(|n| *n > 0) {
            if !ui.input(|i| i.pointer.any_down()) {
                self.seek = p.last_index.unwrap_or(0).min(n - 1);
            }
            let r = ui.add(egui::Slider::new(&mut self.seek, 0..=n - 1).text("frame"));
            if r.drag_stopped() || (r.changed() && !r.dragged()) {
                s.player.send(PlayerCmd::Seek(self.seek));
            }
        } else {
            ui.label(format!("frame {} (live)", p.position));
        }
        ui.horizontal_wrapped(|ui| {
            if ui.button("Open session...").clicked() {
                s.files.request = Some(FileAction::OpenSession);
            }
            if ui.button("Open DNG...").clicked() {
                s.files.request = Some(FileAction::OpenDng);
            }
            match &p.recording {
                None => {
                    if ui.button("Record...").clicked() {
                        s.files.request = Some(FileAction::RecordInto);
                    }
                }
                Some(r) => {
                    ui.colored_label(egui::Color32::RED, "REC");
                    if ui
                        .button(format!("Stop recording ({} frames)", r.frames))
                        .on_hover_text(r.dir.display().to_string())
                        .clicked()
                    {
                        s.stop_recording();
                    }
                }
            }
            if ui.button("Export telemetry CSV...").clicked() {
                s.files.request = Some(FileAction::ExportCsv);
            }
        });
    }
}
