// lens_shading.wgsl: multiply each pixel (about the pedestal) by its site's
// gain, bilinear in a grid stretched over the frame. Twin of engine/stages/src/stages/lens_shading.rs
// (same order of operations: interpolate down the two grid columns, then across).

fn lsc_grid(c: u32, i: u32) -> f32 {
    let gw = P.lsc_width;
    let gh = P.lsc_height;
    return bitcast<f32>(aux[P.lsc_at + c * gw * gh + i]);
}

fn lsc_gain(c: u32, x: u32, y: u32) -> f32 {
    let gw = P.lsc_width;
    let gh = P.lsc_height;
    let fx = f32(x) * f32(gw - 1u) / f32(max(P.width - 1u, 1u));
    let fy = f32(y) * f32(gh - 1u) / f32(max(P.height - 1u, 1u));
    let x0 = min(u32(fx), gw - 2u);
    let y0 = min(u32(fy), gh - 2u);
    let ax = fx - f32(x0);
    let ay = fy - f32(y0);
    let left = lsc_grid(c, y0 * gw + x0) * (1.0 - ay) + lsc_grid(c, (y0 + 1u) * gw + x0) * ay;
    let right = lsc_grid(c, y0 * gw + x0 + 1u) * (1.0 - ay) + lsc_grid(c, (y0 + 1u) * gw + x0 + 1u) * ay;
    return left * (1.0 - ax) + right * ax;
}

fn lsc_px(v: u32, x: u32, y: u32) -> u32 {
    if ((P.flags & FLAG_LSC) == 0u) {
        return v;
    }
    return gain_about_pedestal(v, lsc_gain(site_at(x, y), x, y));
}

@compute @workgroup_size(16, 16)
fn lens_shading(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = P.width / 2u;
    if (id.x >= half || id.y >= P.height) {
        return;
    }
    let i = id.y * half + id.x;
    let w = src[i];
    let x = id.x * 2u;
    dst[i] = pack2(lsc_px(w & 0xffffu, x, id.y), lsc_px(w >> 16u, x + 1u, id.y));
}
