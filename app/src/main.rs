//! `isp-studio`: the egui front end of ISP Studio.

use clap::Parser;
use eframe::egui;
use isp_engine::gpu::Backend;
use isp_studio::{Options, Studio};

#[derive(Parser)]
#[command(
    name = "isp-studio",
    version,
    about = "ISP Studio: camera tuning workstation"
)]
struct Args {
    /// A session directory, raw:PATH or synthetic:NAME; none for the demo session.
    source: Option<String>,
    /// Quit after this many seconds (for screenshots and smoke tests).
    #[arg(long)]
    quit_after: Option<f32>,
    /// Preview backend: cpu, gpu or auto (eframe's GPU device when it is a
    /// hardware adapter).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: Backend,
    /// Start the viewer at this zoom (1 = one image pixel per screen pixel)
    /// instead of fitting the window.
    #[arg(long)]
    zoom: Option<f32>,
    /// Frames per second the player feeds (default 30).
    #[arg(long)]
    fps: Option<f32>,
    /// Start with the default layout and no restored source or recent files
    /// (what the last run kept is left alone until this run saves).
    #[arg(long)]
    fresh: bool,
    /// File dialogs: native (the desktop's, through the XDG portal or
    /// zenity) or in-app; by default native when the desktop can show one.
    #[arg(long, value_parser = parse_dialogs)]
    dialogs: Option<isp_studio::files::DialogKind>,
}

fn parse_dialogs(s: &str) -> Result<isp_studio::files::DialogKind, String> {
    match s {
        "native" => Ok(isp_studio::files::DialogKind::Native),
        "in-app" => Ok(isp_studio::files::DialogKind::InApp),
        _ => Err(format!("`{s}` is not native or in-app")),
    }
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    Backend::parse(s).ok_or_else(|| format!("`{s}` is not cpu, gpu or auto"))
}

fn main() -> eframe::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISP_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let opts = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 760.0])
            .with_title("ISP Studio")
            .with_drag_and_drop(true),
        wgpu_options: isp_studio::studio::wgpu_options(),
        ..Default::default()
    };
    let mut options = Options {
        source: args.source,
        backend: args.backend,
        quit_after: args.quit_after,
        fps: args.fps,
        zoom: args.zoom,
        restore: None,
        dialogs: args.dialogs,
    };
    let fresh = args.fresh;
    eframe::run_native(
        "ISP Studio",
        opts,
        Box::new(move |cc| {
            // The layout, source and recent files the last run kept.
            if !fresh {
                options.restore = cc
                    .storage
                    .and_then(|s| eframe::get_value(s, isp_studio::workspace::STORAGE_KEY));
            }
            match Studio::new(cc.wgpu_render_state.as_ref(), options) {
                Ok(s) => Ok(Box::new(s) as Box<dyn eframe::App>),
                Err(e) => Err(e.into()),
            }
        }),
    )
}
