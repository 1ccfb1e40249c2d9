//! The viewer's zoom: quarter-stop steps, and the wheel's notches and a
//! pinch from the raw input events.

use eframe::egui;

/// Zoom limits, and the steps: quarter stops (2^(1/4)), snapped to them.
pub const MIN_ZOOM: f32 = 1.0 / 16.0;
pub const MAX_ZOOM: f32 = 32.0;
/// Wheel travel (points) per zoom step.
pub(super) const WHEEL_STEP: f32 = 30.0;

/// This frame's wheel travel in points (a line counts one zoom step) and
/// pinch factor, from the raw events: egui's own scroll is smoothed over
/// frames, and a zoom step must follow the wheel's notches.
pub(super) fn wheel_and_pinch(i: &egui::InputState) -> (f32, f32) {
    let (mut wheel, mut pinch) = (0.0, 1.0);
    for e in &i.raw.events {
        match e {
            egui::Event::MouseWheel { unit, delta, .. } => {
                wheel += match unit {
                    egui::MouseWheelUnit::Point => delta.y,
                    egui::MouseWheelUnit::Line => delta.y * WHEEL_STEP,
                    egui::MouseWheelUnit::Page => delta.y * WHEEL_STEP * 4.0,
                }
            }
            egui::Event::Zoom(f) => pinch *= f,
            _ => {}
        }
    }
    (wheel, pinch)
}

/// One zoom step from `z` (`dir` +1 in, -1 out), on the quarter-stop grid.
pub fn zoom_step(z: f32, dir: i32) -> f32 {
    let q = (z.log2() * 4.0).round() as i32 + dir.signum();
    2f32.powf(q as f32 / 4.0).clamp(MIN_ZOOM, MAX_ZOOM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_steps_are_quarter_stops() {
        assert_eq!(zoom_step(1.0, 1), 2f32.powf(0.25));
        assert_eq!(zoom_step(1.0, -1), 2f32.powf(-0.25));
        // Off the grid: snapped, then one step.
        assert_eq!(zoom_step(0.97, 1), 2f32.powf(0.25));
        let mut z = 1.0;
        for _ in 0..4 {
            z = zoom_step(z, 1);
        }
        assert!((z - 2.0).abs() < 1e-5);
        assert_eq!(zoom_step(MAX_ZOOM, 1), MAX_ZOOM);
        assert_eq!(zoom_step(MIN_ZOOM, -1), MIN_ZOOM);
    }
}
