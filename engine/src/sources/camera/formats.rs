//! V4L2 pixel formats (fourcc codes) and what the ISP makes of them: the
//! Bayer formats, 8 to 16 bits, plain and MIPI CSI-2 packed, become a
//! [`RawFormat`]; YUYV and GREY are listed but not processed (the ISP takes
//! RAW).

use crate::types::{BayerOrder, Packing, RawFormat};

/// A fourcc as the kernel spells it: four ASCII bytes, little-endian in a u32.
pub fn code(f: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*f)
}

/// The four characters of a code.
pub fn name(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// Every Bayer format the engine reads: (fourcc, bits, order, packing).
pub const BAYER: [(&[u8; 4], u8, BayerOrder, Packing); 24] = {
    use BayerOrder::*;
    use Packing::*;
    [
        (b"BA81", 8, Bggr, Plain),
        (b"GBRG", 8, Gbrg, Plain),
        (b"GRBG", 8, Grbg, Plain),
        (b"RGGB", 8, Rggb, Plain),
        (b"BG10", 10, Bggr, Plain),
        (b"GB10", 10, Gbrg, Plain),
        (b"BA10", 10, Grbg, Plain),
        (b"RG10", 10, Rggb, Plain),
        (b"BG12", 12, Bggr, Plain),
        (b"GB12", 12, Gbrg, Plain),
        (b"BA12", 12, Grbg, Plain),
        (b"RG12", 12, Rggb, Plain),
        (b"BYR2", 16, Bggr, Plain),
        (b"GB16", 16, Gbrg, Plain),
        (b"GR16", 16, Grbg, Plain),
        (b"RG16", 16, Rggb, Plain),
        (b"pBAA", 10, Bggr, Csi2),
        (b"pGAA", 10, Gbrg, Csi2),
        (b"pgAA", 10, Grbg, Csi2),
        (b"pRAA", 10, Rggb, Csi2),
        (b"pBCC", 12, Bggr, Csi2),
        (b"pGCC", 12, Gbrg, Csi2),
        (b"pgCC", 12, Grbg, Csi2),
        (b"pRCC", 12, Rggb, Csi2),
    ]
};

pub const YUYV: &[u8; 4] = b"YUYV";
pub const GREY: &[u8; 4] = b"GREY";

/// The RAW layout of a Bayer fourcc at this size and row pitch (`None` for
/// formats the ISP does not take).
pub fn raw_format(fourcc: u32, width: u32, height: u32, bytesperline: u32) -> Option<RawFormat> {
    let &(_, bits, bayer, packing) = BAYER.iter().find(|b| code(b.0) == fourcc)?;
    let mut f = RawFormat::new(width, height, bits, bayer, packing);
    f.stride = bytesperline.max(f.min_stride());
    Some(f)
}

/// The fourcc of a RAW layout.
pub fn fourcc_of(bits: u8, bayer: BayerOrder, packing: Packing) -> Option<u32> {
    BAYER
        .iter()
        .find(|b| (b.1, b.2, b.3) == (bits, bayer, packing))
        .map(|b| code(b.0))
}

/// A short description for listings: "RAW10 RGGB (CSI-2 packed)".
pub fn describe(fourcc: u32) -> String {
    match BAYER.iter().find(|b| code(b.0) == fourcc) {
        Some(&(_, bits, bayer, Packing::Csi2)) => format!("RAW{bits} {bayer} (CSI-2 packed)"),
        Some(&(_, bits, bayer, Packing::Plain)) => format!("RAW{bits} {bayer}"),
        None if fourcc == code(YUYV) => "YUV 4:2:2 (YUYV)".into(),
        None if fourcc == code(GREY) => "8-bit greyscale".into(),
        None => "not a format the ISP reads".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_kernels() {
        // Values from linux/videodev2.h (v4l2_fourcc('R','G','1','0') ...).
        assert_eq!(code(b"RG10"), 0x3031_4752);
        assert_eq!(code(b"pRAA"), 0x4141_5270);
        assert_eq!(code(b"BA81"), 0x3138_4142);
        assert_eq!(code(b"YUYV"), 0x5659_5559);
        assert_eq!(name(0x3031_4752), "RG10");
        let f = raw_format(code(b"pRAA"), 1920, 1080, 2432).unwrap();
        assert_eq!((f.bits, f.packing, f.stride), (10, Packing::Csi2, 2432));
        let f = raw_format(code(b"BA10"), 64, 48, 0).unwrap();
        assert_eq!((f.bayer, f.stride), (BayerOrder::Grbg, 128));
        assert!(raw_format(code(YUYV), 64, 48, 128).is_none());
        for (cc, bits, bayer, packing) in BAYER {
            assert_eq!(fourcc_of(bits, bayer, packing), Some(code(cc)));
        }
        assert_eq!(describe(code(b"pRCC")), "RAW12 RGGB (CSI-2 packed)");
    }
}
