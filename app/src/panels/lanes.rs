//! Lanes: busy % per lane and per worker over time, queue depths, drops.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};
use isp_engine::threading_manager::{LaneStats, utilization};
use isp_engine::types::Lane;
use std::collections::VecDeque;

#[derive(Default)]
pub struct Lanes {
    prev: Option<[LaneStats; 2]>,
    last_t: f64,
    /// (time, busy % per worker) per lane.
    history: [VecDeque<(f64, Vec<f64>)>; 2],
}

const LANES: [Lane; 2] = [Lane::Realtime, Lane::Background];

impl Lanes {
    fn sample(&mut self, s: &AppState) {
        if s.now - self.last_t < 0.25 {
            return;
        }
        self.last_t = s.now;
        let now = LANES.map(|l| s.engine.threading().stats(l));
        if let Some(prev) = &self.prev {
            for k in 0..2 {
                let u = utilization(&prev[k], &now[k]);
                self.history[k].push_back((s.now, u));
                while self.history[k].len() > 240 {
                    self.history[k].pop_front();
                }
            }
        }
        self.prev = Some(now);
    }
}

impl Panel for Lanes {
    fn title(&self) -> &'static str {
        "Lanes"
    }
    fn default_rect(&self) -> [f32; 4] {
        [820.0, 195.0, 440.0, 150.0]
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        self.sample(s);
        if let Some(prev) = &self.prev {
            for (k, st) in prev.iter().enumerate() {
                ui.label(format!(
                    "{}: queue {} (+{} continuations), submitted {}, dropped {}",
                    LANES[k].name(),
                    st.queue_depth,
                    st.continuation_depth,
                    st.submitted,
                    st.dropped
                ));
            }
        }
        Plot::new("lanes")
            .legend(Legend::default())
            .include_y(0.0)
            .include_y(100.0)
            .height(ui.available_height().max(80.0))
            .show(ui, |plot| {
                for (k, h) in self.history.iter().enumerate() {
                    let workers = h.back().map(|(_, u)| u.len()).unwrap_or(0);
                    let lane: PlotPoints = h
                        .iter()
                        .map(|(t, u)| [*t, 100.0 * u.iter().sum::<f64>() / u.len().max(1) as f64])
                        .collect();
                    plot.line(Line::new(format!("{} busy %", LANES[k].name()), lane));
                    for w in 0..workers {
                        let pts: PlotPoints = h
                            .iter()
                            .map(|(t, u)| [*t, 100.0 * u.get(w).copied().unwrap_or(0.0)])
                            .collect();
                        plot.line(Line::new(format!("{} worker {w}", LANES[k].name()), pts));
                    }
                }
            });
    }
}
