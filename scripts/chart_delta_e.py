#!/usr/bin/env python3
"""The colour of a developed ColorChecker, measured from outside the engine.

    chart_delta_e.py PNG CENTRES_JSON

PNG is a 16-bit linear RGB render (`isp process --linear16`: linear sRGB
primaries, black removed, no tone curve); CENTRES_JSON the 24 patch centres
in pixels, [[x, y], ...] in the chart's order. Each patch is the mean of a
square window around its centre, 0.3 of the patch pitch wide. The exposure is normalised on the four middle grey
patches (20-23: the white may clip, the black is noise), so that what is
left is colour. The CIEDE2000 difference of each patch is taken with
colour-science against its ColorChecker reference ("ColorChecker24 - After
November 2014", D50; the render adapted from D65 with Bradford). Prints JSON:
mean and max dE2000, every patch's, and the grey patches' r/g and b/g.

The PNG is read here with zlib (no image library): 16-bit RGB,
non-interlaced, as the engine writes it.
"""

import json
import struct
import sys
import zlib

import numpy as np
import colour


def read_png16(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, ctype, interlace) == (16, 2, 0), f"{path}: not 16-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    bpp, stride = 6, w * 6
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    return out.view(">u2").reshape(h, w, 3).astype(np.float64) / 65535.0


def main():
    img = read_png16(sys.argv[1])
    centres = json.load(open(sys.argv[2]))
    # The window: 0.3 of the patch pitch (the distance between neighbouring
    # centres) wide, so it stays inside a patch (0.8 of the pitch) tilted by
    # up to ~20 degrees and averages a few hundred pixels of noise.
    c = np.array(centres, dtype=np.float64)
    d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    pitch = float(np.median(d.min(axis=1)))
    r = max(1, int(0.15 * pitch))
    rgb = np.array([
        img[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1].reshape(-1, 3).mean(axis=0)
        for x, y in centres
    ])
    cc = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
    ref_xyz = colour.xyY_to_XYZ(np.array(list(cc.data.values())))
    d50 = colour.xy_to_XYZ(cc.illuminant)
    ref_lab = colour.XYZ_to_Lab(ref_xyz, cc.illuminant)
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    d65 = colour.xy_to_XYZ(srgb.whitepoint)
    xyz = colour.RGB_to_XYZ(rgb, srgb, apply_cctf_decoding=False)
    xyz = colour.adaptation.chromatic_adaptation_VonKries(xyz, d65, d50, transform="Bradford")
    greys = slice(19, 23)
    k = ref_xyz[greys, 1].sum() / xyz[greys, 1].sum()
    lab = colour.XYZ_to_Lab(xyz * k, cc.illuminant)
    de = colour.delta_E(lab, ref_lab, method="CIE 2000")
    g = rgb[greys]
    print(json.dumps({
        "mean_de2000": float(de.mean()),
        "max_de2000": float(de.max()),
        "de2000": [float(v) for v in de],
        "grey_r_over_g": [float(v) for v in g[:, 0] / g[:, 1]],
        "grey_b_over_g": [float(v) for v in g[:, 2] / g[:, 1]],
        "exposure_scale": float(k),
        "window": 2 * r + 1,
    }))


if __name__ == "__main__":
    main()
