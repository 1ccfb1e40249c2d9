//! Widgets the panels share: the tone-curve editor, a stable colour per name.

use eframe::egui;

/// What one frame of the curve editor did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CurveEdit {
    /// The points changed this frame.
    pub changed: bool,
    /// A drag began (the caller remembers the state for one undo step).
    pub drag_started: bool,
    /// A drag ended (the caller records the undo step).
    pub drag_stopped: bool,
}

/// Points closer than this in input are one point.
const MIN_GAP: f32 = 0.01;
/// Pick radius around a point, in points.
const PICK: f32 = 8.0;

/// Control points `(in, out)` in 0..=1, sorted by `in`, with implicit (0,0)
/// and (1,1): drag a point to move it (between its neighbours), click empty
/// space to add one, right-click a point to remove it. `overall` is drawn
/// faintly behind (the whole tone curve the points apply to).
pub fn curve_editor(
    ui: &mut egui::Ui,
    points: &mut Vec<[f32; 2]>,
    overall: impl Fn(f32) -> f32,
) -> CurveEdit {
    let mut out = CurveEdit::default();
    let side = ui.available_width().clamp(120.0, 240.0);
    let (rect, resp) =
        ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::click_and_drag());
    resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "tone curve editor"));
    let to_screen = |p: [f32; 2]| {
        egui::pos2(
            rect.left() + p[0] * rect.width(),
            rect.bottom() - p[1] * rect.height(),
        )
    };
    let from_screen = |q: egui::Pos2| {
        [
            ((q.x - rect.left()) / rect.width()).clamp(0.0, 1.0),
            ((rect.bottom() - q.y) / rect.height()).clamp(0.0, 1.0),
        ]
    };
    let nearest = |q: egui::Pos2, pts: &[[f32; 2]]| {
        pts.iter()
            .enumerate()
            .map(|(i, p)| (i, to_screen(*p).distance(q)))
            .filter(|(_, d)| *d <= PICK)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    };
    let drag_id = resp.id.with("dragging");
    let mut dragging: Option<usize> = ui.data(|d| d.get_temp(drag_id));
    let pointer = resp.interact_pointer_pos().or(resp.hover_pos());

    if resp.drag_started()
        && let Some(q) = ui.input(|i| i.pointer.press_origin()).or(pointer)
    {
        dragging = nearest(q, points);
        out.drag_started = dragging.is_some();
    }
    if let (Some(i), Some(q)) = (dragging, pointer)
        && resp.dragged()
        && i < points.len()
    {
        let lo = if i == 0 {
            0.0
        } else {
            points[i - 1][0] + MIN_GAP
        };
        let hi = points.get(i + 1).map_or(1.0, |p| p[0] - MIN_GAP);
        let [x, y] = from_screen(q);
        let moved = [x.clamp(lo.min(hi), hi.max(lo)), y];
        if moved != points[i] {
            points[i] = moved;
            out.changed = true;
        }
    }
    if resp.drag_stopped() && dragging.is_some() {
        dragging = None;
        out.drag_stopped = true;
    }
    if resp.clicked()
        && let Some(q) = pointer
        && nearest(q, points).is_none()
    {
        let p = from_screen(q);
        if points.iter().all(|o| (o[0] - p[0]).abs() >= MIN_GAP) && p[0] > 0.0 && p[0] < 1.0 {
            let at = points.partition_point(|o| o[0] < p[0]);
            points.insert(at, p);
            out.changed = true;
        }
    }
    if resp.secondary_clicked()
        && let Some(i) = pointer.and_then(|q| nearest(q, points))
    {
        points.remove(i);
        out.changed = true;
    }
    ui.data_mut(|d| match dragging {
        Some(i) => {
            d.insert_temp(drag_id, i);
        }
        None => d.remove::<usize>(drag_id),
    });

    // Draw: frame, grid, the whole curve, the points' curve, the points.
    let painter = ui.painter_at(rect.expand(4.0));
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    let grid = egui::Stroke::new(1.0, visuals.weak_text_color().gamma_multiply(0.3));
    for k in 1..4 {
        let t = k as f32 / 4.0;
        painter.vline(rect.left() + t * rect.width(), rect.y_range(), grid);
        painter.hline(rect.x_range(), rect.bottom() - t * rect.height(), grid);
    }
    let whole: Vec<egui::Pos2> = (0..=64)
        .map(|i| {
            let x = i as f32 / 64.0;
            to_screen([x, overall(x)])
        })
        .collect();
    painter.add(egui::Shape::line(
        whole,
        egui::Stroke::new(1.0, visuals.weak_text_color()),
    ));
    let line: Vec<egui::Pos2> = std::iter::once([0.0, 0.0])
        .chain(points.iter().copied())
        .chain(std::iter::once([1.0, 1.0]))
        .map(to_screen)
        .collect();
    painter.add(egui::Shape::line(
        line,
        egui::Stroke::new(2.0, egui::Color32::from_rgb(255, 200, 60)),
    ));
    let hot = pointer.and_then(|q| nearest(q, points));
    for (i, p) in points.iter().enumerate() {
        let r = if Some(i) == hot || Some(i) == dragging {
            6.0
        } else {
            4.0
        };
        painter.circle_filled(to_screen(*p), r, egui::Color32::from_rgb(255, 200, 60));
    }
    out
}

/// A stable colour for a name (a stage, a pin owner).
pub fn name_colour(name: &str) -> egui::Color32 {
    let h = name
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    egui::ecolor::Hsva::new((h % 360) as f32 / 360.0, 0.6, 0.85, 1.0).into()
}

/// A small square of `colour` (a legend's key), drawn, not a glyph: the
/// fonts egui ships have no box characters.
pub fn swatch(ui: &mut egui::Ui, colour: egui::Color32) {
    let (r, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().rect_filled(r, 2.0, colour);
}
