//! Parameters: every stage's and algorithm's parameters, generated from the
//! tuning structure (its JSON form), edited live: the next frame uses them.
//! Per-stage bypass (`enabled`), a 3x3 CCM grid, the tone curve's points,
//! undo/redo, open/save with file dialogs, and a diff against the file as loaded.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use serde_json::Value;

#[derive(Default)]
pub struct Parameters {
    /// The tuning when a curve drag began (one undo step per drag).
    curve_before: Option<isp_engine::tuning::Tuning>,
}

impl Parameters {
    /// The tone curve's editor: drag, add (click), remove (right-click).
    fn tone_curve(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        ui.label("curve: drag a point, click to add, right-click to remove");
        let tone = s.tuning.current.stages.tone.clone();
        let mut points = tone.curve.clone();
        let mut whole = tone.clone();
        whole.curve.clear();
        let edit = crate::widgets::curve_editor(ui, &mut points, |x| whole.eval(x));
        if edit.drag_started {
            self.curve_before = Some(s.tuning.current.clone());
        }
        if edit.changed {
            if self.curve_before.is_some() {
                // Mid-drag: live on the next frame, one undo step at the end.
                s.tuning.current.stages.tone.curve = points.clone();
                s.apply_tuning();
            } else {
                s.edit_tuning(|t| t.stages.tone.curve = points.clone());
            }
        }
        if edit.drag_stopped
            && let Some(before) = self.curve_before.take()
        {
            s.tuning.push_undo(before);
        }
        ui.horizontal(|ui| {
            ui.label(format!("{} point(s)", points.len()));
            if ui
                .add_enabled(!points.is_empty(), egui::Button::new("Reset curve"))
                .clicked()
            {
                s.edit_tuning(|t| t.stages.tone.curve.clear());
            }
        });
    }
}

/// What the field at `path` accepts (the engine's description of it).
fn field_of(path: &str) -> Option<&'static isp_engine::stages::fields::Field> {
    if let Some(rest) = path.strip_prefix("algorithms.") {
        let (name, field) = rest.rsplit_once(".params.")?;
        return isp_engine::algorithms::fields(name)
            .iter()
            .find(|f| f.name == field);
    }
    isp_engine::stages::fields::field(path)
}

/// The block a path's last field belongs to (`white_balance` for
/// `stages.white_balance.enabled`).
fn block_of(path: &str) -> &str {
    let parent = path.rsplit_once('.').map_or(path, |p| p.0);
    parent.rsplit_once('.').map_or(parent, |p| p.1)
}

/// Widgets for one JSON value at `path` in the tuning file (`key` its last
/// part); true when it changed. Slider ranges and choices come from the
/// engine's field descriptions, by path.
fn edit_value(ui: &mut egui::Ui, path: &str, key: &str, v: &mut Value) -> bool {
    match v {
        Value::Bool(b) => {
            let label = if key == "enabled" {
                format!("{} enabled (off: bypass)", block_of(path))
            } else {
                key.to_string()
            };
            ui.checkbox(b, label).changed()
        }
        Value::Number(n) => {
            let mut f = n.as_f64().unwrap_or(0.0);
            let int = n.is_u64() || n.is_i64();
            let changed = ui
                .horizontal(|ui| {
                    let l = ui.label(key);
                    if let Some((lo, hi, log)) = field_of(path).and_then(|f| f.slider_range()) {
                        let mut sl = egui::Slider::new(&mut f, lo..=hi).logarithmic(log);
                        if int {
                            sl = sl.integer();
                        }
                        return ui.add(sl).labelled_by(l.id).changed();
                    }
                    let speed = if int {
                        1.0
                    } else {
                        (f.abs() * 0.01).max(0.001)
                    };
                    ui.add(egui::DragValue::new(&mut f).speed(speed))
                        .labelled_by(l.id)
                        .changed()
                })
                .inner;
            if changed {
                *v = if int {
                    Value::from(f.round().max(0.0) as u64)
                } else {
                    serde_json::Number::from_f64(f)
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                };
            }
            changed
        }
        Value::Array(items) if items.iter().all(Value::is_number) && items.len() <= 8 => {
            ui.horizontal(|ui| {
                let l = ui.label(key);
                let mut changed = false;
                for (i, item) in items.iter_mut().enumerate() {
                    changed |= edit_number(ui, item, &format!("{key}[{i}]"), l.id);
                }
                changed
            })
            .inner
        }
        Value::Array(items) if items.iter().all(Value::is_array) && items.len() <= 16 => {
            // A matrix (the CCM) or the tone curve's points: a grid.
            let mut changed = false;
            let l = ui.label(key);
            egui::Grid::new(key).show(ui, |ui| {
                for (r, row) in items.iter_mut().enumerate() {
                    if let Value::Array(cells) = row {
                        for (c, cell) in cells.iter_mut().enumerate() {
                            changed |= edit_number(ui, cell, &format!("{key}[{r}][{c}]"), l.id);
                        }
                    }
                    ui.end_row();
                }
            });
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            if key == "gamma" {
                changed |= edit_gamma(ui, map);
            }
            let grid_width = map.get("grid_width").and_then(Value::as_u64);
            for (k, v) in map.iter_mut() {
                if key == "gamma" && k == "kind" {
                    continue;
                }
                if let (Some(w), "gains", Value::Array(planes)) = (grid_width, k.as_str(), &mut *v)
                {
                    changed |= edit_shading_grid(ui, planes, w.max(1) as usize);
                    continue;
                }
                changed |= edit_value(ui, &format!("{path}.{k}"), k, v);
            }
            changed
        }
        Value::String(s) if choices(path).is_some() => {
            let options = choices(path).unwrap_or(&[]);
            let before = s.clone();
            ui.horizontal(|ui| {
                let l = ui.label(key);
                egui::ComboBox::from_id_salt(path)
                    .selected_text(s.as_str())
                    .show_ui(ui, |ui| {
                        for o in options {
                            ui.selectable_value(s, (*o).to_string(), *o);
                        }
                    })
                    .response
                    .labelled_by(l.id);
            });
            *s != before
        }
        Value::String(s) => {
            ui.horizontal(|ui| {
                ui.label(key);
                ui.text_edit_singleline(s).lost_focus()
            })
            .inner
        }
        Value::Null => {
            ui.label(format!("{key}: default"));
            false
        }
        other => {
            ui.label(format!(
                "{key}: {} values",
                other.as_array().map_or(1, Vec::len)
            ));
            false
        }
    }
}

/// A 3A block: `enabled` and every parameter the algorithm runs with
/// (defaults filled in). Only the values that differ from what it ran with
/// are written back into the block's `params`. `runs_with`: the block's
/// parameters as its algorithm reads them (a model file found beside the
/// tuning file named by its path).
fn edit_algorithm(ui: &mut egui::Ui, name: &str, block: &mut Value, runs_with: &Value) -> bool {
    let given = block.get("params").cloned().unwrap_or(Value::Null);
    let Some(Value::Object(effective)) = isp_engine::algorithms::effective_params(name, runs_with)
    else {
        return edit_value(ui, &format!("algorithms.{name}"), name, block);
    };
    let mut changed = false;
    if let Some(Value::Bool(on)) = block.get_mut("enabled") {
        changed |= ui
            .checkbox(on, format!("{name} enabled (off: bypass)"))
            .changed();
    }
    let mut shown = Value::Object(effective.clone());
    if edit_value(
        ui,
        &format!("algorithms.{name}.params"),
        "params",
        &mut shown,
    ) && let Value::Object(edited) = shown
    {
        let mut params = match given {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        for (k, v) in edited {
            if effective.get(&k) != Some(&v) {
                params.insert(k, v);
            }
        }
        block["params"] = Value::Object(params);
        changed = true;
    }
    changed
}

/// The lens-shading table: one collapsible grid per Bayer site, laid out as
/// the grid is (a row of the table per row of the grid), plus a scale per site.
fn edit_shading_grid(ui: &mut egui::Ui, planes: &mut [Value], width: usize) -> bool {
    const SITES: [&str; 4] = ["R", "Gr", "Gb", "B"];
    let mut changed = false;
    for (c, plane) in planes.iter_mut().enumerate() {
        let Value::Array(cells) = plane else { continue };
        let name = SITES.get(c).copied().unwrap_or("?");
        egui::CollapsingHeader::new(format!("gains {name} ({} values)", cells.len()))
            .id_salt(("lsc", c))
            .show(ui, |ui| {
                let l = ui.label(format!("gains {name}"));
                ui.horizontal(|ui| {
                    for (label, f) in [("x0.95", 0.95), ("x1.05", 1.05)] {
                        if ui.button(label).clicked() {
                            for v in cells.iter_mut() {
                                let g = v.as_f64().unwrap_or(1.0) * f;
                                *v = serde_json::Number::from_f64(g)
                                    .map(Value::Number)
                                    .unwrap_or(Value::Null);
                            }
                            changed = true;
                        }
                    }
                });
                egui::ScrollArea::horizontal()
                    .id_salt(("lsc-scroll", c))
                    .show(ui, |ui| {
                        egui::Grid::new(("lsc-grid", c)).show(ui, |ui| {
                            for (i, cell) in cells.iter_mut().enumerate() {
                                changed |= edit_number(ui, cell, &format!("lsc{c}[{i}]"), l.id);
                                if (i + 1) % width == 0 {
                                    ui.end_row();
                                }
                            }
                        });
                    });
            });
    }
    changed
}

/// The strings the field at `path` may hold (the tuning's enumerations).
fn choices(path: &str) -> Option<&'static [&'static str]> {
    match field_of(path)?.domain {
        isp_engine::stages::fields::Domain::Choice(of) => Some(of),
        _ => None,
    }
}

/// The tone curve's gamma: sRGB, linear, or a power (with its value).
fn edit_gamma(ui: &mut egui::Ui, map: &mut serde_json::Map<String, Value>) -> bool {
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("srgb")
        .to_string();
    let mut chosen = kind.clone();
    ui.horizontal(|ui| {
        let l = ui.label("gamma");
        egui::ComboBox::from_id_salt("gamma-kind")
            .selected_text(chosen.as_str())
            .show_ui(ui, |ui| {
                for o in ["srgb", "linear", "power"] {
                    ui.selectable_value(&mut chosen, o.to_string(), o);
                }
            })
            .response
            .labelled_by(l.id);
    });
    if chosen == kind {
        return false;
    }
    map.insert("kind".into(), Value::from(chosen.as_str()));
    if chosen == "power" {
        map.entry("value").or_insert(Value::from(2.2));
    } else {
        map.remove("value");
    }
    true
}

fn edit_number(ui: &mut egui::Ui, v: &mut Value, id: &str, label: egui::Id) -> bool {
    let mut f = v.as_f64().unwrap_or(0.0);
    let r = ui.push_id(id, |ui| {
        ui.add(egui::DragValue::new(&mut f).speed(0.01).max_decimals(4))
            .labelled_by(label)
    });
    if r.inner.changed() {
        *v = serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null);
        return true;
    }
    false
}

impl Panel for Parameters {
    fn title(&self) -> &'static str {
        "Parameters"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        ui.horizontal(|ui| {
            if ui
                .add_enabled(s.tuning.can_undo(), egui::Button::new("Undo"))
                .on_hover_text("ctrl+Z")
                .clicked()
            {
                s.undo();
            }
            if ui
                .add_enabled(s.tuning.can_redo(), egui::Button::new("Redo"))
                .on_hover_text("ctrl+shift+Z")
                .clicked()
            {
                s.redo();
            }
            if ui.button("Open...").clicked() {
                s.files.request = Some(crate::files::FileAction::OpenTuning);
            }
            if ui.button("Save...").clicked() {
                s.files.request = Some(crate::files::FileAction::SaveTuning);
            }
        });
        if let (Some(f), Some(v)) = (s.selected_frame, s.selected_params) {
            ui.label(format!(
                "selected {} ran with parameters v{v} (now v{})",
                s.frame_name(f),
                s.engine.params.version()
            ));
        }
        let diff = s.tuning.diff();
        egui::CollapsingHeader::new(format!("{} change(s) since loaded", diff.len()))
            .id_salt("diff")
            .show(ui, |ui| {
                for d in &diff {
                    ui.monospace(d);
                }
            });
        egui::ScrollArea::vertical().show(ui, |ui| {
            let mut stages = serde_json::to_value(&s.tuning.current.stages).unwrap_or_default();
            let mut changed = false;
            if let Value::Object(map) = &mut stages {
                for (name, block) in map.iter_mut() {
                    egui::CollapsingHeader::new(name.as_str())
                        .default_open(matches!(
                            name.as_str(),
                            "white_balance" | "ccm" | "black_level"
                        ))
                        .show(ui, |ui| {
                            changed |= edit_value(ui, &format!("stages.{name}"), name, block);
                            if name == "tone" {
                                self.tone_curve(ui, s);
                            }
                        });
                }
            }
            let mut algos = serde_json::to_value(&s.tuning.current.algorithms).unwrap_or_default();
            let t = &s.tuning.current;
            let runs_with: Vec<Value> = t
                .algorithms
                .iter()
                .map(|b| t.block_params(b).into_owned())
                .collect();
            let mut algos_changed = false;
            if let Value::Array(list) = &mut algos {
                for (i, a) in list.iter_mut().enumerate() {
                    let name = a["name"].as_str().unwrap_or("algorithm").to_string();
                    egui::CollapsingHeader::new(format!("3A: {name}"))
                        .id_salt(("algo", i))
                        .show(ui, |ui| {
                            let r = runs_with.get(i).unwrap_or(&Value::Null);
                            algos_changed |= edit_algorithm(ui, &name, a, r);
                        });
                }
            }
            if changed {
                match serde_json::from_value(stages) {
                    Ok(st) => s.edit_tuning(|t| t.stages = st),
                    Err(e) => s.error(format!("parameters: {e}")),
                }
            }
            if algos_changed {
                match serde_json::from_value(algos) {
                    Ok(a) => s.edit_tuning(|t| t.algorithms = a),
                    Err(e) => s.error(format!("algorithms: {e}")),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isp_engine::stages::fields::Domain;

    #[test]
    fn widgets_find_their_fields_by_path_not_by_name() {
        // Two fields called `matrix`: the CCM's numbers, the YUV's choice.
        assert_eq!(choices("stages.yuv.matrix"), Some(&["bt601", "bt709"][..]));
        assert!(choices("stages.ccm.matrix").is_none());
        // The algorithms' ranges are the ones their init checks.
        let t = field_of("algorithms.ae.mean_luminance.params.target").unwrap();
        assert!(t.admits(0.5) && !t.admits(1.0));
        assert!(matches!(t.domain, Domain::Range { .. }));
        assert_eq!(
            field_of("stages.tone.contrast").and_then(|f| f.slider_range()),
            Some((0.1, 8.0, true))
        );
        assert!(field_of("algorithms.nope.params.target").is_none());
        assert_eq!(block_of("stages.white_balance.enabled"), "white_balance");
    }
}
