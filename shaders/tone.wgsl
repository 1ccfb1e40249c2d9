// tone.wgsl: the tone curve (gamma, contrast, control points) through the
// tables the CPU builds once per parameter version (ToneLut). Twin of
// engine/src/stages/tone.rs: RGB16 -> RGBA8 for display or RGB16 encoded.

fn tone8(v: u32) -> u32 {
    return (aux[LUT8_AT + (v >> 2u)] >> ((v & 3u) * 8u)) & 0xffu;
}

fn tone16(v: u32) -> u32 {
    return (aux[LUT16_AT + (v >> 1u)] >> ((v & 1u) * 16u)) & 0xffffu;
}

fn rgba8_of(v: vec3<u32>) -> u32 {
    return tone8(v.x) | (tone8(v.y) << 8u) | (tone8(v.z) << 16u) | 0xff000000u;
}

// RGB16 in `src` -> RGBA8 in `dst`; one invocation per two pixels.
@compute @workgroup_size(256)
fn tone_rgba8(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = (id.y * n.x * 256u + id.x) * 2u;
    if (i >= P.width * P.height) {
        return;
    }
    let p = load_rgb2(i);
    dst[i] = rgba8_of(p[0]);
    dst[i + 1u] = rgba8_of(p[1]);
}

// RGB16 in `src` -> display-encoded RGB16 in `dst`.
@compute @workgroup_size(256)
fn tone_rgb16(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = (id.y * n.x * 256u + id.x) * 2u;
    if (i >= P.width * P.height) {
        return;
    }
    let p = load_rgb2(i);
    let a = vec3<u32>(tone16(p[0].x), tone16(p[0].y), tone16(p[0].z));
    let b = vec3<u32>(tone16(p[1].x), tone16(p[1].y), tone16(p[1].z));
    store_rgb2(i, a, b);
}
