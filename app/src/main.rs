//! ISP Studio: the egui front end. This first cut plays a source (the demo
//! session by default) through the engine and shows the processed frames with
//! a status line; the full studio (panels for parameters, lanes, buffers,
//! timeline) builds on it. It only uses the engine's public API.

use clap::Parser;
use eframe::egui;
use isp_engine::pipeline::{Engine, EngineConfig, FrameResult};
use isp_engine::sources::{self, SourceOptions};
use isp_engine::tuning::Tuning;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
}

struct Studio {
    engine: Arc<Engine>,
    results: crossbeam_channel::Receiver<Arc<FrameResult>>,
    texture: Option<egui::TextureHandle>,
    last: Option<Arc<FrameResult>>,
    status: String,
    frames: u64,
    stop: Arc<AtomicBool>,
    feeder: Option<std::thread::JoinHandle<()>>,
    quit_at: Option<f64>,
}

impl Studio {
    fn new(spec: Option<String>, quit_after: Option<f32>) -> Result<Self, String> {
        let opts = SourceOptions::default();
        let mut src = sources::open(spec.as_deref(), &opts).map_err(|e| e.to_string())?;
        let engine = Arc::new(
            Engine::new(EngineConfig::default(), Tuning::default()).map_err(|e| e.to_string())?,
        );
        let results = engine.subscribe(false);
        let stop = Arc::new(AtomicBool::new(false));
        let status = format!("{} | {}", src.name(), src.format().describe());
        let feeder = {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match engine.feed(src.as_mut(), Some(1), |_| {}) {
                        Ok(1) => std::thread::sleep(Duration::from_millis(33)),
                        Ok(_) => {
                            // End of a recorded session: loop it.
                            if src.seek(0).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::error!("source: {e}");
                            break;
                        }
                    }
                }
            })
        };
        Ok(Studio {
            engine,
            results,
            texture: None,
            last: None,
            status,
            frames: 0,
            stop,
            feeder: Some(feeder),
            quit_at: quit_after.map(|s| s as f64),
        })
    }
}

impl eframe::App for Studio {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        while let Ok(r) = self.results.try_recv() {
            if let Some(px) = r.preview_rgba() {
                let img = egui::ColorImage::from_rgba_unmultiplied(
                    [r.format.width as usize, r.format.height as usize],
                    &px,
                );
                match &mut self.texture {
                    Some(t) => t.set(img, egui::TextureOptions::NEAREST),
                    None => {
                        self.texture =
                            Some(ctx.load_texture("frame", img, egui::TextureOptions::NEAREST))
                    }
                }
                self.frames += 1;
            }
            self.last = Some(r);
        }
        egui::Panel::bottom("status").show(ui, |ui| {
            let (v, f) = self
                .last
                .as_ref()
                .map(|r| (r.params_version, r.frame_id))
                .unwrap_or((0, 0));
            ui.label(format!(
                "{} | frame {f} | shown {} | params v{v} | allocator {}",
                self.status,
                self.frames,
                self.engine.rm.allocator_name()
            ));
        });
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(t) = &self.texture {
                ui.add(egui::Image::new(t).shrink_to_fit());
            } else {
                ui.label("waiting for the first frame...");
            }
        });
        if let Some(q) = self.quit_at
            && ctx.input(|i| i.time) > q
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        ctx.request_repaint_after(Duration::from_millis(16));
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
        self.engine.shutdown();
    }
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
            .with_inner_size([1100.0, 700.0])
            .with_title("ISP Studio"),
        ..Default::default()
    };
    eframe::run_native(
        "ISP Studio",
        opts,
        Box::new(move |_cc| match Studio::new(args.source, args.quit_after) {
            Ok(s) => Ok(Box::new(s) as Box<dyn eframe::App>),
            Err(e) => Err(e.into()),
        }),
    )
}
