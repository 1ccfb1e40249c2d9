//! A raw file: one or more frames of a given format back to back.

use super::{FrameMeta, FrameSource, SourceError};
use crate::types::RawFormat;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct RawFileSource {
    path: PathBuf,
    fmt: RawFormat,
    data: Vec<u8>,
    frames: u64,
    next: u64,
}

impl RawFileSource {
    pub fn open(path: &Path, fmt: RawFormat) -> Result<Self, SourceError> {
        fmt.validate()
            .map_err(|e| SourceError::invalid(path, format!("bad geometry: {e}")))?;
        let data = std::fs::read(path).map_err(|e| SourceError::io(path, e))?;
        let fb = fmt.frame_bytes();
        // The last row of the last frame may come without its padding.
        let last_row_pad = (fmt.stride - fmt.min_stride()) as usize;
        let frames = if data.len().is_multiple_of(fb) {
            data.len() / fb
        } else if (data.len() + last_row_pad).is_multiple_of(fb) {
            (data.len() + last_row_pad) / fb
        } else {
            0
        };
        if frames == 0 {
            let msg = if data.len() < fb - last_row_pad {
                format!(
                    "truncated: {} bytes, one {} frame needs {}",
                    data.len(),
                    fmt.describe(),
                    fb
                )
            } else {
                format!(
                    "{} bytes is not a whole number of {}-byte frames of {} (wrong geometry or a truncated file?)",
                    data.len(),
                    fb,
                    fmt.describe()
                )
            };
            return Err(SourceError::invalid(path, msg));
        }
        let mut data = data;
        data.resize(frames * fb, 0);
        Ok(RawFileSource {
            path: path.to_path_buf(),
            fmt,
            data,
            frames: frames as u64,
            next: 0,
        })
    }
}

impl FrameSource for RawFileSource {
    fn name(&self) -> String {
        format!("raw:{}", self.path.display())
    }
    fn format(&self) -> RawFormat {
        self.fmt
    }
    fn frame_count(&self) -> Option<u64> {
        Some(self.frames)
    }
    /// One frame in the file: a still.
    fn stills(&self) -> bool {
        self.frames == 1
    }
    fn next_frame(&mut self, dst: &mut [u8]) -> Result<Option<FrameMeta>, SourceError> {
        if self.next >= self.frames {
            return Ok(None);
        }
        let fb = self.fmt.frame_bytes();
        let i = self.next as usize;
        dst[..fb].copy_from_slice(&self.data[i * fb..(i + 1) * fb]);
        self.next += 1;
        Ok(Some(FrameMeta {
            sequence: i as u64,
            timestamp_ns: i as u64 * 33_333_333,
            exposure_us: 0.0,
            analogue_gain: 1.0,
            ..Default::default()
        }))
    }
    fn seek(&mut self, index: u64) -> Result<(), SourceError> {
        if index >= self.frames {
            return Err(SourceError::invalid(
                &self.path,
                format!("frame {index} is past the last frame ({})", self.frames),
            ));
        }
        self.next = index;
        Ok(())
    }
}
