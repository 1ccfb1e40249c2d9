//! The docked workspace (egui_tiles): every panel is a tile that can be
//! resized, moved into tabs or beside another, hidden and shown from the
//! Panels menu; "Reset layout" brings back the default tiles and sizes.
//! The layout, the source open and the recent files are kept between runs
//! (eframe's storage).

use crate::panels::Panel;
use crate::state::AppState;
use eframe::egui;
use egui_tiles::{Container, SimplificationOptions, Tile, TileId, Tiles, Tree, UiResponse};
use serde::{Deserialize, Serialize};

/// The panels, as tiles know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaneKind {
    Viewer,
    Parameters,
    Session,
    Inspector,
    Histogram,
    Lanes,
    Buffers,
    Timeline,
    Log,
    Camera,
    Capture,
    Calibrate,
}

impl PaneKind {
    pub const ALL: [PaneKind; 12] = [
        PaneKind::Viewer,
        PaneKind::Parameters,
        PaneKind::Session,
        PaneKind::Inspector,
        PaneKind::Histogram,
        PaneKind::Lanes,
        PaneKind::Buffers,
        PaneKind::Timeline,
        PaneKind::Log,
        PaneKind::Camera,
        PaneKind::Capture,
        PaneKind::Calibrate,
    ];
}

/// The tree's id (its tiles' egui ids derive from it).
const TREE_ID: &str = "workspace";

/// The default layout: Parameters on the left; the Viewer in the middle
/// over the Timeline, Lanes, Buffers and Log tabs; Session (with Camera
/// Capture and Calibrate as tabs beside it), Inspector and Histogram on the right.
pub fn default_tree() -> Tree<PaneKind> {
    let mut t = Tiles::default();
    let pane = |t: &mut Tiles<PaneKind>, k| {
        let p = t.insert_pane(k);
        t.insert_tab_tile(vec![p])
    };
    let params = pane(&mut t, PaneKind::Parameters);
    let viewer = pane(&mut t, PaneKind::Viewer);
    let bottom: Vec<TileId> = [
        PaneKind::Timeline,
        PaneKind::Lanes,
        PaneKind::Buffers,
        PaneKind::Log,
    ]
    .into_iter()
    .map(|k| t.insert_pane(k))
    .collect();
    let bottom = t.insert_tab_tile(bottom);
    let center = t.insert_vertical_tile(vec![viewer, bottom]);
    share(&mut t, center, &[(viewer, 2.4), (bottom, 1.0)]);
    let session = [
        PaneKind::Session,
        PaneKind::Camera,
        PaneKind::Capture,
        PaneKind::Calibrate,
    ]
    .map(|k| t.insert_pane(k));
    let session = t.insert_tab_tile(session.to_vec());
    let inspector = pane(&mut t, PaneKind::Inspector);
    let histogram = pane(&mut t, PaneKind::Histogram);
    let right = t.insert_vertical_tile(vec![session, inspector, histogram]);
    share(
        &mut t,
        right,
        &[(session, 1.7), (inspector, 1.1), (histogram, 0.9)],
    );
    let root = t.insert_horizontal_tile(vec![params, center, right]);
    share(&mut t, root, &[(params, 1.0), (center, 2.6), (right, 1.15)]);
    Tree::new(egui::Id::unique(TREE_ID), root, t)
}

fn share(t: &mut Tiles<PaneKind>, container: TileId, shares: &[(TileId, f32)]) {
    if let Some(Tile::Container(Container::Linear(l))) = t.get_mut(container) {
        for (id, s) in shares {
            l.shares.set_share(*id, *s);
        }
    }
}

/// A restored tree is used only when it holds every panel once.
pub fn usable(tree: &Tree<PaneKind>) -> bool {
    PaneKind::ALL.iter().all(|k| {
        tree.tiles
            .tiles()
            .filter(|t| matches!(t, Tile::Pane(p) if p == k))
            .count()
            == 1
    })
}

/// What is kept between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Persisted {
    pub tree: Option<Tree<PaneKind>>,
    /// The source open at the end (a session folder, raw:, synthetic:).
    pub source: Option<String>,
    /// Sessions and tuning files opened, newest first.
    pub recent: Vec<String>,
}

/// eframe storage key.
pub const STORAGE_KEY: &str = "isp-studio";

/// Recent files kept.
pub const RECENT_FILES: usize = 10;

/// The tiles' behaviour: each pane is its panel.
pub struct Panes<'a> {
    pub panels: &'a mut [Box<dyn Panel>],
    pub state: &'a mut AppState,
}

impl egui_tiles::Behavior<PaneKind> for Panes<'_> {
    fn tab_title_for_pane(&mut self, pane: &PaneKind) -> egui::WidgetText {
        self.panels[*pane as usize].title().into()
    }
    fn pane_ui(&mut self, ui: &mut egui::Ui, _tile: TileId, pane: &mut PaneKind) -> UiResponse {
        let panel = &mut self.panels[*pane as usize];
        egui::Frame::new().inner_margin(4.0).show(ui, |ui| {
            ui.set_min_size(ui.available_size());
            panel.ui(ui, self.state);
        });
        UiResponse::None
    }
    fn simplification_options(&self) -> SimplificationOptions {
        SimplificationOptions {
            all_panes_must_have_tabs: true,
            ..Default::default()
        }
    }
    fn min_size(&self) -> f32 {
        60.0
    }
}

/// Where each panel is on screen now (visible ones).
pub fn pane_rects(tree: &Tree<PaneKind>) -> Vec<(PaneKind, egui::Rect)> {
    tree.tiles
        .iter()
        .filter_map(|(id, t)| match t {
            Tile::Pane(k) if tree.is_visible(*id) => Some((*k, tree.tiles.rect(*id)?)),
            _ => None,
        })
        .collect()
}
