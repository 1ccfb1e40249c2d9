// fused.wgsl: the whole preview in one dispatch, raw bytes -> RGBA8 and the
// 3A statistics. Twin of engine/stages/src/stages/fused.rs (the CPU's fused schedule)
// and, through it, of the reference stages: unpack, black level, defect pixel
// correction, statistics, lens shading, white balance, demosaic, highlights,
// CCM, tone.
//
// A workgroup makes `outp.w` 32x32 tiles, one under the other (one 2x2 quad per
// invocation per tile), and flushes its histograms and sums once. It reads the
// raw frame once for the tile plus a 4-pixel mirrored halo (2 for the defect
// test, 2 for the demosaic), keeps every intermediate in workgroup memory and
// writes only RGBA8 (rows `outp.z` words apart, so a texture copy needs
// no repacking) and its statistics partials. Slots outside the frame hold
// the value at the mirrored position; both neighbourhoods are symmetric, so
// that equals the CPU's mirror padding.

const FT: u32 = 32u; // output tile side
const FS: u32 = 40u; // tile + 4-pixel halo each side
const FI: u32 = 36u; // tile + 2: what the demosaic reads

var<workgroup> fz_bl: array<u32, 1600>; // FS x FS, after black level
var<workgroup> fz_v: array<i32, 1296>;  // FI x FI, after DPC, then after LSC and WB

fn fz_bl_at(sx: u32, sy: u32) -> i32 {
    return i32(fz_bl[sy * FS + sx]);
}

fn fz_at(ix: u32, iy: u32) -> i32 {
    return fz_v[iy * FI + ix];
}

fn fz_nbhd(ix: u32, iy: u32) -> Nbhd {
    return Nbhd(fz_at(ix, iy),
        fz_at(ix - 1u, iy), fz_at(ix + 1u, iy), fz_at(ix, iy - 1u), fz_at(ix, iy + 1u),
        fz_at(ix - 2u, iy), fz_at(ix + 2u, iy), fz_at(ix, iy - 2u), fz_at(ix, iy + 2u),
        fz_at(ix - 1u, iy - 1u), fz_at(ix + 1u, iy - 1u), fz_at(ix - 1u, iy + 1u), fz_at(ix + 1u, iy + 1u));
}

// Mean green of the quad whose top-left slot is (ix, iy).
fn fz_green(ix: u32, iy: u32) -> i32 {
    let rx = red_x();
    let ry = red_y();
    return (fz_at(ix + 1u - rx, iy + ry) + fz_at(ix + rx, iy + 1u - ry)) / 2;
}

@compute @workgroup_size(16, 16)
fn fused_preview(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    stats_clear(li);
    let rows = P.fused_rows;
    var sums = vec4<u32>(0u);
    for (var t = 0u; t < rows; t++) {
        let ty = wg.y * rows + t;
        if (ty * FT >= P.height) {
            break; // uniform: the same for the whole workgroup
        }
        sums += fused_tile(vec2<u32>(wg.x, ty), lid.xy, li);
    }
    stats_sums(sums);
    workgroupBarrier();
    stats_flush_totals(li);
}

// One 32x32 tile; ends with the zone window flushed and cleared. Returns
// this invocation's quad's R, G, B and focus terms.
fn fused_tile(tile: vec2<u32>, lid: vec2<u32>, li: u32) -> vec4<u32> {
    let w = i32(P.width);
    let h = i32(P.height);
    let ox = i32(tile.x * FT);
    let oy = i32(tile.y * FT);
    // 1. Unpack and black level: the tile and its halo, each raw sample read once.
    for (var i = li; i < FS * FS; i += 256u) {
        let gx = u32(reflect_i(ox - 4 + i32(i % FS), w));
        let gy = u32(reflect_i(oy - 4 + i32(i / FS), h));
        fz_bl[i] = black_level_px(unpack_px(gx, gy), gx, gy);
    }
    workgroupBarrier();
    // 2. Defect pixel correction over the demosaic's footprint.
    let dpc_on = (P.flags & FLAG_DPC) != 0u;
    for (var i = li; i < FI * FI; i += 256u) {
        let sx = i % FI + 2u;
        let sy = i / FI + 2u;
        var c = fz_bl_at(sx, sy);
        if (dpc_on) {
            let near = fz_bl_at(sx - 1u, sy) + fz_bl_at(sx + 1u, sy) + fz_bl_at(sx, sy - 1u)
                + fz_bl_at(sx, sy + 1u);
            let ring = fz_bl_at(sx - 1u, sy - 2u) + fz_bl_at(sx + 1u, sy - 2u)
                + fz_bl_at(sx - 1u, sy + 2u) + fz_bl_at(sx + 1u, sy + 2u)
                + fz_bl_at(sx - 2u, sy - 1u) + fz_bl_at(sx + 2u, sy - 1u)
                + fz_bl_at(sx - 2u, sy + 1u) + fz_bl_at(sx + 2u, sy + 1u);
            c = dpc_decide(c, fz_bl_at(sx - 2u, sy), fz_bl_at(sx + 2u, sy), fz_bl_at(sx, sy - 2u),
                fz_bl_at(sx, sy + 2u), fz_bl_at(sx - 2u, sy - 2u), fz_bl_at(sx + 2u, sy - 2u),
                fz_bl_at(sx - 2u, sy + 2u), fz_bl_at(sx + 2u, sy + 2u), 2 * near - ring,
                dpc_mapped(u32(reflect_i(ox - 4 + i32(sx), w)), u32(reflect_i(oy - 4 + i32(sy), h))));
        }
        fz_v[i] = c;
    }
    workgroupBarrier();
    // 3. Statistics of this invocation's quad (the mosaic the CPU's RawAlgo sees).
    let z0 = zone_of(tile.x * 16u, tile.y * 16u);
    let qx = tile.x * 16u + lid.x;
    let qy = tile.y * 16u + lid.y;
    let lx = 2u + 2u * lid.x;
    let ly = 2u + 2u * lid.y;
    var sums = vec4<u32>(0u);
    if (qx < P.width / 2u && qy < P.height / 2u) {
        let rx = red_x();
        let ry = red_y();
        let g = fz_green(lx, ly);
        var focus = 0u;
        if (qx > 0u) {
            focus += u32(abs(g - fz_green(lx - 2u, ly)));
        }
        if (qy > 0u) {
            focus += u32(abs(g - fz_green(lx, ly - 2u)));
        }
        let r = u32(fz_at(lx + rx, ly + ry));
        let g1 = u32(fz_at(lx + 1u - rx, ly + ry));
        let g2 = u32(fz_at(lx + rx, ly + 1u - ry));
        let b = u32(fz_at(lx + 1u - rx, ly + 1u - ry));
        stats_quad(qx, qy, r, g1, g2, b, z0);
        sums = vec4<u32>(r, g1 + g2, b, focus);
    }
    workgroupBarrier();
    // 4. Lens shading and white balance in place, at each slot's frame position.
    for (var i = li; i < FI * FI; i += 256u) {
        let gx = u32(reflect_i(ox - 2 + i32(i % FI), w));
        let gy = u32(reflect_i(oy - 2 + i32(i / FI), h));
        fz_v[i] = i32(wb_px(lsc_px(u32(fz_v[i]), gx, gy), gx, gy));
    }
    workgroupBarrier();
    // 5. Demosaic, CCM and tone for the quad's four pixels.
    for (var k = 0u; k < 4u; k++) {
        let px = u32(ox) + 2u * lid.x + (k & 1u);
        let py = u32(oy) + 2u * lid.y + (k >> 1u);
        if (px < P.width && py < P.height) {
            let rgb = ccm_px(highlights_px(demosaic_at(site_at(px, py),
                fz_nbhd(lx + (k & 1u), ly + (k >> 1u)))));
            dst[py * P.out_stride + px] = rgba8_of(rgb);
        }
    }
    workgroupBarrier();
    stats_flush_zones(li, z0);
    return sums;
}
