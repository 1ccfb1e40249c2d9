// One level of the coarse-to-fine tile alignment (fusion/align.rs's twin):
// every tile of the reference starts from no motion and the offsets of the
// nearest coarser tile and its four neighbours (scaled to this level), then
// searches a window around the best; each candidate's cost (mean absolute
// difference at the finest level, mean squared above) grows by the motion
// penalty per pixel of offset. Ties keep the first candidate, as the CPU's
// loop does.

struct AlignParams {
    width: u32,
    height: u32,
    tile: u32,
    radius: i32,
    up: i32,
    tiles_x: u32,
    tiles_y: u32,
    l1: u32,
    coarse_tiles_x: u32,
    coarse_tiles_y: u32,
    coarse_tile: u32,
    has_coarse: u32,
    penalty: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
};

@group(0) @binding(0) var<uniform> ap: AlignParams;
@group(0) @binding(1) var<storage, read> ref_px: array<f32>;
@group(0) @binding(2) var<storage, read> frame_px: array<f32>;
// A tile's offset and its (penalised) cost. One buffer for both: four
// storage buffers is what every adapter offers a shader.
struct TileMatch {
    d: vec2<i32>,
    cost: f32,
    _pad: f32,
};

@group(0) @binding(3) var<storage, read> coarse: array<TileMatch>;
@group(0) @binding(4) var<storage, read_write> matches: array<TileMatch>;

fn frame_at(x: i32, y: i32) -> f32 {
    let cx = clamp(x, 0, i32(ap.width) - 1);
    let cy = clamp(y, 0, i32(ap.height) - 1);
    return frame_px[u32(cy) * ap.width + u32(cx)];
}

fn penalised(x0: i32, y0: i32, d: vec2<i32>) -> f32 {
    let t = i32(ap.tile);
    var s = 0.0;
    var n = 0u;
    for (var y = max(y0, 0); y < min(y0 + t, i32(ap.height)); y++) {
        for (var x = max(x0, 0); x < min(x0 + t, i32(ap.width)); x++) {
            let diff = ref_px[u32(y) * ap.width + u32(x)] - frame_at(x + d.x, y + d.y);
            if (ap.l1 == 1u) {
                s += abs(diff);
            } else {
                s += diff * diff;
            }
            n++;
        }
    }
    let c = s / f32(max(n, 1u));
    return c * (1.0 + ap.penalty * f32(abs(d.x) + abs(d.y)));
}

@compute @workgroup_size(64)
fn align_level(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= ap.tiles_x * ap.tiles_y) {
        return;
    }
    let kx = i32(i % ap.tiles_x);
    let ky = i32(i / ap.tiles_x);
    let step = i32(ap.tile / 2u);
    let x0 = kx * step - step;
    let y0 = ky * step - step;
    var best_d = vec2<i32>(0, 0);
    var best_c = penalised(x0, y0, best_d);
    if (ap.has_coarse == 1u) {
        let cstep = f32(ap.coarse_tile / 2u);
        let cx = (f32(x0) + f32(ap.tile) / 2.0) / f32(ap.up);
        let cy = (f32(y0) + f32(ap.tile) / 2.0) / f32(ap.up);
        let kcx = i32(clamp(floor((cx + cstep) / cstep - 1.0 + 0.5), 0.0, f32(ap.coarse_tiles_x) - 1.0));
        let kcy = i32(clamp(floor((cy + cstep) / cstep - 1.0 + 0.5), 0.0, f32(ap.coarse_tiles_y) - 1.0));
        var nb = array<vec2<i32>, 5>(
            vec2<i32>(0, 0),
            vec2<i32>(-1, 0),
            vec2<i32>(1, 0),
            vec2<i32>(0, -1),
            vec2<i32>(0, 1),
        );
        for (var k = 0; k < 5; k++) {
            let nx = kcx + nb[k].x;
            let ny = kcy + nb[k].y;
            if (nx >= 0 && ny >= 0 && nx < i32(ap.coarse_tiles_x) && ny < i32(ap.coarse_tiles_y)) {
                let d = coarse[u32(ny) * ap.coarse_tiles_x + u32(nx)].d * ap.up;
                let c = penalised(x0, y0, d);
                if (c < best_c) {
                    best_c = c;
                    best_d = d;
                }
            }
        }
    }
    let start = best_d;
    for (var sy = -ap.radius; sy <= ap.radius; sy++) {
        for (var sx = -ap.radius; sx <= ap.radius; sx++) {
            let d = start + vec2<i32>(sx, sy);
            let c = penalised(x0, y0, d);
            if (c < best_c) {
                best_c = c;
                best_d = d;
            }
        }
    }
    matches[i] = TileMatch(best_d, best_c, 0.0);
}
