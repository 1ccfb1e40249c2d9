// unpack.wgsl: sensor bytes -> one u16 per pixel at the sensor's bit depth.
// Twin of engine/stages/src/stages/unpack.rs (plain RAW8..16 little-endian words,
// CSI-2 RAW10P: 4 pixels in 5 bytes, RAW12P: 2 pixels in 3 bytes).

fn raw_byte(i: u32) -> u32 {
    return (src[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

// The sample at (x, y) of the raw frame in `src`.
fn unpack_px(x: u32, y: u32) -> u32 {
    let row = y * P.stride;
    let bits = P.bits;
    if (P.packing == 0u) {
        if (bits == 8u) {
            return raw_byte(row + x);
        }
        let i = row + 2u * x;
        let mask = (1u << bits) - 1u;
        return (raw_byte(i) | (raw_byte(i + 1u) << 8u)) & mask;
    }
    if (bits == 10u) {
        let g = row + (x >> 2u) * 5u;
        let k = x & 3u;
        return (raw_byte(g + k) << 2u) | ((raw_byte(g + 4u) >> (2u * k)) & 3u);
    }
    let g = row + (x >> 1u) * 3u;
    let lo = raw_byte(g + 2u);
    if ((x & 1u) == 0u) {
        return (raw_byte(g) << 4u) | (lo & 0xfu);
    }
    return (raw_byte(g + 1u) << 4u) | (lo >> 4u);
}

// One invocation per output word (two pixels of a row).
@compute @workgroup_size(16, 16)
fn unpack(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = P.width / 2u;
    if (id.x >= half || id.y >= P.height) {
        return;
    }
    let x = id.x * 2u;
    dst[id.y * half + id.x] = pack2(unpack_px(x, id.y), unpack_px(x + 1u, id.y));
}
