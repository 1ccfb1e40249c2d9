// highlights.wgsl: colours blended towards neutral as a pixel nears
// clipping, on RGB16 before the CCM. Twin of engine/stages/src/stages/highlights.rs
// (integer arithmetic, so the two agree exactly).

fn highlights_px(v: vec3<u32>) -> vec3<u32> {
    if ((P.flags & FLAG_HL) == 0u) {
        return v;
    }
    let m = max(max(v.x, v.y), v.z);
    let t = P.hl_threshold;
    if (m <= t) {
        return v;
    }
    let num = m - t;
    let den = P.hl_den;
    return v + ((vec3<u32>(m) - v) * num + vec3<u32>(den / 2u)) / den;
}

// RGB16 in `src` -> RGB16 in `dst`; one invocation per two pixels.
@compute @workgroup_size(256)
fn highlights(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = (id.y * n.x * 256u + id.x) * 2u;
    if (i >= P.width * P.height) {
        return;
    }
    let p = load_rgb2(i);
    store_rgb2(i, highlights_px(p[0]), highlights_px(p[1]));
}
