//! Capture: a burst (2..=16 frames, merged to lower the noise) or an
//! exposure bracket (EV steps, merged into one HDR frame) from the source
//! that is playing. The merge runs on the background lane while the preview
//! goes on; the plan's reserved buffers are in the Buffers panel meanwhile,
//! its steps (`fusion`, then `slow_isp` twice) on the timeline's background
//! lane. When it is done the viewer shows the merged result beside the
//! reference frame, and this panel the report: frames chosen and left out,
//! the reference, alignment, the merge's weights, the times. (`pair` is that
//! side-by-side view; the viewer calls it.)

use super::Panel;
use crate::player::{CaptureState, PlayerCmd};
use crate::state::AppState;
use eframe::egui;
use isp_engine::fusion::FusionKind;
use isp_engine::pipeline::{CaptureReport, CaptureRequest};

pub struct Capture {
    frames: usize,
    ev: String,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            frames: 8,
            ev: "-2, 0, 2".into(),
        }
    }
}

/// EV steps as written (`-2, 0, 2`, spaces or commas between).
pub fn parse_ev(text: &str) -> Result<Vec<f32>, String> {
    text.split([',', ' '])
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            t.trim()
                .parse::<f32>()
                .map_err(|_| format!("`{}` is not an EV step", t.trim()))
        })
        .collect()
}

impl Panel for Capture {
    fn title(&self) -> &'static str {
        "Capture"
    }

    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let state = s
            .player
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capture
            .clone();
        let running = matches!(state, CaptureState::Running(_));
        ui.add_enabled_ui(!running, |ui| {
            ui.horizontal(|ui| {
                ui.label("Burst of");
                ui.add(egui::DragValue::new(&mut self.frames).range(2..=16));
                ui.label("frames");
                if ui.button("Capture burst").clicked() {
                    let kind = FusionKind::Burst {
                        frames: self.frames,
                    };
                    s.player
                        .send(PlayerCmd::Capture(Box::new(CaptureRequest::new(kind))));
                }
            });
            ui.horizontal(|ui| {
                ui.label("Bracket EV");
                ui.add(egui::TextEdit::singleline(&mut self.ev).desired_width(90.0));
                if ui.button("Capture bracket").clicked() {
                    match parse_ev(&self.ev) {
                        Ok(ev) => s
                            .player
                            .send(PlayerCmd::Capture(Box::new(CaptureRequest::new(
                                FusionKind::Bracket { ev },
                            )))),
                        Err(e) => s.error(format!("bracket: {e}")),
                    }
                }
            });
        });
        match &state {
            CaptureState::Idle => {
                ui.label("No capture yet.");
            }
            CaptureState::Running(what) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(what);
                });
            }
            CaptureState::Failed(e) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("failed: {e}"));
            }
            CaptureState::Done(_) => {}
        }
        let Some(view) = &mut s.capture_view else {
            return;
        };
        ui.separator();
        let label = if view.visible {
            "Hide from viewer"
        } else {
            "Show in viewer"
        };
        if ui.button(label).clicked() {
            view.visible = !view.visible;
        }
        report_ui(ui, &view.shown.report);
    }
}

fn report_ui(ui: &mut egui::Ui, r: &CaptureReport) {
    let what = match &r.plan.kind {
        FusionKind::Burst { frames } => format!("burst of {frames}"),
        FusionKind::Bracket { ev } => format!("bracket {ev:?} EV"),
    };
    ui.label(format!(
        "plan {}: {what}, {}x{}; merged on {}",
        r.plan.id, r.plan.format.width, r.plan.format.height, r.merged_on
    ));
    ui.label(format!(
        "read {:.0} ms, align {:.0} ms, merge {:.0} ms, total {:.0} ms",
        r.read_ms, r.align_ms, r.merge_ms, r.total_ms
    ));
    egui::Grid::new("capture-frames")
        .striped(true)
        .show(ui, |ui| {
            for h in [
                "frame",
                "seq",
                "exposure",
                "focus",
                "weight",
                "offset px",
                "",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for (i, f) in r.frames.iter().enumerate() {
                ui.label(i.to_string());
                ui.label(f.info.sequence.to_string());
                ui.label(format!(
                    "{:.0} us x{:.2}",
                    f.info.exposure_us, f.info.analogue_gain
                ));
                ui.label(format!("{:.4}", f.focus));
                let k = r.selection.chosen.iter().position(|&c| c == i);
                ui.label(
                    k.and_then(|k| r.merge.mean_weight.get(k))
                        .map_or("-".into(), |w| format!("{w:.2}")),
                );
                ui.label(
                    r.alignment
                        .iter()
                        .find(|a| a.frame == i)
                        .map_or("-".into(), |a| {
                            format!("{:.1} (max {})", a.mean_offset_px, a.max_offset_px)
                        }),
                );
                if i == r.selection.reference {
                    ui.strong("reference");
                } else if let Some((_, why)) = r.selection.rejected.iter().find(|x| x.0 == i) {
                    ui.label(format!("left out: {why}"));
                } else {
                    ui.label("merged");
                }
                ui.end_row();
            }
        });
}

/// A finished capture: the merged result and the reference frame side by
/// side, each fitted to its half, with what they are under them.
pub(super) fn pair(ui: &mut egui::Ui, v: &mut crate::state::CaptureView) {
    let r = &v.shown.report;
    ui.horizontal(|ui| {
        ui.label(format!(
            "capture plan {}: {} of {} frames merged on {}",
            r.plan.id,
            r.selection.chosen.len(),
            r.plan.frames(),
            r.merged_on
        ));
        if ui.button("Back to live").clicked() {
            v.visible = false;
        }
    });
    let names = [
        format!("merged ({} frames)", r.selection.chosen.len()),
        format!("reference (frame {} alone)", r.selection.reference),
    ];
    ui.columns(2, |cols| {
        for (k, ui) in cols.iter_mut().enumerate() {
            let tex = &v.textures[k];
            let avail = ui.available_size() - egui::vec2(0.0, 24.0);
            ui.vertical_centered(|ui| {
                ui.add(
                    egui::Image::from_texture(egui::load::SizedTexture::from_handle(tex))
                        .max_size(avail.max(egui::vec2(16.0, 16.0)))
                        .maintain_aspect_ratio(true),
                );
                ui.label(&names[k]);
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ev_steps_parse_as_written() {
        assert_eq!(parse_ev("-2,0,2"), Ok(vec![-2.0, 0.0, 2.0]));
        assert_eq!(parse_ev(" -1.5  0 , 1.5"), Ok(vec![-1.5, 0.0, 1.5]));
        assert!(parse_ev("-2, x").unwrap_err().contains("`x`"));
    }
}
