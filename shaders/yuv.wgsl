// yuv.wgsl: RGB16 -> Y, U, V planes (BT.601 / BT.709, full or limited range).
// Twin of engine/stages/src/stages/yuv.rs; float arithmetic, so held to +-1 LSB.

fn yuv_px(v: vec3<u32>) -> vec3<u32> {
    let r = f32(v.x) / 65535.0;
    let g = f32(v.y) / 65535.0;
    let b = f32(v.z) / 65535.0;
    let kr = P.yuv_kr;
    let kb = P.yuv_kb;
    let kg = 1.0 - kr - kb;
    let y = kr * r + kg * g + kb * b;
    var o = vec3<f32>(y, (b - y) / (2.0 * (1.0 - kb)) + 0.5, (r - y) / (2.0 * (1.0 - kr)) + 0.5);
    if (P.yuv_limited != 0.0) {
        // The 8-bit legal range times 256 (Y 4096..=60160).
        o = vec3<f32>((4096.0 + 56064.0 * o.x) / 65535.0, (4096.0 + 57344.0 * o.y) / 65535.0,
            (4096.0 + 57344.0 * o.z) / 65535.0);
    }
    return vec3<u32>(clamp_u16(o.x * 65535.0), clamp_u16(o.y * 65535.0), clamp_u16(o.z * 65535.0));
}

// RGB16 in `src` -> planes Y, U, V (each width*height u16) in `dst`.
@compute @workgroup_size(256)
fn yuv(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = (id.y * n.x * 256u + id.x) * 2u;
    let plane = P.width * P.height / 2u;
    if (i >= P.width * P.height) {
        return;
    }
    let p = load_rgb2(i);
    let a = yuv_px(p[0]);
    let b = yuv_px(p[1]);
    dst[i / 2u] = pack2(a.x, b.x);
    dst[plane + i / 2u] = pack2(a.y, b.y);
    dst[2u * plane + i / 2u] = pack2(a.z, b.z);
}
