//! DNG opcode lists (big-endian whatever the file's byte order): the
//! GainMap opcode (id 9) is parsed, the others are named and skipped.

use super::GainMap;

fn name(id: u32) -> String {
    match id {
        1 => "WarpRectilinear".into(),
        2 => "WarpFisheye".into(),
        3 => "FixVignetteRadial".into(),
        4 => "FixBadPixelsConstant".into(),
        5 => "FixBadPixelsList".into(),
        6 => "TrimBounds".into(),
        7 => "MapTable".into(),
        8 => "MapPolynomial".into(),
        9 => "GainMap".into(),
        10 => "DeltaPerRow".into(),
        11 => "DeltaPerColumn".into(),
        12 => "ScalePerRow".into(),
        13 => "ScalePerColumn".into(),
        14 => "WarpRectilinear2".into(),
        n => format!("#{n}"),
    }
}

struct Be<'a> {
    b: &'a [u8],
    at: usize,
}

impl Be<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self
            .b
            .get(self.at..self.at + N)
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        self.at += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_be_bytes(self.take()?))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_be_bytes(self.take()?))
    }
}

/// The list's GainMaps, and the names of the opcodes skipped.
pub fn parse(bytes: &[u8]) -> Result<(Vec<GainMap>, Vec<String>), String> {
    let mut r = Be { b: bytes, at: 0 };
    let n = r.u32()?;
    let mut maps = Vec::new();
    let mut skipped = Vec::new();
    for i in 0..n {
        let id = r.u32()?;
        let _version = r.u32()?;
        let _flags = r.u32()?;
        let len = r.u32()? as usize;
        let start = r.at;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| format!("opcode {i} ({}) runs past the list's end", name(id)))?;
        if id == 9 {
            let mut m = GainMap {
                top: r.u32()?,
                left: r.u32()?,
                bottom: r.u32()?,
                right: r.u32()?,
                plane: r.u32()?,
                planes: r.u32()?,
                row_pitch: r.u32()?,
                col_pitch: r.u32()?,
                points_v: r.u32()?,
                points_h: r.u32()?,
                spacing_v: r.f64()?,
                spacing_h: r.f64()?,
                origin_v: r.f64()?,
                origin_h: r.f64()?,
                map_planes: r.u32()?,
                gains: Vec::new(),
            };
            let count = (m.points_v as usize)
                .checked_mul(m.points_h as usize)
                .and_then(|c| c.checked_mul(m.map_planes as usize))
                .filter(|c| {
                    *c > 0
                        && c.checked_mul(4)
                            .and_then(|b| b.checked_add(start + 76))
                            .is_some_and(|e| e <= end)
                })
                .ok_or_else(|| {
                    format!(
                        "GainMap {i}: {}x{}x{} gains do not fit its {len} bytes",
                        m.points_v, m.points_h, m.map_planes
                    )
                })?;
            for _ in 0..count {
                m.gains.push(r.f32()?);
            }
            maps.push(m);
        } else {
            skipped.push(name(id));
        }
        r.at = end;
    }
    Ok((maps, skipped))
}
