// defect_pixel.wgsl: a pixel outside the range of its eight same-colour
// neighbours (two away) by more than the threshold becomes the mean of the
// four axial ones, unless, bright, it spreads into its nearest neighbours
// as a point of light does. Twin of engine/src/stages/defect_pixel.rs.

// c: the pixel; l r u d: axial neighbours; a b e f: diagonal ones; spread:
// 2 x its four nearest neighbours - their ring of eight (a knight's move).
fn dpc_decide(c: i32, l: i32, r: i32, u: i32, d: i32, a: i32, b: i32, e: i32, f: i32,
              spread: i32) -> i32 {
    let t = i32(P.dpc_threshold);
    let lo = min(min(min(l, r), min(u, d)), min(min(a, b), min(e, f)));
    let hi = max(max(max(l, r), max(u, d)), max(max(a, b), max(e, f)));
    if ((c > hi + t && spread < c - hi) || c < lo - t) {
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
        2 * near - ring));
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
