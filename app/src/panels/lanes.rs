//! Lanes: busy % per lane and per worker over the last minute; queue depths
//! and frames dropped (a second plot); the counters as text. Axes name
//! their units; legends sit above the plots, never over the lines.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};
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

/// A plot `w` x `h` over the last minute (seconds before now) from 0 to
/// at least `y_max`, its axes named with their units. The legend is drawn
/// above it by [`legend`], so it never covers a line.
fn plot<'a>(id: &'a str, y_label: &'a str, y_max: f64, w: f32, h: f32) -> Plot<'a> {
    Plot::new(id)
        .x_axis_label("time (s, 0 = now)")
        .y_axis_label(y_label)
        .include_y(0.0)
        .include_y(y_max)
        .include_x(-HISTORY_S)
        .include_x(0.0)
        .allow_scroll(false)
        .width(w)
        .height(h)
}

/// Seconds of history plotted.
const HISTORY_S: f64 = 60.0;

/// A row of colour swatches and names (readable labels, above the plot).
fn legend(ui: &mut egui::Ui, entries: &[(String, egui::Color32)]) {
    ui.horizontal_wrapped(|ui| {
        for (name, c) in entries {
            crate::widgets::swatch(ui, *c);
            ui.label(name);
        }
    });
}

/// A line's colour: lanes by hue, workers lighter.
fn colour(lane: usize, worker: Option<usize>) -> egui::Color32 {
    let hue = if lane == 0 { 0.58 } else { 0.08 };
    let (s, v) = match worker {
        None => (0.8, 1.0),
        Some(w) => (0.35, 0.75 - 0.1 * (w % 4) as f32),
    };
    egui::ecolor::Hsva::new(hue, s, v, 1.0).into()
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
                while self.history[k].len() > (HISTORY_S * 4.0) as usize {
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
        // Busy % and queues side by side when there is room, else stacked;
        // each with its legend above and its axes in units.
        let side = ui.available_width() > 700.0;
        let legend_h = 22.0;
        let (w, h) = if side {
            (
                (ui.available_width() / 2.0 - 8.0).max(160.0),
                (ui.available_height() - legend_h - 6.0).clamp(110.0, 600.0),
            )
        } else {
            (
                ui.available_width().max(160.0),
                ((ui.available_height() - 2.0 * legend_h) / 2.0 - 6.0).clamp(110.0, 600.0),
            )
        };
        let now = s.now;
        let busy = |ui: &mut egui::Ui| {
            ui.vertical(|ui| {
                let mut entries = Vec::new();
                for (k, hist) in self.history.iter().enumerate() {
                    entries.push((format!("{} busy %", LANES[k].name()), colour(k, None)));
                    let workers = hist.back().map(|x| x.busy.len()).unwrap_or(0);
                    for w in 0..workers {
                        entries.push((
                            format!("{} worker {w}", LANES[k].name()),
                            colour(k, Some(w)),
                        ));
                    }
                }
                legend(ui, &entries);
                plot("lanes", "busy (%)", 100.0, w, h).show(ui, |plot| {
                    for (k, hist) in self.history.iter().enumerate() {
                        let workers = hist.back().map(|x| x.busy.len()).unwrap_or(0);
                        for w in 0..workers {
                            let pts: PlotPoints = hist
                                .iter()
                                .map(|x| [x.t - now, 100.0 * x.busy.get(w).copied().unwrap_or(0.0)])
                                .collect();
                            plot.line(
                                Line::new(format!("{} worker {w}", LANES[k].name()), pts)
                                    .color(colour(k, Some(w))),
                            );
                        }
                        let lane: PlotPoints = hist
                            .iter()
                            .map(|x| {
                                let n = x.busy.len().max(1) as f64;
                                [x.t - now, 100.0 * x.busy.iter().sum::<f64>() / n]
                            })
                            .collect();
                        plot.line(
                            Line::new(format!("{} busy %", LANES[k].name()), lane)
                                .color(colour(k, None))
                                .width(2.0),
                        );
                    }
                });
            });
        };
        let queues = |ui: &mut egui::Ui| {
            ui.vertical(|ui| {
                let mut entries = Vec::new();
                for (k, lane) in LANES.iter().enumerate() {
                    let name = lane.name();
                    entries.push((format!("{name} queue (envelopes)"), colour(k, None)));
                    entries.push((format!("{name} dropped (frames)"), colour(k, Some(0))));
                }
                legend(ui, &entries);
                plot("queues", "envelopes / frames", 4.0, w, h).show(ui, |plot| {
                    for (k, hist) in self.history.iter().enumerate() {
                        let name = LANES[k].name();
                        let q: PlotPoints = hist.iter().map(|x| [x.t - now, x.queue]).collect();
                        plot.line(
                            Line::new(format!("{name} queue (envelopes)"), q)
                                .color(colour(k, None)),
                        );
                        let d: PlotPoints = hist.iter().map(|x| [x.t - now, x.dropped]).collect();
                        plot.line(
                            Line::new(format!("{name} dropped (frames)"), d)
                                .color(colour(k, Some(0))),
                        );
                    }
                });
            });
        };
        if side {
            ui.horizontal(|ui| {
                busy(ui);
                queues(ui);
            });
        } else {
            busy(ui);
            queues(ui);
        }
    }
}
