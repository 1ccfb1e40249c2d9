//! Timeline: the telemetry as a Gantt chart, a row per lane and worker, a span
//! per stage per frame coloured by stage. Scroll to zoom, drag to pan (or
//! follow the live end); hover for details, click to select the frame.
//! Each row keeps an index of its spans (built as events arrive); drawing
//! walks a row from the window's first span and, where spans are narrower
//! than a pixel, jumps by binary search to the next pixel column: the cost
//! follows what is drawn, not how many events there are.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use isp_engine::telemetry::EventKind;
use isp_engine::types::Lane;

pub struct Timeline {
    /// Visible span, seconds.
    span: f64,
    /// Right edge, ns; `None` follows the newest event.
    end_ns: Option<u64>,
    index: RowIndex,
}

/// The first index in `spans[from..]` whose span ends at or after `t`:
/// galloping from `from` (the next pixel column is usually close), then binary.
fn first_ending_after(spans: &[Span], from: usize, t: u64) -> usize {
    let mut step = 1;
    let mut lo = from;
    while lo + step < spans.len() && spans[lo + step].end < t {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step + 1).min(spans.len());
    lo + spans[lo..hi].partition_point(|sp| sp.end < t)
}

/// One span in a row: start, end, the frame, the event's index in the
/// telemetry and the stage's colour: drawing reads no telemetry (old events
/// may be spilled to disk), only the hovered span's event is looked up.
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
    frame: u64,
    event: u32,
    colour: egui::Color32,
}

/// Every stage span, by row, in completion order (a worker runs one stage at
/// a time, so within a row that is also start order).
#[derive(Default)]
struct RowIndex {
    rows: Vec<Vec<Span>>,
    /// Events indexed so far.
    upto: usize,
    rt_workers: usize,
    /// Colours by stage name (computed once each).
    colours: std::collections::HashMap<&'static str, egui::Color32>,
}

impl RowIndex {
    /// Index the events that arrived since the last call.
    fn update(
        &mut self,
        snap: &isp_engine::telemetry::TelemetrySnapshot,
        rt: usize,
        n_rows: usize,
    ) {
        if snap.len() < self.upto || rt != self.rt_workers || self.rows.len() != n_rows {
            *self = RowIndex {
                rows: vec![Vec::new(); n_rows],
                upto: 0,
                rt_workers: rt,
                colours: std::mem::take(&mut self.colours),
            };
        }
        for i in self.upto..snap.len() {
            let Some(e) = snap.brief(i) else { break };
            if e.kind != EventKind::Stage {
                continue;
            }
            let colour = *self
                .colours
                .entry(e.stage)
                .or_insert_with(|| colour(e.stage));
            if let Some(row) = row_of(e.lane, e.worker, rt).and_then(|r| self.rows.get_mut(r)) {
                row.push(Span {
                    start: e.start_ns,
                    end: e.end_ns,
                    frame: e.frame_id,
                    event: i as u32,
                    colour,
                });
            }
        }
        self.upto = snap.len();
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            span: 0.5,
            end_ns: None,
            index: RowIndex::default(),
        }
    }
}

impl Timeline {
    /// A timeline showing `span_s` seconds up to `end_ns` (`None`: the newest).
    pub fn showing(span_s: f64, end_ns: Option<u64>) -> Self {
        Timeline {
            span: span_s.clamp(0.001, 600.0),
            end_ns,
            index: RowIndex::default(),
        }
    }
}

/// The stages the legend names, in pipeline order.
const LEGEND: [&str; 6] = [
    "raw_isp",
    "raw_algo",
    "fast_isp",
    "fast_algo",
    "slow_isp",
    "slow_algo",
];

/// Tick spacing for a window of `span_s` seconds: 1, 2 or 5 times a power
/// of ten, about 8 ticks.
pub fn tick_step(span_s: f64) -> f64 {
    let raw = (span_s / 8.0).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

impl Timeline {
    /// Below the spans: seconds since the engine started, ticked.
    fn time_axis(&self, ui: &mut egui::Ui, spans: egui::Rect, start: u64, end: u64, h: f32) {
        let (rect, resp) =
            ui.allocate_exact_size(egui::vec2(spans.width(), h), egui::Sense::hover());
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, "time axis (s)"));
        let painter = ui.painter_at(rect);
        let (a, b) = (start as f64 / 1e9, end as f64 / 1e9);
        let step = tick_step(b - a);
        let x_of = |t: f64| rect.left() + ((t - a) / (b - a).max(1e-12)) as f32 * rect.width();
        let colour = ui.visuals().text_color();
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        let mut t = (a / step).ceil() * step;
        while t <= b {
            let x = x_of(t);
            painter.vline(x, rect.top()..=rect.top() + 4.0, (1.0, colour));
            painter.text(
                egui::pos2(x, rect.top() + 4.0),
                egui::Align2::CENTER_TOP,
                format!("{t:.decimals$}"),
                egui::FontId::proportional(10.0),
                colour,
            );
            t += step;
        }
        painter.text(
            rect.right_top(),
            egui::Align2::RIGHT_TOP,
            "s",
            egui::FontId::proportional(10.0),
            colour,
        );
    }
}

fn colour(stage: &str) -> egui::Color32 {
    crate::widgets::name_colour(stage)
}

/// The row of an event: the realtime lane's workers, then the background's.
fn row_of(lane: Option<Lane>, worker: Option<u16>, rt_workers: usize) -> Option<usize> {
    let w = worker.unwrap_or(0) as usize;
    match lane? {
        Lane::Realtime => Some(w.min(rt_workers.saturating_sub(1))),
        Lane::Background => Some(rt_workers + w),
    }
}

impl Panel for Timeline {
    fn title(&self) -> &'static str {
        "Timeline"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let snap = s.engine.telemetry.snapshot();
        // Follow the newest stage span (notes and pool rows are not drawn).
        let newest = (0..snap.len())
            .rev()
            .take(4096)
            .filter_map(|i| snap.brief(i))
            .find(|e| e.kind == EventKind::Stage)
            .map_or(0, |e| e.end_ns);
        ui.horizontal(|ui| {
            ui.label(format!("{} events", snap.len()));
            ui.add(
                egui::Slider::new(&mut self.span, 0.001..=600.0)
                    .logarithmic(true)
                    .text("s visible"),
            );
            let mut live = self.end_ns.is_none();
            if ui.checkbox(&mut live, "follow").changed() {
                self.end_ns = if live { None } else { Some(newest) };
            }
            if let Some(f) = s.selected_frame {
                ui.label(format!("selected {}", s.frame_name(f)));
            }
        });
        // The legend: each stage's colour, in pipeline order.
        ui.horizontal_wrapped(|ui| {
            for stage in LEGEND {
                crate::widgets::swatch(ui, colour(stage));
                ui.label(stage);
            }
        });
        let axis_h = 18.0;
        let (rect, resp) = ui.allocate_exact_size(
            (ui.available_size() - egui::vec2(0.0, axis_h)).max(egui::vec2(100.0, 60.0)),
            egui::Sense::click_and_drag(),
        );
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "timeline"));
        let span_ns = (self.span * 1e9) as u64;
        let end = self.end_ns.unwrap_or(newest);
        let start = end.saturating_sub(span_ns);
        // Zoom with the wheel, pan by dragging.
        if resp.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                self.span = (self.span * (1.0 - scroll as f64 * 0.002)).clamp(0.001, 600.0);
            }
        }
        if resp.dragged() {
            let dx = resp.drag_delta().x as f64 / rect.width() as f64 * span_ns as f64;
            self.end_ns = Some((end as f64 - dx).max(0.0) as u64);
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
        let threading = s.engine.threading();
        let rt = threading.stats(Lane::Realtime).busy_ns.len().max(1);
        let bg = threading.stats(Lane::Background).busy_ns.len().max(1);
        let n_rows = (rt + bg).min(16);
        let row_h = (rect.height() / n_rows as f32).min(28.0);
        let x_of = |t: u64| {
            rect.left()
                + ((t.saturating_sub(start)) as f64 / span_ns.max(1) as f64) as f32 * rect.width()
        };
        self.index.update(&snap, rt, n_rows);
        let ns_per_px = span_ns as f64 / rect.width().max(1.0) as f64;
        let hover = resp.hover_pos();
        let mut hovered: Option<u32> = None;
        // Every span goes into one mesh (no per-rectangle shape to tessellate).
        let mut mesh = egui::Mesh::default();
        let mut selected = Vec::new();
        for (row, spans) in self.index.rows.iter().enumerate() {
            let y0 = rect.top() + row as f32 * row_h;
            let mut i = spans.partition_point(|sp| sp.end < start);
            while let Some(sp) = spans.get(i) {
                if sp.start > end {
                    break;
                }
                let (x0, x1) = (x_of(sp.start), x_of(sp.end).max(x_of(sp.start) + 1.0));
                let r = egui::Rect::from_min_max(
                    egui::pos2(x0, y0 + 1.0),
                    egui::pos2(x1, y0 + row_h - 1.0),
                );
                mesh.add_colored_rect(r, sp.colour);
                if s.selected_frame == Some(sp.frame) {
                    selected.push(r);
                }
                if hover.is_some_and(|p| r.expand(1.0).contains(p)) {
                    hovered = Some(sp.event);
                }
                if x1 - x0 <= 1.0 {
                    // Narrower than a pixel: the rest of this pixel column is
                    // drawn already; jump to the first span past it.
                    let column = (x0 - rect.left()).floor() as f64 + 1.0;
                    let next = start + (column * ns_per_px) as u64;
                    i = first_ending_after(spans, i + 1, next);
                } else {
                    i += 1;
                }
            }
        }
        painter.add(egui::Shape::mesh(mesh));
        for r in selected {
            painter.rect_stroke(
                r,
                1.0,
                (1.5, egui::Color32::WHITE),
                egui::StrokeKind::Outside,
            );
        }
        for r in 0..n_rows {
            let (lane, w) = if r < rt {
                ("realtime", r)
            } else {
                ("background", r - rt)
            };
            // The row's name on a dark plate, readable over the spans.
            let galley = painter.layout_no_wrap(
                format!("{lane} {w}"),
                egui::FontId::proportional(10.0),
                ui.visuals().strong_text_color(),
            );
            let at = egui::pos2(
                rect.left() + 2.0,
                rect.top() + r as f32 * row_h + (row_h - galley.size().y) / 2.0,
            );
            painter.rect_filled(
                egui::Rect::from_min_size(at, galley.size()).expand(1.0),
                2.0,
                ui.visuals().extreme_bg_color.gamma_multiply(0.85),
            );
            painter.galley(at, galley, egui::Color32::WHITE);
        }
        self.time_axis(ui, rect, start, end, axis_h);
        if let Some(e) = hovered.and_then(|i| snap.get(i as usize)) {
            resp.clone().on_hover_text(format!(
                "{} (run {}) {} on {} worker {}\nrun {:.3} ms, queued {:.3} ms\nparams v{} {}\n{}",
                s.frame_name(e.frame_id),
                e.frame_id,
                e.stage,
                e.lane.map(|l| l.name()).unwrap_or("-"),
                e.worker.unwrap_or(0),
                e.run_ns() as f64 / 1e6,
                e.queue_ns() as f64 / 1e6,
                e.params_version,
                e.outcome.name(),
                e.detail
            ));
            if resp.clicked() {
                s.select_frame(Some(e.frame_id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(0.5), 0.1);
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(600.0), 100.0);
        assert!((tick_step(0.004) - 0.0005).abs() < 1e-12);
    }

    #[test]
    fn galloping_search_matches_a_linear_scan() {
        let spans: Vec<Span> = (0..200u64)
            .map(|i| Span {
                start: i * 10,
                end: i * 10 + 3 + (i % 4),
                frame: i,
                event: i as u32,
                colour: egui::Color32::WHITE,
            })
            .collect();
        for from in [0, 1, 7, 100, 199, 200] {
            for t in (0..2100).step_by(7) {
                let linear = (from..spans.len())
                    .find(|&k| spans[k].end >= t)
                    .unwrap_or(spans.len());
                assert_eq!(
                    first_ending_after(&spans, from, t),
                    linear,
                    "from {from} t {t}"
                );
            }
        }
    }
}
