//! Lanes: busy % per lane and per worker over time; queue depths and frames
//! dropped over time (a second plot); the counters as text.

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
    /// Samples per lane.
    history: [VecDeque<Sample>; 2],
}

/// One sample of a lane: time, busy fraction per worker, queue depth
/// (with continuations), frames dropped since the previous sample.
struct Sample {
    t: f64,
    busy: Vec<f64>,
    queue: f64,
    dropped: f64,
}

const LANES: [Lane; 2] = [Lane::Realtime, Lane::Background];

/// A plot `w` x `h` from 0 to at least `y_max`, with a small translucent legend.
fn small_plot(id: &str, y_max: f64, w: f32, h: f32) -> Plot<'_> {
    Plot::new(id)
        .legend(
            Legend::default()
                .text_style(egui::TextStyle::Small)
                .background_alpha(0.4),
        )
        .include_y(0.0)
        .include_y(y_max)
        .width(w)
        .height(h)
}

impl Lanes {
    fn sample(&mut self, s: &AppState) {
        if s.now - self.last_t < 0.25 {
            return;
        }
        self.last_t = s.now;
        let now = LANES.map(|l| s.engine.threading().stats(l));
        if let Some(prev) = &self.prev {
            for k in 0..2 {
                let busy = utilization(&prev[k], &now[k]);
                self.history[k].push_back(Sample {
                    t: s.now,
                    busy,
                    queue: (now[k].queue_depth + now[k].continuation_depth) as f64,
                    dropped: now[k].dropped.saturating_sub(prev[k].dropped) as f64,
                });
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
        [820.0, 165.0, 440.0, 185.0]
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
        // Busy % on the left, queues and drops on the right.
        let h = (ui.available_height() - 4.0).clamp(90.0, 400.0);
        let w = (ui.available_width() / 2.0 - 4.0).max(100.0);
        ui.horizontal(|ui| {
            small_plot("lanes", 100.0, w, h).show(ui, |plot| {
                for (k, h) in self.history.iter().enumerate() {
                    let workers = h.back().map(|x| x.busy.len()).unwrap_or(0);
                    let lane: PlotPoints = h
                        .iter()
                        .map(|x| {
                            let n = x.busy.len().max(1) as f64;
                            [x.t, 100.0 * x.busy.iter().sum::<f64>() / n]
                        })
                        .collect();
                    plot.line(Line::new(format!("{} busy %", LANES[k].name()), lane));
                    for w in 0..workers {
                        let pts: PlotPoints = h
                            .iter()
                            .map(|x| [x.t, 100.0 * x.busy.get(w).copied().unwrap_or(0.0)])
                            .collect();
                        plot.line(Line::new(format!("{} worker {w}", LANES[k].name()), pts));
                    }
                }
            });
            small_plot("queues", 4.0, w, h).show(ui, |plot| {
                for (k, h) in self.history.iter().enumerate() {
                    let name = LANES[k].name();
                    let q: PlotPoints = h.iter().map(|x| [x.t, x.queue]).collect();
                    plot.line(Line::new(format!("{name} queue"), q));
                    let d: PlotPoints = h.iter().map(|x| [x.t, x.dropped]).collect();
                    plot.line(Line::new(format!("{name} dropped"), d));
                }
            });
        });
    }
}
