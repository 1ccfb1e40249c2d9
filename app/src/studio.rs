//! The studio: eframe app that owns the AppState and the panels.

use crate::files::{DialogKind, FileAction, FileDialogs};
use crate::panels::{self, Panel};
use crate::player::{Player, PlayerCmd, open_source};
use crate::state::{AppState, TuningEdit};
use crate::workspace::{self, PaneKind, Persisted};
use eframe::egui;
use isp_engine::gpu::{Backend, GpuContext};
use isp_engine::pipeline::{Engine, EngineConfig};
use isp_engine::tuning::Tuning;
use std::sync::Arc;

/// How the studio starts.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A session directory, raw:PATH or synthetic:NAME; `None` for the demo session.
    pub source: Option<String>,
    pub backend: Backend,
    pub quit_after: Option<f32>,
    /// Frames per second the player feeds.
    pub fps: Option<f32>,
    /// The viewer's first zoom (`None`: fit the window).
    pub zoom: Option<f32>,
    /// What the last run kept (layout, recent files; its source when
    /// `source` is `None`).
    pub restore: Option<Persisted>,
    /// Native or in-app file dialogs (`None`: what the desktop can show).
    pub dialogs: Option<DialogKind>,
}

pub struct Studio {
    pub state: AppState,
    /// One per [`PaneKind`], in its order.
    panels: Vec<Box<dyn Panel>>,
    /// The docked layout.
    pub tree: egui_tiles::Tree<PaneKind>,
    /// The keyboard shortcuts window is open.
    pub show_shortcuts: bool,
    quit_at: Option<f64>,
    /// UI frame CPU time, ms (the last 2000 frames after the first two
    /// seconds of warm-up: fonts, first textures): the app's own pass.
    pub frame_ms: std::collections::VecDeque<f64>,
    /// The UI thread's own CPU time in the app's pass, ms (what the thread
    /// ran, not the wall clock: on a busy machine the pass also waits for a core).
    pub thread_cpu_ms: std::collections::VecDeque<f64>,
    /// eframe's whole frame CPU time, ms (the pass, tessellation, texture
    /// uploads and painting; not the vsync wait), as eframe reports it.
    pub whole_ms: std::collections::VecDeque<f64>,
    /// eframe's wgpu state, kept to resize the display texture.
    render: Option<eframe::egui_wgpu::RenderState>,
}

/// The texture the engine copies each GPU preview of this size into.
fn display_texture(device: &wgpu::Device, size: [usize; 2]) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("preview"),
        size: wgpu::Extent3d {
            width: size[0] as u32,
            height: size[1] as u32,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

impl std::fmt::Debug for Studio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Studio")
    }
}

impl Studio {
    /// Build the studio; `render` is eframe's wgpu state when there is one
    /// (its device is handed to the engine so the preview stays on the GPU).
    pub fn new(
        render: Option<&eframe::egui_wgpu::RenderState>,
        opts: Options,
    ) -> Result<Self, String> {
        let restore = opts.restore.clone().unwrap_or_default();
        // The last run's source when none is asked for and it still opens.
        let mut not_reopened = None;
        let (source, src) = match (&opts.source, &restore.source) {
            (None, Some(last)) => match open_source(Some(last)) {
                Ok(s) => (Some(last.clone()), s),
                Err(e) => {
                    not_reopened = Some(format!("the last session did not open again: {e}"));
                    (None, open_source(None).map_err(|e| e.to_string())?)
                }
            },
            _ => (
                opts.source.clone(),
                open_source(opts.source.as_deref()).map_err(|e| e.to_string())?,
            ),
        };
        let tuning = match isp_engine::sources::session_tuning(source.as_deref()) {
            Some(t) => t.map_err(|e| e.to_string())?,
            None => Tuning::default(),
        };
        let backend = opts.backend;
        // Errors outside the engine's error scopes (the renderer's, e.g. a
        // surface that cannot be reconfigured while a slow adapter is busy)
        // go to the log; wgpu's default handler would abort the app.
        let gpu_errors: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        if let Some(rs) = render {
            let sink = gpu_errors.clone();
            rs.device
                .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                    tracing::error!("GPU: {e}");
                    let mut v = sink.lock().unwrap_or_else(|p| p.into_inner());
                    if v.len() < 64 {
                        v.push(format!("GPU: {e}"));
                    }
                }));
        }
        // `auto` leaves a software rasterizer (lavapipe) alone: the CPU is faster there.
        let gpu_context = render
            .filter(|rs| {
                let software = rs.adapter.get_info().device_type == wgpu::DeviceType::Cpu;
                backend == Backend::Gpu || (backend == Backend::Auto && !software)
            })
            .map(|rs| {
                GpuContext::adopt(rs.device.clone(), rs.queue.clone(), rs.adapter.get_info())
            });
        let config = EngineConfig {
            backend,
            gpu_context,
            ..Default::default()
        };
        let engine = Arc::new(Engine::new(config, tuning.clone()).map_err(|e| e.to_string())?);
        let fmt = src.format();
        let gpu_texture = match (engine.gpu(), render) {
            (Some(g), Some(rs)) => {
                let tex = display_texture(&rs.device, [fmt.width as usize, fmt.height as usize]);
                let view = tex.create_view(&Default::default());
                let id = rs.renderer.write().register_native_texture(
                    &rs.device,
                    &view,
                    wgpu::FilterMode::Nearest,
                );
                g.set_display_texture(Some(tex));
                Some((id, [fmt.width as usize, fmt.height as usize]))
            }
            _ => None,
        };
        let presenter = crate::presenter::Presenter::start(engine.clone(), engine.subscribe(false));
        let player = Player::start(engine.clone(), src, opts.fps.unwrap_or(30.0));
        let mut state = AppState {
            engine,
            player,
            presenter,
            latest: None,
            frame_image: None,
            clipped: [0.0; 2],
            taps: [None, None],
            stages: None,
            frames_shown: 0,
            log: Vec::new(),
            tuning: TuningEdit::new(tuning, None),
            selected_frame: None,
            selected_params: None,
            selected_source: None,
            shown_at: Default::default(),
            now: 0.0,
            gpu_texture,
            viewer_drawn: None,
            viewer_image: None,
            inspect_at: None,
            view_requests: Default::default(),
            files: FileDialogs::new(opts.dialogs.unwrap_or_else(crate::files::detect)),
            recent_files: restore.recent.clone(),
            source_spec: source.clone(),
            gpu_errors,
            recent: Default::default(),
            capture_view: None,
        };
        let backend = state.engine.backend();
        state.info(format!("backend: {backend}"));
        if let Some(e) = not_reopened {
            state.error(e);
        }
        let tree = restore
            .tree
            .filter(workspace::usable)
            .unwrap_or_else(workspace::default_tree);
        Ok(Studio {
            state,
            panels: panels::all(opts.zoom),
            tree,
            show_shortcuts: false,
            quit_at: opts.quit_after.map(|s| s as f64),
            frame_ms: Default::default(),
            whole_ms: Default::default(),
            thread_cpu_ms: Default::default(),
            render: render.cloned(),
        })
    }

    /// Draw one UI frame (eframe calls it; tests call it through kittest).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let t0 = std::time::Instant::now();
        let c0 = thread_cpu_ns();
        let ctx = ui.ctx().clone();
        self.state.poll(&ctx);
        self.follow_frame_size();
        // Drag and drop a session folder onto the window.
        let dropped: Vec<_> = ctx.input(|i| i.raw.dropped_files.clone());
        for f in dropped {
            let p = f.path();
            if !p.as_os_str().is_empty() {
                self.state.open_source(&p.display().to_string());
            }
        }
        self.shortcuts(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            panels::status_bar(ui, &self.state);
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let mut panes = workspace::Panes {
                panels: &mut self.panels,
                state: &mut self.state,
            };
            self.tree.ui(&mut panes, ui);
        });
        self.shortcuts_window(&ctx);
        if let Some((action, path)) = self.state.files.show(&ctx) {
            self.state.file_picked(action, &path);
        }
        if let Some(q) = self.quit_at
            && ctx.input(|i| i.time) > q
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        if self.state.now > WARM_UP_S {
            self.frame_ms.push_back(t0.elapsed().as_secs_f64() * 1e3);
            self.thread_cpu_ms
                .push_back(thread_cpu_ns().saturating_sub(c0) as f64 / 1e6);
            while self.frame_ms.len() > TIMED_FRAMES {
                self.frame_ms.pop_front();
                self.thread_cpu_ms.pop_front();
            }
        }
        ctx.request_repaint_after(std::time::Duration::from_millis(16));
    }
}

impl eframe::App for Studio {
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, workspace::STORAGE_KEY, &self.persisted());
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(s) = frame.info().cpu_usage
            && self.state.now > WARM_UP_S
        {
            self.whole_ms.push_back(s as f64 * 1e3);
            while self.whole_ms.len() > TIMED_FRAMES {
                self.whole_ms.pop_front();
            }
        }
        self.show(ui);
    }
}

/// The keyboard shortcuts, as the Help menu lists them.
pub const SHORTCUTS: [(&str, &str); 11] = [
    ("Space", "play / pause"),
    ("Right arrow", "next frame"),
    ("Left arrow", "previous frame"),
    ("Home / End", "first / last frame"),
    ("Ctrl+Z", "undo the last edit"),
    ("Ctrl+Shift+Z (or Ctrl+Y)", "redo"),
    ("F", "fit the frame to the viewer"),
    ("1", "1:1 (one frame pixel per screen pixel)"),
    ("+ / -", "zoom in / out in steps"),
    ("Mouse wheel", "zoom about the cursor"),
    ("Drag", "pan the frame"),
];

impl Studio {
    /// What to keep for the next run.
    pub fn persisted(&self) -> Persisted {
        Persisted {
            tree: Some(self.tree.clone()),
            source: self.state.source_spec.clone(),
            recent: self.state.recent_files.clone(),
        }
    }

    /// Show or hide a panel (the Panels menu).
    pub fn set_panel_visible(&mut self, kind: PaneKind, visible: bool) {
        if let Some(id) = self.tree.tiles.find_pane(&kind) {
            self.tree.set_visible(id, visible);
        }
    }

    pub fn panel_visible(&self, kind: PaneKind) -> bool {
        self.tree
            .tiles
            .find_pane(&kind)
            .is_some_and(|id| self.tree.is_visible(id))
    }

    /// The default tiles and sizes again.
    pub fn reset_layout(&mut self) {
        self.tree = workspace::default_tree();
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open session...").clicked() {
                    self.state.files.request = Some(FileAction::OpenSession);
                }
                if ui.button("Open DNG...").clicked() {
                    self.state.files.request = Some(FileAction::OpenDng);
                }
                ui.menu_button("Open recent", |ui| {
                    if self.state.recent_files.is_empty() {
                        ui.label("nothing yet");
                    }
                    for r in self.state.recent_files.clone() {
                        if ui.button(crate::state::tidy_path(&r)).clicked() {
                            self.state.open_recent(&r);
                        }
                    }
                });
                if ui.button("Open tuning...").clicked() {
                    self.state.files.request = Some(FileAction::OpenTuning);
                }
                if ui.button("Save tuning...").clicked() {
                    self.state.files.request = Some(FileAction::SaveTuning);
                }
                if ui.button("Export telemetry CSV...").clicked() {
                    self.state.files.request = Some(FileAction::ExportCsv);
                }
                ui.separator();
                let mut in_app = self.state.files.kind == DialogKind::InApp;
                if ui
                    .checkbox(&mut in_app, "In-app file dialogs")
                    .on_hover_text("instead of the desktop's (needs an XDG portal or zenity)")
                    .changed()
                {
                    self.state.files.kind = if in_app {
                        DialogKind::InApp
                    } else {
                        DialogKind::Native
                    };
                }
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("Panels", |ui| {
                for (k, p) in PaneKind::ALL.into_iter().zip(0..) {
                    let mut on = self.panel_visible(k);
                    if ui.checkbox(&mut on, self.panels[p].title()).changed() {
                        self.set_panel_visible(k, on);
                    }
                }
                ui.separator();
                if ui.button("Reset layout").clicked() {
                    self.reset_layout();
                }
            });
            ui.menu_button("Help", |ui| {
                if ui.button("Keyboard shortcuts").clicked() {
                    self.show_shortcuts = true;
                }
            });
            let ms = self.frame_ms.back().copied().unwrap_or(0.0);
            ui.label(format!("UI {ms:.2} ms"));
        });
    }

    fn shortcuts_window(&mut self, ctx: &egui::Context) {
        egui::Window::new("Keyboard shortcuts")
            .open(&mut self.show_shortcuts)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                    for (k, what) in SHORTCUTS {
                        ui.strong(k);
                        ui.label(what);
                        ui.end_row();
                    }
                });
            });
    }

    /// The keyboard: not while a text field has it.
    fn shortcuts(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        use egui::{Key, Modifiers};
        let shift_cmd = Modifiers::COMMAND | Modifiers::SHIFT;
        let (redo, undo) = ctx.input_mut(|i| {
            let redo =
                i.consume_key(shift_cmd, Key::Z) || i.consume_key(Modifiers::COMMAND, Key::Y);
            (redo, i.consume_key(Modifiers::COMMAND, Key::Z))
        });
        if redo {
            self.state.redo();
        } else if undo {
            self.state.undo();
        }
        let key = |k: Key| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, k));
        let s = &mut self.state;
        let p = s.player.status();
        if key(Key::Space) {
            s.player.send(if p.playing {
                PlayerCmd::Pause
            } else {
                PlayerCmd::Play
            });
        }
        if key(Key::ArrowRight) {
            s.player.send(PlayerCmd::Pause);
            s.player.send(PlayerCmd::Step);
        }
        if key(Key::ArrowLeft)
            && let Some(i) = p.last_index
        {
            s.player.send(PlayerCmd::Pause);
            s.player.send(PlayerCmd::Seek(i.saturating_sub(1)));
        }
        if key(Key::Home) {
            s.player.send(PlayerCmd::Pause);
            s.player.send(PlayerCmd::Seek(0));
        }
        if key(Key::End)
            && let Some(n) = p.count.filter(|n| *n > 0)
        {
            s.player.send(PlayerCmd::Pause);
            s.player.send(PlayerCmd::Seek(n - 1));
        }
        if key(Key::F) {
            s.view_requests.fit = true;
        }
        if key(Key::Num1) {
            s.view_requests.one_to_one = true;
        }
        let plus = ctx.input_mut(|i| {
            i.consume_key(Modifiers::NONE, Key::Plus)
                || i.consume_key(Modifiers::NONE, Key::Equals)
                || i.consume_key(Modifiers::SHIFT, Key::Equals)
        });
        if plus {
            s.view_requests.zoom_steps += 1;
        }
        if key(Key::Minus) {
            s.view_requests.zoom_steps -= 1;
        }
    }

    /// The GPU display texture follows the frames' size: a session of
    /// another size gets a texture of its size under the same egui id, and
    /// until the engine has copied a frame into it the viewer draws the CPU
    /// image instead of a stale or empty texture.
    fn follow_frame_size(&mut self) {
        let (Some(rs), Some(g), Some((id, size)), Some(latest)) = (
            &self.render,
            self.state.engine.gpu(),
            self.state.gpu_texture,
            &self.state.latest,
        ) else {
            return;
        };
        let want = [latest.format.width as usize, latest.format.height as usize];
        if want == size {
            return;
        }
        let tex = display_texture(&rs.device, want);
        let view = tex.create_view(&Default::default());
        rs.renderer.write().update_egui_texture_from_wgpu_texture(
            &rs.device,
            &view,
            wgpu::FilterMode::Nearest,
            id,
        );
        g.set_display_texture(Some(tex));
        self.state.gpu_texture = Some((id, want));
        self.state
            .info(format!("display texture now {}x{}", want[0], want[1]));
    }

    /// UI frame CPU time over the timed frames: (p50, p99, max) ms.
    pub fn frame_time(&self) -> (f64, f64, f64) {
        percentiles(&self.frame_ms)
    }
}

/// CPU time this thread has run, ns (CLOCK_THREAD_CPUTIME_ID).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; the clock id is valid on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Frames timed (the newest), and the warm-up left out, seconds.
const TIMED_FRAMES: usize = 2000;
const WARM_UP_S: f64 = 2.0;

/// (p50, p99, max) of some times.
fn percentiles(times: &std::collections::VecDeque<f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = times.iter().copied().collect();
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

impl Drop for Studio {
    fn drop(&mut self) {
        if std::env::var_os("ISP_STUDIO_TIMING").is_some() {
            let (p50, p99, max) = self.frame_time();
            let fps = self.frame_ms.len() as f64 / (self.state.now - WARM_UP_S).max(1e-3);
            eprintln!(
                "isp-studio: UI frame CPU time over the last {} frames after {WARM_UP_S} s (UI at {fps:.1} frames/s): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
                self.frame_ms.len()
            );
            let (p50, p99, max) = percentiles(&self.thread_cpu_ms);
            eprintln!(
                "isp-studio: UI thread CPU time in the pass (CLOCK_THREAD_CPUTIME_ID): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"
            );
            if !self.whole_ms.is_empty() {
                let (p50, p99, max) = percentiles(&self.whole_ms);
                eprintln!(
                    "isp-studio: whole frame CPU time (eframe: pass + tessellation + texture uploads + paint) over the last {} frames: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
                    self.whole_ms.len()
                );
            }
        }
        // Let go of every frame so the player's feed is never left waiting
        // for a slot, then stop the player and the engine.
        self.state.latest = None;
        self.state.recent.clear();
        self.state.engine.unsubscribe_all();
        self.state.presenter.stop();
        self.state.player.send(crate::player::PlayerCmd::Stop);
        self.state.engine.shutdown();
    }
}

/// eframe's wgpu device, asked for the limits the engine's compute shaders
/// need (egui-wgpu's own choice on GL is WebGL2's, which has no compute) and
/// for timestamp queries where the adapter has them.
pub fn wgpu_options() -> eframe::egui_wgpu::WgpuConfiguration {
    use eframe::egui_wgpu::{WgpuSetup, WgpuSetupCreateNew};
    let mut setup = WgpuSetupCreateNew::without_display_handle();
    setup.device_descriptor = Arc::new(|adapter: &wgpu::Adapter| {
        let mut limits = isp_engine::gpu::required_limits(&adapter.limits());
        limits.max_texture_dimension_2d = adapter.limits().max_texture_dimension_2d.min(8192);
        wgpu::DeviceDescriptor {
            label: Some("isp-studio"),
            required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
            required_limits: limits,
            ..Default::default()
        }
    });
    let mut config = eframe::egui_wgpu::WgpuConfiguration {
        wgpu_setup: WgpuSetup::CreateNew(setup),
        ..Default::default()
    };
    // Xvfb has no display refresh: `ISP_STUDIO_PRESENT=immediate` (or
    // mailbox, fifo) picks the present mode instead of waiting for vsync.
    if let Ok(mode) = std::env::var("ISP_STUDIO_PRESENT") {
        config.surface.present_mode = match mode.as_str() {
            "immediate" => wgpu::PresentMode::AutoNoVsync,
            "mailbox" => wgpu::PresentMode::Mailbox,
            "fifo" => wgpu::PresentMode::Fifo,
            _ => config.surface.present_mode,
        };
    }
    config
}
