// defect_pixel.wgsl: a pixel outside the range of its eight same-colour
// neighbours (two away) by more than the threshold becomes the mean of the
// four axial ones, unless, bright, it spreads into its nearest neighbours
// as a point of light does. Twin of engine/stages/src/stages/defect_pixel.rs.

// c: the pixel; l r u d: axial neighbours; a b e f: diagonal ones; spread:
// 2 x its four nearest neighbours - their ring of eight (a knight's move).
// `defect_pixel::bound`: the variance `a * (level >> 8) + b` held at the
// largest u32.
fn dpc_bound(level: i32) -> u32 {
    let s = u32(max(level - i32(PEDESTAL), 0)) >> 8u;
    let a = P.dpc_noise_a;
    let b = P.dpc_noise_b;
    if (a != 0u && s > (0xffffffffu - b) / a) {
        return 0xffffffffu;
    }
    return a * s + b;
}

// `defect_pixel::stands_out`.
fn dpc_stands_out(d: i32, level: i32) -> bool {
    return d > i32(P.dpc_threshold) && u32(d) * u32(d) > dpc_bound(level);
}

// Whether pixel (x, y) is in the static defect map (a bitmap in `aux`).
fn dpc_mapped(x: u32, y: u32) -> bool {
    if (P.dpc_map_at == 0u) {
        return false;
    }
    let i = y * P.width + x;
    return ((aux[P.dpc_map_at + i / 32u] >> (i % 32u)) & 1u) == 1u;
}

fn dpc_decide(c: i32, l: i32, r: i32, u: i32, d: i32, a: i32, b: i32, e: i32, f: i32,
              spread: i32, mapped: bool) -> i32 {
    let lo = min(min(min(l, r), min(u, d)), min(min(a, b), min(e, f)));
    let hi = max(max(max(l, r), max(u, d)), max(max(a, b), max(e, f)));
    if (mapped || (dpc_stands_out(c - hi, hi) && spread < c - hi) || dpc_stands_out(lo - c, lo)) {
        return (l + r + u + d + 2) / 4;
    }
    return c;
}

fn dpc_src_at(x: i32, y: i32) -> i32 {
    let w = i32(P.width);
    let h = i32(P.height);
    return i32(src16(u32(reflect_i(y, h) * w + reflect_i(x, w))));
}

fn dpc_px(x: i32, y: i32) -> u32 {
    let c = dpc_src_at(x, y);
    if ((P.flags & FLAG_DPC) == 0u) {
        return u32(c);
    }
    let near = dpc_src_at(x - 1, y) + dpc_src_at(x + 1, y) + dpc_src_at(x, y - 1) + dpc_src_at(x, y + 1);
    let ring = dpc_src_at(x - 1, y - 2) + dpc_src_at(x + 1, y - 2) + dpc_src_at(x - 1, y + 2)
        + dpc_src_at(x + 1, y + 2) + dpc_src_at(x - 2, y - 1) + dpc_src_at(x + 2, y - 1)
        + dpc_src_at(x - 2, y + 1) + dpc_src_at(x + 2, y + 1);
    return u32(dpc_decide(c,
        dpc_src_at(x - 2, y), dpc_src_at(x + 2, y), dpc_src_at(x, y - 2), dpc_src_at(x, y + 2),
        dpc_src_at(x - 2, y - 2), dpc_src_at(x + 2, y - 2), dpc_src_at(x - 2, y + 2), dpc_src_at(x + 2, y + 2),
        2 * near - ring, dpc_mapped(u32(x), u32(y))));
}

@compute @workgroup_size(16, 16)
fn defect_pixel(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = P.width / 2u;
    if (id.x >= half || id.y >= P.height) {
        return;
    }
    let x = i32(id.x * 2u);
    let y = i32(id.y);
    dst[id.y * half + id.x] = pack2(dpc_px(x, y), dpc_px(x + 1, y));
}
