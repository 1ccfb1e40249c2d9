//! ISP Studio: the egui tuning and inspection app. It talks to the engine's
//! public API only. [`Studio`] owns the [`state::AppState`] and the panels
//! (`panels/`, one file each), laid out as tiles of the docked workspace
//! (`workspace`); file dialogs are native or in-app (`files`).

pub mod display;
pub mod files;
pub mod panels;
pub mod player;
pub mod presenter;
pub mod state;
pub mod studio;
pub mod widgets;
pub mod workspace;

pub use studio::{Options, Studio};
