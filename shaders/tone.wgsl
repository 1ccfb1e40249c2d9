// tone.wgsl: the tone curve (exposure and roll-off, gamma, contrast, control
// points) through the tables the CPU builds once per parameter version
// (ToneLut): the scale of the pixel's largest channel, then the transfer
// function per channel. Twin of engine/stages/src/stages/tone.rs: RGB16 -> RGBA8
// for display or RGB16 encoded.

fn tone8(v: u32) -> u32 {
    return (aux[LUT8_AT + (v >> 2u)] >> ((v & 3u) * 8u)) & 0xffu;
}

fn tone16(v: u32) -> u32 {
    return (aux[LUT16_AT + (v >> 1u)] >> ((v & 1u) * 16u)) & 0xffffu;
}

// The samples ready for the tables: each times the scale of the largest
// (`ToneLut::scaled`).
fn tone_scaled(v: vec3<u32>) -> vec3<u32> {
    let s = bitcast<f32>(aux[SCALE_AT + max(max(v.x, v.y), v.z)]);
    let f = vec3<f32>(v) * s;
    return vec3<u32>(clamp_u16(f.x), clamp_u16(f.y), clamp_u16(f.z));
}

fn rgba8_of(v: vec3<u32>) -> u32 {
    let c = tone_scaled(v);
    return tone8(c.x) | (tone8(c.y) << 8u) | (tone8(c.z) << 16u) | 0xff000000u;
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
    let c = tone_scaled(p[0]);
    let d = tone_scaled(p[1]);
    let a = vec3<u32>(tone16(c.x), tone16(c.y), tone16(c.z));
    let b = vec3<u32>(tone16(d.x), tone16(d.y), tone16(d.z));
    store_rgb2(i, a, b);
}
