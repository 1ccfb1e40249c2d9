#!/usr/bin/env python3
"""A developed DNG against LibRaw's development of the same file (issue 23).

    dng_libraw_delta_e.py DNG PNG CENTRES_JSON

DNG is a single-ColorMatrix file (LibRaw and dcraw take one matrix); PNG the
engine's 16-bit linear render of it (`isp process dng:DNG --linear16`:
linear sRGB primaries, no tone curve); CENTRES_JSON the points to compare,
[[x, y], ...] (the ColorChecker's 24 patch centres). LibRaw (rawpy) develops
the file with its own white balance and no brightening, linear:
``postprocess(use_camera_wb=True, no_auto_bright=True, gamma=(1, 1),
output_bps=16, output_color=sRGB, demosaic LINEAR, highlight clip)``. Each
point is the mean of a square window 0.3 of the pitch between points wide in
both. The engine's exposure is matched to LibRaw's on the median of the
points' Y ratios (a still's AE sets the engine's), so what is left is colour; each point's
CIEDE2000 between the two is taken with colour-science (D65). Prints JSON:
mean and max dE2000 and every point's.
"""

import json
import sys
from pathlib import Path

import numpy as np
import colour
import rawpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chart_delta_e import read_png16  # noqa: E402


def window_means(img, centres):
    c = np.array(centres, dtype=np.float64)
    d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    r = max(1, int(0.15 * float(np.median(d.min(axis=1)))))
    return np.array([
        img[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1].reshape(-1, 3).mean(axis=0)
        for x, y in centres
    ])


def main():
    dng, png, centres = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
    with rawpy.imread(dng) as raw:
        theirs = raw.postprocess(
            use_camera_wb=True,
            no_auto_bright=True,
            gamma=(1, 1),
            output_bps=16,
            output_color=rawpy.ColorSpace.sRGB,
            demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR,
            highlight_mode=rawpy.HighlightMode.Clip,
            user_flip=0,
        ).astype(np.float64) / 65535.0
    ours = read_png16(png)
    assert ours.shape == theirs.shape, f"{ours.shape} vs LibRaw's {theirs.shape}"
    a, b = window_means(ours, centres), window_means(theirs, centres)
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    xa = colour.RGB_to_XYZ(a, srgb, apply_cctf_decoding=False)
    xb = colour.RGB_to_XYZ(b, srgb, apply_cctf_decoding=False)
    # The median of the points' Y ratios: robust to the few near clipping,
    # where the two handle highlights differently by design.
    k = float(np.median(xb[:, 1] / np.maximum(xa[:, 1], 1e-12)))
    white = srgb.whitepoint
    de = colour.delta_E(colour.XYZ_to_Lab(xa * k, white), colour.XYZ_to_Lab(xb, white),
                        method="CIE 2000")
    print(json.dumps({
        "mean_de2000": float(de.mean()),
        "max_de2000": float(de.max()),
        "de2000": [float(v) for v in de],
        "exposure_scale": float(k),
    }))


if __name__ == "__main__":
    main()
