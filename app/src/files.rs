//! File dialogs: the desktop's own (rfd, through the XDG portal or zenity)
//! when it can show one, else an in-app dialog (egui_file) — a machine
//! without a portal used to get nothing visible. Every file action's
//! outcome, and every file error, goes to the Log and the status bar.

use eframe::egui;
use std::path::{Path, PathBuf};

/// What a file is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileAction {
    OpenSession,
    OpenDng,
    RecordInto,
    OpenTuning,
    SaveTuning,
    ExportCsv,
}

impl FileAction {
    pub fn title(self) -> &'static str {
        match self {
            FileAction::OpenSession => "Open a recorded session or a folder of DNGs",
            FileAction::OpenDng => "Open a DNG file",
            FileAction::RecordInto => "Record into a new session folder",
            FileAction::OpenTuning => "Open a tuning file",
            FileAction::SaveTuning => "Save the tuning",
            FileAction::ExportCsv => "Export telemetry as CSV",
        }
    }
    fn folder(self) -> bool {
        matches!(self, FileAction::OpenSession | FileAction::RecordInto)
    }
    fn saves(self) -> bool {
        matches!(self, FileAction::SaveTuning | FileAction::ExportCsv)
    }
    fn default_name(self) -> Option<&'static str> {
        match self {
            FileAction::SaveTuning => Some("tuning.json"),
            FileAction::ExportCsv => Some("telemetry.csv"),
            _ => None,
        }
    }
}

/// Which dialogs the studio shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogKind {
    Native,
    InApp,
}

/// Can the desktop show a native dialog here? rfd asks the XDG desktop
/// portal over the D-Bus session bus, then falls back to `zenity`; with
/// neither it shows nothing and says so only on stderr. Override with
/// `ISP_STUDIO_DIALOGS=native|in-app`.
pub fn detect() -> DialogKind {
    match std::env::var("ISP_STUDIO_DIALOGS").as_deref() {
        Ok("native") => return DialogKind::Native,
        Ok("in-app") => return DialogKind::InApp,
        _ => {}
    }
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
    let zenity = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("zenity").is_file()));
    if bus || zenity {
        DialogKind::Native
    } else {
        DialogKind::InApp
    }
}

/// The dialogs: one request at a time.
pub struct FileDialogs {
    pub kind: DialogKind,
    /// Asked by a panel or the menu this frame.
    pub request: Option<FileAction>,
    /// The in-app dialog while open, and what it is for.
    open: Option<(FileAction, egui_file::FileDialog)>,
    /// Where the last dialog ended (the next one starts there).
    pub last_dir: Option<PathBuf>,
}

impl std::fmt::Debug for FileDialogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDialogs")
            .field("kind", &self.kind)
            .field("request", &self.request)
            .field("open", &self.open.as_ref().map(|o| o.0))
            .finish()
    }
}

impl FileDialogs {
    pub fn new(kind: DialogKind) -> Self {
        FileDialogs {
            kind,
            request: None,
            open: None,
            last_dir: None,
        }
    }

    /// The in-app dialog's action while one is open.
    pub fn in_app_open(&self) -> Option<FileAction> {
        self.open.as_ref().map(|o| o.0)
    }

    /// Run the request (if any) and show the in-app dialog (if open);
    /// returns the action and path picked, once.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<(FileAction, PathBuf)> {
        if let Some(action) = self.request.take() {
            match self.kind {
                DialogKind::Native => return self.native(action).map(|p| (action, p)),
                DialogKind::InApp => self.open_in_app(action),
            }
        }
        let (action, dialog) = self.open.as_mut()?;
        let action = *action;
        dialog.show(ctx);
        match dialog.state() {
            egui_file::State::Open => None,
            egui_file::State::Selected => {
                let picked = dialog.path().map(Path::to_path_buf);
                self.last_dir = Some(dialog.directory().to_path_buf());
                self.open = None;
                picked.map(|p| (action, p))
            }
            _ => {
                self.open = None;
                None
            }
        }
    }

    fn native(&mut self, action: FileAction) -> Option<PathBuf> {
        let mut d = rfd::FileDialog::new().set_title(action.title());
        if let Some(dir) = &self.last_dir {
            d = d.set_directory(dir);
        }
        match action {
            FileAction::OpenTuning | FileAction::SaveTuning => {
                d = d.add_filter("tuning", &["json"]);
            }
            FileAction::ExportCsv => d = d.add_filter("CSV", &["csv"]),
            FileAction::OpenDng => d = d.add_filter("DNG", &["dng", "DNG"]),
            _ => {}
        }
        if let Some(n) = action.default_name() {
            d = d.set_file_name(n);
        }
        let picked = if action.folder() {
            d.pick_folder()
        } else if action.saves() {
            d.save_file()
        } else {
            d.pick_file()
        };
        if let Some(p) = &picked {
            self.last_dir = p.parent().map(Path::to_path_buf);
        }
        picked
    }

    fn open_in_app(&mut self, action: FileAction) {
        let start = self
            .last_dir
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut d = if action.folder() {
            egui_file::FileDialog::select_folder()
        } else if action.saves() {
            egui_file::FileDialog::save_file()
        } else {
            egui_file::FileDialog::open_file()
        }
        .title(action.title())
        .id(egui::Id::unique("in-app file dialog"))
        .default_size([640.0, 420.0])
        .initial_path(start);
        if let Some(n) = action.default_name() {
            d = d.default_filename(n);
        }
        d.open();
        self.open = Some((action, d));
    }
}
