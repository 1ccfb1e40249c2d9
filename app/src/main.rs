//! ISP Studio: the egui front end. This first cut plays a source (the demo
//! session by default) through the engine and shows the processed frames with
//! a status line; the full studio (panels for parameters, lanes, buffers,
//! timeline) builds on it. It only uses the engine's public API.

use clap::Parser;
use eframe::egui;
use isp_engine::gpu::{Backend, GpuContext};
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
    /// Preview backend: cpu, gpu or auto (eframe's GPU device when it can
    /// run compute shaders).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: Backend,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    Backend::parse(s).ok_or_else(|| format!("`{s}` is not cpu, gpu or auto"))
}

/// The preview drawn straight from a GPU texture the engine fills.
struct GpuView {
    id: egui::TextureId,
    size: [usize; 2],
}

struct Studio {
    engine: Arc<Engine>,
    results: crossbeam_channel::Receiver<Arc<FrameResult>>,
    texture: Option<egui::TextureHandle>,
    gpu_view: Option<GpuView>,
    last: Option<Arc<FrameResult>>,
    status: String,
    frames: u64,
    stop: Arc<AtomicBool>,
    feeder: Option<std::thread::JoinHandle<()>>,
    quit_at: Option<f64>,
}

impl Studio {
    fn new(
        cc: &eframe::CreationContext<'_>,
        spec: Option<String>,
        quit_after: Option<f32>,
        backend: Backend,
    ) -> Result<Self, String> {
        let opts = SourceOptions::default();
        let mut src = sources::open(spec.as_deref(), &opts).map_err(|e| e.to_string())?;
        let tuning = match sources::session_tuning(spec.as_deref()) {
            Some(t) => t.map_err(|e| e.to_string())?,
            None => Tuning::default(),
        };
        // Hand eframe's device to the engine: the preview then stays on the
        // GPU. `auto` leaves a software rasterizer (lavapipe) alone: the CPU
        // backend is faster there.
        let rs = cc.wgpu_render_state.as_ref();
        let gpu_context = rs
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
        let engine = Arc::new(Engine::new(config, tuning).map_err(|e| e.to_string())?);
        let fmt = src.format();
        let gpu_view = match (engine.gpu(), rs) {
            (Some(g), Some(rs)) => {
                let size = wgpu::Extent3d {
                    width: fmt.width,
                    height: fmt.height,
                    depth_or_array_layers: 1,
                };
                let tex = rs.device.create_texture(&wgpu::TextureDescriptor {
                    label: Some("preview"),
                    size,
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format: wgpu::TextureFormat::Rgba8UnormSrgb,
                    usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                    view_formats: &[],
                });
                let view = tex.create_view(&Default::default());
                let id = rs.renderer.write().register_native_texture(
                    &rs.device,
                    &view,
                    wgpu::FilterMode::Nearest,
                );
                g.set_display_texture(Some(tex));
                Some(GpuView {
                    id,
                    size: [fmt.width as usize, fmt.height as usize],
                })
            }
            _ => None,
        };
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
            gpu_view,
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
        // On the GPU the engine fills the texture itself; the CPU copy is
        // only for the CPU backend (or after a GPU fault switched to it).
        let on_gpu = self.gpu_view.is_some() && self.engine.backend().starts_with("gpu");
        while let Ok(r) = self.results.try_recv() {
            if on_gpu && r.preview.is_some() {
                self.frames += 1;
            } else if let Some(px) = r.preview_rgba() {
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
                "{} | frame {f} | shown {} | params v{v} | allocator {} | backend {}",
                self.status,
                self.frames,
                self.engine.rm.allocator_name(),
                self.engine.backend()
            ));
        });
        egui::CentralPanel::default().show(ui, |ui| {
            if let (true, Some(g)) = (on_gpu && self.frames > 0, &self.gpu_view) {
                let size = egui::vec2(g.size[0] as f32, g.size[1] as f32);
                ui.add(egui::Image::new((g.id, size)).shrink_to_fit());
            } else if let Some(t) = &self.texture {
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
        wgpu_options: wgpu_options(),
        ..Default::default()
    };
    eframe::run_native(
        "ISP Studio",
        opts,
        Box::new(
            move |cc| match Studio::new(cc, args.source, args.quit_after, args.backend) {
                Ok(s) => Ok(Box::new(s) as Box<dyn eframe::App>),
                Err(e) => Err(e.into()),
            },
        ),
    )
}

/// eframe's wgpu device, asked for the limits the engine's compute shaders
/// need (egui-wgpu's own choice on GL is WebGL2's, which has no compute) and
/// for timestamp queries where the adapter has them.
fn wgpu_options() -> eframe::egui_wgpu::WgpuConfiguration {
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
    eframe::egui_wgpu::WgpuConfiguration {
        wgpu_setup: WgpuSetup::CreateNew(setup),
        ..Default::default()
    }
}
