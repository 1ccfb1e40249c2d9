// The bracket merge (fusion/hdr.rs's `merge_bracket` twin): one invocation
// per Bayer quad. Each frame's aligned quad is brought to the reference's
// exposure and averaged with the inverse of its noise variance there; a quad
// with any sample at the clip level gives nothing, and a frame that differs
// from an unclipped reference by more than 5 sigma (motion) is left out of
// the quad. Samples are u16, two to a u32 word. The output holds the linear
// mosaic (f32, above black, at the reference's exposure), then per quad the
// frame that weighed most (-1: none).

struct HdrParams {
    width: u32,
    height: u32,
    tiles_x: u32,
    tiles_y: u32,
    frames: u32,
    reference: u32,
    black: f32,
    clip: f32,
    // Per frame: exposure ratio, shot and read noise, unused.
    exposures: array<vec4<f32>, 16>,
};

const STRIDE: u32 = 8u;

@group(0) @binding(0) var<uniform> hp: HdrParams;
// Frame f's sample i at word (f * width * height + i) / 2.
@group(0) @binding(1) var<storage, read> frames: array<u32>;
// Frame f's offset of tile t at f * tiles + t (grey pixels).
@group(0) @binding(2) var<storage, read> offsets: array<vec2<i32>>;
// width * height linear samples, then width * height / 4 winners.
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn raw(f: u32, i: u32) -> f32 {
    let word = frames[(f * hp.width * hp.height + i) >> 1u];
    return f32((word >> (((f * hp.width * hp.height + i) & 1u) * 16u)) & 0xffffu);
}

fn variance(f: u32, signal: f32) -> f32 {
    let e = hp.exposures[f];
    return e.y * max(signal, 0.0) + e.z;
}

// Frame f's quad at grey pixel (gx, gy), aligned; `ok` false when clipped.
struct Quad {
    s: vec4<f32>,
    ok: bool,
};

fn quad(f: u32, gx: u32, gy: u32) -> Quad {
    let gw = hp.width / 2u;
    let gh = hp.height / 2u;
    var d = vec2<i32>(0, 0);
    if (f != hp.reference) {
        let kx = min((gx + STRIDE / 2u) / STRIDE, hp.tiles_x - 1u);
        let ky = min((gy + STRIDE / 2u) / STRIDE, hp.tiles_y - 1u);
        d = offsets[f * hp.tiles_x * hp.tiles_y + ky * hp.tiles_x + kx];
    }
    let x = u32(clamp(i32(gx) + d.x, 0, i32(gw) - 1));
    let y = u32(clamp(i32(gy) + d.y, 0, i32(gh) - 1));
    let w = hp.width;
    let s = vec4<f32>(
        raw(f, 2u * y * w + 2u * x),
        raw(f, 2u * y * w + 2u * x + 1u),
        raw(f, (2u * y + 1u) * w + 2u * x),
        raw(f, (2u * y + 1u) * w + 2u * x + 1u),
    );
    var q: Quad;
    q.ok = !any(s >= vec4<f32>(hp.clip));
    q.s = s - vec4<f32>(hp.black);
    return q;
}

@compute @workgroup_size(16, 16)
fn merge_bracket(@builtin(global_invocation_id) id: vec3<u32>) {
    let gw = hp.width / 2u;
    let gh = hp.height / 2u;
    let gx = id.x;
    let gy = id.y;
    if (gx >= gw || gy >= gh) {
        return;
    }
    let r = quad(hp.reference, gx, gy);
    let re = hp.exposures[hp.reference];
    var sum = vec4<f32>(0.0);
    var wsum = vec4<f32>(0.0);
    var best = -1;
    var best_w = 0.0;
    var shortest = 3.4e38;
    for (var f = 0u; f < hp.frames; f++) {
        let e = hp.exposures[f];
        shortest = min(shortest, e.x);
        let q = quad(f, gx, gy);
        if (!q.ok) {
            continue;
        }
        var ghost = false;
        var wi = vec4<f32>(0.0);
        for (var c = 0u; c < 4u; c++) {
            let v = q.s[c] / e.x;
            let vr = variance(f, q.s[c]) / (e.x * e.x);
            if (f != hp.reference && r.ok) {
                let rv = r.s[c] / re.x;
                let rvar = variance(hp.reference, r.s[c]) / (re.x * re.x);
                if (abs(v - rv) > 5.0 * sqrt(vr + rvar)) {
                    ghost = true;
                }
            }
            wi[c] = 1.0 / max(vr, 1e-12);
        }
        if (ghost) {
            continue;
        }
        var wq = 0.0;
        for (var c = 0u; c < 4u; c++) {
            sum[c] += wi[c] * q.s[c] / e.x;
            wsum[c] += wi[c];
            wq += wi[c];
        }
        if (wq > best_w) {
            best = i32(f);
            best_w = wq;
        }
    }
    let w = hp.width;
    for (var c = 0u; c < 4u; c++) {
        var v = (hp.clip - hp.black) / shortest;
        if (wsum[c] > 0.0) {
            v = sum[c] / wsum[c];
        }
        out[(2u * gy + (c >> 1u)) * w + 2u * gx + (c & 1u)] = v;
    }
    out[w * hp.height + gy * gw + gx] = f32(best);
}
