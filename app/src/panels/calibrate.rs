//! Calibrate: captures in (dark frames, flat fields, ColorChecker charts,
//! each a source spec or the frame on screen, with its light's colour
//! temperature), `isp_engine::calibrate::run` on a thread of its own, and the
//! result: the chart as found drawn over its capture (a four-corner pick
//! where detection fails or is wrong), the patch table (measured beside
//! reference swatches, dE2000 before and after), the lens-shading surface,
//! warnings, and "Apply to tuning" (one undo step).

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use isp_engine::calibrate::synthetic::{Placement, SynthSensor};
use isp_engine::calibrate::{self, Capture, Inputs, Lit, Report};
use isp_engine::tuning::Tuning;
use std::sync::{Arc, Mutex};

mod chart;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Dark,
    Flat,
    Chart,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Dark => "dark",
            Role::Flat => "flat",
            Role::Chart => "chart",
        }
    }
}

/// A capture to calibrate from: a source spec read when the calibration
/// runs, or frames already in memory.
#[derive(Clone)]
pub struct Entry {
    pub role: Role,
    pub ct: Option<f32>,
    pub spec: Option<String>,
    pub capture: Option<Arc<Capture>>,
    pub corners: Option<[[f32; 2]; 4]>,
}

impl Entry {
    fn name(&self) -> String {
        self.spec
            .clone()
            .or_else(|| self.capture.as_ref().map(|c| c.name.clone()))
            .unwrap_or_default()
    }
}

/// What a run came to.
pub enum Outcome {
    Running,
    Failed(String),
    Done(Box<Done>),
}

/// A finished run: the calibrated tuning, the report, the chart captures,
/// which entry each chart came from, and the tuning it started from.
#[derive(Clone)]
pub struct Done {
    pub tuning: Tuning,
    pub report: Report,
    pub charts: Vec<Arc<Capture>>,
    pub chart_entries: Vec<usize>,
    pub base: Tuning,
}

pub struct Calibrate {
    pub entries: Vec<Entry>,
    role: Role,
    ct: f32,
    spec: String,
    pub outcome: Arc<Mutex<Option<Outcome>>>,
    chart: usize,
    picking: Option<Vec<[f32; 2]>>,
    texture: Option<(usize, egui::TextureHandle)>,
}

impl Default for Calibrate {
    fn default() -> Self {
        Calibrate {
            entries: Vec::new(),
            role: Role::Chart,
            ct: 5000.0,
            spec: String::new(),
            outcome: Arc::new(Mutex::new(None)),
            chart: 0,
            picking: None,
            texture: None,
        }
    }
}

impl Calibrate {
    /// Run the calibration of `entries` on `base` on a thread.
    pub fn start(&mut self, base: Tuning) {
        let entries = self.entries.clone();
        let out = self.outcome.clone();
        *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(Outcome::Running);
        self.texture = None;
        std::thread::spawn(move || {
            let r = (|| -> Result<Done, String> {
                let mut inputs = Inputs::default();
                let mut charts = Vec::new();
                let mut chart_entries = Vec::new();
                for (i, e) in entries.iter().enumerate() {
                    let c = match (&e.capture, &e.spec) {
                        (Some(c), _) => (**c).clone(),
                        (None, Some(s)) => {
                            isp_engine::sources::read_capture(s, &Default::default(), 64)
                                .map_err(|e| e.to_string())?
                        }
                        (None, None) => continue,
                    };
                    match e.role {
                        Role::Dark => inputs.darks.push(c),
                        Role::Flat => inputs.flats.push(Lit {
                            capture: c,
                            ct: e.ct,
                        }),
                        Role::Chart => {
                            charts.push(Arc::new(c.clone()));
                            chart_entries.push(i);
                            inputs.corners.push(e.corners);
                            inputs.charts.push(Lit {
                                capture: c,
                                ct: e.ct,
                            });
                        }
                    }
                }
                let (tuning, report) = calibrate::run(&inputs, &base)?;
                Ok(Done {
                    tuning,
                    report,
                    charts,
                    chart_entries,
                    base,
                })
            })();
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(match r {
                Ok(v) => Outcome::Done(Box::new(v)),
                Err(e) => Outcome::Failed(e),
            });
        });
    }

    /// A full synthetic set (known truth): darks, two flats, three charts.
    pub fn load_synthetic(&mut self) {
        let s = SynthSensor {
            width: 960,
            height: 720,
            ..Default::default()
        };
        let mut add = |role, ct: Option<f32>, c: Capture| {
            self.entries.push(Entry {
                role,
                ct,
                spec: None,
                capture: Some(Arc::new(c)),
                corners: None,
            })
        };
        add(Role::Dark, None, s.dark(8));
        for ct in [3000.0, 6500.0] {
            add(Role::Flat, Some(ct as f32), s.flat(ct, 0.6, 2));
        }
        // Single frames: their patches also give the noise.
        for ct in [2856.0, 4100.0, 6500.0] {
            add(
                Role::Chart,
                Some(ct as f32),
                s.chart(ct, Placement::default(), 1, 0),
            );
        }
    }

    /// The frame on screen (the player's last raw frame) as a capture.
    fn current_frame(s: &AppState) -> Option<Capture> {
        let st = s.player.status.lock().unwrap_or_else(|p| p.into_inner());
        let (raw, fmt) = (st.last_raw.clone()?, st.format?);
        let meta = st.last_meta.clone().unwrap_or_default();
        let name = format!("{} frame {}", st.name, st.last_index.unwrap_or(0));
        let c = Capture::from_frame(name, &fmt, &raw, meta.exposure_us, meta.analogue_gain)?;
        Some(match st.levels {
            Some(l) => c.with_levels(l.white, l.black),
            None => c,
        })
    }

    fn inputs_ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::from_id_salt("calibrate role")
                .selected_text(self.role.name())
                .show_ui(ui, |ui| {
                    for r in [Role::Dark, Role::Flat, Role::Chart] {
                        ui.selectable_value(&mut self.role, r, r.name());
                    }
                });
            ui.label("CT");
            ui.add(
                egui::DragValue::new(&mut self.ct)
                    .range(1500.0..=12000.0)
                    .suffix(" K"),
            );
            ui.add(
                egui::TextEdit::singleline(&mut self.spec)
                    .hint_text("dng:PATH, a session, raw:...")
                    .desired_width(160.0),
            );
            let ct = (self.role != Role::Dark).then_some(self.ct);
            if ui.button("Add source").clicked() && !self.spec.trim().is_empty() {
                self.entries.push(Entry {
                    role: self.role,
                    ct,
                    spec: Some(self.spec.trim().to_string()),
                    capture: None,
                    corners: None,
                });
            }
            if ui.button("Add current frame").clicked() {
                match Self::current_frame(s) {
                    Some(c) => self.entries.push(Entry {
                        role: self.role,
                        ct,
                        spec: None,
                        capture: Some(Arc::new(c)),
                        corners: None,
                    }),
                    None => s.error("calibrate: no frame on screen to add"),
                }
            }
            if ui
                .button("Synthetic set")
                .on_hover_text("darks, flats and charts rendered with known truth")
                .clicked()
            {
                self.load_synthetic();
            }
        });
        let mut remove = None;
        for (i, e) in self.entries.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(format!(
                    "{} {}{}",
                    e.role.name(),
                    e.name(),
                    e.ct.map(|c| format!(" @ {c:.0} K")).unwrap_or_default()
                ));
                if e.corners.is_some() {
                    ui.label("(corners picked)");
                }
                if ui.small_button("x").clicked() {
                    remove = Some(i);
                }
            });
        }
        if let Some(i) = remove {
            self.entries.remove(i);
        }
    }
}

impl Panel for Calibrate {
    fn title(&self) -> &'static str {
        "Calibrate"
    }

    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            self.inputs_ui(ui, s);
            let running = matches!(
                *self.outcome.lock().unwrap_or_else(|p| p.into_inner()),
                Some(Outcome::Running)
            );
            let guard = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
            let result = match &*guard {
                Some(Outcome::Done(d)) => Some((d.tuning.clone(), d.base.clone())),
                _ => None,
            };
            drop(guard);
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(
                        !running && !self.entries.is_empty(),
                        egui::Button::new("Run calibration"),
                    )
                    .clicked()
                {
                    self.start(s.tuning.current.clone());
                }
                if running {
                    ui.spinner();
                    ui.ctx()
                        .request_repaint_after(std::time::Duration::from_millis(100));
                }
                if let Some((t, base)) = result {
                    if ui
                        .button("Apply to tuning")
                        .on_hover_text("one undo step")
                        .clicked()
                    {
                        s.edit_tuning(move |cur| *cur = t);
                        s.info("calibration applied to the tuning (undo to take it back)");
                    } else if s.tuning.current != base && s.tuning.current != t {
                        ui.colored_label(
                            egui::Color32::from_rgb(230, 150, 40),
                            "the tuning changed since the run: Apply replaces those edits (run again to keep them)",
                        );
                    }
                }
            });
            let guard = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
            let done = match &*guard {
                Some(Outcome::Failed(e)) => {
                    ui.colored_label(
                        egui::Color32::from_rgb(220, 90, 60),
                        format!("calibration failed: {e}"),
                    );
                    None
                }
                Some(Outcome::Done(d)) => Some(d.clone()),
                _ => None,
            };
            drop(guard);
            let Some(d) = done else { return };
            let Done {
                tuning,
                report: rep,
                charts,
                chart_entries,
                ..
            } = *d;
            for w in &rep.warnings {
                ui.colored_label(egui::Color32::from_rgb(230, 150, 40), w);
            }
            for a in &rep.applied {
                ui.label(a);
            }
            self.chart_ui(ui, &rep, &charts, &chart_entries);
            if let Some(l) = &rep.lens_shading {
                ui.separator();
                ui.label(format!(
                    "Lens shading {}x{} (per site, blue 1 .. red the largest gain)",
                    l.grid.0, l.grid.1
                ));
                let p = &tuning.stages.lens_shading;
                let hi = p.gains.iter().flatten().cloned().fold(1.0f32, f32::max);
                ui.horizontal_wrapped(|ui| {
                    for (site, name) in ["R", "Gr", "Gb", "B"].iter().enumerate() {
                        let cell = 6.0;
                        let (r, _) = ui.allocate_exact_size(
                            egui::vec2(
                                p.grid_width as f32 * cell,
                                p.grid_height as f32 * cell + 14.0,
                            ),
                            egui::Sense::hover(),
                        );
                        for j in 0..p.grid_height {
                            for i in 0..p.grid_width {
                                let g = p.gains[site][j * p.grid_width + i];
                                let t = ((g - 1.0) / (hi - 1.0).max(1e-3)).clamp(0.0, 1.0);
                                let c = egui::Color32::from_rgb(
                                    (255.0 * t) as u8,
                                    60,
                                    (255.0 * (1.0 - t)) as u8,
                                );
                                let at = r.min + egui::vec2(i as f32 * cell, j as f32 * cell);
                                ui.painter().rect_filled(
                                    egui::Rect::from_min_size(at, egui::vec2(cell, cell)),
                                    0.0,
                                    c,
                                );
                            }
                        }
                        ui.painter().text(
                            r.left_bottom(),
                            egui::Align2::LEFT_BOTTOM,
                            format!(
                                "{name} max {:.2}",
                                p.gains[site].iter().cloned().fold(0.0f32, f32::max)
                            ),
                            egui::FontId::proportional(11.0),
                            ui.visuals().text_color(),
                        );
                    }
                });
                for f in &l.flats {
                    ui.label(format!(
                        "{}: residual after correction max {:.2}% (R Gr Gb B: {})",
                        f.name,
                        100.0 * f.residual_max.iter().cloned().fold(0.0f32, f32::max),
                        f.residual_max
                            .iter()
                            .map(|v| format!("{:.2}%", 100.0 * v))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
            }
        });
    }
}
