// stats.wgsl: 3A statistics of the black-level-corrected mosaic: per-channel
// sums, 256-bin histograms of the value above black, AE/AWB zone means
// (saturated quads left out) and a focus metric; the pedestal comes off on
// the CPU after (`Stats3A::above_pedestal`). Twin of engine/stages/src/stages/stats.rs; integer, so exact.
//
// Each invocation takes one 2x2 quad. A workgroup (16x16 quads) accumulates
// in workgroup memory with atomics (histograms, a 4x4 window of zones, the
// sums) and flushes once to the global buffer; global sums are 64-bit as
// (lo, hi) word pairs with the carry added by hand.

var<workgroup> st_hist: array<atomic<u32>, 768>;
var<workgroup> st_zone: array<atomic<u32>, 80>;
var<workgroup> st_misc: array<atomic<u32>, 5>; // R, G, B, focus, global atomics issued

// Word offsets in `stats`.
const ST_SUMS: u32 = 0u;   // R, G (both greens), B sums as (lo, hi)
const ST_FOCUS: u32 = 6u;  // focus sum (lo, hi)
const ST_COUNT: u32 = 8u;  // global atomic operations the kernel issued (bytes-moved accounting)
const ST_HIST: u32 = 9u;   // 3 x 256 bins
const ST_ZONES: u32 = 777u; // per zone: R, G, B sums (lo, hi), quads, saturated

fn stats_clear(li: u32) {
    for (var i = li; i < 768u; i += 256u) {
        atomicStore(&st_hist[i], 0u);
    }
    if (li < 80u) {
        atomicStore(&st_zone[li], 0u);
    }
    if (li < 5u) {
        atomicStore(&st_misc[li], 0u);
    }
}

// Add v to the 64-bit (lo, hi) pair at i; returns the global atomics used.
fn add64(i: u32, v: u32) -> u32 {
    if (v == 0u) {
        return 0u;
    }
    let old = atomicAdd(&stats[i], v);
    if (old > 0xffffffffu - v) {
        atomicAdd(&stats[i + 1u], 1u);
        return 2u;
    }
    return 1u;
}

// Count global atomics for the bytes-moved figure (one workgroup add each).
fn count_global(n: u32) {
    if (n > 0u) {
        atomicAdd(&st_misc[4], n);
    }
}

fn zone_of(qx: u32, qy: u32) -> vec2<u32> {
    let qw = max(P.width / 2u, 1u);
    let qh = max(P.height / 2u, 1u);
    return vec2<u32>(qx * P.zones_x / qw, qy * P.zones_y / qh);
}

// `stats::hist_bin`: the value above the pedestal in 256ths of full scale.
fn hist_bin(v: u32) -> u32 {
    return ((max(v, PEDESTAL) - PEDESTAL) * HIST_SCALE) >> 24u;
}

// One quad: its four samples (g1 on the red row, g2 on the blue row) into
// the histograms and zones. z0 is the first zone of the workgroup. The sums
// and the focus term the caller keeps in registers (see `stats_sums`).
fn stats_quad(qx: u32, qy: u32, r: u32, g1: u32, g2: u32, b: u32, z0: vec2<u32>) {
    atomicAdd(&st_hist[hist_bin(r)], 1u);
    atomicAdd(&st_hist[256u + hist_bin(g1)], 1u);
    atomicAdd(&st_hist[256u + hist_bin(g2)], 1u);
    atomicAdd(&st_hist[512u + hist_bin(b)], 1u);
    let z = zone_of(qx, qy);
    let sat = max(max(r, b), max(g1, g2)) >= P.saturation;
    let d = z - z0;
    if (d.x < 4u && d.y < 4u) {
        let s = (d.y * 4u + d.x) * 5u;
        if (sat) {
            atomicAdd(&st_zone[s + 4u], 1u);
        } else {
            atomicAdd(&st_zone[s], r);
            atomicAdd(&st_zone[s + 1u], g1 + g2);
            atomicAdd(&st_zone[s + 2u], b);
            atomicAdd(&st_zone[s + 3u], 1u);
        }
    } else {
        // Zones narrower than a quarter of the workgroup: straight to global.
        let zi = ST_ZONES + (z.y * P.zones_x + z.x) * 8u;
        if (sat) {
            atomicAdd(&stats[zi + 7u], 1u);
            count_global(1u);
        } else {
            count_global(add64(zi, r) + add64(zi + 2u, g1 + g2) + add64(zi + 4u, b) + 1u);
            atomicAdd(&stats[zi + 6u], 1u);
        }
    }
}

// An invocation's running sums (R, G, B, focus) into the workgroup's, once.
fn stats_sums(acc: vec4<u32>) {
    for (var c = 0u; c < 4u; c++) {
        if (acc[c] > 0u) {
            atomicAdd(&st_misc[c], acc[c]);
        }
    }
}

// After a barrier: the zone window's sums into the global buffer, and the
// window cleared for the next tile (each invocation owns one slot).
fn stats_flush_zones(li: u32, z0: vec2<u32>) {
    if (li < 16u) {
        let z = z0 + vec2<u32>(li % 4u, li / 4u);
        let s = li * 5u;
        var n = 0u;
        if (z.x < P.zones_x && z.y < P.zones_y) {
            let zi = ST_ZONES + (z.y * P.zones_x + z.x) * 8u;
            n += add64(zi, atomicLoad(&st_zone[s]));
            n += add64(zi + 2u, atomicLoad(&st_zone[s + 1u]));
            n += add64(zi + 4u, atomicLoad(&st_zone[s + 2u]));
            let q = atomicLoad(&st_zone[s + 3u]);
            if (q > 0u) {
                atomicAdd(&stats[zi + 6u], q);
                n += 1u;
            }
            let k = atomicLoad(&st_zone[s + 4u]);
            if (k > 0u) {
                atomicAdd(&stats[zi + 7u], k);
                n += 1u;
            }
        }
        for (var j = 0u; j < 5u; j++) {
            atomicStore(&st_zone[s + j], 0u);
        }
        count_global(n);
    }
}

// After a barrier: histograms and sums into the global buffer.
fn stats_flush_totals(li: u32) {
    var n = 0u;
    for (var i = li; i < 768u; i += 256u) {
        let v = atomicLoad(&st_hist[i]);
        if (v > 0u) {
            atomicAdd(&stats[ST_HIST + i], v);
            n += 1u;
        }
    }
    if (li == 0u) {
        n += add64(ST_SUMS, atomicLoad(&st_misc[0]));
        n += add64(ST_SUMS + 2u, atomicLoad(&st_misc[1]));
        n += add64(ST_SUMS + 4u, atomicLoad(&st_misc[2]));
        n += add64(ST_FOCUS, atomicLoad(&st_misc[3]));
    }
    count_global(n);
    workgroupBarrier();
    if (li == 0u) {
        atomicAdd(&stats[ST_COUNT], atomicLoad(&st_misc[4]) + 1u);
    }
}

// Red's position in the 2x2 tile.
fn red_x() -> u32 {
    return P.red_pos & 1u;
}
fn red_y() -> u32 {
    return P.red_pos >> 1u;
}

fn st_px(x: u32, y: u32) -> i32 {
    return i32(src16(y * P.width + x));
}

// Mean green of quad (qx, qy), rounded down (the CPU's `greens`).
fn st_green(qx: u32, qy: u32) -> i32 {
    let rx = red_x();
    let ry = red_y();
    return (st_px(2u * qx + 1u - rx, 2u * qy + ry) + st_px(2u * qx + rx, 2u * qy + 1u - ry)) / 2;
}

// Mosaic in `src` -> statistics in `stats` (cleared by the host first).
@compute @workgroup_size(16, 16)
fn stats_3a(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    stats_clear(li);
    workgroupBarrier();
    let z0 = zone_of(wg.x * 16u, wg.y * 16u);
    let qx = id.x;
    let qy = id.y;
    if (qx < P.width / 2u && qy < P.height / 2u) {
        let rx = red_x();
        let ry = red_y();
        let x = 2u * qx;
        let y = 2u * qy;
        let g = st_green(qx, qy);
        var focus = 0u;
        if (qx > 0u) {
            focus += u32(abs(g - st_green(qx - 1u, qy)));
        }
        if (qy > 0u) {
            focus += u32(abs(g - st_green(qx, qy - 1u)));
        }
        let r = u32(st_px(x + rx, y + ry));
        let g1 = u32(st_px(x + 1u - rx, y + ry));
        let g2 = u32(st_px(x + rx, y + 1u - ry));
        let b = u32(st_px(x + 1u - rx, y + 1u - ry));
        stats_quad(qx, qy, r, g1, g2, b, z0);
        stats_sums(vec4<u32>(r, g1 + g2, b, focus));
    }
    workgroupBarrier();
    stats_flush_zones(li, z0);
    stats_flush_totals(li);
}
