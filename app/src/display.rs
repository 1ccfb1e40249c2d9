//! What the viewer shows of a frame, made off the UI thread: a stage's
//! output as RGBA8 (linear stages through a display gain and the sRGB
//! curve), the clipped-pixel overlay and fractions, and the display image
//! (cropped, box-downscaled, with a small whole frame under a crop).

use crate::presenter::{DisplayImage, ViewSettings};
use eframe::egui;
use isp_engine::stages::chain::{Tap, TapImage};
use isp_engine::types::RawFormat;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The value a stage's output reaches at full scale: the sensor's white
/// level for the unpacked mosaic, 16 bits after the black level.
pub fn white_of(tap: Tap, format: &RawFormat) -> u16 {
    if tap == Tap::Unpacked {
        format.max_value()
    } else {
        u16::MAX
    }
}

/// A stage's output as RGBA8 for display. Linear stages (mosaics, shown as
/// grey, and linear RGB) are scaled by `gain` from `white` to 1.0 and put
/// through the sRGB curve, as the final image is: a linear stage next to
/// the final image is then like with like, not nearly black.
pub fn to_rgba(img: &TapImage, w: usize, h: usize, white: u16, gain: f32) -> Vec<u8> {
    let lut = display_lut(white, gain);
    let d = |v: u16| lut[v as usize];
    match img {
        TapImage::Rgba8(v) => v.clone(),
        TapImage::Mosaic(m) => m[..w * h]
            .iter()
            .flat_map(|&v| {
                let g = d(v);
                [g, g, g, 255]
            })
            .collect(),
        TapImage::Rgb16(v) => v[..w * h * 3]
            .chunks_exact(3)
            .flat_map(|p| [d(p[0]), d(p[1]), d(p[2]), 255])
            .collect(),
    }
}

/// Linear u16 (white at `white`, times `gain`) to sRGB-encoded u8.
pub fn display_lut(white: u16, gain: f32) -> Vec<u8> {
    let k = gain / f32::from(white.max(1));
    (0..=u16::MAX)
        .map(|v| {
            let x = (f32::from(v) * k).clamp(0.0, 1.0);
            let e = if x <= 0.003_130_8 {
                12.92 * x
            } else {
                1.055 * x.powf(1.0 / 2.4) - 0.055
            };
            (e * 255.0 + 0.5) as u8
        })
        .collect()
}

/// Is this RGBA8 pixel clipped: high (any channel at 255) or low (all at 0)?
pub fn clip_of(px: &[u8]) -> Option<bool> {
    if px[..3].contains(&255) {
        Some(true)
    } else if px[..3] == [0, 0, 0] {
        Some(false)
    } else {
        None
    }
}

/// Overlay colours: clipped high, clipped low.
pub const CLIP_HIGH: [u8; 4] = [255, 0, 255, 255];
pub const CLIP_LOW: [u8; 4] = [0, 96, 255, 255];

pub(crate) fn clipped_fraction(rgba: &[u8]) -> [f32; 2] {
    let (mut hi, mut lo) = (0usize, 0usize);
    for px in rgba.chunks_exact(4) {
        match clip_of(px) {
            Some(true) => hi += 1,
            Some(false) => lo += 1,
            None => {}
        }
    }
    let n = (rgba.len() / 4).max(1) as f32;
    [hi as f32 / n, lo as f32 / n]
}

/// The image the viewer uploads: the part of the frame it shows (the crop),
/// the overlay painted at full size (so a single clipped pixel still shows),
/// then box-downscaled by the viewer's factor with the engine's scaler.
pub fn display_image(rgba: &[u8], size: [usize; 2], settings: &ViewSettings) -> DisplayImage {
    display_image_with(rgba, size, settings, true)
}

/// [`display_image`], with the backdrop only when `backdrop` (the playing
/// frames of an unchanged crop keep the one the viewer has: the backdrop
/// only shows at the edges while a pan waits for the next crop).
pub fn display_image_with(
    rgba: &[u8],
    size: [usize; 2],
    settings: &ViewSettings,
    backdrop: bool,
) -> DisplayImage {
    let factor = settings.factor();
    let overlay = settings.overlay.load(Ordering::Relaxed);
    let [w, h] = size;
    let [x0, y0, x1, y1] = match settings.crop() {
        Some([a, b, c, d]) if a < c.min(w) && b < d.min(h) => [a, b, c.min(w), d.min(h)],
        _ => [0, 0, w, h],
    };
    let (cw, ch) = (x1 - x0, y1 - y0);
    let whole = cw == w && ch == h;
    let mut part;
    let src: &[u8] = if whole && !overlay {
        &rgba[..w * h * 4]
    } else {
        part = Vec::with_capacity(cw * ch * 4);
        for y in y0..y1 {
            part.extend_from_slice(&rgba[(y * w + x0) * 4..(y * w + x1) * 4]);
        }
        if overlay {
            for px in part.chunks_exact_mut(4) {
                match clip_of(px) {
                    Some(true) => px.copy_from_slice(&CLIP_HIGH),
                    Some(false) => px.copy_from_slice(&CLIP_LOW),
                    None => {}
                }
            }
        }
        &part
    };
    let image = shrink(src, [cw, ch], factor);
    // Cropped: the whole frame at most about 1024 pixels wide as well.
    let backdrop = (!whole && backdrop).then(|| {
        let f = (w.max(h).div_ceil(1024)).max(factor);
        Arc::new(shrink(&rgba[..w * h * 4], [w, h], f))
    });
    DisplayImage {
        image: Arc::new(image),
        full: size,
        region: [x0, y0, x1, y1],
        factor,
        overlay,
        backdrop,
    }
}

/// RGBA8 pixels of `size`, box-downscaled by `factor`, as an egui image.
fn shrink(src: &[u8], size: [usize; 2], factor: usize) -> egui::ColorImage {
    let [cw, ch] = size;
    if factor > 1 {
        let (ow, oh) = (cw.div_ceil(factor), ch.div_ceil(factor));
        let mut small = vec![0u8; ow * oh * 4];
        isp_engine::stages::scaler::apply(cw, ch, src, ow, oh, &mut small);
        egui::ColorImage::from_rgba_premultiplied([ow, oh], &small)
    } else {
        // Opaque pixels: premultiplied and unmultiplied are the same bytes.
        egui::ColorImage::from_rgba_premultiplied([cw, ch], src)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    #[test]
    fn overlay_marks_clipped_pixels_and_survives_the_downscale() {
        let (w, h) = (8, 4);
        let mut rgba: Vec<u8> = [128u8, 128, 128, 255].repeat(w * h);
        // One pixel clipped high at (5, 1), one crushed at (0, 3).
        rgba[(w + 5) * 4] = 255;
        rgba[(3 * w) * 4..(3 * w) * 4 + 3].copy_from_slice(&[0, 0, 0]);
        assert_eq!(clipped_fraction(&rgba), [1.0 / 32.0, 1.0 / 32.0]);
        let s = ViewSettings {
            factor: AtomicUsize::new(1),
            want_image: AtomicBool::new(true),
            overlay: AtomicBool::new(true),
            crop: Mutex::new(None),
        };
        let d = display_image(&rgba, [w, h], &s);
        assert_eq!(d.image.size, [8, 4]);
        assert_eq!(d.image.pixels[w + 5].to_array(), CLIP_HIGH);
        assert_eq!(d.image.pixels[3 * w].to_array(), CLIP_LOW);
        assert_eq!(d.image.pixels[0].to_array(), [128, 128, 128, 255]);
        // Downscaled by 2: the clipped pixel's box is tinted, others unchanged.
        s.factor.store(2, Ordering::Relaxed);
        let d = display_image(&rgba, [w, h], &s);
        assert_eq!(d.image.size, [4, 2]);
        assert_ne!(d.image.pixels[2].to_array(), [128, 128, 128, 255]);
        assert_eq!(d.image.pixels[0].to_array(), [128, 128, 128, 255]);
        // Overlay off: the picture as it is.
        s.overlay.store(false, Ordering::Relaxed);
        s.factor.store(1, Ordering::Relaxed);
        let d = display_image(&rgba, [w, h], &s);
        assert_eq!(d.image.pixels[w + 5].to_array(), [255, 128, 128, 255]);
        // A crop: only that part, the overlay still painted in it.
        s.overlay.store(true, Ordering::Relaxed);
        assert!(s.set_crop(Some([4, 1, 7, 3])));
        let d = display_image(&rgba, [w, h], &s);
        assert_eq!(d.image.size, [3, 2]);
        assert_eq!(d.region, [4, 1, 7, 3]);
        assert_eq!(d.image.pixels[1].to_array(), CLIP_HIGH);
        // A crop outside the frame: all of it.
        s.set_crop(Some([9, 9, 12, 12]));
        assert_eq!(display_image(&rgba, [w, h], &s).region, [0, 0, 8, 4]);
    }

    #[test]
    fn linear_stages_are_shown_through_the_srgb_curve() {
        // 18% grey, linear, at 16 bits and at the sensor's 10: both show as
        // the sRGB code of 0.18 (118), not as 46 (linear, 8 bits).
        let lut = display_lut(u16::MAX, 1.0);
        assert_eq!(lut[(0.18 * 65535.0) as usize], 118);
        assert_eq!(lut[0], 0);
        assert_eq!(lut[65535], 255);
        let ten = display_lut(1023, 1.0);
        assert_eq!(ten[(0.18 * 1023.0f32).round() as usize], 118);
        assert_eq!(ten[1023], 255);
        assert_eq!(ten[4000], 255, "above white clips");
        // One stop of gain: 0.09 shows as 0.18 did.
        let up = display_lut(u16::MAX, 2.0);
        assert_eq!(up[(0.09 * 65535.0) as usize], 118);
        let img = TapImage::Rgb16(vec![11796, 0, 65535]);
        assert_eq!(to_rgba(&img, 1, 1, u16::MAX, 1.0), vec![118, 0, 255, 255]);
    }
}
