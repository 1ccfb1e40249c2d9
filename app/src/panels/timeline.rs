//! Timeline: the telemetry as a Gantt chart, a row per lane and worker, a span
//! per stage per frame coloured by stage. Scroll to zoom, drag to pan (or
//! follow the live end); hover for details, click to select the frame. Spans
//! narrower than a pixel merge into one per pixel column and row, so a
//! million events draw as fast as a thousand.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use isp_engine::telemetry::{EventKind, TelemetryEvent};
use isp_engine::types::Lane;

pub struct Timeline {
    /// Visible span, seconds.
    span: f64,
    /// Right edge, ns; `None` follows the newest event.
    end_ns: Option<u64>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            span: 0.5,
            end_ns: None,
        }
    }
}

fn colour(stage: &str) -> egui::Color32 {
    let h = stage
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    egui::ecolor::Hsva::new((h % 360) as f32 / 360.0, 0.6, 0.85, 1.0).into()
}

/// The row of an event: the realtime lane's workers, then the background's.
fn row_of(e: &TelemetryEvent, rt_workers: usize) -> Option<usize> {
    let w = e.worker.unwrap_or(0) as usize;
    match e.lane? {
        Lane::Realtime => Some(w.min(rt_workers.saturating_sub(1))),
        Lane::Background => Some(rt_workers + w),
    }
}

impl Panel for Timeline {
    fn title(&self) -> &'static str {
        "Timeline"
    }
    fn default_rect(&self) -> [f32; 4] {
        [10.0, 560.0, 800.0, 160.0]
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let snap = s.engine.telemetry.snapshot();
        let newest = snap
            .get(snap.len().saturating_sub(1))
            .map(|e| e.end_ns)
            .unwrap_or(0);
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
                ui.label(format!("selected frame {f}"));
            }
        });
        let (rect, resp) = ui.allocate_exact_size(
            ui.available_size().max(egui::vec2(100.0, 60.0)),
            egui::Sense::click_and_drag(),
        );
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
        // Events are appended in completion order: start near the window.
        let first = {
            let (mut lo, mut hi) = (0usize, snap.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                if snap.get(mid).is_some_and(|e| e.end_ns < start) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo.saturating_sub(64)
        };
        let hover = resp.hover_pos();
        let mut hovered: Option<TelemetryEvent> = None;
        let mut last_px = vec![f32::MIN; n_rows];
        for i in first..snap.len() {
            let Some(e) = snap.get(i) else { break };
            if e.kind != EventKind::Stage || e.end_ns < start || e.start_ns > end {
                continue;
            }
            let Some(row) = row_of(e, rt).filter(|r| *r < n_rows) else {
                continue;
            };
            let (x0, x1) = (x_of(e.start_ns), x_of(e.end_ns).max(x_of(e.start_ns) + 1.0));
            // Aggregate: one span per pixel column per row when zoomed out.
            if x1 - x0 <= 1.0 && x0.floor() == last_px[row] {
                continue;
            }
            last_px[row] = x0.floor();
            let y0 = rect.top() + row as f32 * row_h;
            let r = egui::Rect::from_min_max(
                egui::pos2(x0, y0 + 1.0),
                egui::pos2(x1, y0 + row_h - 1.0),
            );
            let selected = s.selected_frame == Some(e.frame_id);
            painter.rect_filled(r, 1.0, colour(e.stage));
            if selected {
                painter.rect_stroke(
                    r,
                    1.0,
                    (1.5, egui::Color32::WHITE),
                    egui::StrokeKind::Outside,
                );
            }
            if hover.is_some_and(|p| r.expand(1.0).contains(p)) {
                hovered = Some(e.clone());
            }
        }
        for r in 0..n_rows {
            let (lane, w) = if r < rt {
                ("realtime", r)
            } else {
                ("background", r - rt)
            };
            painter.text(
                egui::pos2(
                    rect.left() + 2.0,
                    rect.top() + r as f32 * row_h + row_h / 2.0,
                ),
                egui::Align2::LEFT_CENTER,
                format!("{lane} {w}"),
                egui::FontId::proportional(10.0),
                ui.visuals().strong_text_color(),
            );
        }
        if let Some(e) = hovered {
            resp.clone().on_hover_text(format!(
                "frame {} {} on {} worker {}\nrun {:.3} ms, queued {:.3} ms\nparams v{} {}\n{}",
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
