//! Buffers: every pool slot with its state, pins, owner and age (a table
//! with fixed headers that scrolls), and a timeline of pin lifetimes (a
//! labelled row per slot: the pins that ended, from the ResourceManager's
//! history, and the ones still held; hover a bar for the buffer and pin).
//! A pin is stale when the pipeline moved on without it: held for longer
//! than the Housekeeper's limit while newer pins were taken. A paused
//! player holding its last frame is not stale.

use super::Panel;
use crate::state::AppState;
use eframe::egui;
use egui_extras::{Column, TableBuilder};
use isp_engine::resource_manager::BufferInfo;

pub struct Buffers {
    /// Seconds of pin history shown.
    window_s: f64,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers { window_s: 2.0 }
    }
}

/// Pins held longer than this are stale (the Housekeeper's default).
const STALE_NS: u64 = 2_000_000_000;

/// Width of the pin timeline's row labels.
const LABEL_W: f32 = 120.0;

/// The pool's activity clock: when the newest pin was taken (held now or
/// ended since). While the player is paused it stands still, and so does
/// every pin's age; the release of an older frame (a presenter catching up
/// on a loaded machine) is not the pipeline moving on.
pub fn activity_ns(slots: &[BufferInfo], history: &[isp_engine::resource_manager::PinSpan]) -> u64 {
    let held = slots
        .iter()
        .flat_map(|b| b.pins.iter().map(|p| p.since_ns))
        .max()
        .unwrap_or(0);
    let taken = history.iter().map(|p| p.start_ns).max().unwrap_or(0);
    held.max(taken)
}

/// A pin taken at `since_ns` is stale at activity time `activity`.
pub fn is_stale(since_ns: u64, activity: u64) -> bool {
    activity.saturating_sub(since_ns) > STALE_NS
}

/// A line per multi-frame plan holding reserved buffers (a burst or a
/// bracket waiting for its frames), and one for the buffers of plans being
/// merged (committed: owned by `fusion plan N`).
pub fn reservations(slots: &[BufferInfo], now: u64) -> Vec<String> {
    use isp_engine::resource_manager::BufferState;
    let mut plans: Vec<(String, usize, u64)> = Vec::new();
    for b in slots {
        if let BufferState::Reserved { plan, expires_ns } = &b.state {
            let name = format!("plan {plan}");
            match plans.iter_mut().find(|p| p.0 == name) {
                Some(p) => p.1 += 1,
                None => plans.push((name, 1, *expires_ns)),
            }
        }
    }
    let mut lines: Vec<String> = plans
        .into_iter()
        .map(|(name, n, exp)| {
            format!(
                "{name}: {n} buffers reserved, expire in {:.1} s",
                exp.saturating_sub(now) as f64 / 1e9
            )
        })
        .collect();
    let merging = slots
        .iter()
        .filter(|b| b.state == BufferState::Allocated && b.owner.starts_with("fusion plan "))
        .count();
    if merging > 0 {
        lines.push(format!("{merging} buffers of plans being merged"));
    }
    lines
}

fn slot_name(b: &BufferInfo) -> String {
    format!(
        "#{} {:?} {}x{}",
        b.id.index, b.spec.kind, b.spec.width, b.spec.height
    )
}

impl Panel for Buffers {
    fn title(&self) -> &'static str {
        "Buffers"
    }
    fn ui(&mut self, ui: &mut egui::Ui, s: &mut AppState) {
        let rm = &s.engine.rm;
        let st = rm.stats();
        ui.label(format!(
            "{} buffers, {} in use, {} pinned, {:.1} MB of {:.1} MB, {} allocations, {} reuses",
            st.total,
            st.allocated,
            st.pinned,
            st.bytes_in_use as f64 / 1e6,
            st.bytes_total as f64 / 1e6,
            st.allocations,
            st.reuses
        ));
        let now = isp_engine::clock::now_ns();
        let slots = rm.snapshot();
        for line in reservations(&slots, now) {
            ui.label(line);
        }
        let history = rm.pin_history();
        let activity = activity_ns(&slots, &history);
        let stale_count = slots
            .iter()
            .flat_map(|b| &b.pins)
            .filter(|p| is_stale(p.since_ns, activity))
            .count();
        if stale_count > 0 {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("{stale_count} stale pin(s): held while the pipeline moved on"),
            );
        }
        let table_h = (ui.available_height() * 0.45).max(80.0);
        ui.push_id("buffer-table", |ui| {
            TableBuilder::new(ui)
                .striped(true)
                .max_scroll_height(table_h)
                .min_scrolled_height(table_h.min(80.0))
                .column(Column::auto().at_least(40.0))
                .column(Column::auto().at_least(110.0))
                .column(Column::auto().at_least(70.0))
                .column(Column::auto().at_least(80.0))
                .column(Column::remainder().at_least(90.0))
                .column(Column::auto().at_least(60.0))
                .header(18.0, |mut h| {
                    for name in ["slot", "kind", "state", "owner", "pins", "age ms"] {
                        h.col(|ui| {
                            ui.strong(name);
                        });
                    }
                })
                .body(|body| {
                    body.rows(18.0, slots.len(), |mut row| {
                        let b = &slots[row.index()];
                        let stale = b.pins.iter().any(|p| is_stale(p.since_ns, activity));
                        row.col(|ui| {
                            ui.label(format!("{}", b.id.index));
                        });
                        row.col(|ui| {
                            ui.label(format!(
                                "{:?} {}x{}",
                                b.spec.kind, b.spec.width, b.spec.height
                            ));
                        });
                        row.col(|ui| {
                            ui.label(b.state.name());
                        });
                        row.col(|ui| {
                            ui.label(&b.owner);
                        });
                        row.col(|ui| {
                            let pins: Vec<_> = b.pins.iter().map(|p| p.owner.as_str()).collect();
                            if stale {
                                ui.colored_label(ui.visuals().warn_fg_color, pins.join(", "));
                            } else {
                                ui.label(pins.join(", "));
                            }
                        });
                        row.col(|ui| {
                            ui.label(format!(
                                "{:.0}",
                                now.saturating_sub(b.since_ns) as f64 / 1e6
                            ));
                        });
                    });
                });
        });
        ui.horizontal(|ui| {
            ui.label("pin lifetimes over the last");
            ui.add(
                egui::Slider::new(&mut self.window_s, 0.1..=30.0)
                    .logarithmic(true)
                    .suffix(" s"),
            );
        });
        egui::ScrollArea::vertical()
            .id_salt("pin-rows")
            .show(ui, |ui| {
                self.pin_timeline(ui, &slots, &history, now, activity)
            });
    }
}

impl Buffers {
    /// A labelled row per slot; a bar per pin from when it was taken to when
    /// it was dropped (or now, still held: outlined, in the warning colour
    /// when stale). Hovering a bar names the buffer and the pin.
    fn pin_timeline(
        &self,
        ui: &mut egui::Ui,
        slots: &[BufferInfo],
        history: &[isp_engine::resource_manager::PinSpan],
        now: u64,
        activity: u64,
    ) {
        let rows = slots.len().max(1);
        let row_h = 14.0;
        let (whole, resp) = ui.allocate_exact_size(
            egui::vec2(ui.available_width(), rows as f32 * row_h),
            egui::Sense::hover(),
        );
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "pin timeline"));
        let rect =
            egui::Rect::from_min_max(egui::pos2(whole.left() + LABEL_W, whole.top()), whole.max);
        let painter = ui.painter_at(whole);
        painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
        let window = (self.window_s * 1e9) as u64;
        let start = now.saturating_sub(window);
        // Now is always the right edge, also in the pool's first seconds
        // (when the window reaches back past its start).
        let x_of = |t: u64| {
            rect.right()
                - (now.saturating_sub(t) as f64 / window.max(1) as f64) as f32 * rect.width()
        };
        let hover = resp.hover_pos();
        let mut tip = None;
        let mut bar =
            |b: &BufferInfo, row: usize, since: u64, end: u64, owner: &str, open: bool| {
                let stale = open && is_stale(since, activity);
                let a = since.max(start);
                let y = rect.top() + row as f32 * row_h;
                let r = egui::Rect::from_min_max(
                    egui::pos2(x_of(a), y + 1.0),
                    egui::pos2(x_of(end).max(x_of(a) + 1.0), y + row_h - 1.0),
                );
                let fill = if stale {
                    ui.visuals().warn_fg_color
                } else {
                    crate::widgets::name_colour(owner)
                };
                painter.rect_filled(r, 0.0, fill);
                if open {
                    painter.rect_stroke(
                        r,
                        0.0,
                        (1.0, egui::Color32::WHITE),
                        egui::StrokeKind::Inside,
                    );
                }
                if hover.is_some_and(|p| r.expand(1.0).contains(p)) {
                    tip = Some(format!(
                        "{owner}: {:.1} ms{}{}\nbuffer {} ({})",
                        end.saturating_sub(since) as f64 / 1e6,
                        if open { ", still held" } else { "" },
                        if stale { " (stale)" } else { "" },
                        slot_name(b),
                        b.state.name()
                    ));
                }
            };
        for p in history {
            if p.end_ns < start {
                continue;
            }
            if let Some((row, b)) = slots.iter().enumerate().find(|(_, b)| b.id.index == p.slot) {
                bar(b, row, p.start_ns, p.end_ns, &p.owner, false);
            }
        }
        for (row, b) in slots.iter().enumerate() {
            for p in &b.pins {
                bar(b, row, p.since_ns, now, &p.owner, true);
            }
        }
        // Row labels: the slot, its kind and size.
        for (row, b) in slots.iter().enumerate() {
            let y = rect.top() + row as f32 * row_h + row_h / 2.0;
            painter.text(
                egui::pos2(whole.left() + 2.0, y),
                egui::Align2::LEFT_CENTER,
                slot_name(b),
                egui::FontId::proportional(10.0),
                ui.visuals().text_color(),
            );
        }
        if let Some(t) = tip {
            resp.on_hover_text(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_stale_only_when_the_pool_moved_on() {
        // Held 3 s with no newer pin (a paused player): not stale.
        assert!(!is_stale(1_000_000_000, 1_000_000_000));
        // Newer pins 3 s later: stale.
        assert!(is_stale(1_000_000_000, 4_000_000_000));
        assert!(!is_stale(1_000_000_000, 2_900_000_000));
    }

    #[test]
    fn a_late_release_is_not_the_pool_moving_on() {
        use isp_engine::resource_manager::PinSpan;
        let span = |start_ns, end_ns| PinSpan {
            slot: 0,
            owner: "presenter".into(),
            start_ns,
            end_ns,
        };
        // Paused: the last frame's pins were taken at 1 s; an older frame's
        // pin, taken at 0.9 s, was let go 3 s later.
        let history = [span(900_000_000, 4_000_000_000)];
        let activity = activity_ns(&[], &history);
        assert_eq!(activity, 900_000_000);
        assert!(!is_stale(1_000_000_000, activity.max(1_000_000_000)));
        // A pin taken 3 s after it: the pipeline moved on.
        let history = [
            span(900_000_000, 950_000_000),
            span(4_000_000_000, 4_100_000_000),
        ];
        assert!(is_stale(1_000_000_000, activity_ns(&[], &history)));
    }
}
