// ccm.wgsl: 3x3 colour correction matrix on RGB16; takes the pedestal off
// and clamps at black (the chain's one clamp there).
// Twin of engine/stages/src/stages/ccm.rs.

fn ccm_px(v: vec3<u32>) -> vec3<u32> {
    // The pedestal comes off here (the matrix is scaled for it on the CPU):
    // the chain's one clamp at black.
    let f = vec3<f32>(v) - vec3<f32>(PEDESTAL_F);
    return vec3<u32>(
        clamp_u16(P.ccm0.x * f.x + P.ccm0.y * f.y + P.ccm0.z * f.z),
        clamp_u16(P.ccm1.x * f.x + P.ccm1.y * f.y + P.ccm1.z * f.z),
        clamp_u16(P.ccm2.x * f.x + P.ccm2.y * f.y + P.ccm2.z * f.z));
}

// Two RGB16 pixels (pixel index i even) from three words of `src`.
fn load_rgb2(i: u32) -> array<vec3<u32>, 2> {
    let wi = i / 2u * 3u;
    let w0 = src[wi];
    let w1 = src[wi + 1u];
    let w2 = src[wi + 2u];
    return array<vec3<u32>, 2>(
        vec3<u32>(w0 & 0xffffu, w0 >> 16u, w1 & 0xffffu),
        vec3<u32>(w1 >> 16u, w2 & 0xffffu, w2 >> 16u));
}

// RGB16 in `src` -> RGB16 in `dst`; one invocation per two pixels.
@compute @workgroup_size(256)
fn ccm(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = (id.y * n.x * 256u + id.x) * 2u;
    if (i >= P.width * P.height) {
        return;
    }
    let p = load_rgb2(i);
    store_rgb2(i, ccm_px(p[0]), ccm_px(p[1]));
}
