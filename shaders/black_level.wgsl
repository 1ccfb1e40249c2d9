// black_level.wgsl: map the sensor's black per CFA site to PEDESTAL and its
// white level to 65535 (below black stays below, down to 0). Twin of engine/stages/src/stages/black_level.rs.

fn black_level_px(v: u32, x: u32, y: u32) -> u32 {
    let s = site_at(x, y);
    return clamp_u16((f32(v) - P.bl_ped[s]) * P.bl_scale[s] + PEDESTAL_F);
}

// Mosaic in `src` -> mosaic in `dst`, one invocation per word.
@compute @workgroup_size(16, 16)
fn black_level(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = P.width / 2u;
    if (id.x >= half || id.y >= P.height) {
        return;
    }
    let i = id.y * half + id.x;
    let w = src[i];
    let x = id.x * 2u;
    dst[i] = pack2(black_level_px(w & 0xffffu, x, id.y), black_level_px(w >> 16u, x + 1u, id.y));
}
