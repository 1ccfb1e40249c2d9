// demosaic.wgsl: bilinear and Malvar-He-Cutler (integer kernels, /16), edges
// mirrored. Twin of engine/stages/src/stages/demosaic.rs.

// The 13 taps both methods use around the centre pixel.
struct Nbhd {
    c: i32,
    l1: i32, r1: i32, u1: i32, d1: i32,
    l2: i32, r2: i32, u2: i32, d2: i32,
    ul: i32, ur: i32, dl: i32, dr: i32,
};

fn round16(s: i32) -> u32 {
    return u32(clamp((s + 8) >> 4u, 0, 65535));
}

fn malvar_at(site: u32, n: Nbhd) -> vec3<u32> {
    let c = n.c;
    let axial1 = n.l1 + n.r1 + n.u1 + n.d1;
    let axial2 = n.l2 + n.r2 + n.u2 + n.d2;
    let diag = n.ul + n.ur + n.dl + n.dr;
    let h1 = n.l1 + n.r1;
    let v1 = n.u1 + n.d1;
    let h2 = n.l2 + n.r2;
    let v2 = n.u2 + n.d2;
    let v = u32(clamp(c, 0, 65535));
    if (site == 0u || site == 3u) {
        let g = round16(8 * c + 4 * axial1 - 2 * axial2);
        let x = round16(12 * c + 4 * diag - 3 * axial2);
        if (site == 0u) {
            return vec3<u32>(v, g, x);
        }
        return vec3<u32>(x, g, v);
    }
    let horiz = round16(10 * c + 8 * h1 - 2 * h2 - 2 * diag + v2);
    let vert = round16(10 * c + 8 * v1 - 2 * v2 - 2 * diag + h2);
    if (site == 1u) {
        return vec3<u32>(horiz, v, vert);
    }
    return vec3<u32>(vert, v, horiz);
}

fn bilinear_at(site: u32, n: Nbhd) -> vec3<u32> {
    let c = u32(n.c) & 0xffffu;
    let axial = u32((n.l1 + n.r1 + n.u1 + n.d1 + 2) / 4) & 0xffffu;
    let diag = u32((n.ul + n.ur + n.dl + n.dr + 2) / 4) & 0xffffu;
    let h = u32((n.l1 + n.r1 + 1) / 2) & 0xffffu;
    let v = u32((n.u1 + n.d1 + 1) / 2) & 0xffffu;
    switch site {
        case 0u: { return vec3<u32>(c, axial, diag); }
        case 3u: { return vec3<u32>(diag, axial, c); }
        case 1u: { return vec3<u32>(h, c, v); }
        default: { return vec3<u32>(v, c, h); }
    }
}

fn demosaic_at(site: u32, n: Nbhd) -> vec3<u32> {
    if ((P.flags & FLAG_MALVAR) != 0u) {
        return malvar_at(site, n);
    }
    return bilinear_at(site, n);
}

fn dm_src_at(x: i32, y: i32) -> i32 {
    let w = i32(P.width);
    let h = i32(P.height);
    return i32(src16(u32(reflect_i(y, h) * w + reflect_i(x, w))));
}

fn dm_src_nbhd(x: i32, y: i32) -> Nbhd {
    return Nbhd(dm_src_at(x, y),
        dm_src_at(x - 1, y), dm_src_at(x + 1, y), dm_src_at(x, y - 1), dm_src_at(x, y + 1),
        dm_src_at(x - 2, y), dm_src_at(x + 2, y), dm_src_at(x, y - 2), dm_src_at(x, y + 2),
        dm_src_at(x - 1, y - 1), dm_src_at(x + 1, y - 1), dm_src_at(x - 1, y + 1), dm_src_at(x + 1, y + 1));
}

// Write two RGB16 pixels (pixel index i even) as three words of `dst`.
fn store_rgb2(i: u32, a: vec3<u32>, b: vec3<u32>) {
    let wi = i / 2u * 3u;
    dst[wi] = pack2(a.x, a.y);
    dst[wi + 1u] = pack2(a.z, b.x);
    dst[wi + 2u] = pack2(b.y, b.z);
}

// Mosaic in `src` -> RGB16 in `dst`; one invocation per two pixels of a row.
@compute @workgroup_size(16, 16)
fn demosaic(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = P.width / 2u;
    if (id.x >= half || id.y >= P.height) {
        return;
    }
    let x = id.x * 2u;
    let y = id.y;
    let a = demosaic_at(site_at(x, y), dm_src_nbhd(i32(x), i32(y)));
    let b = demosaic_at(site_at(x + 1u, y), dm_src_nbhd(i32(x) + 1, i32(y)));
    store_rgb2(y * P.width + x, a, b);
}
