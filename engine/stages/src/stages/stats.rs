//! 3A statistics on the black-level-corrected 16-bit mosaic: per-channel
//! sums, 256-bin histograms, an AE/AWB zone grid of channel means and a
//! focus metric (mean absolute green gradient between neighbouring quads).

use crate::types::BayerOrder;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsParams {
    pub zones_x: usize,
    pub zones_y: usize,
    /// A quad with any site at or above this is counted as saturated.
    pub saturation: u16,
}

impl StatsParams {
    pub const FIELDS: &'static [super::fields::Field] = &[
        super::fields::Field::closed("zones_x", 1.0, 64.0),
        super::fields::Field::closed("zones_y", 1.0, 64.0),
        super::fields::Field::closed("saturation", 0.0, 65535.0),
    ];
}

impl Default for StatsParams {
    fn default() -> Self {
        StatsParams {
            zones_x: 16,
            zones_y: 12,
            saturation: 65000,
        }
    }
}

impl StatsParams {
    pub fn check(&self) -> Result<(), String> {
        if !Self::FIELDS[0].admits(self.zones_x as f64)
            || !Self::FIELDS[1].admits(self.zones_y as f64)
        {
            return Err(format!(
                "zone grid {}x{} must be 1..=64 each way",
                self.zones_x, self.zones_y
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Zone {
    /// Mean R, G, B of the zone's unsaturated quads, 0..=65535.
    pub mean: [f32; 3],
    pub quads: u32,
    pub saturated: u32,
}

pub const HIST_BINS: usize = 256;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats3A {
    pub width: usize,
    pub height: usize,
    /// Sum of samples per colour (both greens in G) and how many.
    pub sums: [f64; 3],
    pub counts: [u64; 3],
    /// Histograms per colour of the value above black, 256 bins of full
    /// scale ([`hist_bin`]).
    pub histograms: [Vec<u32>; 3],
    pub zones_x: usize,
    pub zones_y: usize,
    pub zones: Vec<Zone>,
    /// Mean absolute difference of green between neighbouring quads, 0..=1.
    pub focus: f64,
}

impl Stats3A {
    pub fn mean(&self, c: usize) -> f64 {
        self.sums[c] / self.counts[c].max(1) as f64
    }

    /// The statistics of the same scene `k` times as bright (a still's
    /// exposure made digitally): means and sums scaled, held at full scale.
    /// A zone whose mean would reach `saturation` in any channel counts as
    /// saturated, as its quads would in a frame exposed that much (so AWB
    /// leaves it out instead of reading a colour from its clipped mean).
    /// Histograms stay as measured.
    pub fn scaled(&self, k: f32, saturation: u16) -> Stats3A {
        let mut s = self.clone();
        for z in &mut s.zones {
            // Clipped at capture: no exposure made afterwards brings these
            // back (they render white), so they say nothing about it.
            z.saturated = 0;
            let m = z.mean.map(|m| m * k);
            if k > 1.0 && m.iter().any(|&v| v >= saturation as f32) {
                z.saturated += z.quads;
                z.quads = 0;
            }
            z.mean = m.map(|v| v.min(65535.0));
        }
        for (sum, n) in s.sums.iter_mut().zip(s.counts) {
            *sum = (*sum * k as f64).min(65535.0 * n as f64);
        }
        s
    }

    /// The statistics as they are after lens shading: the statistics are
    /// taken on the mosaic before it (where the sensor clips), but the
    /// colour-temperature curve and the CCM are calibrated on patches after
    /// it, so each zone's means are multiplied by the mean gain of its
    /// colour over the zone (R, the two greens' mean, B), and the sums as
    /// the zones moved. Saturation counts and histograms stay as
    /// measured. Disabled shading changes nothing.
    pub fn shade(&mut self, lsc: &super::lens_shading::LensShadingParams, order: BayerOrder) {
        if !lsc.enabled || self.zones.is_empty() || self.width < 2 || self.height < 2 {
            return;
        }
        let (w, h) = (self.width, self.height);
        let (qw, qh) = ((w / 2).max(1), (h / 2).max(1));
        let (zx, zy) = (self.zones_x.max(1), self.zones_y.max(1));
        // The quads of zone column i are those with q * zx / qw == i.
        let span = |i: usize, n: usize, q: usize| ((i * q).div_ceil(n), ((i + 1) * q).div_ceil(n));
        const SAMPLES: usize = 4;
        let (mut before, mut after) = ([0.0f64; 3], [0.0f64; 3]);
        for (zi, z) in self.zones.iter_mut().enumerate() {
            let (x0, x1) = span(zi % zx, zx, qw);
            let (y0, y1) = span(zi / zx, zy, qh);
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let mut g = [0.0f64; 4];
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    // Evenly spread over the zone's quads, at each site.
                    let qx = x0 + (x1 - x0) * (2 * sx + 1) / (2 * SAMPLES);
                    let qy = y0 + (y1 - y0) * (2 * sy + 1) / (2 * SAMPLES);
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let (x, y) = ((2 * qx + dx).min(w - 1), (2 * qy + dy).min(h - 1));
                        let c = order.color_at(x, y).index();
                        g[c] += lsc.gain_at(c, x, y, w, h) as f64;
                    }
                }
            }
            let n = (SAMPLES * SAMPLES) as f64;
            let gains = [g[0] / n, (g[1] + g[2]) / 2.0 / n, g[3] / n];
            let q = z.quads as f64;
            for c in 0..3 {
                let m = z.mean[c] as f64;
                before[c] += m * q;
                z.mean[c] = (m * gains[c]).min(65535.0) as f32;
                after[c] += z.mean[c] as f64 * q;
            }
        }
        // The sums by the zones' shaded over measured totals: each zone's
        // gain weighted by what the zone holds.
        for (c, sum) in self.sums.iter_mut().enumerate() {
            if before[c] > 0.0 {
                *sum = (*sum * after[c] / before[c]).min(65535.0 * self.counts[c] as f64);
            }
        }
    }
}

/// One band group's running sums; reused frame after frame (see [`POOL`]).
#[derive(Clone)]
struct Acc {
    sums: [u64; 3],
    hist: [[u32; HIST_BINS]; 3],
    /// Eight partial histograms (R, G1, G2, B by even/odd quad) so that
    /// neighbouring quads of a flat area do not queue on one counter.
    part: Vec<[u32; HIST_BINS]>,
    /// Per zone: sums of R, G1+G2, B over unsaturated quads.
    zsum: Vec<[u64; 3]>,
    zquads: Vec<u32>,
    zsat: Vec<u32>,
    focus: u64,
    focus_n: u64,
    /// Green (mean of the two) per quad of the previous and current quad row.
    prev: Vec<i32>,
    cur: Vec<i32>,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            sums: [0; 3],
            hist: [[0; HIST_BINS]; 3],
            part: Vec::new(),
            zsum: Vec::new(),
            zquads: Vec::new(),
            zsat: Vec::new(),
            focus: 0,
            focus_n: 0,
            prev: Vec::new(),
            cur: Vec::new(),
        }
    }
}

impl Acc {
    /// Zero for `zones` zones, keeping the memory.
    fn reset(&mut self, zones: usize) {
        self.sums = [0; 3];
        self.hist = [[0; HIST_BINS]; 3];
        self.part.clear();
        self.part.resize(8, [0; HIST_BINS]);
        self.zsum.clear();
        self.zsum.resize(zones, [0; 3]);
        self.zquads.clear();
        self.zquads.resize(zones, 0);
        self.zsat.clear();
        self.zsat.resize(zones, 0);
        self.focus = 0;
        self.focus_n = 0;
    }
    fn merge(&mut self, o: &Acc) {
        for c in 0..3 {
            self.sums[c] += o.sums[c];
            for (a, b) in self.hist[c].iter_mut().zip(&o.hist[c]) {
                *a += b;
            }
        }
        for z in 0..self.zsum.len() {
            for c in 0..3 {
                self.zsum[z][c] += o.zsum[z][c];
            }
            self.zquads[z] += o.zquads[z];
            self.zsat[z] += o.zsat[z];
        }
        self.focus += o.focus;
        self.focus_n += o.focus_n;
    }
}

/// Accumulators and the zone-column table, kept per calling thread: a frame
/// in steady state allocates nothing here.
#[derive(Default)]
struct Pool {
    accs: Vec<Acc>,
    zx: Vec<usize>,
}

thread_local! {
    static POOL: std::cell::RefCell<Pool> = std::cell::RefCell::new(Pool::default());
}

/// What one band needs to know of the frame.
struct Frame<'a> {
    data: &'a [u16],
    width: usize,
    qw: usize,
    qh: usize,
    zones_x: usize,
    zones_y: usize,
    sat: u16,
    rx: usize,
    ry: usize,
    bx: usize,
    by: usize,
    zx: &'a [usize],
}

impl Frame<'_> {
    /// Greens of quad row `qy` into `out`.
    fn greens(&self, qy: usize, out: &mut Vec<i32>) {
        let w = self.width;
        let rows = [
            &self.data[(2 * qy) * w..(2 * qy + 1) * w],
            &self.data[(2 * qy + 1) * w..(2 * qy + 2) * w],
        ];
        out.clear();
        out.extend((0..self.qw).map(|qx| {
            (rows[self.ry][2 * qx + self.bx] as i32 + rows[self.by][2 * qx + self.rx] as i32) / 2
        }));
    }

    /// Quad rows `q0..q1` into `a`.
    fn band(&self, a: &mut Acc, q0: usize, q1: usize) {
        let (w, qw, qh) = (self.width, self.qw, self.qh);
        let (rx, ry, bx, by) = (self.rx, self.ry, self.bx, self.by);
        if q0 > 0 {
            let mut prev = std::mem::take(&mut a.prev);
            self.greens(q0 - 1, &mut prev);
            a.prev = prev;
        }
        for qy in q0..q1 {
            let zy = qy * self.zones_y / qh.max(1);
            let zrow = zy * self.zones_x;
            let rows = [
                &self.data[(2 * qy) * w..(2 * qy + 1) * w],
                &self.data[(2 * qy + 1) * w..(2 * qy + 2) * w],
            ];
            let (mut sr, mut sg, mut sb) = (0u64, 0u64, 0u64);
            let mut qx = 0;
            // One zone column at a time: its sums stay in registers.
            while qx < qw {
                let zc = self.zx[qx];
                let mut end = qx + 1;
                while end < qw && self.zx[end] == zc {
                    end += 1;
                }
                let (mut zr, mut zg, mut zb, mut nq, mut ns) = (0u64, 0u64, 0u64, 0u32, 0u32);
                for q in qx..end {
                    let r = rows[ry][2 * q + rx];
                    let b = rows[by][2 * q + bx];
                    let g1 = rows[ry][2 * q + bx];
                    let g2 = rows[by][2 * q + rx];
                    sr += r as u64;
                    sg += g1 as u64 + g2 as u64;
                    sb += b as u64;
                    let k = (q & 1) * 4;
                    a.part[k][hist_bin(r)] += 1;
                    a.part[k + 1][hist_bin(g1)] += 1;
                    a.part[k + 2][hist_bin(g2)] += 1;
                    a.part[k + 3][hist_bin(b)] += 1;
                    if r.max(b).max(g1).max(g2) >= self.sat {
                        ns += 1;
                    } else {
                        zr += r as u64;
                        zg += g1 as u64 + g2 as u64;
                        zb += b as u64;
                        nq += 1;
                    }
                }
                let z = zrow + zc;
                let zs = &mut a.zsum[z];
                zs[0] += zr;
                zs[1] += zg;
                zs[2] += zb;
                a.zquads[z] += nq;
                a.zsat[z] += ns;
                qx = end;
            }
            a.sums[0] += sr;
            a.sums[1] += sg;
            a.sums[2] += sb;
            // Focus: |dG| to the right neighbour and to the quad above.
            let mut cur = std::mem::take(&mut a.cur);
            self.greens(qy, &mut cur);
            let mut f = 0u64;
            for w in cur.windows(2) {
                f += (w[1] - w[0]).unsigned_abs() as u64;
            }
            a.focus_n += qw.saturating_sub(1) as u64;
            if qy > 0 {
                for (c, p) in cur.iter().zip(&a.prev) {
                    f += (c - p).unsigned_abs() as u64;
                }
                a.focus_n += qw as u64;
            }
            a.focus += f;
            a.cur = std::mem::replace(&mut a.prev, cur);
        }
        for (k, part) in a.part.iter_mut().enumerate() {
            let c = [0, 1, 1, 2][k % 4];
            for (h, p) in a.hist[c].iter_mut().zip(part.iter_mut()) {
                *h += std::mem::take(p);
            }
        }
    }
}

/// The histogram bin of a mosaic sample: its value above the pedestal
/// (black) in 256ths of full scale, below black in bin 0: `(v - P) *
/// HIST_SCALE >> 24`, `HIST_SCALE` = 2^32 / (65536 - P) rounded down, so
/// 65535 lands in bin 255 and nothing overflows 32 bits (the WGSL twin
/// uses the same integers).
#[inline(always)]
pub fn hist_bin(v: u16) -> usize {
    ((v.saturating_sub(super::PEDESTAL) as u32 * HIST_SCALE) >> 24) as usize
}

/// See [`hist_bin`].
pub const HIST_SCALE: u32 = ((1u64 << 32) / (65536 - super::PEDESTAL as u64)) as u32;

impl Stats3A {
    /// Take the pedestal off what the kernels summed (with it, so the sums
    /// of a noisy black are unbiased) and scale to full scale above black:
    /// means, sums and focus in the units the algorithms read. A mean below
    /// black is held at 0.
    pub fn above_pedestal(&mut self) {
        let (p, k) = (super::PEDESTAL_F as f64, super::PEDESTAL_SCALE as f64);
        for z in &mut self.zones {
            z.mean = z.mean.map(|m| ((m as f64 - p) * k).max(0.0) as f32);
        }
        for c in 0..3 {
            self.sums[c] = ((self.sums[c] - self.counts[c] as f64 * p) * k).max(0.0);
        }
        self.focus *= k;
    }

    /// Empty statistics (to fill with [`compute_into`]).
    pub fn empty() -> Self {
        Stats3A {
            width: 0,
            height: 0,
            sums: [0.0; 3],
            counts: [0; 3],
            histograms: Default::default(),
            zones_x: 0,
            zones_y: 0,
            zones: Vec::new(),
            focus: 0.0,
        }
    }
}

/// Statistics of a 16-bit mosaic (bands of quad rows in parallel on the
/// current pool). Integer accumulation throughout, so the result does not
/// depend on how the work was split.
pub fn compute(
    p: &StatsParams,
    order: BayerOrder,
    width: usize,
    height: usize,
    data: &[u16],
) -> Stats3A {
    let mut out = Stats3A::empty();
    compute_into(p, order, width, height, data, &mut out);
    out
}

/// [`compute`] into `out`, reusing its memory and the calling thread's
/// accumulators: no allocation once both have seen a frame of this size.
pub fn compute_into(
    p: &StatsParams,
    order: BayerOrder,
    width: usize,
    height: usize,
    data: &[u16],
    out: &mut Stats3A,
) {
    use rayon::prelude::*;
    let (qw, qh) = (width / 2, height / 2);
    let nz = p.zones_x * p.zones_y;
    let (rx, ry) = order.red_pos();
    const BAND: usize = 16;
    let bands = qh.div_ceil(BAND);
    // Band groups: a few per thread for balance, each with its own sums.
    let groups = bands.clamp(1, rayon::current_num_threads() * 2);
    // Taken out of the thread-local while the bands run: a thread that
    // picks up another frame's statistics while it waits finds none and
    // makes its own, instead of borrowing twice.
    let mut pool = POOL.with(|p| std::mem::take(&mut *p.borrow_mut()));
    {
        pool.zx.clear();
        pool.zx.extend((0..qw).map(|q| q * p.zones_x / qw.max(1)));
        if pool.accs.len() < groups {
            pool.accs.resize_with(groups, Acc::default);
        }
        let f = Frame {
            data,
            width,
            qw,
            qh,
            zones_x: p.zones_x,
            zones_y: p.zones_y,
            sat: p.saturation,
            rx,
            ry,
            bx: 1 - rx,
            by: 1 - ry,
            zx: &pool.zx,
        };
        pool.accs[..groups]
            .par_iter_mut()
            .enumerate()
            .for_each(|(g, a)| {
                a.reset(nz);
                let (b0, b1) = (g * bands / groups, (g + 1) * bands / groups);
                for b in b0..b1 {
                    f.band(a, b * BAND, ((b + 1) * BAND).min(qh));
                }
            });
        let (first, rest) = pool.accs[..groups].split_at_mut(1);
        let acc = &mut first[0];
        for o in rest.iter() {
            acc.merge(o);
        }
        out.zones.clear();
        out.zones.extend((0..nz).map(|z| {
            let n = acc.zquads[z].max(1) as f64;
            let s = acc.zsum[z];
            Zone {
                mean: [
                    (s[0] as f64 / n) as f32,
                    (s[1] as f64 / 2.0 / n) as f32,
                    (s[2] as f64 / n) as f32,
                ],
                quads: acc.zquads[z],
                saturated: acc.zsat[z],
            }
        }));
        for c in 0..3 {
            out.histograms[c].clear();
            out.histograms[c].extend_from_slice(&acc.hist[c]);
        }
        let quads = (qw * qh) as u64;
        out.width = width;
        out.height = height;
        out.sums = acc.sums.map(|v| v as f64);
        out.counts = [quads, 2 * quads, quads];
        out.zones_x = p.zones_x;
        out.zones_y = p.zones_y;
        out.focus = acc.focus as f64 / acc.focus_n.max(1) as f64 / 65535.0;
        out.above_pedestal();
    }
    POOL.with(|p| *p.borrow_mut() = pool);
}

#[cfg(test)]
mod tests;
