// scaler.wgsl: resize RGBA8 by averaging each output pixel's box of source
// pixels, the colour channels in linear light (sRGB codes decoded through
// the table at SRGB_DEC_AT, the mean encoded back by a binary search of the
// midpoints at SRGB_MID_AT), alpha as it is. Twin of
// engine/stages/src/stages/scaler.rs; integer, exact.

fn srgb_encode(v: u32) -> u32 {
    var lo = 0u;
    for (var step = 128u; step > 0u; step = step / 2u) {
        if (aux[SRGB_MID_AT + lo + step] <= v) {
            lo += step;
        }
    }
    return lo;
}

@compute @workgroup_size(16, 16)
fn scaler(@builtin(global_invocation_id) id: vec3<u32>) {
    let w = P.width;
    let h = P.height;
    let ow = P.out_width;
    let oh = P.out_height;
    if (id.x >= ow || id.y >= oh) {
        return;
    }
    let x0 = id.x * w / ow;
    let x1 = max((id.x + 1u) * w / ow, x0 + 1u);
    let y0 = id.y * h / oh;
    let y1 = max((id.y + 1u) * h / oh, y0 + 1u);
    var s = vec4<u32>(0u);
    for (var y = y0; y < y1; y++) {
        for (var x = x0; x < x1; x++) {
            let p = src[y * w + x];
            s += vec4<u32>(aux[SRGB_DEC_AT + (p & 0xffu)], aux[SRGB_DEC_AT + ((p >> 8u) & 0xffu)],
                aux[SRGB_DEC_AT + ((p >> 16u) & 0xffu)], p >> 24u);
        }
    }
    let n = (x1 - x0) * (y1 - y0);
    let o = (s + vec4<u32>(n / 2u)) / n;
    dst[id.y * ow + id.x] = srgb_encode(o.x) | (srgb_encode(o.y) << 8u) | (srgb_encode(o.z) << 16u)
        | (o.w << 24u);
}
