//! ISP Studio: the egui tuning and inspection app. It talks to the engine's
//! public API only. [`Studio`] owns the [`state::AppState`] and the panels
//! (`panels/`, one file each, each a movable window).

pub mod panels;
pub mod player;
pub mod presenter;
pub mod state;
pub mod studio;
pub mod widgets;

pub use studio::{Options, Studio};
