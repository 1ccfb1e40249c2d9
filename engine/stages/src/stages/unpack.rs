//! Unpack: sensor bytes -> one u16 per pixel at the sensor's bit depth.
//!
//! Plain: RAW8 one byte a sample, RAW10/12/14/16 one little-endian 16-bit word
//! a sample (bits above the depth are ignored). CSI-2 packed RAW10P: 4 pixels
//! in 5 bytes (four high bytes, then the four 2-bit remainders, pixel 0 in the
//! lowest bits). RAW12P: 2 pixels in 3 bytes (two high bytes, then pixel 0's
//! low nibble in bits 3:0 and pixel 1's in 7:4). Rows start every `stride` bytes.

use crate::types::{FormatError, Packing, RawFormat};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnpackError {
    #[error("bad raw format: {0}")]
    Format(#[from] FormatError),
    #[error("raw frame is truncated: {got} bytes, {fmt} needs {need}")]
    Truncated {
        got: usize,
        need: usize,
        fmt: String,
    },
    #[error("output holds {got} samples, the frame has {need}")]
    Output { got: usize, need: usize },
}

/// Bytes the last row needs (the frame may omit the last row's padding).
fn needed_bytes(fmt: &RawFormat) -> usize {
    fmt.stride as usize * (fmt.height as usize - 1) + fmt.min_stride() as usize
}

/// Check the format and that `src_len` bytes hold a whole frame.
pub fn check_frame(fmt: &RawFormat, src_len: usize) -> Result<(), UnpackError> {
    fmt.validate()?;
    let need = needed_bytes(fmt);
    if src_len < need {
        return Err(UnpackError::Truncated {
            got: src_len,
            need,
            fmt: fmt.describe(),
        });
    }
    Ok(())
}

fn check(fmt: &RawFormat, src_len: usize, dst_len: usize) -> Result<(), UnpackError> {
    fmt.validate()?;
    let need = needed_bytes(fmt);
    if src_len < need {
        return Err(UnpackError::Truncated {
            got: src_len,
            need,
            fmt: fmt.describe(),
        });
    }
    if dst_len < fmt.pixels() {
        return Err(UnpackError::Output {
            got: dst_len,
            need: fmt.pixels(),
        });
    }
    Ok(())
}

/// Unpack one row of `w` pixels.
#[inline]
pub fn unpack_row(fmt: &RawFormat, row: &[u8], out: &mut [u16]) {
    let w = fmt.width as usize;
    let mask = fmt.max_value();
    match (fmt.packing, fmt.bits) {
        (Packing::Plain, 8) => {
            for (o, &b) in out[..w].iter_mut().zip(row) {
                *o = b as u16;
            }
        }
        (Packing::Plain, _) => {
            for (o, c) in out[..w].iter_mut().zip(row.chunks_exact(2)) {
                *o = u16::from_le_bytes([c[0], c[1]]) & mask;
            }
        }
        (Packing::Csi2, 10) => {
            let full = w / 4;
            for (g, c) in row.chunks_exact(5).take(full).enumerate() {
                let lo = c[4] as u16;
                let o = &mut out[g * 4..g * 4 + 4];
                o[0] = (c[0] as u16) << 2 | (lo & 3);
                o[1] = (c[1] as u16) << 2 | ((lo >> 2) & 3);
                o[2] = (c[2] as u16) << 2 | ((lo >> 4) & 3);
                o[3] = (c[3] as u16) << 2 | ((lo >> 6) & 3);
            }
            let rest = w - full * 4;
            if rest > 0 {
                let c = &row[full * 5..full * 5 + 5];
                for k in 0..rest {
                    out[full * 4 + k] = (c[k] as u16) << 2 | ((c[4] as u16 >> (2 * k)) & 3);
                }
            }
        }
        (Packing::Csi2, _) => {
            let full = w / 2;
            for (g, c) in row.chunks_exact(3).take(full).enumerate() {
                out[g * 2] = (c[0] as u16) << 4 | (c[2] as u16 & 0xF);
                out[g * 2 + 1] = (c[1] as u16) << 4 | (c[2] as u16 >> 4);
            }
            // Widths are even (`RawFormat::validate`): no half group.
        }
    }
}

/// Unpack a whole frame into `dst` (width*height samples, rows packed).
pub fn unpack(fmt: &RawFormat, src: &[u8], dst: &mut [u16]) -> Result<(), UnpackError> {
    check(fmt, src.len(), dst.len())?;
    let w = fmt.width as usize;
    let stride = fmt.stride as usize;
    let row_bytes = fmt.min_stride() as usize;
    for (y, out) in dst
        .chunks_exact_mut(w)
        .take(fmt.height as usize)
        .enumerate()
    {
        unpack_row(fmt, &src[y * stride..y * stride + row_bytes], out);
    }
    Ok(())
}

/// Unpack using the calling thread pool (rows in parallel).
pub fn unpack_par(fmt: &RawFormat, src: &[u8], dst: &mut [u16]) -> Result<(), UnpackError> {
    use rayon::prelude::*;
    check(fmt, src.len(), dst.len())?;
    let w = fmt.width as usize;
    let stride = fmt.stride as usize;
    let row_bytes = fmt.min_stride() as usize;
    let rows = 64;
    dst[..fmt.pixels()]
        .par_chunks_mut(w * rows)
        .enumerate()
        .for_each(|(band, chunk)| {
            for (k, out) in chunk.chunks_exact_mut(w).enumerate() {
                let y = band * rows + k;
                unpack_row(fmt, &src[y * stride..y * stride + row_bytes], out);
            }
        });
    Ok(())
}

/// The inverse of [`unpack`]: samples -> sensor bytes (padding bytes zero).
pub fn pack(fmt: &RawFormat, src: &[u16], dst: &mut [u8]) -> Result<(), UnpackError> {
    fmt.validate()?;
    if src.len() < fmt.pixels() {
        return Err(UnpackError::Output {
            got: src.len(),
            need: fmt.pixels(),
        });
    }
    if dst.len() < needed_bytes(fmt) {
        return Err(UnpackError::Truncated {
            got: dst.len(),
            need: needed_bytes(fmt),
            fmt: fmt.describe(),
        });
    }
    let w = fmt.width as usize;
    let stride = fmt.stride as usize;
    let mask = fmt.max_value();
    for y in 0..fmt.height as usize {
        let inp = &src[y * w..y * w + w];
        let end = (y * stride + stride).min(dst.len());
        let row = &mut dst[y * stride..end];
        row.fill(0);
        match (fmt.packing, fmt.bits) {
            (Packing::Plain, 8) => {
                for (o, &v) in row.iter_mut().zip(inp) {
                    *o = (v & 0xFF) as u8;
                }
            }
            (Packing::Plain, _) => {
                for (o, &v) in row.chunks_exact_mut(2).zip(inp) {
                    o.copy_from_slice(&(v & mask).to_le_bytes());
                }
            }
            (Packing::Csi2, 10) => {
                for (g, px) in inp.chunks(4).enumerate() {
                    let o = &mut row[g * 5..g * 5 + 5];
                    for (k, &v) in px.iter().enumerate() {
                        let v = v & 0x3FF;
                        o[k] = (v >> 2) as u8;
                        o[4] |= ((v & 3) as u8) << (2 * k);
                    }
                }
            }
            (Packing::Csi2, _) => {
                for (g, px) in inp.chunks(2).enumerate() {
                    let o = &mut row[g * 3..g * 3 + 3];
                    let a = px[0] & 0xFFF;
                    o[0] = (a >> 4) as u8;
                    o[2] = (a & 0xF) as u8;
                    if let Some(&b) = px.get(1) {
                        let b = b & 0xFFF;
                        o[1] = (b >> 4) as u8;
                        o[2] |= ((b & 0xF) as u8) << 4;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BayerOrder;

    fn formats() -> Vec<RawFormat> {
        let mut v = Vec::new();
        for (bits, packing) in [
            (8, Packing::Plain),
            (10, Packing::Plain),
            (12, Packing::Plain),
            (14, Packing::Plain),
            (16, Packing::Plain),
            (10, Packing::Csi2),
            (12, Packing::Csi2),
        ] {
            for order in BayerOrder::ALL {
                for (w, h) in [(6, 4), (8, 2), (18, 6)] {
                    let mut f = RawFormat::new(w, h, bits, order, packing);
                    v.push(f);
                    f.stride = f.min_stride() + 7; // padded rows
                    v.push(f);
                }
            }
        }
        v
    }

    #[test]
    fn round_trip_every_format() {
        for fmt in formats() {
            let n = fmt.pixels();
            let max = fmt.max_value() as u32;
            let samples: Vec<u16> = (0..n as u32)
                .map(|i| (i.wrapping_mul(2654435761u32) % (max + 1)) as u16)
                .collect();
            let mut bytes = vec![0u8; fmt.frame_bytes()];
            pack(&fmt, &samples, &mut bytes).unwrap();
            let mut back = vec![0u16; n];
            unpack(&fmt, &bytes, &mut back).unwrap();
            assert_eq!(back, samples, "{}", fmt.describe());
            let mut par = vec![0u16; n];
            unpack_par(&fmt, &bytes, &mut par).unwrap();
            assert_eq!(par, samples);
        }
    }

    #[test]
    fn raw10p_by_hand() {
        // Pixels 0x3FF, 0x001, 0x200, 0x155.
        let fmt = RawFormat::new(4, 2, 10, BayerOrder::Rggb, Packing::Csi2);
        let row = [0xFFu8, 0x00, 0x80, 0x55, 0b01_00_01_11];
        let mut bytes = row.to_vec();
        bytes.extend_from_slice(&row);
        let mut out = vec![0u16; 8];
        unpack(&fmt, &bytes, &mut out).unwrap();
        assert_eq!(&out[..4], &[0x3FF, 0x001, 0x200, 0x155]);
    }

    #[test]
    fn raw12p_by_hand() {
        let fmt = RawFormat::new(2, 2, 12, BayerOrder::Rggb, Packing::Csi2);
        let row = [0xABu8, 0x12, 0x4C]; // p0 = 0xABC, p1 = 0x124
        let bytes = [row, row].concat();
        let mut out = vec![0u16; 4];
        unpack(&fmt, &bytes, &mut out).unwrap();
        assert_eq!(&out[..2], &[0xABC, 0x124]);
    }

    #[test]
    fn plain_ignores_high_bits_and_reads_le() {
        let fmt = RawFormat::new(2, 2, 10, BayerOrder::Rggb, Packing::Plain);
        let bytes = [0x34, 0xFE, 0xFF, 0x03, 0, 0, 0, 0];
        let mut out = vec![0u16; 4];
        unpack(&fmt, &bytes, &mut out).unwrap();
        assert_eq!(&out[..2], &[0x234, 0x3FF]);
    }

    #[test]
    fn truncated_and_bad_geometry_are_errors() {
        let fmt = RawFormat::new(8, 4, 10, BayerOrder::Rggb, Packing::Plain);
        let mut out = vec![0u16; 32];
        let e = unpack(&fmt, &[0u8; 20], &mut out).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let mut bad = fmt;
        bad.stride = 4;
        assert!(matches!(
            unpack(&bad, &[0u8; 64], &mut out),
            Err(UnpackError::Format(FormatError::Stride { .. }))
        ));
        let odd = RawFormat::new(7, 4, 10, BayerOrder::Rggb, Packing::Plain);
        assert!(matches!(
            unpack(&odd, &[0u8; 64], &mut out),
            Err(UnpackError::Format(FormatError::Geometry(7, 4)))
        ));
        let bits = RawFormat::new(8, 4, 14, BayerOrder::Rggb, Packing::Csi2);
        assert!(matches!(
            unpack(&bits, &[0u8; 64], &mut out),
            Err(UnpackError::Format(FormatError::Bits { .. }))
        ));
    }

    /// A frame may omit the last row's padding: exactly that many bytes are
    /// enough, one fewer is a truncated frame naming both sizes; the output
    /// must hold every sample.
    #[test]
    fn the_smallest_whole_frame_is_accepted_and_one_byte_less_is_not() {
        for mut fmt in formats() {
            fmt.stride = fmt.min_stride() + 3;
            let need = fmt.stride as usize * (fmt.height as usize - 1) + fmt.min_stride() as usize;
            assert_eq!(check_frame(&fmt, need), Ok(()), "{}", fmt.describe());
            assert_eq!(
                check_frame(&fmt, need - 1),
                Err(UnpackError::Truncated {
                    got: need - 1,
                    need,
                    fmt: fmt.describe()
                })
            );
            let src = vec![0u8; need];
            let mut dst = vec![0u16; fmt.pixels()];
            assert_eq!(unpack(&fmt, &src, &mut dst), Ok(()));
            assert!(matches!(
                unpack(&fmt, &src[..need - 1], &mut dst),
                Err(UnpackError::Truncated { .. })
            ));
            let short = fmt.pixels() - 1;
            assert_eq!(
                unpack(&fmt, &src, &mut dst[..short]),
                Err(UnpackError::Output {
                    got: short,
                    need: fmt.pixels()
                })
            );
        }
    }

    /// A row handed over with its padding (or more) unpacks the same: bytes
    /// past the row's groups are ignored.
    #[test]
    fn bytes_after_a_row_are_ignored() {
        for mut fmt in formats() {
            fmt.stride = fmt.min_stride() + 7;
            let n = fmt.pixels();
            let samples: Vec<u16> = (0..n as u32)
                .map(|i| (i.wrapping_mul(40503) % (fmt.max_value() as u32 + 1)) as u16)
                .collect();
            let mut bytes = vec![0u8; fmt.frame_bytes()];
            pack(&fmt, &samples, &mut bytes).unwrap();
            // Fill the padding with ones: it must not leak into any sample.
            let (w, stride) = (fmt.width as usize, fmt.stride as usize);
            for y in 0..fmt.height as usize {
                bytes[y * stride + fmt.min_stride() as usize..(y + 1) * stride].fill(0xFF);
            }
            for y in 0..fmt.height as usize - 1 {
                let mut out = vec![0u16; w];
                unpack_row(&fmt, &bytes[y * stride..(y + 2) * stride], &mut out);
                assert_eq!(
                    out,
                    samples[y * w..(y + 1) * w],
                    "{} row {y}",
                    fmt.describe()
                );
            }
        }
    }

    /// Frames taller than one band of rows unpack in parallel exactly as in
    /// one pass; `pack` refuses too few samples.
    #[test]
    fn parallel_unpack_over_many_bands_equals_unpack() {
        let mut fmt = RawFormat::new(18, 200, 12, BayerOrder::Rggb, Packing::Csi2);
        fmt.stride = fmt.min_stride() + 5;
        let n = fmt.pixels();
        let samples: Vec<u16> = (0..n as u32).map(|i| (i * 7 % 4096) as u16).collect();
        let mut bytes = vec![0u8; fmt.frame_bytes()];
        pack(&fmt, &samples, &mut bytes).unwrap();
        let mut a = vec![0u16; n];
        let mut b = vec![0u16; n];
        unpack(&fmt, &bytes, &mut a).unwrap();
        unpack_par(&fmt, &bytes, &mut b).unwrap();
        assert_eq!(a, samples);
        assert_eq!(b, samples);
        assert_eq!(
            pack(&fmt, &samples[..n - 1], &mut bytes),
            Err(UnpackError::Output {
                got: n - 1,
                need: n
            })
        );
    }
}
