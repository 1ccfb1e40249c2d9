// white_balance.wgsl: per-channel gains on the mosaic, about the pedestal.
// Twin of engine/stages/src/stages/white_balance.rs.

fn wb_px(v: u32, x: u32, y: u32) -> u32 {
    return gain_about_pedestal(v, P.wb[site_rgb(site_at(x, y))]);
}

@compute @workgroup_size(16, 16)
fn white_balance(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = P.width / 2u;
    if (id.x >= half || id.y >= P.height) {
        return;
    }
    let i = id.y * half + id.x;
    let w = src[i];
    let x = id.x * 2u;
    dst[i] = pack2(wb_px(w & 0xffffu, x, id.y), wb_px(w >> 16u, x + 1u, id.y));
}
