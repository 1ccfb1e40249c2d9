//! Writing outputs: 8-bit RGBA previews and 16-bit RGB captures as PNG,
//! and any file written whole or not at all ([`write_atomic`]): a full disk
//! or a crash leaves the file's previous state under its name, never half
//! of the new one, and no temporary behind.

use std::io::{BufWriter, Write};
use std::path::Path;

/// Write `path` whole or not at all: `fill` writes into a temporary file
/// beside it (same folder, so the rename cannot cross file systems), which
/// is flushed, synced and renamed to `path`; on any error the temporary is
/// removed and `path` is left as it was.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Dropped on any early return: the temporary is deleted.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// [`write_atomic_with`] for bytes in memory.
pub fn write_atomic(path: impl AsRef<Path>, data: impl AsRef<[u8]>) -> std::io::Result<()> {
    write_atomic_with(path.as_ref(), |w| w.write_all(data.as_ref()))
}

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

fn png_err(path: &Path) -> impl Fn(png::EncodingError) -> ImageError + '_ {
    move |e| ImageError::Png {
        path: path.display().to_string(),
        source: e,
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ImageError + '_ {
    move |e| ImageError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Encode a PNG of `w`x`h` (`color`, `depth`) from `bytes` in memory.
fn encode(
    path: &Path,
    w: usize,
    h: usize,
    color: png::ColorType,
    depth: png::BitDepth,
    bytes: &[u8],
) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_compression(png::Compression::Fast);
        enc.set_color(color);
        enc.set_depth(depth);
        let mut wr = enc.write_header().map_err(png_err(path))?;
        wr.write_image_data(bytes).map_err(png_err(path))?;
        wr.finish().map_err(png_err(path))?;
    }
    Ok(out)
}

/// Write an RGBA8 image (whole, or not at all: [`write_atomic`]).
pub fn write_rgba8(path: &Path, w: usize, h: usize, data: &[u8]) -> Result<(), ImageError> {
    let png = encode(
        path,
        w,
        h,
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        &data[..w * h * 4],
    )?;
    write_atomic(path, &png).map_err(io_err(path))
}

/// Write interleaved RGB16 (PNG stores 16-bit samples big-endian).
pub fn write_rgb16(path: &Path, w: usize, h: usize, data: &[u16]) -> Result<(), ImageError> {
    let bytes: Vec<u8> = data[..w * h * 3]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let png = encode(
        path,
        w,
        h,
        png::ColorType::Rgb,
        png::BitDepth::Sixteen,
        &bytes,
    )?;
    write_atomic(path, &png).map_err(io_err(path))
}
