//! Lossless JPEG ("LJ92", ITU-T T.81 process 14) decoder, the compression
//! DNG files use for raw tiles (DNG `Compression` = 7).
//!
//! What it implements, by part of T.81:
//!
//! * Annex B, syntax: SOI, SOF3 (lossless, Huffman), DHT, DRI, SOS, RSTn and
//!   EOI; APPn, COM, DNL, DAC and reserved markers are skipped; fill bytes
//!   (0xFF runs) before markers; byte stuffing (0xFF 0x00) in entropy-coded
//!   data. Any other SOFn (DCT, arithmetic, differential) is refused.
//! * Annex C, Huffman tables: up to four tables of each class; canonical code
//!   assignment, with over-subscribed tables refused. Only the DC class
//!   (Tc = 0) is used by a lossless scan; AC tables are checked and ignored.
//! * Annex F.2.2 (DECODE, RECEIVE, EXTEND) for the difference values, with
//!   Annex H.1.2.2's category 16 (difference 32768, no extra bits).
//! * Annex H, lossless coding: precision P of 2..=16 bits, 1..=4 components
//!   each sampled 1x1, one scan with all components interleaved, predictors
//!   1..=7 (Table H.1), the point transform Pt (samples come back shifted up
//!   by Pt), the initial predictor 2^(P-Pt-1), the first line predicted from
//!   the left and the first column from above, reconstruction modulo 2^16.
//!   At a restart the prediction starts again as at the top of the image: the
//!   first sample gets 2^(P-Pt-1) and the rest of that row is predicted from
//!   the left. (T.81 lossless restart intervals span whole rows; should a
//!   stream restart mid-row, the rest of that row is its first line.)
//!
//! Not supported (refused with a message): hierarchical/differential frames,
//! several scans, sampling factors other than 1x1, a height of 0 (DNL).
//!
//! Decoding is written for speed: a 64-bit bit buffer refilled eight bytes at
//! a time when they hold no 0xFF, and an 11-bit lookup table that returns the
//! whole difference (code plus extra bits) when it fits in 11 bits, the
//! category when only the code does, and falls back to a canonical decode
//! for longer codes. Corrupt or truncated input is an `Err`, never a panic:
//! running out of data (or into a marker) inside the scan is detected at the
//! end of each row and before each restart.

/// A decoded lossless JPEG: `width` x `height` pixels of `components` samples each, interleaved, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Lj92Image {
    pub width: usize,
    pub height: usize,
    pub components: usize,
    pub precision: u8,
    pub samples: Vec<u16>,
}

/// Decode one lossless JPEG stream (SOI .. EOI). Errors are short English sentences saying what is wrong and where (byte offset), never a panic, on any input (truncated, corrupt, hostile sizes: refuse a frame whose width*height*components exceeds `max_samples`).
pub fn decode(data: &[u8], max_samples: usize) -> Result<Lj92Image, String> {
    if data.len() < 2 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("not a JPEG stream: no SOI marker at byte offset 0".to_string());
    }
    let mut pos = 2;
    let mut frame: Option<Frame> = None;
    let mut dc_tables: [Option<HuffTable>; 4] = [None, None, None, None];
    let mut restart_interval = 0usize;
    let mut image: Option<Lj92Image> = None;
    loop {
        let (marker, at) = next_marker(data, pos)?;
        pos = at + 2;
        match marker {
            0xD9 => {
                return image
                    .ok_or_else(|| format!("EOI at byte offset {at} comes before any scan"));
            }
            0xD8 => return Err(format!("a second SOI marker at byte offset {at}")),
            // RSTn outside a scan and TEM carry no length: skip them.
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let payload = segment_payload(data, at, marker)?;
        // The marker's two bytes, the length's two, the payload.
        pos = at + 4 + payload.len();
        match marker {
            0xC3 => {
                if frame.is_some() {
                    return Err(format!("a second SOF marker at byte offset {at}"));
                }
                let f = parse_sof3(payload, at)?;
                let samples = f.samples().ok_or_else(|| {
                    format!("the frame at byte offset {at} has too many samples to count")
                })?;
                if samples > max_samples {
                    return Err(format!(
                        "the frame at byte offset {at} is {}x{} with {} components, {samples} samples, more than the limit of {max_samples}",
                        f.width,
                        f.height,
                        f.ids.len()
                    ));
                }
                frame = Some(f);
            }
            0xC0..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                return Err(format!(
                    "SOF{} ({}) at byte offset {at} is not supported; only SOF3 (lossless, Huffman) is",
                    marker - 0xC0,
                    sof_name(marker)
                ));
            }
            0xC4 => parse_dht(payload, at, &mut dc_tables)?,
            0xDD => {
                if payload.len() != 2 {
                    return Err(format!(
                        "the DRI segment at byte offset {at} has length {}, not 4",
                        payload.len() + 2
                    ));
                }
                restart_interval = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
            }
            0xDA => {
                if image.is_some() {
                    return Err(format!(
                        "a second scan at byte offset {at}; only single-scan streams are supported"
                    ));
                }
                let f = frame
                    .as_ref()
                    .ok_or_else(|| format!("SOS at byte offset {at} comes before any SOF3"))?;
                let scan = parse_sos(payload, at, f, &dc_tables)?;
                let (img, end) = decode_scan(data, pos, f, &scan, restart_interval)?;
                image = Some(img);
                pos = end;
            }
            // APPn, COM, DNL, DAC, JPGn and reserved markers.
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Markers and segments

/// Finds the marker at `pos` (after any fill bytes); returns it and the
/// offset of its 0xFF.
fn next_marker(data: &[u8], pos: usize) -> Result<(u8, usize), String> {
    match data.get(pos) {
        None => {
            return Err(format!(
                "the stream ends at byte offset {pos} without an EOI marker"
            ));
        }
        Some(&0xFF) => {}
        Some(&b) => {
            return Err(format!(
                "expected a marker at byte offset {pos}, found byte 0x{b:02X}"
            ));
        }
    }
    let mut p = pos;
    while data.get(p + 1) == Some(&0xFF) {
        p += 1;
    }
    match data.get(p + 1) {
        None => Err(format!(
            "the stream ends inside a marker at byte offset {p}"
        )),
        Some(&0) => Err(format!(
            "expected a marker at byte offset {p}, found 0xFF 0x00"
        )),
        Some(&m) => Ok((m, p)),
    }
}

/// The payload (after the two length bytes) of the segment whose marker is at `at`.
fn segment_payload(data: &[u8], at: usize, marker: u8) -> Result<&[u8], String> {
    let len = match data.get(at + 2..at + 4) {
        Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
        None => {
            return Err(format!(
                "the stream ends inside the length of marker 0x{marker:02X} at byte offset {at}"
            ));
        }
    };
    if len < 2 {
        return Err(format!(
            "marker 0x{marker:02X} at byte offset {at} has a segment length of {len}, less than 2"
        ));
    }
    data.get(at + 4..at + 2 + len).ok_or_else(|| {
        format!(
            "the segment of marker 0x{marker:02X} at byte offset {at} ({len} bytes) runs past the end of the stream ({} bytes)",
            data.len()
        )
    })
}

fn sof_name(marker: u8) -> &'static str {
    match marker {
        0xC0 => "baseline DCT",
        0xC1 => "extended sequential DCT",
        0xC2 => "progressive DCT",
        0xC5 => "differential sequential DCT",
        0xC6 => "differential progressive DCT",
        0xC7 => "differential lossless",
        0xC9 => "extended sequential DCT, arithmetic coding",
        0xCA => "progressive DCT, arithmetic coding",
        0xCB => "lossless, arithmetic coding",
        0xCD => "differential sequential DCT, arithmetic coding",
        0xCE => "differential progressive DCT, arithmetic coding",
        0xCF => "differential lossless, arithmetic coding",
        _ => "unknown",
    }
}

struct Frame {
    precision: u8,
    height: usize,
    width: usize,
    /// Component identifiers in frame order.
    ids: Vec<u8>,
}

impl Frame {
    fn samples(&self) -> Option<usize> {
        self.width
            .checked_mul(self.height)?
            .checked_mul(self.ids.len())
    }
}

fn parse_sof3(p: &[u8], at: usize) -> Result<Frame, String> {
    if p.len() < 6 {
        return Err(format!("the SOF3 segment at byte offset {at} is too short"));
    }
    let precision = p[0];
    let height = usize::from(u16::from_be_bytes([p[1], p[2]]));
    let width = usize::from(u16::from_be_bytes([p[3], p[4]]));
    let nf = usize::from(p[5]);
    if !(2..=16).contains(&precision) {
        return Err(format!(
            "the SOF3 at byte offset {at} has a precision of {precision} bits; lossless JPEG allows 2 to 16"
        ));
    }
    if height == 0 {
        return Err(format!(
            "the SOF3 at byte offset {at} has a height of 0 (set by a DNL marker), which is not supported"
        ));
    }
    if width == 0 {
        return Err(format!("the SOF3 at byte offset {at} has a width of 0"));
    }
    if !(1..=4).contains(&nf) {
        return Err(format!(
            "the SOF3 at byte offset {at} has {nf} components; 1 to 4 are supported"
        ));
    }
    if p.len() != 6 + 3 * nf {
        return Err(format!(
            "the SOF3 segment at byte offset {at} has length {} but {nf} components need {}",
            p.len() + 2,
            8 + 3 * nf
        ));
    }
    let mut ids = Vec::with_capacity(nf);
    for k in 0..nf {
        let c = &p[6 + 3 * k..9 + 3 * k];
        if ids.contains(&c[0]) {
            return Err(format!(
                "the SOF3 at byte offset {at} names component {} twice",
                c[0]
            ));
        }
        if c[1] != 0x11 {
            return Err(format!(
                "component {} in the SOF3 at byte offset {at} has sampling factors {}x{}; only 1x1 is supported",
                c[0],
                c[1] >> 4,
                c[1] & 15
            ));
        }
        ids.push(c[0]);
    }
    Ok(Frame {
        precision,
        height,
        width,
        ids,
    })
}

fn parse_dht(p: &[u8], at: usize, dc: &mut [Option<HuffTable>; 4]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        let tc = p[i] >> 4;
        let th = usize::from(p[i] & 15);
        if tc > 1 || th > 3 {
            return Err(format!(
                "the DHT segment at byte offset {at} defines table class {tc}, id {th}; classes 0..1 and ids 0..3 exist"
            ));
        }
        let counts = p
            .get(i + 1..i + 17)
            .ok_or_else(|| format!("the DHT segment at byte offset {at} is truncated"))?;
        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if n > 256 {
            return Err(format!(
                "a Huffman table in the DHT segment at byte offset {at} has {n} codes, more than 256"
            ));
        }
        let vals = p
            .get(i + 17..i + 17 + n)
            .ok_or_else(|| format!("the DHT segment at byte offset {at} is truncated"))?;
        let table = HuffTable::build(counts, vals).ok_or_else(|| {
            format!(
                "Huffman table (class {tc}, id {th}) in the DHT segment at byte offset {at} has more codes than fit their lengths"
            )
        })?;
        if tc == 0 {
            dc[th] = Some(table);
        }
        i += 17 + n;
    }
    Ok(())
}

struct Scan<'t> {
    /// Per scan component (scan order): its index in the frame and its table.
    frame_index: Vec<usize>,
    tables: Vec<&'t HuffTable>,
    predictor: u8,
    point_transform: u8,
}

fn parse_sos<'t>(
    p: &[u8],
    at: usize,
    f: &Frame,
    dc: &'t [Option<HuffTable>; 4],
) -> Result<Scan<'t>, String> {
    let ns = usize::from(p.first().copied().unwrap_or(0));
    if p.len() != 4 + 2 * ns || ns == 0 {
        return Err(format!(
            "the SOS segment at byte offset {at} has length {} which does not match its {ns} components",
            p.len() + 2
        ));
    }
    if ns != f.ids.len() {
        return Err(format!(
            "the scan at byte offset {at} codes {ns} of the frame's {} components; only one scan with all components interleaved is supported",
            f.ids.len()
        ));
    }
    let mut frame_index = Vec::with_capacity(ns);
    let mut tables = Vec::with_capacity(ns);
    for k in 0..ns {
        let cs = p[1 + 2 * k];
        let td = usize::from(p[2 + 2 * k] >> 4);
        let fi = f.ids.iter().position(|&id| id == cs).ok_or_else(|| {
            format!(
                "the scan at byte offset {at} names component {cs}, which the frame does not have"
            )
        })?;
        if frame_index.contains(&fi) {
            return Err(format!(
                "the scan at byte offset {at} names component {cs} twice"
            ));
        }
        let table = dc.get(td).and_then(Option::as_ref).ok_or_else(|| {
            format!(
                "the scan at byte offset {at} uses Huffman table {td} for component {cs}, which no DHT defined"
            )
        })?;
        if table.max_symbol > 16 {
            return Err(format!(
                "Huffman table {td} used by the scan at byte offset {at} holds category {}; lossless JPEG has categories 0 to 16",
                table.max_symbol
            ));
        }
        frame_index.push(fi);
        tables.push(table);
    }
    let predictor = p[1 + 2 * ns];
    let point_transform = p[3 + 2 * ns] & 15;
    if !(1..=7).contains(&predictor) {
        return Err(format!(
            "the scan at byte offset {at} selects predictor {predictor}; lossless JPEG has predictors 1 to 7"
        ));
    }
    if point_transform >= f.precision {
        return Err(format!(
            "the scan at byte offset {at} has a point transform of {point_transform} bits for {}-bit samples",
            f.precision
        ));
    }
    Ok(Scan {
        frame_index,
        tables,
        predictor,
        point_transform,
    })
}

// ---------------------------------------------------------------------------
// Huffman tables

const FAST_BITS: u32 = 11;
const FAST_SIZE: usize = 1 << FAST_BITS;
/// Fast-table entry layout (i32): bits 0..5 the bits consumed, bits 5..10 the
/// category, bit 10 set when the entry holds the whole difference, which is
/// then in bits 11.. (signed). 0 means "no code of `FAST_BITS` bits or fewer".
const ENTRY_COMPLETE: i32 = 1 << 10;

struct HuffTable {
    fast: Vec<i32>,
    /// Largest code of each length 1..=16 (index = length), -1 if none.
    maxcode: [i32; 17],
    /// Index into `vals` of a code of each length, minus that code.
    valoff: [i32; 17],
    vals: Vec<u8>,
    max_symbol: u8,
}

/// T.81 F.2.2.1 EXTEND: the `s`-bit value `v` as a difference.
#[inline(always)]
fn extend(v: i32, s: u32) -> i32 {
    if v < (1 << (s - 1)) {
        v - (1 << s) + 1
    } else {
        v
    }
}

impl HuffTable {
    /// Builds the decoding tables (T.81 Annex C); `None` if the counts do not
    /// fit their code lengths.
    fn build(counts: &[u8], vals: &[u8]) -> Option<HuffTable> {
        let mut t = HuffTable {
            fast: vec![0; FAST_SIZE],
            maxcode: [-1; 17],
            valoff: [0; 17],
            vals: vals.to_vec(),
            max_symbol: vals.iter().copied().max().unwrap_or(0),
        };
        let mut code: u32 = 0;
        let mut k: usize = 0;
        for len in 1..=16u32 {
            let n = u32::from(*counts.get(len as usize - 1)?);
            t.valoff[len as usize] = k as i32 - code as i32;
            if n > 0 {
                if code + n > (1 << len) {
                    return None;
                }
                for i in 0..n {
                    let sym = *vals.get(k + i as usize)?;
                    if len <= FAST_BITS {
                        t.fill_fast(code + i, len, sym);
                    }
                }
                code += n;
                k += n as usize;
                t.maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Some(t)
    }

    fn fill_fast(&mut self, code: u32, len: u32, sym: u8) {
        if sym > 16 {
            return; // refused when a scan selects the table
        }
        let s = u32::from(sym);
        let spare = FAST_BITS - len;
        let first = (code << spare) as usize;
        for idx in first..first + (1usize << spare) {
            let entry = if s == 0 || s == 16 {
                let diff = if s == 0 { 0 } else { 32768 };
                (diff << 11) | ENTRY_COMPLETE | ((s as i32) << 5) | len as i32
            } else if len + s <= FAST_BITS {
                let extra = (idx as i32 >> (FAST_BITS - len - s)) & ((1 << s) - 1);
                (extend(extra, s) << 11) | ENTRY_COMPLETE | ((s as i32) << 5) | (len + s) as i32
            } else {
                ((s as i32) << 5) | len as i32
            };
            if let Some(e) = self.fast.get_mut(idx) {
                *e = entry;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bit reader

/// Reads entropy-coded data MSB first, removing stuffed zero bytes. At a
/// marker (or the end of the data) it stops and feeds zero bits, counting
/// them, so that running over the end can be detected later.
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Bits, MSB first; the bits below the top `nbits` are zero.
    buf: u64,
    nbits: u32,
    /// Zero bits fed after the data stopped (they sit at the tail of `buf`).
    pad: u32,
    stopped: bool,
}

/// Invalid Huffman code in the scan.
struct BadCode;

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            buf: 0,
            nbits: 0,
            pad: 0,
            stopped: false,
        }
    }

    /// Fills the buffer to at least 57 bits.
    #[inline(never)]
    fn refill(&mut self) {
        while self.nbits <= 56 {
            if !self.stopped {
                if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(chunk);
                    let x = u64::from_be_bytes(b);
                    let y = !x;
                    // No 0xFF byte in x (no zero byte in y): take whole bytes.
                    if y.wrapping_sub(0x0101_0101_0101_0101) & !y & 0x8080_8080_8080_8080 == 0 {
                        let k = (64 - self.nbits) / 8;
                        let shift = 64 - 8 * k;
                        self.buf |= ((x >> shift) << shift) >> self.nbits;
                        self.nbits += 8 * k;
                        self.pos += k as usize;
                        continue;
                    }
                }
                match self.data.get(self.pos) {
                    Some(&0xFF) => {
                        if self.data.get(self.pos + 1) == Some(&0) {
                            self.buf |= 0xFFu64 << (56 - self.nbits);
                            self.nbits += 8;
                            self.pos += 2;
                            continue;
                        }
                        self.stopped = true;
                    }
                    Some(&b) => {
                        self.buf |= u64::from(b) << (56 - self.nbits);
                        self.nbits += 8;
                        self.pos += 1;
                        continue;
                    }
                    None => self.stopped = true,
                }
            }
            self.nbits += 8;
            self.pad = self.pad.saturating_add(8);
        }
    }

    /// Whether zero bits fed past the end of the data have been consumed.
    #[inline]
    fn overran(&self) -> bool {
        self.nbits < self.pad
    }

    /// Roughly the byte offset being read.
    fn offset(&self) -> usize {
        let buffered = (self.nbits.saturating_sub(self.pad) / 8) as usize;
        self.pos.saturating_sub(buffered)
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.nbits -= n;
    }

    /// One difference value coded with `t` (T.81 F.2.2.1 and H.1.2.2).
    #[inline(always)]
    fn diff(&mut self, t: &HuffTable) -> Result<i32, BadCode> {
        if self.nbits < 32 {
            self.refill();
        }
        let e = t.fast[(self.buf >> (64 - FAST_BITS)) as usize & (FAST_SIZE - 1)];
        if e & ENTRY_COMPLETE != 0 {
            self.consume((e & 31) as u32);
            return Ok(e >> 11);
        }
        let (len, cat) = if e != 0 {
            ((e & 31) as u32, ((e >> 5) & 31) as u32)
        } else {
            self.slow_code(t)?
        };
        self.consume(len);
        Ok(match cat {
            0 => 0,
            16 => 32768,
            s => {
                let v = (self.buf >> (64 - s)) as i32;
                self.consume(s);
                extend(v, s)
            }
        })
    }

    /// A code longer than the fast table's bits: (its length, its category).
    #[inline(never)]
    fn slow_code(&self, t: &HuffTable) -> Result<(u32, u32), BadCode> {
        let peek = (self.buf >> 48) as i32;
        for len in FAST_BITS + 1..=16 {
            let code = peek >> (16 - len);
            if code <= t.maxcode[len as usize] {
                let sym = t
                    .vals
                    .get((t.valoff[len as usize] + code) as usize)
                    .ok_or(BadCode)?;
                return Ok((len, u32::from(*sym)));
            }
        }
        Err(BadCode)
    }

    /// Offset of the next marker at or after the reader's position (skipping
    /// stray bytes and fill bytes), with the marker.
    fn find_marker(&self) -> Option<(usize, u8)> {
        let mut p = self.pos;
        loop {
            if *self.data.get(p)? == 0xFF {
                match *self.data.get(p + 1)? {
                    0x00 | 0xFF => p += 1,
                    m => return Some((p, m)),
                }
            } else {
                p += 1;
            }
        }
    }

    /// Steps over RSTn (`n` = `expected`) and starts afresh after it.
    fn restart(&mut self, expected: u8) -> Result<(), String> {
        if self.overran() {
            return Err(format!(
                "the scan data ends (or meets a marker) near byte offset {} before restart marker RST{expected}",
                self.offset()
            ));
        }
        let (at, m) = self.find_marker().ok_or_else(|| {
            format!(
                "the stream ends near byte offset {} where restart marker RST{expected} should be",
                self.offset()
            )
        })?;
        if m != 0xD0 + expected {
            return Err(format!(
                "expected restart marker RST{expected} at byte offset {at}, found marker 0x{m:02X}"
            ));
        }
        *self = BitReader::new(self.data, at + 2);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Scan decoding (T.81 Annex H)

#[inline(always)]
fn predict<const P: u8>(ra: i32, rb: i32, rc: i32) -> i32 {
    match P {
        1 => ra,
        2 => rb,
        3 => rc,
        4 => ra + rb - rc,
        5 => ra + ((rb - rc) >> 1),
        6 => rb + ((ra - rc) >> 1),
        _ => (ra + rb) >> 1,
    }
}

/// Where a run of pixels sits in its restart interval.
#[derive(Clone, Copy)]
struct Run {
    x0: usize,
    x1: usize,
    /// The run is on the first line of its interval (or of the image).
    first_line: bool,
    /// The run starts the interval: its first pixel gets the initial predictor.
    reset: bool,
}

/// Decodes pixels `run.x0..run.x1` of the current row `cur` (`prev` is the row
/// above, empty on the first row).
#[inline(always)]
fn decode_run<const P: u8>(
    rd: &mut BitReader,
    tables: &[&HuffTable],
    prev: &[u16],
    cur: &mut [u16],
    run: Run,
    initial: i32,
) -> Result<(), BadCode> {
    let nc = tables.len();
    if run.x0 >= run.x1 {
        return Ok(());
    }
    // The first pixel of the run.
    let base = run.x0 * nc;
    for (c, t) in tables.iter().enumerate() {
        let i = base + c;
        // A run at x 0 on its interval's first line (or the image's) is the
        // interval's start, a reset: the decode loop makes runs that way.
        let pred = if run.reset {
            initial
        } else if run.first_line || prev.is_empty() {
            i32::from(cur[i - nc])
        } else if run.x0 == 0 {
            i32::from(prev[i])
        } else {
            predict::<P>(
                i32::from(cur[i - nc]),
                i32::from(prev[i]),
                i32::from(prev[i - nc]),
            )
        };
        cur[i] = (pred + rd.diff(t)?) as u16;
    }
    let (start, end) = ((run.x0 + 1) * nc, run.x1 * nc);
    if run.first_line || prev.is_empty() {
        for x in (start..end).step_by(nc) {
            for (c, t) in tables.iter().enumerate() {
                let i = x + c;
                cur[i] = (i32::from(cur[i - nc]) + rd.diff(t)?) as u16;
            }
        }
    } else {
        for x in (start..end).step_by(nc) {
            for (c, t) in tables.iter().enumerate() {
                let i = x + c;
                let pred = predict::<P>(
                    i32::from(cur[i - nc]),
                    i32::from(prev[i]),
                    i32::from(prev[i - nc]),
                );
                cur[i] = (pred + rd.diff(t)?) as u16;
            }
        }
    }
    Ok(())
}

/// Decodes the scan whose entropy-coded data starts at `start`; returns the
/// image and the offset of the marker after the scan.
fn decode_scan(
    data: &[u8],
    start: usize,
    f: &Frame,
    scan: &Scan,
    restart_interval: usize,
) -> Result<(Lj92Image, usize), String> {
    let nc = f.ids.len();
    let (width, height) = (f.width, f.height);
    let total = f
        .samples()
        .ok_or_else(|| "the frame has too many samples to count".to_string())?;
    // Every sample takes at least one bit: refuse before allocating what the
    // data cannot fill.
    let available = data.len().saturating_sub(start);
    if total / 8 > available {
        return Err(format!(
            "the scan at byte offset {start} needs at least {} bytes for its {total} samples, but only {available} follow",
            total.div_ceil(8)
        ));
    }
    let mut out = vec![0u16; total];
    let row_len = width * nc;
    let initial = 1i32 << (f.precision - scan.point_transform - 1);
    let mut rd = BitReader::new(data, start);
    let mut mcus_left = if restart_interval == 0 {
        usize::MAX
    } else {
        restart_interval
    };
    let mut next_rst = 0u8;
    let mut interval_row = 0usize;
    let mut reset = true;
    for y in 0..height {
        let (done, rest) = out.split_at_mut(y * row_len);
        let prev: &[u16] = if y == 0 {
            &[]
        } else {
            &done[(y - 1) * row_len..]
        };
        let cur = &mut rest[..row_len];
        let mut x = 0;
        while x < width {
            if mcus_left == 0 {
                rd.restart(next_rst)?;
                next_rst = (next_rst + 1) & 7;
                mcus_left = restart_interval;
                interval_row = y;
                reset = true;
            }
            let x1 = x + mcus_left.min(width - x);
            let run = Run {
                x0: x,
                x1,
                first_line: interval_row == y,
                reset,
            };
            let t = &scan.tables;
            let r = match scan.predictor {
                1 => decode_run::<1>(&mut rd, t, prev, cur, run, initial),
                2 => decode_run::<2>(&mut rd, t, prev, cur, run, initial),
                3 => decode_run::<3>(&mut rd, t, prev, cur, run, initial),
                4 => decode_run::<4>(&mut rd, t, prev, cur, run, initial),
                5 => decode_run::<5>(&mut rd, t, prev, cur, run, initial),
                6 => decode_run::<6>(&mut rd, t, prev, cur, run, initial),
                _ => decode_run::<7>(&mut rd, t, prev, cur, run, initial),
            };
            if r.is_err() {
                return Err(format!(
                    "invalid Huffman code in the scan near byte offset {} (row {y})",
                    rd.offset()
                ));
            }
            mcus_left -= x1 - x;
            reset = false;
            x = x1;
        }
        if rd.overran() {
            return Err(format!(
                "the scan data ends (or meets a marker) near byte offset {} in row {y} of {height}: the stream is truncated or corrupt",
                rd.offset()
            ));
        }
    }
    let end = rd.find_marker().map(|(at, _)| at).unwrap_or(data.len());

    // Components in frame order, then the point transform.
    if scan.frame_index.iter().enumerate().any(|(k, &fi)| k != fi) {
        let mut px = [0u16; 4];
        for pixel in out.chunks_exact_mut(nc) {
            for (k, &fi) in scan.frame_index.iter().enumerate() {
                px[fi] = pixel[k];
            }
            pixel.copy_from_slice(&px[..nc]);
        }
    }
    if scan.point_transform > 0 {
        let pt = u32::from(scan.point_transform);
        for s in &mut out {
            *s = (u32::from(*s) << pt) as u16;
        }
    }
    Ok((
        Lj92Image {
            width,
            height,
            components: nc,
            precision: f.precision,
            samples: out,
        },
        end,
    ))
}

#[cfg(test)]
mod tests;
