#!/usr/bin/env python3
"""The synthetic colour checker's colour, fitted and scored outside the engine.

    checker_colour.py fit   PNG CENTRES_JSON
    checker_colour.py score PNG CENTRES_JSON

PNG is a 16-bit linear render (`isp process synthetic:checker --linear16`)
of the engine's synthetic `checker` scene; CENTRES_JSON its 24 patch
centres in pixels, [[x, y], ...] in chart order. The scene's patches are the
classic ColorChecker as 8-bit sRGB (the widely published values of
BabelColor's ColorChecker data, as on Wikipedia's "ColorChecker" page); this
script holds its own copy of them and turns them into colour with
colour-science. Each patch is the mean of a window 0.3 of the patch pitch
wide; the exposure is normalised on the four middle greys (20-23).

``fit`` takes a render made with an identity CCM (camera RGB after black
level, lens shading and white balance) and fits, with numpy's least
squares, the 3x3 matrix taking it to the patches' linear sRGB with every
row summing to 1 (white stays white): the CCM a tuning engineer would fit
from a chart. Prints {"ccm": [[...], ...], "residual": ...}.

``score`` takes a render made with a CCM and prints the CIEDE2000 of every
patch against the reference (D65, CIE 1931 2 degree), their mean and max,
and the grey patches' r/g and b/g.

Neither step uses the engine's colour code: the CCM comes from the picture
and the published values, so a mistake in how the engine (or its synthetic
sensor) turns a colour matrix into a CCM cannot cancel out.
"""

import json
import os
import sys

import numpy as np
import colour

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chart_delta_e import read_png16  # noqa: E402

# The classic ColorChecker in 8-bit sRGB (D65), patches 1 (dark skin) to
# 24 (black), row by row.
CLASSIC_SRGB8 = [
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67),
    (133, 128, 177), (103, 189, 170), (214, 126, 44), (80, 91, 166),
    (193, 90, 99), (94, 60, 108), (157, 188, 64), (224, 163, 46),
    (56, 61, 150), (70, 148, 73), (175, 54, 60), (231, 199, 31),
    (187, 86, 149), (8, 133, 161), (243, 243, 242), (200, 200, 200),
    (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
]
GREYS = slice(19, 23)


def patches(png, centres_json):
    img = read_png16(png)
    c = np.array(json.load(open(centres_json)), dtype=np.float64)
    d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    r = max(1, int(0.15 * float(np.median(d.min(axis=1)))))
    rgb = np.array([
        img[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1].reshape(-1, 3).mean(axis=0)
        for x, y in c
    ])
    return rgb, 2 * r + 1


def reference_linear():
    srgb8 = np.array(CLASSIC_SRGB8, dtype=np.float64) / 255.0
    return colour.cctf_decoding(srgb8, function="sRGB")


def normalised(rgb, ref):
    """`rgb` scaled so its grey patches' green matches the reference's."""
    return rgb * (ref[GREYS, 1].sum() / rgb[GREYS, 1].sum())


def fit(rgb, ref):
    """Rows m (3 values summing to 1) minimising |cam @ m - ref[:, i]|^2.

    With m = e3 + N t (e3 a row summing to 1, N a basis of the rows summing
    to 0) the constraint is built in and t is a plain least squares."""
    cam = normalised(rgb, ref)
    base = np.array([0.0, 0.0, 1.0])
    null = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    rows = []
    for i in range(3):
        t, *_ = np.linalg.lstsq(cam @ null, ref[:, i] - cam @ base, rcond=None)
        rows.append(base + null @ t)
    m = np.array(rows)
    residual = float(np.sqrt(((cam @ m.T - ref) ** 2).mean()))
    return m, residual


def score(rgb, ref):
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    d65 = srgb.whitepoint
    lab = colour.XYZ_to_Lab(
        colour.RGB_to_XYZ(normalised(rgb, ref), srgb, apply_cctf_decoding=False), d65)
    ref_lab = colour.XYZ_to_Lab(colour.RGB_to_XYZ(ref, srgb, apply_cctf_decoding=False), d65)
    de = colour.delta_E(lab, ref_lab, method="CIE 2000")
    g = rgb[GREYS]
    return {
        "mean_de2000": float(de.mean()),
        "max_de2000": float(de.max()),
        "de2000": [float(v) for v in de],
        "grey_r_over_g": [float(v) for v in g[:, 0] / g[:, 1]],
        "grey_b_over_g": [float(v) for v in g[:, 2] / g[:, 1]],
    }


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("fit", "score"):
        sys.exit(__doc__.split("\n\n")[1])
    rgb, window = patches(sys.argv[2], sys.argv[3])
    ref = reference_linear()
    if sys.argv[1] == "fit":
        m, residual = fit(rgb, ref)
        out = {"ccm": m.tolist(), "residual": residual}
    else:
        out = score(rgb, ref)
    out["window"] = window
    print(json.dumps(out))


if __name__ == "__main__":
    main()
