// The burst merge (fusion/merge.rs's twin): per tile and frame a
// Wiener-style weight from the frame's worst quarter-tile difference to the
// reference against the noise model, then per pixel the raised-cosine blend
// of the (up to) four tiles covering it, each the weighted mean of the
// aligned frames. Samples are u16, two to a u32 word.

struct MergeParams {
    width: u32,
    height: u32,
    tiles_x: u32,
    tiles_y: u32,
    frames: u32,
    reference: u32,
    black: f32,
    white: f32,
    shot: f32,
    read: f32,
    robustness: f32,
    _pad: u32,
};

const TILE: i32 = 16;
const STRIDE: i32 = 8;
const TAU: f32 = 6.283185307179586;

@group(0) @binding(0) var<uniform> mp: MergeParams;
// Frame f's sample i at word (f * width * height + i) / 2.
@group(0) @binding(1) var<storage, read> frames: array<u32>;
// Frame f's offset of tile t at f * tiles + t (grey pixels).
@group(0) @binding(2) var<storage, read> offsets: array<vec2<i32>>;
// Tile t's weight of frame f at t * frames + f.
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> merged: array<u32>;

// The sample of quad position (qx, qy) at grey pixel (x, y) of frame f,
// clamped to the image.
fn sample(f: u32, qx: i32, qy: i32, x: i32, y: i32) -> f32 {
    let gw = i32(mp.width / 2u);
    let gh = i32(mp.height / 2u);
    let cx = clamp(x, 0, gw - 1);
    let cy = clamp(y, 0, gh - 1);
    let i = f * mp.width * mp.height + u32((2 * cy + qy) * i32(mp.width) + 2 * cx + qx);
    let word = frames[i >> 1u];
    return f32((word >> ((i & 1u) * 16u)) & 0xffffu);
}

fn window(i: i32) -> f32 {
    return 0.5 - 0.5 * cos(TAU * (f32(i) + 0.5) / f32(TILE));
}

@compute @workgroup_size(64)
fn merge_weights(@builtin(global_invocation_id) id: vec3<u32>) {
    let tiles = mp.tiles_x * mp.tiles_y;
    let n = id.x;
    if (n >= tiles * mp.frames) {
        return;
    }
    let t = n / mp.frames;
    let f = n % mp.frames;
    if (f == mp.reference) {
        weights[n] = 1.0;
        return;
    }
    let kx = i32(t % mp.tiles_x);
    let ky = i32(t / mp.tiles_x);
    let x0 = kx * STRIDE - STRIDE;
    let y0 = ky * STRIDE - STRIDE;
    let d = offsets[f * tiles + t];
    let half = TILE / 2;
    var worst = 0.0;
    var signal = 0.0;
    for (var by = 0; by < 2; by++) {
        for (var bx = 0; bx < 2; bx++) {
            var s = 0.0;
            var sig = 0.0;
            for (var y = 0; y < half; y++) {
                for (var x = 0; x < half; x++) {
                    let gx = x0 + bx * half + x;
                    let gy = y0 + by * half + y;
                    for (var q = 0; q < 4; q++) {
                        let qx = q & 1;
                        let qy = q >> 1u;
                        let r = sample(mp.reference, qx, qy, gx, gy);
                        let a = sample(f, qx, qy, gx + d.x, gy + d.y);
                        s += (a - r) * (a - r);
                        sig += r;
                    }
                }
            }
            let cnt = f32(half * half * 4);
            worst = max(worst, s / cnt);
            signal += sig / cnt;
        }
    }
    let noise = max(2.0 * (mp.shot * max(signal / 4.0 - mp.black, 0.0) + mp.read), 1e-6);
    let excess = max(worst - noise, 0.0);
    weights[n] = mp.robustness * noise / (excess + mp.robustness * noise);
}

// One invocation per grey pixel and quad row: the two samples of a word.
@compute @workgroup_size(16, 16)
fn merge_pixels(@builtin(global_invocation_id) id: vec3<u32>) {
    let gx = i32(id.x);
    let y = i32(id.y);
    if (gx >= i32(mp.width / 2u) || y >= i32(mp.height)) {
        return;
    }
    let gy = y >> 1u;
    let qy = y & 1;
    let tiles = mp.tiles_x * mp.tiles_y;
    var out = vec2<f32>(0.0, 0.0);
    for (var oy = 0; oy < 2; oy++) {
        let ky = gy / STRIDE + oy;
        let iy = gy - (ky * STRIDE - STRIDE);
        let wy = window(iy);
        for (var ox = 0; ox < 2; ox++) {
            let kx = gx / STRIDE + ox;
            let ix = gx - (kx * STRIDE - STRIDE);
            let t = u32(ky) * mp.tiles_x + u32(kx);
            var total = 0.0;
            for (var f = 0u; f < mp.frames; f++) {
                total += weights[t * mp.frames + f];
            }
            let win = wy * window(ix) / total;
            for (var qx = 0; qx < 2; qx++) {
                var v = 0.0;
                for (var f = 0u; f < mp.frames; f++) {
                    let wf = weights[t * mp.frames + f];
                    if (wf == 0.0) {
                        continue;
                    }
                    var d = vec2<i32>(0, 0);
                    if (f != mp.reference) {
                        d = offsets[f * tiles + t];
                    }
                    v += wf * sample(f, qx, qy, gx + d.x, gy + d.y);
                }
                out[qx] += v * win;
            }
        }
    }
    let lo = u32(clamp(out.x + 0.5, 0.0, mp.white));
    let hi = u32(clamp(out.y + 0.5, 0.0, mp.white));
    merged[(u32(y) * mp.width + u32(2 * gx)) >> 1u] = lo | (hi << 16u);
}
