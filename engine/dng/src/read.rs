//! Reading a DNG's CFA raw: find the raw IFD (IFD 0 or a SubIFD), decode its
//! strips or tiles (uncompressed at 1 to 16 bits, or lossless JPEG), apply
//! the LinearizationTable, keep the ActiveArea, and gather the tags a camera
//! tuning needs (black and white levels, colour matrices, as-shot neutral,
//! exposure, ISO, GainMap opcodes).

use super::tiff::{Ifd, Tiff};
use super::{DngImage, lj92, tags};
use isp_core::types::BayerOrder;

/// The samples a DNG may hold at most (a 400 MP sensor).
const MAX_SAMPLES: usize = 400_000_000;

/// The memory a DNG's samples may take decoded (README: DNG files): the
/// full raw and its active area, 16 bits a sample each, at most 1 GiB (a
/// 150 MP sensor takes 600 MB). A file packed in few bits per sample
/// cannot make the reader take more than this, whatever its size.
pub const MAX_DECODED_BYTES: usize = 1 << 30;

/// The IFDs that matter: the raw image's and IFD 0 (where the camera
/// profile lives), and the EXIF IFD if there is one.
struct Dirs {
    raw: Ifd,
    ifd0: Ifd,
    exif: Option<Ifd>,
}

/// Tags of the camera profile, which live in IFD 0 when the raw image is
/// in a SubIFD. Every other tag is the raw IFD's own (a SubIFD that omits
/// one takes its default, never the thumbnail's value).
const PROFILE_TAGS: [u16; 17] = [
    tags::DNG_VERSION,
    tags::UNIQUE_CAMERA_MODEL,
    tags::MAKE,
    tags::MODEL,
    tags::COLOR_MATRIX1,
    tags::COLOR_MATRIX2,
    tags::CALIBRATION_ILLUMINANT1,
    tags::CALIBRATION_ILLUMINANT2,
    tags::AS_SHOT_NEUTRAL,
    tags::EXPOSURE_TIME,
    tags::ISO,
    tags::CAMERA_CALIBRATION1,
    tags::CAMERA_CALIBRATION2,
    tags::ANALOG_BALANCE,
    tags::BASELINE_EXPOSURE,
    tags::FORWARD_MATRIX1,
    tags::FORWARD_MATRIX2,
];

impl Dirs {
    /// A tag of the raw IFD; a profile tag from IFD 0 when the raw IFD
    /// lacks it.
    fn get(&self, tag: u16) -> Option<&super::tiff::Entry> {
        self.raw.entries.get(&tag).or_else(|| {
            PROFILE_TAGS
                .contains(&tag)
                .then(|| self.ifd0.entries.get(&tag))
                .flatten()
        })
    }
}

fn numbers(t: &Tiff, d: &Dirs, tag: u16) -> Result<Option<Vec<f64>>, String> {
    d.get(tag).map(|e| t.numbers(e)).transpose()
}

fn one(t: &Tiff, d: &Dirs, tag: u16, name: &str) -> Result<Option<f64>, String> {
    match numbers(t, d, tag)? {
        None => Ok(None),
        Some(v) if v.is_empty() => Err(format!("{name} has no value")),
        Some(v) => Ok(Some(v[0])),
    }
}

fn need(t: &Tiff, d: &Dirs, tag: u16, name: &str) -> Result<u64, String> {
    one(t, d, tag, name)?
        .map(|v| v as u64)
        .ok_or_else(|| format!("the raw image has no {name} tag"))
}

/// Walk IFD 0's chain and every SubIFD below it (a few levels deep, each
/// IFD once) for the full-resolution CFA raw.
fn find_raw(t: &Tiff) -> Result<(Ifd, Ifd), String> {
    let ifd0 = t.ifd(t.first)?;
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![(t.first, 0usize)];
    let mut found = None;
    let mut other_kind = None;
    while let Some((off, depth)) = todo.pop() {
        if off == 0 || !seen.insert(off) || seen.len() > 64 {
            continue;
        }
        let ifd = t.ifd(off)?;
        let kind = match ifd.entries.get(&tags::NEW_SUBFILE_TYPE) {
            Some(e) => t.unsigned(e)?.first().copied().unwrap_or(0),
            None => 0,
        };
        let photometric = match ifd.entries.get(&tags::PHOTOMETRIC) {
            Some(e) => t.unsigned(e)?.first().copied().unwrap_or(0),
            None => 0,
        };
        if kind == 0 && photometric == tags::PHOTOMETRIC_CFA as u64 {
            found.get_or_insert(ifd.clone());
        } else if kind == 0 && photometric == tags::PHOTOMETRIC_LINEAR_RAW as u64 {
            other_kind = Some("LinearRaw (already demosaiced)");
        }
        if depth < 4 {
            if let Some(e) = ifd.entries.get(&tags::SUB_IFDS) {
                for s in t.unsigned(e)? {
                    todo.push((s as usize, depth + 1));
                }
            }
            if ifd.next != 0 && depth == 0 {
                todo.push((ifd.next, 0));
            }
        }
    }
    match found {
        Some(raw) => Ok((raw, ifd0)),
        None => Err(match other_kind {
            Some(k) => format!("the main image is {k}; only CFA (Bayer) raw DNGs are read"),
            None => "no CFA raw image in any IFD".into(),
        }),
    }
}

/// Read a DNG held in memory. Errors say what is wrong (the caller adds the
/// file's name).
pub fn parse(data: &[u8]) -> Result<DngImage, String> {
    parse_as(data, true)
}

/// Read a DNG's tags only: the image with no samples (`data` empty), its
/// size, pattern, levels, matrices and opcodes as [`parse`] reads them.
pub fn parse_tags(data: &[u8]) -> Result<DngImage, String> {
    parse_as(data, false)
}

fn parse_as(data: &[u8], samples: bool) -> Result<DngImage, String> {
    let t = Tiff::parse(data)?;
    let (raw, ifd0) = find_raw(&t)?;
    let exif = match ifd0.entries.get(&tags::EXIF_IFD) {
        Some(e) => match t.unsigned(e)?.first() {
            Some(&o) => t.ifd(o as usize).ok(),
            None => None,
        },
        None => None,
    };
    let d = Dirs { raw, ifd0, exif };
    if !d.ifd0.entries.contains_key(&tags::DNG_VERSION)
        && !d.raw.entries.contains_key(&tags::DNG_VERSION)
    {
        return Err("not a DNG (no DNGVersion tag)".into());
    }
    let width = need(&t, &d, tags::IMAGE_WIDTH, "ImageWidth")? as usize;
    let height = need(&t, &d, tags::IMAGE_LENGTH, "ImageLength")? as usize;
    if width == 0 || height == 0 || width.saturating_mul(height) > MAX_SAMPLES {
        return Err(format!(
            "raw image of {width}x{height} is empty or too large"
        ));
    }
    let spp = one(&t, &d, tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")?.unwrap_or(1.0);
    if spp != 1.0 {
        return Err(format!(
            "{spp} samples per pixel in a CFA image (expected 1)"
        ));
    }
    let bits = one(&t, &d, tags::BITS_PER_SAMPLE, "BitsPerSample")?.unwrap_or(1.0) as u32;
    if !(1..=16).contains(&bits) {
        return Err(format!("{bits} bits per sample (1 to 16 are read)"));
    }
    if let Some(f) = one(&t, &d, tags::SAMPLE_FORMAT, "SampleFormat")?
        && f != 1.0
    {
        return Err(format!(
            "SampleFormat {f}: only unsigned integer samples are read"
        ));
    }
    let compression = one(&t, &d, tags::COMPRESSION, "Compression")?.unwrap_or(1.0) as u16;
    let mut full = Vec::new();
    if samples {
        // The full raw and the active area's copy, u16 each.
        let need = width.saturating_mul(height).saturating_mul(4);
        if need > MAX_DECODED_BYTES {
            return Err(format!(
                "raw image of {width}x{height} needs {} MB decoded, over the {} MB a DNG may \
                 take",
                need >> 20,
                MAX_DECODED_BYTES >> 20
            ));
        }
        full = vec![0u16; width * height];
        decode_chunks(&t, &d, width, height, bits, compression, &mut full)?;
    }

    // Linearization: a plain lookup, values past the table's end take its
    // last entry.
    if let Some(table) = numbers(&t, &d, tags::LINEARIZATION_TABLE)?
        && !table.is_empty()
    {
        let lut: Vec<u16> = table.iter().map(|v| v.clamp(0.0, 65535.0) as u16).collect();
        let last = lut.len() - 1;
        for v in full.iter_mut() {
            *v = lut[(*v as usize).min(last)];
        }
    }

    // ActiveArea: top, left, bottom, right.
    let area = match numbers(&t, &d, tags::ACTIVE_AREA)? {
        Some(a) if a.len() == 4 => [a[0] as usize, a[1] as usize, a[2] as usize, a[3] as usize],
        Some(a) => return Err(format!("ActiveArea has {} values, not 4", a.len())),
        None => [0, 0, height, width],
    };
    let [top, left, bottom, right] = area;
    if top >= bottom || left >= right || bottom > height || right > width {
        return Err(format!(
            "ActiveArea {area:?} (top, left, bottom, right) is not inside the {width}x{height} raw"
        ));
    }
    let (vw, vh) = (right - left, bottom - top);
    let mut data = Vec::with_capacity(if samples { vw * vh } else { 0 });
    if samples {
        for y in top..bottom {
            data.extend_from_slice(&full[y * width + left..y * width + right]);
        }
    }

    let cfa = cfa_order(&t, &d)?;
    let white_level = match one(&t, &d, tags::WHITE_LEVEL, "WhiteLevel")? {
        Some(v) if v.is_finite() && (1.0..=65535.0).contains(&v) => v as u32,
        Some(v) => return Err(format!("WhiteLevel {v} is not in 1..=65535")),
        None if bits == 16 || d.get(tags::LINEARIZATION_TABLE).is_some() => 65535,
        None => (1u32 << bits) - 1,
    };
    let black_level = black_levels(&t, &d, cfa)?;

    let mut color_matrices = Vec::new();
    let mut forward_matrices = Vec::new();
    let mut camera_calibrations = Vec::new();
    let matrix = |tag: u16, name: &str| -> Result<Option<[[f64; 3]; 3]>, String> {
        match numbers(&t, &d, tag)? {
            None => Ok(None),
            Some(v) if v.len() == 9 && v.iter().all(|x| x.is_finite()) => Ok(Some([
                [v[0], v[1], v[2]],
                [v[3], v[4], v[5]],
                [v[6], v[7], v[8]],
            ])),
            Some(v) => Err(format!(
                "{name} (tag {tag}) has {} values; a 3-colour CFA needs 9 finite ones",
                v.len()
            )),
        }
    };
    for (m, ill, fm, cc) in [
        (
            tags::COLOR_MATRIX1,
            tags::CALIBRATION_ILLUMINANT1,
            tags::FORWARD_MATRIX1,
            tags::CAMERA_CALIBRATION1,
        ),
        (
            tags::COLOR_MATRIX2,
            tags::CALIBRATION_ILLUMINANT2,
            tags::FORWARD_MATRIX2,
            tags::CAMERA_CALIBRATION2,
        ),
    ] {
        if let Some(cm) = matrix(m, "ColorMatrix")? {
            let illuminant = one(&t, &d, ill, "CalibrationIlluminant")?.unwrap_or(0.0) as u16;
            color_matrices.push((illuminant, cm));
            forward_matrices.push(matrix(fm, "ForwardMatrix")?);
            camera_calibrations.push(matrix(cc, "CameraCalibration")?);
        }
    }
    let analog_balance = match numbers(&t, &d, tags::ANALOG_BALANCE)? {
        Some(v) if v.len() == 3 && v.iter().all(|x| x.is_finite() && *x > 0.0) => {
            Some([v[0], v[1], v[2]])
        }
        Some(v) => return Err(format!("AnalogBalance {v:?} is not 3 positive values")),
        None => None,
    };
    let baseline_exposure = match one(&t, &d, tags::BASELINE_EXPOSURE, "BaselineExposure")? {
        Some(v) if v.is_finite() && v.abs() <= 16.0 => Some(v),
        Some(v) => return Err(format!("BaselineExposure {v} is not within -16..=16 stops")),
        None => None,
    };
    let as_shot_neutral = match numbers(&t, &d, tags::AS_SHOT_NEUTRAL)? {
        Some(v) if v.len() == 3 && v.iter().all(|x| *x > 0.0) => Some([v[0], v[1], v[2]]),
        Some(v) => return Err(format!("AsShotNeutral {v:?} is not 3 positive values")),
        None => None,
    };
    let exif_num = |tag: u16| -> Result<Option<f64>, String> {
        if let Some(e) = d.exif.as_ref().and_then(|x| x.entries.get(&tag)) {
            return Ok(t.numbers(e)?.first().copied());
        }
        one(&t, &d, tag, "EXIF value")
    };
    let exposure_time = exif_num(tags::EXPOSURE_TIME)?.filter(|v| *v > 0.0);
    let iso = exif_num(tags::ISO)?.filter(|v| *v > 0.0);
    let default_crop = match (
        numbers(&t, &d, tags::DEFAULT_CROP_ORIGIN)?,
        numbers(&t, &d, tags::DEFAULT_CROP_SIZE)?,
    ) {
        (Some(o), Some(s)) if o.len() == 2 && s.len() == 2 => Some([o[0], o[1], s[0], s[1]]),
        _ => None,
    };
    let mut gain_maps = Vec::new();
    let mut notes = Vec::new();
    for (tag, list) in [
        (tags::OPCODE_LIST1, "OpcodeList1"),
        (tags::OPCODE_LIST2, "OpcodeList2"),
        (tags::OPCODE_LIST3, "OpcodeList3"),
    ] {
        if let Some(e) = d.get(tag) {
            let (maps, skipped) =
                super::opcodes::parse(t.bytes(e)?).map_err(|m| format!("{list}: {m}"))?;
            if tag == tags::OPCODE_LIST2 {
                gain_maps = maps;
            } else if !maps.is_empty() {
                notes.push(format!(
                    "{list}: {} GainMap(s) not used (only OpcodeList2's are)",
                    maps.len()
                ));
            }
            for s in skipped {
                notes.push(format!("{list}: opcode {s} not applied"));
            }
        }
    }
    if d.get(tags::BLACK_LEVEL_DELTA_H).is_some() || d.get(tags::BLACK_LEVEL_DELTA_V).is_some() {
        notes.push("BlackLevelDeltaH/V not applied".into());
    }
    let text = |tag| d.ifd0.entries.get(&tag).and_then(|e| t.ascii(e).ok());
    let camera = text(tags::UNIQUE_CAMERA_MODEL)
        .or_else(|| {
            let m = [text(tags::MAKE), text(tags::MODEL)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!m.is_empty()).then_some(m)
        })
        .unwrap_or_default();
    Ok(DngImage {
        width: vw,
        height: vh,
        cfa,
        data,
        bits_per_sample: bits as u8,
        compression,
        black_level,
        white_level,
        active_area: area,
        default_crop,
        color_matrices,
        forward_matrices,
        camera_calibrations,
        analog_balance,
        baseline_exposure,
        as_shot_neutral,
        exposure_time,
        iso,
        gain_maps,
        camera,
        notes,
    })
}

/// The Bayer order of the visible image: CFAPattern counts from the
/// ActiveArea's corner (as the DNG spec and LibRaw have it), not from the
/// stored raw's.
fn cfa_order(t: &Tiff, d: &Dirs) -> Result<BayerOrder, String> {
    let dim = numbers(t, d, tags::CFA_REPEAT_PATTERN_DIM)?.unwrap_or(vec![2.0, 2.0]);
    if dim != [2.0, 2.0] {
        return Err(format!(
            "CFARepeatPatternDim {dim:?}: only 2x2 Bayer patterns are read"
        ));
    }
    let pat = numbers(t, d, tags::CFA_PATTERN)?.ok_or("the raw image has no CFAPattern tag")?;
    if pat.len() != 4 {
        return Err(format!("CFAPattern has {} values, not 4", pat.len()));
    }
    let name: String = pat
        .iter()
        .map(|c| match *c as u8 {
            0 => 'R',
            1 => 'G',
            2 => 'B',
            _ => '?',
        })
        .collect();
    BayerOrder::parse(&name).ok_or_else(|| format!("CFAPattern {name} is not a Bayer pattern"))
}

/// Black level per site `[R, Gr, Gb, B]` of the visible image (the repeat
/// pattern starts at the ActiveArea's corner). A pattern larger than 2x2
/// gives each site the mean of its positions.
fn black_levels(t: &Tiff, d: &Dirs, cfa: BayerOrder) -> Result<[f32; 4], String> {
    let Some(bl) = numbers(t, d, tags::BLACK_LEVEL)? else {
        return Ok([0.0; 4]);
    };
    let dim = numbers(t, d, tags::BLACK_LEVEL_REPEAT_DIM)?.unwrap_or(vec![1.0, 1.0]);
    let (rows, cols) = match dim.as_slice() {
        [r, c] if (1.0..=16.0).contains(r) && (1.0..=16.0).contains(c) => {
            (*r as usize, *c as usize)
        }
        _ => {
            return Err(format!(
                "BlackLevelRepeatDim {dim:?} is not two values from 1 to 16"
            ));
        }
    };
    if bl.len() != rows * cols {
        return Err(format!(
            "BlackLevel has {} values; BlackLevelRepeatDim {rows}x{cols} needs {}",
            bl.len(),
            rows * cols
        ));
    }
    let mut sum = [0.0f64; 4];
    let mut n = [0u32; 4];
    // The least common multiple of 2 and the repeat covers every pairing.
    let (ry, rx) = (rows * 2, cols * 2);
    let tile = cfa.tile();
    for y in 0..ry {
        for x in 0..rx {
            let site = tile[(y % 2) * 2 + x % 2].index();
            sum[site] += bl[(y % rows) * cols + x % cols];
            n[site] += 1;
        }
    }
    Ok(std::array::from_fn(|i| {
        (sum[i] / n[i].max(1) as f64) as f32
    }))
}

/// Decode every strip or tile into `out` (`width` x `height`).
fn decode_chunks(
    t: &Tiff,
    d: &Dirs,
    width: usize,
    height: usize,
    bits: u32,
    compression: u16,
    out: &mut [u16],
) -> Result<(), String> {
    let list = |tag: u16, name: &str| -> Result<Vec<u64>, String> {
        match d.raw.entries.get(&tag) {
            Some(e) => t.unsigned(e),
            None => Err(format!("the raw image has no {name}")),
        }
    };
    // (offsets, byte counts, chunk width, chunk height, chunks across)
    let (offsets, counts, cw, ch, across) = if d.raw.entries.contains_key(&tags::TILE_OFFSETS) {
        let tw = need(t, d, tags::TILE_WIDTH, "TileWidth")? as usize;
        let tl = need(t, d, tags::TILE_LENGTH, "TileLength")? as usize;
        // A tile larger than the image (rounded up to 16) is not a tile.
        if tw == 0 || tl == 0 || tw > width.next_multiple_of(16) || tl > height.next_multiple_of(16)
        {
            return Err(format!("tile size {tw}x{tl} for a {width}x{height} image"));
        }
        (
            list(tags::TILE_OFFSETS, "TileOffsets")?,
            list(tags::TILE_BYTE_COUNTS, "TileByteCounts")?,
            tw,
            tl,
            width.div_ceil(tw),
        )
    } else {
        let rps = one(t, d, tags::ROWS_PER_STRIP, "RowsPerStrip")?
            .map(|v| v as usize)
            .unwrap_or(height)
            .clamp(1, height);
        (
            list(tags::STRIP_OFFSETS, "StripOffsets")?,
            list(tags::STRIP_BYTE_COUNTS, "StripByteCounts")?,
            width,
            rps,
            1,
        )
    };
    let down = height.div_ceil(ch);
    if offsets.len() < across * down || counts.len() < offsets.len() {
        return Err(format!(
            "{} chunk offsets and {} byte counts; a {width}x{height} image in {cw}x{ch} chunks needs {}",
            offsets.len(),
            counts.len(),
            across * down
        ));
    }
    let mut chunk_buf = vec![0u16; cw * ch];
    for (i, (&off, &len)) in offsets.iter().zip(&counts).take(across * down).enumerate() {
        let bytes = t.chunk(off, len).map_err(|m| format!("chunk {i}: {m}"))?;
        let (x0, y0) = ((i % across) * cw, (i / across) * ch);
        let rows = ch.min(height - y0);
        // Strips hold only their rows; tiles always hold the whole tile.
        let chunk_rows = if across == 1 && cw == width { rows } else { ch };
        let samples = &mut chunk_buf[..cw * chunk_rows];
        match compression {
            1 => unpack(bytes, bits, cw, chunk_rows, t.little_endian, samples)
                .map_err(|m| format!("chunk {i}: {m}"))?,
            7 => {
                let img = lj92::decode(bytes, MAX_SAMPLES)
                    .map_err(|m| format!("chunk {i}: lossless JPEG: {m}"))?;
                let need = cw * rows.min(chunk_rows);
                if img.samples.len() < need {
                    return Err(format!(
                        "chunk {i}: the lossless JPEG holds {} samples, the chunk needs {need}",
                        img.samples.len()
                    ));
                }
                let n = samples.len().min(img.samples.len());
                samples[..n].copy_from_slice(&img.samples[..n]);
            }
            c => {
                return Err(format!(
                    "compression {c} is not read (uncompressed (1) and lossless JPEG (7) are)"
                ));
            }
        }
        let cols = cw.min(width - x0);
        for r in 0..rows {
            let dst = (y0 + r) * width + x0;
            out[dst..dst + cols].copy_from_slice(&samples[r * cw..r * cw + cols]);
        }
    }
    Ok(())
}

/// Uncompressed samples: 16-bit in the file's byte order, other depths
/// packed most significant bit first with each row starting on a byte.
fn unpack(
    bytes: &[u8],
    bits: u32,
    w: usize,
    h: usize,
    little_endian: bool,
    out: &mut [u16],
) -> Result<(), String> {
    let row_bytes = (w * bits as usize).div_ceil(8);
    // The last row of the last strip may come without padding.
    let need = row_bytes * h;
    if bytes.len() < need {
        return Err(format!(
            "truncated: {} bytes, {w}x{h} samples of {bits} bits need {need}",
            bytes.len()
        ));
    }
    for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
        let src = &bytes[y * row_bytes..(y + 1) * row_bytes];
        match bits {
            16 => {
                for (o, b) in row.iter_mut().zip(src.chunks_exact(2)) {
                    *o = if little_endian {
                        u16::from_le_bytes([b[0], b[1]])
                    } else {
                        u16::from_be_bytes([b[0], b[1]])
                    };
                }
            }
            8 => {
                for (o, b) in row.iter_mut().zip(src) {
                    *o = *b as u16;
                }
            }
            _ => {
                let mut acc: u32 = 0;
                let mut have = 0u32;
                let mut it = src.iter();
                let mask = (1u32 << bits) - 1;
                for o in row.iter_mut() {
                    while have < bits {
                        acc = (acc << 8) | *it.next().unwrap_or(&0) as u32;
                        have += 8;
                    }
                    have -= bits;
                    *o = ((acc >> have) & mask) as u16;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rows_start_on_a_byte() {
        // Two rows of three 12-bit samples: 4.5 bytes -> 5 per row.
        let bytes = [0xAB, 0xC1, 0x23, 0x45, 0x60, 0xFF, 0xF0, 0x01, 0x80, 0x00];
        let mut out = [0u16; 6];
        unpack(&bytes, 12, 3, 2, true, &mut out).unwrap();
        assert_eq!(out, [0xABC, 0x123, 0x456, 0xFFF, 0x001, 0x800]);
        let mut out = [0u16; 4];
        unpack(&[0x12, 0x34, 0x56, 0x78], 16, 2, 1, false, &mut out[..2]).unwrap();
        assert_eq!(&out[..2], &[0x1234, 0x5678]);
        assert!(unpack(&bytes[..9], 12, 3, 2, true, &mut [0u16; 6]).is_err());
    }
}
