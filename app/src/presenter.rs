//! The presenter: two threads between the engine and the UI, so the UI
//! thread never copies, converts or computes a frame.
//!
//! - `present` takes the engine's results (lossy), copies each preview once
//!   (the inspector and the timeline selection read that copy), and builds
//!   the image the viewer uploads: box-downscaled with the engine's scaler to
//!   what the viewer shows, with the clipped-pixel overlay when it is on.
//! - `inspect` runs the on-demand work: a stage's output (tap), the "before"
//!   side of the split view, every stage's output for the pixel inspector.
//!
//! The UI drains one channel of [`Presented`] each frame and swaps images
//! into textures (no copy: the image is an `Arc`).

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use eframe::egui;
use isp_engine::pipeline::{Engine, FrameResult};
use isp_engine::stages::chain::{Tap, TapImage};
use isp_engine::tuning::Tuning;
use isp_engine::types::RawFormat;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::display::clipped_fraction;
pub use crate::display::{
    CLIP_HIGH, CLIP_LOW, clip_of, display_image, display_image_with, display_lut, to_rgba, white_of,
};
use std::time::{Duration, Instant};

/// How the viewer wants frames drawn; set by the UI, read by the presenter.
#[derive(Debug, Default)]
pub struct ViewSettings {
    /// Box-downscale factor (1: full size).
    pub factor: AtomicUsize,
    /// Build a CPU image for each frame (off when the viewer draws the GPU texture).
    pub want_image: AtomicBool,
    /// Paint clipped pixels (any channel 255: magenta; all channels 0: blue).
    pub overlay: AtomicBool,
    /// The part of the frame the viewer shows, with a margin, in full-size
    /// pixels `[x0, y0, x1, y1]` (`None`: all of it). Zoomed in, only that
    /// part is converted and uploaded.
    pub crop: Mutex<Option<[usize; 4]>>,
}

impl ViewSettings {
    pub fn factor(&self) -> usize {
        self.factor.load(Ordering::Relaxed).max(1)
    }
    pub fn crop(&self) -> Option<[usize; 4]> {
        *self.crop.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Set the crop; true when it changed.
    pub fn set_crop(&self, c: Option<[usize; 4]>) -> bool {
        let mut g = self.crop.lock().unwrap_or_else(|p| p.into_inner());
        let changed = *g != c;
        *g = c;
        changed
    }
}

/// An image ready for a texture, and what it was made from.
#[derive(Clone)]
pub struct DisplayImage {
    pub image: Arc<egui::ColorImage>,
    /// The full-resolution size of the frame.
    pub full: [usize; 2],
    /// The part of the frame it shows, in full-size pixels `[x0, y0, x1, y1]`.
    pub region: [usize; 4],
    pub factor: usize,
    pub overlay: bool,
    /// With a crop: the whole frame, small, drawn under it so that panning
    /// never shows a blank area while the next crop is made.
    pub backdrop: Option<Arc<egui::ColorImage>>,
}

impl DisplayImage {
    /// The whole of an RGBA8 frame, unscaled (converted on the caller's thread).
    pub fn whole(rgba: &[u8], size: [usize; 2]) -> Self {
        DisplayImage {
            image: Arc::new(egui::ColorImage::from_rgba_premultiplied(size, rgba)),
            full: size,
            region: [0, 0, size[0], size[1]],
            factor: 1,
            overlay: false,
            backdrop: None,
        }
    }
}

/// A frame ready to show.
pub struct FramePresented {
    pub result: Arc<FrameResult>,
    /// The preview's RGBA8 at full size (for the inspector and selection).
    pub rgba: Arc<Vec<u8>>,
    pub size: [usize; 2],
    pub image: Option<DisplayImage>,
    /// Fraction of pixels clipped high (any channel 255) and low (all 0).
    pub clipped: [f32; 2],
}

/// What an inspect job asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct TapKey {
    /// The engine frame whose raw bytes it is made from.
    pub frame: u64,
    /// `None`: the final image.
    pub tap: Option<Tap>,
    /// Display gain for linear stages, in hundredths of a stop.
    pub ev_centi: i32,
    /// The parameters version, or the tuning as loaded (`before`).
    pub version: u64,
    pub before: bool,
    pub factor: usize,
    pub overlay: bool,
    pub crop: Option<[usize; 4]>,
}

pub enum Job {
    /// One stage's output (or the final image with the loaded tuning when
    /// `tuning` is given) as a display image.
    Tap {
        key: TapKey,
        raw: Arc<Vec<u8>>,
        format: RawFormat,
        tuning: Option<Arc<Tuning>>,
    },
    /// Every stage's output, for the pixel inspector.
    Stages {
        key: StagesKey,
        raw: Arc<Vec<u8>>,
        format: RawFormat,
    },
}

/// Which frame, under which parameters version, the inspector's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StagesKey {
    pub frame: u64,
    pub version: u64,
}

pub enum Presented {
    Frame(Box<FramePresented>),
    Tap {
        key: TapKey,
        rgba: Arc<Vec<u8>>,
        image: DisplayImage,
    },
    Stages {
        key: StagesKey,
        stages: Arc<Vec<(Tap, TapImage)>>,
    },
    Error(String),
}

/// The two threads and the channel the UI drains.
pub struct Presenter {
    pub settings: Arc<ViewSettings>,
    pub done: Receiver<Presented>,
    jobs: Sender<Job>,
    /// Ask `present` to build the last frame again (settings changed).
    again: Sender<()>,
    /// Frames sent and not yet taken by the UI.
    pending: Arc<AtomicUsize>,
    /// Inspect jobs queued or running.
    busy: Arc<AtomicUsize>,
    /// Frames the presenter skipped because the UI had not taken the last ones.
    pub skipped: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<Arc<FrameResult>>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Presenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presenter")
    }
}

/// Frames allowed to wait for the UI before the presenter skips.
const MAX_PENDING: usize = 2;

impl Presenter {
    pub fn start(engine: Arc<Engine>, results: Receiver<Arc<FrameResult>>) -> Presenter {
        let settings = Arc::new(ViewSettings {
            factor: AtomicUsize::new(1),
            want_image: AtomicBool::new(true),
            overlay: AtomicBool::new(false),
            crop: Mutex::new(None),
        });
        let (done_tx, done) = unbounded();
        let (jobs, job_rx) = unbounded::<Job>();
        let (again, again_rx) = unbounded::<()>();
        let pending = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        let skipped = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(None));
        let mut threads = Vec::new();
        {
            let (settings, done_tx, pending, skipped, last) = (
                settings.clone(),
                done_tx.clone(),
                pending.clone(),
                skipped.clone(),
                last.clone(),
            );
            threads.extend(
                std::thread::Builder::new()
                    .name("present".into())
                    .spawn(move || {
                        present(
                            results, again_rx, &settings, &done_tx, &pending, &skipped, &last,
                        )
                    })
                    .ok(),
            );
        }
        {
            let (settings, busy) = (settings.clone(), busy.clone());
            threads.extend(
                std::thread::Builder::new()
                    .name("inspect".into())
                    .spawn(move || inspect(&engine, job_rx, &settings, &done_tx, &busy))
                    .ok(),
            );
        }
        Presenter {
            settings,
            done,
            jobs,
            again,
            pending,
            busy,
            skipped,
            last,
            threads,
        }
    }

    /// Take what is ready (the UI calls it once per frame).
    pub fn take(&self) -> Vec<Presented> {
        let out: Vec<Presented> = self.done.try_iter().collect();
        let frames = out
            .iter()
            .filter(|p| matches!(p, Presented::Frame(_)))
            .count();
        self.pending.fetch_sub(frames, Ordering::AcqRel);
        out
    }

    /// Queue an inspect job unless one is already running (the UI asks again
    /// next frame with what it wants then).
    pub fn request(&self, job: Job) -> bool {
        if self.busy.load(Ordering::Acquire) > 0 {
            return false;
        }
        self.busy.fetch_add(1, Ordering::AcqRel);
        if self.jobs.send(job).is_err() {
            self.busy.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// Build the last frame again with the current settings.
    pub fn refresh(&self) {
        let _ = self.again.send(());
    }

    /// Let go of the last frame and stop both threads (after the engine's
    /// subscription ended).
    pub fn stop(&mut self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let (tx, _) = unbounded();
        self.jobs = tx;
        let (tx, _) = unbounded();
        self.again = tx;
        while self.done.try_recv().is_ok() {}
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn present(
    results: Receiver<Arc<FrameResult>>,
    again: Receiver<()>,
    settings: &ViewSettings,
    done: &Sender<Presented>,
    pending: &AtomicUsize,
    skipped: &AtomicUsize,
    last: &Mutex<Option<Arc<FrameResult>>>,
) {
    let mut backdrop_for: Option<[usize; 4]> = None;
    let mut backdrop_at = Instant::now();
    // The newest frame taken so far: a frame that ends after a newer one
    // (the realtime lane has several workers; a frame made again from the
    // session, or a step, overtakes frames still in flight) is not shown
    // over it.
    let mut newest = 0u64;
    loop {
        let r = select! {
            recv(results) -> r => match r {
                Ok(r) => {
                    if r.preview.is_some() && r.frame_id < newest {
                        if let Some(e) = &r.error {
                            let _ = done.send(Presented::Error(format!("frame {}: {e}", r.frame_id)));
                        }
                        continue;
                    }
                    if r.preview.is_some() {
                        newest = newest.max(r.frame_id);
                    }
                    r
                }
                Err(_) => return,
            },
            recv(again) -> a => {
                if a.is_err() {
                    return;
                }
                match last.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                    Some(r) => r,
                    None => continue,
                }
            },
        };
        if let Some(e) = &r.error {
            let _ = done.send(Presented::Error(format!("frame {}: {e}", r.frame_id)));
        }
        if r.preview.is_none() {
            continue;
        }
        if pending.load(Ordering::Acquire) >= MAX_PENDING {
            skipped.fetch_add(1, Ordering::Relaxed);
            *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            continue;
        }
        let Some(px) = r.preview_rgba() else {
            continue;
        };
        let size = [r.format.width as usize, r.format.height as usize];
        let clipped = clipped_fraction(&px);
        // A new backdrop when the crop moved, or after a second.
        let crop = settings.crop();
        let fresh = crop.is_some()
            && (crop != backdrop_for || backdrop_at.elapsed() > Duration::from_secs(1));
        let image = settings
            .want_image
            .load(Ordering::Relaxed)
            .then(|| display_image_with(&px, size, settings, fresh));
        if image.as_ref().is_some_and(|i| i.backdrop.is_some()) {
            backdrop_for = crop;
            backdrop_at = Instant::now();
        }
        *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.clone());
        pending.fetch_add(1, Ordering::AcqRel);
        let sent = done.send(Presented::Frame(Box::new(FramePresented {
            result: r,
            rgba: Arc::new(px),
            size,
            image,
            clipped,
        })));
        if sent.is_err() {
            return;
        }
    }
}

fn inspect(
    engine: &Engine,
    jobs: Receiver<Job>,
    settings: &ViewSettings,
    done: &Sender<Presented>,
    busy: &AtomicUsize,
) {
    for job in jobs {
        let out = match job {
            Job::Tap {
                key,
                raw,
                format,
                tuning,
            } => {
                let tap = key.tap.unwrap_or(Tap::Tone);
                match engine.tap_with(&raw, format, tap, tuning.as_deref()) {
                    Ok(img) => {
                        let size = [format.width as usize, format.height as usize];
                        let white = white_of(tap, &format);
                        let gain = 2f32.powf(key.ev_centi as f32 / 100.0);
                        let rgba = to_rgba(&img, size[0], size[1], white, gain);
                        let image = display_image(&rgba, size, settings);
                        Presented::Tap {
                            key,
                            rgba: Arc::new(rgba),
                            image,
                        }
                    }
                    Err(e) => Presented::Error(format!("tap {}: {e}", tap.name())),
                }
            }
            Job::Stages { key, raw, format } => match engine.taps(&raw, format) {
                Ok(stages) => Presented::Stages {
                    key,
                    stages: Arc::new(stages),
                },
                Err(e) => Presented::Error(format!("pixel inspector: {e}")),
            },
        };
        busy.fetch_sub(1, Ordering::AcqRel);
        if done.send(out).is_err() {
            return;
        }
    }
}
