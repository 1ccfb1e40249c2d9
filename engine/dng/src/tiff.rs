//! The TIFF container under a DNG: the header, IFDs and their entries, read
//! from a byte slice with every offset and count checked against its length.

use std::collections::BTreeMap;

/// One IFD entry: where its value bytes are, not yet interpreted.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub tag: u16,
    pub typ: u16,
    pub count: u32,
    /// Absolute offset of the value's bytes in the file.
    pub at: usize,
}

/// An image file directory: entries by tag, and where the next IFD is.
#[derive(Clone, Debug, Default)]
pub struct Ifd {
    pub entries: BTreeMap<u16, Entry>,
    pub next: usize,
}

/// A TIFF file in memory.
#[derive(Debug)]
pub struct Tiff<'a> {
    pub data: &'a [u8],
    pub little_endian: bool,
    /// Offset of the first IFD.
    pub first: usize,
}

/// Bytes per value of a TIFF field type (0 for unknown types).
pub fn type_size(typ: u16) -> usize {
    match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => 0,
    }
}

impl<'a> Tiff<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Tiff<'a>, String> {
        let little_endian = match data.get(..2) {
            Some(b"II") => true,
            Some(b"MM") => false,
            _ => return Err("not a TIFF/DNG file (no II or MM byte-order mark)".into()),
        };
        let t = Tiff {
            data,
            little_endian,
            first: 0,
        };
        match t.u16(2)? {
            42 => {}
            43 => return Err("BigTIFF is not a DNG".into()),
            m => return Err(format!("not a TIFF/DNG file (magic number {m}, not 42)")),
        }
        let first = t.u32(4)? as usize;
        Ok(Tiff { first, ..t })
    }

    fn bytes_at(&self, at: usize, n: usize) -> Result<&'a [u8], String> {
        at.checked_add(n)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| {
                format!(
                    "truncated: {n} bytes at offset {at} are past the end of the file ({} bytes)",
                    self.data.len()
                )
            })
    }

    pub fn u16(&self, at: usize) -> Result<u16, String> {
        let b = self.bytes_at(at, 2)?;
        let b = [b[0], b[1]];
        Ok(if self.little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    pub fn u32(&self, at: usize) -> Result<u32, String> {
        let b = self.bytes_at(at, 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&self, at: usize) -> Result<u64, String> {
        let b = self.bytes_at(at, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(if self.little_endian {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    }

    /// The IFD at `offset`.
    pub fn ifd(&self, offset: usize) -> Result<Ifd, String> {
        let n = self
            .u16(offset)
            .map_err(|e| format!("IFD at offset {offset}: {e}"))? as usize;
        let mut entries = BTreeMap::new();
        for i in 0..n {
            let e = offset + 2 + i * 12;
            let tag = self.u16(e)?;
            let typ = self.u16(e + 2)?;
            let count = self.u32(e + 4)?;
            let size = type_size(typ);
            if size == 0 {
                // Unknown types are skipped, as TIFF readers must.
                continue;
            }
            let total = size
                .checked_mul(count as usize)
                .ok_or_else(|| format!("tag {tag}: count {count} overflows"))?;
            let at = if total <= 4 {
                e + 8
            } else {
                self.u32(e + 8)? as usize
            };
            self.bytes_at(at, total)
                .map_err(|m| format!("tag {tag} ({count} values): {m}"))?;
            entries.insert(
                tag,
                Entry {
                    tag,
                    typ,
                    count,
                    at,
                },
            );
        }
        let next = self.u32(offset + 2 + n * 12)? as usize;
        Ok(Ifd { entries, next })
    }

    /// The entry's values as numbers (rationals divided out).
    pub fn numbers(&self, e: &Entry) -> Result<Vec<f64>, String> {
        let n = e.count as usize;
        let size = type_size(e.typ);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let at = e.at + i * size;
            let v = match e.typ {
                1 | 7 => self.bytes_at(at, 1)?[0] as f64,
                6 => self.bytes_at(at, 1)?[0] as i8 as f64,
                3 => self.u16(at)? as f64,
                8 => self.u16(at)? as i16 as f64,
                4 | 13 => self.u32(at)? as f64,
                9 => self.u32(at)? as i32 as f64,
                5 => {
                    let (a, b) = (self.u32(at)?, self.u32(at + 4)?);
                    if b == 0 { 0.0 } else { a as f64 / b as f64 }
                }
                10 => {
                    let (a, b) = (self.u32(at)? as i32, self.u32(at + 4)? as i32);
                    if b == 0 { 0.0 } else { a as f64 / b as f64 }
                }
                11 => f32::from_bits(self.u32(at)?) as f64,
                12 => f64::from_bits(self.u64(at)?),
                _ => return Err(format!("tag {}: type {} is not a number", e.tag, e.typ)),
            };
            out.push(v);
        }
        Ok(out)
    }

    /// The entry's values as unsigned integers (BYTE, SHORT, LONG, IFD).
    pub fn unsigned(&self, e: &Entry) -> Result<Vec<u64>, String> {
        if !matches!(e.typ, 1 | 3 | 4 | 7 | 13) {
            return Err(format!(
                "tag {}: type {} where an unsigned integer was expected",
                e.tag, e.typ
            ));
        }
        Ok(self.numbers(e)?.into_iter().map(|v| v as u64).collect())
    }

    /// The entry's raw bytes.
    pub fn bytes(&self, e: &Entry) -> Result<&'a [u8], String> {
        self.bytes_at(e.at, type_size(e.typ) * e.count as usize)
    }

    /// An ASCII value without its trailing NULs.
    pub fn ascii(&self, e: &Entry) -> Result<String, String> {
        let b = self.bytes(e)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).trim().to_string())
    }

    /// A byte range of the file (a strip or tile).
    pub fn chunk(&self, at: u64, len: u64) -> Result<&'a [u8], String> {
        self.bytes_at(at as usize, len as usize)
    }
}

/// A TIFF writer for one little-endian file: IFDs laid out as they are added.
#[derive(Debug, Default)]
pub struct IfdBuilder {
    entries: BTreeMap<u16, (u16, u32, Vec<u8>)>,
}

/// A value to write.
pub enum Val<'v> {
    Bytes(&'v [u8]),
    Ascii(&'v str),
    Short(&'v [u16]),
    Long(&'v [u32]),
    Rational(&'v [(u32, u32)]),
    SRational(&'v [(i32, i32)]),
    Undefined(&'v [u8]),
}

impl IfdBuilder {
    pub fn set(&mut self, tag: u16, v: Val<'_>) {
        let (typ, count, bytes): (u16, usize, Vec<u8>) = match v {
            Val::Bytes(b) => (1, b.len(), b.to_vec()),
            Val::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (2, b.len(), b)
            }
            Val::Short(v) => (3, v.len(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Val::Long(v) => (4, v.len(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Val::Rational(v) => (
                5,
                v.len(),
                v.iter()
                    .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
                    .collect(),
            ),
            Val::SRational(v) => (
                10,
                v.len(),
                v.iter()
                    .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
                    .collect(),
            ),
            Val::Undefined(b) => (7, b.len(), b.to_vec()),
        };
        self.entries.insert(tag, (typ, count as u32, bytes));
    }

    /// Bytes this IFD takes, its out-of-line values included.
    pub fn size(&self) -> usize {
        2 + 12 * self.entries.len()
            + 4
            + self
                .entries
                .values()
                .map(|(_, _, b)| {
                    if b.len() > 4 {
                        b.len() + (b.len() & 1)
                    } else {
                        0
                    }
                })
                .sum::<usize>()
    }

    /// Append the IFD at `out.len()` (which must be even), `next` the
    /// offset of the IFD after it (0 for none).
    pub fn write(&self, out: &mut Vec<u8>, next: u32) {
        let start = out.len();
        let mut extra = start + 2 + 12 * self.entries.len() + 4;
        let mut tail = Vec::new();
        out.extend_from_slice(&(self.entries.len() as u16).to_le_bytes());
        for (tag, (typ, count, bytes)) in &self.entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&typ.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            if bytes.len() <= 4 {
                let mut v = [0u8; 4];
                v[..bytes.len()].copy_from_slice(bytes);
                out.extend_from_slice(&v);
            } else {
                out.extend_from_slice(&(extra as u32).to_le_bytes());
                tail.extend_from_slice(bytes);
                if bytes.len() & 1 == 1 {
                    tail.push(0);
                }
                extra += bytes.len() + (bytes.len() & 1);
            }
        }
        out.extend_from_slice(&next.to_le_bytes());
        out.extend_from_slice(&tail);
    }
}
