//! Histogram: the frame on screen's per-channel histograms (the engine's
//! statistics), linear or log, and the fraction of clipped pixels.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};

#[derive(Default)]
pub struct Histogram {
    pub log: bool,
}

impl Panel for Histogram {
    fn title(&self) -> &'static str {
        "Histogram"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.log, "log histogram");
            ui.label(format!(
                "clipped: {:.2}% high, {:.2}% low",
                s.clipped[0] * 100.0,
                s.clipped[1] * 100.0
            ));
        });
        let Some(st) = s.latest.as_ref().and_then(|r| r.stats.clone()) else {
            ui.label("no statistics yet");
            return;
        };
        let log = self.log;
        let bins = st.histograms[0].len().max(1) as f64;
        Plot::new("histogram")
            .legend(Legend::default().position(egui_plot::Corner::RightTop))
            .x_axis_label("level (0..1 of full scale)")
            .y_axis_label(if log { "log10 pixels" } else { "pixels" })
            .allow_scroll(false)
            .show(ui, |plot| {
                for (c, (name, colour)) in [
                    ("R", egui::Color32::from_rgb(230, 80, 80)),
                    ("G", egui::Color32::from_rgb(80, 200, 80)),
                    ("B", egui::Color32::from_rgb(90, 130, 240)),
                ]
                .into_iter()
                .enumerate()
                {
                    let pts: PlotPoints = st.histograms[c]
                        .iter()
                        .enumerate()
                        .map(|(i, &n)| {
                            let v = n as f64;
                            [i as f64 / bins, if log { (v + 1.0).log10() } else { v }]
                        })
                        .collect();
                    plot.line(Line::new(name, pts).color(colour));
                }
            });
    }
}
