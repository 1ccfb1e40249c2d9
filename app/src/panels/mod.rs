//! The panels: one file each, all behind [`Panel`]. Each is a tile of the
//! docked workspace (`crate::workspace`): resized, moved, tabbed, hidden and
//! shown again from the Panels menu.

mod buffers;
pub mod calibrate;
mod camera;
mod capture;
mod histogram;
mod inspector;
mod lanes;
mod parameters;
mod session;
mod status;
mod timeline;
pub mod viewer;
mod zoom;

pub use buffers::Buffers;
pub use calibrate::Calibrate;
pub use camera::Camera;
pub use capture::Capture;
pub use histogram::Histogram;
pub use inspector::Inspector;
pub use lanes::Lanes;
pub use parameters::Parameters;
pub use session::Session;
pub use status::{Log, status_bar};
pub use timeline::Timeline;
pub use viewer::Viewer;

use crate::state::AppState;
use eframe::egui;

pub trait Panel {
    fn title(&self) -> &'static str;
    fn ui(&mut self, ui: &mut egui::Ui, state: &mut AppState);
}

/// Every panel, in [`crate::workspace::PaneKind`] order; the viewer starts
/// at `zoom` (`None`: fit).
pub fn all(zoom: Option<f32>) -> Vec<Box<dyn Panel>> {
    vec![
        Box::new(Viewer::at_zoom(zoom)),
        Box::new(Parameters::default()),
        Box::new(Session::default()),
        Box::new(Inspector),
        Box::new(Histogram::default()),
        Box::new(Lanes::default()),
        Box::new(Buffers::default()),
        Box::new(Timeline::default()),
        Box::new(Log),
        Box::new(Camera::default()),
        Box::new(Capture::default()),
        Box::new(Calibrate::default()),
    ]
}
