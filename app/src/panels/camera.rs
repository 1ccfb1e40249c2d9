//! Camera: the source picker (cameras, recent sessions, the demo) and, for a
//! live camera, its controls as qv4l2 shows them (sliders, checkboxes, menus;
//! read-only ones greyed) beside the 3A state: AE's target and the level it
//! measured, exposure, gain, AWB gains, converged or not. Exposure and gain
//! belong to AE until moved by hand (then they are manual overrides in the
//! Coordinator's chain, which win over AE) and "Auto" gives them back.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use isp_engine::algorithms::ae::MeanLuminanceAe;
use isp_engine::sources::camera::controls::{ControlInfo, ControlKind, SensorMap};
use isp_engine::sources::camera::list::{self, DeviceInfo};

/// Within this fraction of AE's target the loop counts as converged.
pub const CONVERGED: f32 = 0.05;

#[derive(Default)]
pub struct Camera {
    /// The cameras found at the last look (None: not looked yet).
    devices: Option<Vec<DeviceInfo>>,
    /// Manual values set here: (exposure in us, analogue gain).
    manual: (Option<f32>, Option<f32>),
    /// A slider being dragged: (control id, value) shown instead of the
    /// device's until it is let go.
    dragging: Option<(u32, i64)>,
}

impl Camera {
    fn picker(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let devices = self.devices.get_or_insert_with(list::devices).clone();
        let current = s.source_spec.clone().unwrap_or_else(|| "demo".into());
        let mut choice = None;
        let mut refresh = false;
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt("source-picker")
                .selected_text(crate::state::tidy_path(&current))
                .width(ui.available_width() - 70.0)
                .show_ui(ui, |ui| {
                    if devices.is_empty() {
                        ui.weak("no cameras found");
                    }
                    for d in devices.iter() {
                        let spec = format!("v4l:{}", d.path.display());
                        let text = format!("{}  {}", d.path.display(), d.card);
                        if ui.selectable_label(current == spec, text).clicked() {
                            choice = Some(spec);
                        }
                    }
                    ui.separator();
                    if ui
                        .selectable_label(current == "demo", "Demo session")
                        .clicked()
                    {
                        choice = Some("demo".into());
                    }
                    for r in s
                        .recent_files
                        .iter()
                        .filter(|r| std::path::Path::new(r).is_dir())
                    {
                        let label = crate::state::tidy_path(r);
                        if ui.selectable_label(current == *r, label).clicked() {
                            choice = Some(r.clone());
                        }
                    }
                });
            refresh = ui
                .button("Refresh")
                .on_hover_text("Look for cameras again")
                .clicked();
        });
        if refresh {
            self.devices = None;
        }
        if let Some(spec) = choice {
            self.manual = (None, None);
            s.engine.set_manual_controls(None, None);
            s.open_source(&spec);
        }
    }

    fn three_a(&self, ui: &mut egui::Ui, s: &AppState) {
        let Some(r) = &s.latest else {
            ui.weak("no frame yet");
            return;
        };
        let target = ae_target(s);
        let measured = r
            .stats
            .as_ref()
            .map(|st| MeanLuminanceAe::luminance(st, r.ipa.wb_gains));
        egui::Grid::new("three-a").num_columns(2).show(ui, |ui| {
            ui.label("AE target");
            ui.label(format!("{target:.3}"));
            ui.end_row();
            ui.label("measured");
            ui.label(measured.map_or("-".into(), |m| format!("{m:.3}")));
            ui.end_row();
            ui.label("exposure");
            ui.label(format!("{:.2} ms", r.meta.exposure_us / 1000.0));
            ui.end_row();
            ui.label("analogue gain");
            ui.label(format!("{:.3}x", r.meta.analogue_gain));
            ui.end_row();
            ui.label("AWB gains");
            let g = r.ipa.wb_gains;
            ui.label(format!("R {:.3}  G {:.3}  B {:.3}", g[0], g[1], g[2]));
            ui.end_row();
            ui.label("AE");
            let state = match measured {
                Some(m) if (m / target - 1.0).abs() <= CONVERGED => "converged",
                Some(_) => "adjusting",
                None => "-",
            };
            let manual = match self.manual {
                (Some(_), Some(_)) => " (manual exposure and gain)",
                (Some(_), None) => " (manual exposure)",
                (None, Some(_)) => " (manual gain)",
                _ => "",
            };
            ui.label(format!("{state}{manual}"));
            ui.end_row();
            ui.label("frames lost by the camera");
            ui.label(s.engine.device_dropped().to_string());
            ui.end_row();
        });
    }

    fn controls(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let controls = s.engine.device_controls();
        if controls.is_empty() {
            ui.weak("waiting for the camera's controls");
            return;
        }
        let status = s.player.status();
        let (w, h) = status.format.map_or((0, 0), |f| (f.width, f.height));
        let fps = status.fps.unwrap_or(30.0).max(1.0) as f64;
        let map = SensorMap::new(&controls, w, h, 1.0 / fps);
        let exposure_id = map.exposure.as_ref().map(|(c, _)| c.id);
        let gain_id = map.gain.as_ref().map(|(c, _)| c.id);
        // Name, slider, value box and the AE/Auto column fit the panel.
        ui.spacing_mut().slider_width = (ui.available_width() - 285.0).clamp(40.0, 240.0);
        egui::Grid::new("camera-controls")
            .num_columns(4)
            .striped(true)
            .show(ui, |ui| {
                for c in &controls {
                    ui.add_enabled(c.editable(), egui::Label::new(&c.name))
                        .on_hover_text(format!("{:#010x}  {}", c.id, c.describe()));
                    let sensor = Some(c.id) == exposure_id || Some(c.id) == gain_id;
                    if let Some(v) = self.control(ui, c) {
                        if Some(c.id) == exposure_id {
                            self.manual.0 = map.exposure_us(v);
                        } else if Some(c.id) == gain_id {
                            self.manual.1 = map.gain(v);
                        }
                        if sensor {
                            s.engine.set_manual_controls(self.manual.0, self.manual.1);
                        } else {
                            s.engine.set_device_control(c.id, v);
                        }
                    }
                    if sensor {
                        let manual = if Some(c.id) == exposure_id {
                            &mut self.manual.0
                        } else {
                            &mut self.manual.1
                        };
                        if manual.is_some() {
                            if ui
                                .button("Auto")
                                .on_hover_text("Give it back to AE")
                                .clicked()
                            {
                                *manual = None;
                                s.engine.set_manual_controls(self.manual.0, self.manual.1);
                            }
                        } else {
                            ui.weak("AE");
                        }
                    } else {
                        ui.label("");
                    }
                    ui.end_row();
                }
            });
    }

    /// One control's widget; the new value when the user changed it.
    fn control(&mut self, ui: &mut egui::Ui, c: &ControlInfo) -> Option<i64> {
        let current = c.value.unwrap_or(c.default);
        if !c.editable() {
            ui.label(c.value.map_or("-".into(), |v| v.to_string()));
            ui.label("");
            return None;
        }
        match c.kind {
            ControlKind::Boolean => {
                let mut on = current != 0;
                let r = ui.checkbox(&mut on, "");
                ui.label("");
                r.changed().then_some(on as i64)
            }
            ControlKind::Menu | ControlKind::IntegerMenu => {
                let mut v = current;
                let name = |v: i64| {
                    c.menu
                        .iter()
                        .find(|(i, _)| *i as i64 == v)
                        .map_or(v.to_string(), |(_, n)| n.clone())
                };
                egui::ComboBox::from_id_salt(("control", c.id))
                    .selected_text(name(v))
                    .show_ui(ui, |ui| {
                        for (i, n) in &c.menu {
                            ui.selectable_value(&mut v, *i as i64, n);
                        }
                    });
                ui.label("");
                (v != current).then_some(v)
            }
            ControlKind::Button => {
                let r = ui.button("Set");
                ui.label("");
                r.clicked().then_some(1)
            }
            _ => {
                let mut v = match self.dragging {
                    Some((id, v)) if id == c.id => v,
                    _ => current,
                };
                // The name is in the first column; the slider keeps it for
                // screen readers (and tests). The value is its own box.
                let r = ui.add(
                    egui::Slider::new(&mut v, c.min..=c.max)
                        .step_by(c.step.max(1) as f64)
                        .show_value(false),
                );
                r.widget_info(|| egui::WidgetInfo::slider(true, v as f64, &c.name));
                let typed = ui.add(
                    egui::DragValue::new(&mut v)
                        .range(c.min..=c.max)
                        .speed(c.step.max(1) as f64),
                );
                let r = r | typed;
                if r.dragged() {
                    self.dragging = Some((c.id, v));
                } else if self.dragging.is_some_and(|d| d.0 == c.id) {
                    self.dragging = None;
                }
                (r.changed() && v != current).then(|| c.quantise(v))
            }
        }
    }
}

/// AE's target level in the tuning being edited.
fn ae_target(s: &AppState) -> f32 {
    s.tuning
        .current
        .algorithms
        .iter()
        .find(|a| a.name == MeanLuminanceAe::NAME)
        .and_then(|a| isp_engine::algorithms::effective_params(&a.name, &a.params))
        .and_then(|p| p.get("target").and_then(|t| t.as_f64()))
        .unwrap_or(0.18) as f32
}

impl Panel for Camera {
    fn title(&self) -> &'static str {
        "Camera"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            self.picker(ui, s);
            let live = s
                .source_spec
                .as_deref()
                .is_some_and(|p| p.starts_with("v4l:"));
            if !live {
                ui.weak("Pick a camera to see its controls and the 3A loop.");
                return;
            }
            ui.separator();
            self.three_a(ui, s);
            ui.separator();
            self.controls(ui, s);
        });
    }
}
