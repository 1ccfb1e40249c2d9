//! Writing images: 8-bit RGBA previews and 16-bit RGB captures as PNG.

use std::io::BufWriter;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: PNG encoding failed: {source}")]
    Png {
        path: String,
        source: png::EncodingError,
    },
}

fn encoder<'a>(
    path: &Path,
    w: usize,
    h: usize,
) -> Result<png::Encoder<'a, BufWriter<std::fs::File>>, ImageError> {
    let f = std::fs::File::create(path).map_err(|e| ImageError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut enc = png::Encoder::new(BufWriter::new(f), w as u32, h as u32);
    enc.set_compression(png::Compression::Fast);
    Ok(enc)
}

fn png_err(path: &Path) -> impl Fn(png::EncodingError) -> ImageError + '_ {
    move |e| ImageError::Png {
        path: path.display().to_string(),
        source: e,
    }
}

/// Write an RGBA8 image.
pub fn write_rgba8(path: &Path, w: usize, h: usize, data: &[u8]) -> Result<(), ImageError> {
    let mut enc = encoder(path, w, h)?;
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().map_err(png_err(path))?;
    wr.write_image_data(&data[..w * h * 4])
        .map_err(png_err(path))?;
    wr.finish().map_err(png_err(path))
}

/// Write interleaved RGB16 (PNG stores 16-bit samples big-endian).
pub fn write_rgb16(path: &Path, w: usize, h: usize, data: &[u16]) -> Result<(), ImageError> {
    let mut enc = encoder(path, w, h)?;
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Sixteen);
    let mut wr = enc.write_header().map_err(png_err(path))?;
    let bytes: Vec<u8> = data[..w * h * 3]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    wr.write_image_data(&bytes).map_err(png_err(path))?;
    wr.finish().map_err(png_err(path))
}
