//! Writing one CFA frame as a DNG 1.4: IFD 0 holds the raw (16-bit samples,
//! one uncompressed strip) and the camera profile, an EXIF IFD the exposure
//! time and ISO.

use super::tags as t;
use super::tiff::{IfdBuilder, Val};
use isp_core::types::BayerOrder;

/// What a DNG of one frame holds.
#[derive(Clone, Debug)]
pub struct DngFrame<'a> {
    pub width: usize,
    pub height: usize,
    pub cfa: BayerOrder,
    /// Sensor values, row major, `width * height`.
    pub samples: &'a [u16],
    pub white_level: u16,
    /// Per site `[R, Gr, Gb, B]`.
    pub black_level: [u16; 4],
    /// XYZ -> camera under `calibration_illuminant`.
    pub color_matrix: Option<[[f64; 3]; 3]>,
    /// CalibrationIlluminant1: 21 (D65) when the matrix is the camera's
    /// under D65, 0 (unknown) when it is only the frame's own light's.
    pub calibration_illuminant: u16,
    /// The camera's values for a neutral (1 / white-balance gains).
    pub as_shot_neutral: [f64; 3],
    /// Seconds.
    pub exposure_time: Option<f64>,
    pub iso: Option<u16>,
    /// UniqueCameraModel.
    pub camera: &'a str,
    /// ImageDescription (where the frame came from).
    pub description: &'a str,
}

fn srational(v: f64) -> (i32, i32) {
    ((v * 1_000_000.0).round() as i32, 1_000_000)
}

fn rational(v: f64) -> (u32, u32) {
    let inv = 1.0 / v;
    if v > 0.0 && v < 1.0 && (inv - inv.round()).abs() < 1e-6 {
        (1, inv.round() as u32)
    } else {
        ((v * 1_000_000.0).round().max(0.0) as u32, 1_000_000)
    }
}

/// The DNG's bytes.
pub fn encode(f: &DngFrame<'_>) -> Result<Vec<u8>, String> {
    if f.width == 0 || f.height == 0 || f.samples.len() != f.width * f.height {
        return Err(format!(
            "{} samples for a {}x{} frame",
            f.samples.len(),
            f.width,
            f.height
        ));
    }
    if let Some(v) = f
        .as_shot_neutral
        .iter()
        .find(|v| !(v.is_finite() && **v > 1e-6 && **v < 4000.0))
    {
        return Err(format!(
            "AsShotNeutral {v} is not a neutral (a white-balance gain of 0 or far out of range)"
        ));
    }
    let pattern: Vec<u8> = f
        .cfa
        .tile()
        .iter()
        .map(|c| match c.rgb() {
            0 => 0,
            1 => 1,
            _ => 2,
        })
        .collect();
    let black: Vec<u16> = f
        .cfa
        .tile()
        .iter()
        .map(|c| f.black_level[c.index()])
        .collect();
    let data_len = f.samples.len() * 2;

    let mut exif = IfdBuilder::default();
    if let Some(e) = f.exposure_time {
        exif.set(t::EXPOSURE_TIME, Val::Rational(&[rational(e)]));
    }
    if let Some(iso) = f.iso {
        exif.set(t::ISO, Val::Short(&[iso]));
    }
    exif.set(t::EXIF_VERSION, Val::Undefined(b"0230"));

    let mut ifd0 = IfdBuilder::default();
    ifd0.set(t::NEW_SUBFILE_TYPE, Val::Long(&[0]));
    ifd0.set(t::IMAGE_WIDTH, Val::Long(&[f.width as u32]));
    ifd0.set(t::IMAGE_LENGTH, Val::Long(&[f.height as u32]));
    ifd0.set(t::BITS_PER_SAMPLE, Val::Short(&[16]));
    ifd0.set(t::COMPRESSION, Val::Short(&[1]));
    ifd0.set(t::PHOTOMETRIC, Val::Short(&[t::PHOTOMETRIC_CFA]));
    if !f.description.is_empty() {
        ifd0.set(t::IMAGE_DESCRIPTION, Val::Ascii(f.description));
    }
    ifd0.set(t::MAKE, Val::Ascii("ISP Studio"));
    ifd0.set(t::MODEL, Val::Ascii(f.camera));
    ifd0.set(t::STRIP_OFFSETS, Val::Long(&[0]));
    ifd0.set(t::ORIENTATION, Val::Short(&[1]));
    ifd0.set(t::SAMPLES_PER_PIXEL, Val::Short(&[1]));
    ifd0.set(t::ROWS_PER_STRIP, Val::Long(&[f.height as u32]));
    ifd0.set(t::STRIP_BYTE_COUNTS, Val::Long(&[data_len as u32]));
    ifd0.set(t::PLANAR_CONFIGURATION, Val::Short(&[1]));
    ifd0.set(
        t::SOFTWARE,
        Val::Ascii(concat!("ISP Studio ", env!("CARGO_PKG_VERSION"))),
    );
    ifd0.set(t::CFA_REPEAT_PATTERN_DIM, Val::Short(&[2, 2]));
    ifd0.set(t::CFA_PATTERN, Val::Bytes(&pattern));
    ifd0.set(t::EXIF_IFD, Val::Long(&[0]));
    ifd0.set(t::DNG_VERSION, Val::Bytes(&[1, 4, 0, 0]));
    ifd0.set(t::DNG_BACKWARD_VERSION, Val::Bytes(&[1, 1, 0, 0]));
    ifd0.set(t::UNIQUE_CAMERA_MODEL, Val::Ascii(f.camera));
    ifd0.set(t::CFA_PLANE_COLOR, Val::Bytes(&[0, 1, 2]));
    ifd0.set(t::CFA_LAYOUT, Val::Short(&[1]));
    ifd0.set(t::BLACK_LEVEL_REPEAT_DIM, Val::Short(&[2, 2]));
    ifd0.set(t::BLACK_LEVEL, Val::Short(&black));
    ifd0.set(t::WHITE_LEVEL, Val::Short(&[f.white_level]));
    if let Some(cm) = f.color_matrix {
        let v: Vec<(i32, i32)> = cm.iter().flatten().map(|&x| srational(x)).collect();
        ifd0.set(t::COLOR_MATRIX1, Val::SRational(&v));
        ifd0.set(
            t::CALIBRATION_ILLUMINANT1,
            Val::Short(&[f.calibration_illuminant]),
        );
    }
    let n: Vec<(u32, u32)> = f.as_shot_neutral.iter().map(|&x| rational(x)).collect();
    ifd0.set(t::AS_SHOT_NEUTRAL, Val::Rational(&n));
    let active = [0, 0, f.height as u32, f.width as u32];
    ifd0.set(t::ACTIVE_AREA, Val::Long(&active));

    // Layout: header, IFD 0, the EXIF IFD, the strip.
    let ifd0_at = 8usize;
    let exif_at = ifd0_at + ifd0.size();
    let exif_at = exif_at + (exif_at & 1);
    let data_at = exif_at + exif.size();
    let data_at = data_at + (data_at & 1);
    ifd0.set(t::EXIF_IFD, Val::Long(&[exif_at as u32]));
    ifd0.set(t::STRIP_OFFSETS, Val::Long(&[data_at as u32]));
    if !fits_classic_tiff(data_at + data_len) {
        return Err("a frame of more than 4 GB does not fit a DNG".into());
    }

    let mut out = Vec::with_capacity(data_at + data_len);
    out.extend_from_slice(b"II");
    out.extend_from_slice(&42u16.to_le_bytes());
    out.extend_from_slice(&(ifd0_at as u32).to_le_bytes());
    ifd0.write(&mut out, 0);
    out.resize(exif_at, 0);
    exif.write(&mut out, 0);
    out.resize(data_at, 0);
    for s in f.samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    Ok(out)
}

/// A classic TIFF's offsets and counts are u32: a file of `len` bytes fits
/// when its last byte's offset does, and its length as a count.
fn fits_classic_tiff(len: usize) -> bool {
    len <= u32::MAX as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classic_tiff_ends_at_4_gib_less_a_byte() {
        assert!(fits_classic_tiff(0xFFFF_FFFF));
        assert!(!fits_classic_tiff(0x1_0000_0000));
    }

    #[test]
    fn a_written_frame_reads_back() {
        let (w, h) = (8, 6);
        let samples: Vec<u16> = (0..w * h).map(|i| (i * 37 % 1024) as u16).collect();
        let cm = [[0.9, -0.3, -0.1], [-0.4, 1.2, 0.2], [-0.05, 0.15, 0.6]];
        let f = DngFrame {
            width: w,
            height: h,
            cfa: BayerOrder::Gbrg,
            samples: &samples,
            white_level: 1023,
            black_level: [64, 65, 66, 67],
            color_matrix: Some(cm),
            calibration_illuminant: 21,
            as_shot_neutral: [0.5, 1.0, 0.625],
            exposure_time: Some(0.01),
            iso: Some(400),
            camera: "test cam",
            description: "synthetic:checker frame 3",
        };
        let bytes = encode(&f).unwrap();
        let img = super::super::read::parse(&bytes).unwrap();
        assert_eq!((img.width, img.height, img.cfa), (w, h, BayerOrder::Gbrg));
        assert_eq!(img.data, samples);
        assert_eq!(img.black_level, [64.0, 65.0, 66.0, 67.0]);
        assert_eq!(img.white_level, 1023);
        assert_eq!(img.exposure_time, Some(0.01));
        assert_eq!(img.iso, Some(400.0));
        assert_eq!(img.as_shot_neutral, Some([0.5, 1.0, 0.625]));
        assert_eq!(img.camera, "test cam");
        let (ill, m) = img.color_matrices[0];
        assert_eq!(ill, 21);
        for i in 0..3 {
            for j in 0..3 {
                assert!((m[i][j] - cm[i][j]).abs() < 1e-6);
            }
        }
        assert_eq!(img.bit_depth(), 10);
    }
}
