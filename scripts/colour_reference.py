#!/usr/bin/env python3
# Pinned requirements (Python 3.11): colour-science==0.4.7 numpy>=2
"""colour-science as an outside reference for ``engine/src/calibrate/colour.rs``.

Run from the repository root::

    python scripts/colour_reference.py [--out engine/tests/data/colour/reference.json]

It writes one JSON file that the Rust tests in ``calibrate/colour.rs`` read:

``constants``
    The white points and matrices colour-science uses on the paths below, so a
    failing Rust test can tell a constant apart from an algorithm.

``ciede2000.sharma``
    The 34 test pairs of Sharma, Wu & Dalal (2005), "The CIEDE2000
    color-difference formula: implementation notes, supplementary test data,
    and mathematical observations", Color Res. Appl. 30(1), table 1: both
    L*a*b* values, the paper's Delta E00 (4 decimals) and colour-science's.
    The script stops if colour-science is more than 1e-4 from the paper.

``ciede2000.random``
    300 seeded pairs (general, near pairs, achromatic a=b=0, hue differences
    across 180 degrees on both sides of 0/360, mean hue near 275, low chroma)
    with colour-science's ``delta_E_CIE2000``.

``lab``
    100 seeded linear-sRGB triples in [0, 1) plus the 8 corners of the cube,
    each with XYZ (D65), XYZ adapted to D50 and L*a*b* (D50). Path: linear
    sRGB -> XYZ with the matrix derived from the IEC 61966-2-1 primaries and
    D65 -> ``colour.adaptation.chromatic_adaptation`` (von Kries, Bradford
    transform) D65 -> D50 -> ``colour.XYZ_to_Lab`` with D50.

``colorchecker``
    The 24 patches of ``CCS_COLOURCHECKERS["ColorChecker24 - After November
    2014"]`` (X-Rite's values as published in colour-science, stored there as
    xyY): name, xyY, L*a*b* relative to the D50 white used everywhere here,
    linear sRGB (D65, Bradford D50 -> D65), and, for the record, L*a*b*
    relative to the chart's own illuminant ("ICC D50"), which gives back
    X-Rite's printed two-decimal numbers.

``srgb_transfer``
    colour-science's sRGB encoding (``eotf_inverse_sRGB``) and decoding
    (``eotf_sRGB``) of a few values, thresholds included.

Choices, so the Rust side can agree to 1e-9:

* White points: colour-science's ``CCS_ILLUMINANTS["CIE 1931 2 Degree
  Standard Observer"]`` D50 = (0.3457, 0.3585) and D65 = (0.3127, 0.3290)
  (the four-decimal values of CIE 15:2004 table T.3), as XYZ with Y = 1.
* sRGB matrix: colour-science's ``RGB_COLOURSPACE_sRGB`` carries the
  four-decimal matrices printed in IEC 61966-2-1, which are not inverses of
  each other (about 1e-4 off). This script uses instead the matrix derived
  from the standard's primaries and D65 (``normalised_primary_matrix``) and
  its exact inverse; it checks that they round to the printed ones.

Output is deterministic (fixed seed, no timestamps): re-running with the same
package versions gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import colour  # noqa: E402

OBSERVER = "CIE 1931 2 Degree Standard Observer"
CHART = "ColorChecker24 - After November 2014"
SEED = 20_240_611

D50_XY = np.asarray(colour.CCS_ILLUMINANTS[OBSERVER]["D50"], dtype=float)
D65_XY = np.asarray(colour.CCS_ILLUMINANTS[OBSERVER]["D65"], dtype=float)
D50_XYZ = colour.xy_to_XYZ(D50_XY)
D65_XYZ = colour.xy_to_XYZ(D65_XY)

SRGB = colour.RGB_COLOURSPACES["sRGB"]
XYZ_FROM_RGB = colour.normalised_primary_matrix(SRGB.primaries, D65_XY)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)

# Sharma, Wu & Dalal (2005), table 1: (L1, a1, b1), (L2, a2, b2), Delta E00.
SHARMA_2005 = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def fail(message: str) -> None:
    print(f"colour_reference.py: {message}", file=sys.stderr)
    sys.exit(1)


def de2000(lab1, lab2) -> float:
    return float(
        colour.difference.delta_E_CIE2000(np.asarray(lab1, float), np.asarray(lab2, float))
    )


def lab_from_polar(L: float, C: float, h_deg: float) -> list[float]:
    h = np.deg2rad(h_deg)
    return [float(L), float(C * np.cos(h)), float(C * np.sin(h))]


def random_pairs(rng: np.random.Generator) -> list[tuple[str, list[float], list[float]]]:
    """300 pairs in six groups; each entry is (kind, lab1, lab2)."""
    pairs: list[tuple[str, list[float], list[float]]] = []

    def lab() -> list[float]:
        return [
            float(rng.uniform(0.0, 100.0)),
            float(rng.uniform(-128.0, 128.0)),
            float(rng.uniform(-128.0, 128.0)),
        ]

    # 100 unrelated pairs anywhere in the usual L*a*b* box.
    for _ in range(100):
        pairs.append(("general", lab(), lab()))
    # 60 near pairs (Delta E of a few units, the range CIEDE2000 is fitted to).
    for _ in range(60):
        l1 = lab()
        l2 = [float(v + rng.normal(0.0, 2.0)) for v in l1]
        pairs.append(("near", l1, l2))
    # 40 pairs with one or both colours achromatic (a = b = 0: C' = 0, h' = 0).
    for i in range(40):
        grey = [float(rng.uniform(0.0, 100.0)), 0.0, 0.0]
        if i % 4 == 0:
            other = [float(rng.uniform(0.0, 100.0)), 0.0, 0.0]
        elif i % 4 == 1:
            # A low-chroma colour next to the grey.
            other = lab_from_polar(
                grey[0] + rng.normal(0.0, 3.0), rng.uniform(0.0, 3.0), rng.uniform(0.0, 360.0)
            )
        else:
            other = lab()
        pairs.append(("achromatic", grey, other) if i % 2 == 0 else ("achromatic", other, grey))
    # 60 pairs whose hues differ by more than 180 degrees: half with
    # h1' + h2' < 360, half with h1' + h2' >= 360, some straddling 0/360.
    for i in range(60):
        h1 = float(rng.uniform(0.0, 360.0))
        # Offsets away from exactly 180, where rounding decides the branch.
        dh = float(rng.uniform(181.0, 359.0)) * (1 if i % 2 == 0 else -1)
        h2 = (h1 + dh) % 360.0
        if i % 5 == 0:
            # Both near 0/360: e.g. 355 and 8.
            h1 = float(rng.uniform(340.0, 360.0))
            h2 = float(rng.uniform(0.0, 20.0))
            if i % 2:
                h1, h2 = h2, h1
        L1, L2 = rng.uniform(10.0, 90.0, 2)
        C1, C2 = rng.uniform(2.0, 80.0, 2)
        pairs.append(("hue_across_180", lab_from_polar(L1, C1, h1), lab_from_polar(L2, C2, h2)))
    # 20 pairs whose mean hue lies near 275 (the blue region where R_T acts).
    for _ in range(20):
        hm = float(rng.uniform(255.0, 295.0))
        d = float(rng.uniform(0.0, 20.0))
        L1, L2 = rng.uniform(20.0, 80.0, 2)
        C1, C2 = rng.uniform(10.0, 90.0, 2)
        pairs.append(("blue", lab_from_polar(L1, C1, hm - d), lab_from_polar(L2, C2, hm + d)))
    # 20 low-chroma pairs (C < 1, where G is near 0.5).
    for _ in range(20):
        L1, L2 = rng.uniform(0.0, 100.0, 2)
        C1, C2 = rng.uniform(0.0, 1.0, 2)
        h1, h2 = rng.uniform(0.0, 360.0, 2)
        pairs.append(("low_chroma", lab_from_polar(L1, C1, h1), lab_from_polar(L2, C2, h2)))
    if len(pairs) != 300:
        fail(f"expected 300 random pairs, made {len(pairs)}")
    return pairs


def ciede2000_section(rng: np.random.Generator) -> dict:
    sharma = []
    for i, (lab1, lab2, paper) in enumerate(SHARMA_2005, start=1):
        value = de2000(lab1, lab2)
        if abs(value - paper) > 1e-4:
            fail(f"Sharma pair {i}: colour-science gives {value}, the paper {paper}")
        sharma.append({"pair": i, "lab1": list(lab1), "lab2": list(lab2), "paper": paper,
                       "colour_science": value})
    random = []
    for kind, lab1, lab2 in random_pairs(rng):
        random.append({"kind": kind, "lab1": lab1, "lab2": lab2,
                       "colour_science": de2000(lab1, lab2)})
    return {"sharma": sharma, "random": random}


def adapt(xyz: np.ndarray, from_white: np.ndarray, to_white: np.ndarray) -> np.ndarray:
    return colour.adaptation.chromatic_adaptation(
        xyz, from_white, to_white, method="Von Kries", transform="Bradford"
    )


def lab_section(rng: np.random.Generator) -> list[dict]:
    rgbs = [[float(v) for v in rng.uniform(0.0, 1.0, 3)] for _ in range(100)]
    # The corners of the cube: black (Lab linear segment), primaries, white.
    rgbs += [[float(r), float(g), float(b)] for r in (0, 1) for g in (0, 1) for b in (0, 1)]
    # A few very dark triples, below the CIE epsilon after adaptation.
    rgbs += [[float(v) for v in rng.uniform(0.0, 0.008, 3)] for _ in range(4)]
    derived = colour.RGB_Colourspace(
        "sRGB (derived matrices)",
        SRGB.primaries,
        D65_XY,
        "D65",
        use_derived_matrix_RGB_to_XYZ=True,
        use_derived_matrix_XYZ_to_RGB=True,
    )
    out = []
    for rgb in rgbs:
        xyz65 = colour.algebra.vecmul(XYZ_FROM_RGB, np.asarray(rgb))
        xyz50 = adapt(xyz65, D65_XYZ, D50_XYZ)
        lab = colour.XYZ_to_Lab(xyz50, D50_XY)
        # Cross-check with colour-science's one-call path.
        xyz50_b = colour.RGB_to_XYZ(
            np.asarray(rgb), derived, illuminant=D50_XY, chromatic_adaptation_transform="Bradford"
        )
        if np.max(np.abs(xyz50 - xyz50_b)) > 1e-14:
            fail(f"RGB_to_XYZ disagrees for {rgb}: {xyz50} vs {xyz50_b}")
        out.append({"rgb": rgb, "xyz_d65": xyz65.tolist(), "xyz_d50": xyz50.tolist(),
                    "lab": lab.tolist()})
    return out


def colorchecker_section() -> dict:
    cc = colour.CCS_COLOURCHECKERS[CHART]
    if (cc.rows, cc.columns) != (4, 6) or len(cc.data) != 24:
        fail(f"{CHART}: unexpected layout")
    patches = []
    for name, xyY in cc.data.items():
        xyY = np.asarray(xyY, dtype=float)
        xyz = colour.xyY_to_XYZ(xyY)
        lab = colour.XYZ_to_Lab(xyz, D50_XY)
        rgb = colour.algebra.vecmul(RGB_FROM_XYZ, adapt(xyz, D50_XYZ, D65_XYZ))
        lab_xrite = colour.XYZ_to_Lab(xyz, cc.illuminant)
        patches.append({"name": name, "xyY": xyY.tolist(), "lab": lab.tolist(),
                        "linear_srgb": rgb.tolist(), "lab_chart_illuminant": lab_xrite.tolist()})
    return {
        "source": f'colour.CCS_COLOURCHECKERS["{CHART}"] (colour-science {colour.__version__})',
        "chart_illuminant_xy": np.asarray(cc.illuminant, dtype=float).tolist(),
        "patches": patches,
    }


def srgb_transfer_section() -> list[dict]:
    linear = [0.0, 1e-6, 0.001, 0.0031308, 0.0031309, 0.01, 0.018, 0.05, 0.1, 0.18, 0.2, 0.5,
              0.75, 0.9, 1.0, -0.001]
    encoded = [0.0, 0.001, 0.02, 0.04045, 0.0405, 0.1, 0.2, 0.5, 0.735356983, 0.9, 1.0, -0.01]
    out = []
    for v in linear:
        out.append({"linear": v, "encoded": float(colour.models.eotf_inverse_sRGB(v))})
    for v in encoded:
        out.append({"linear": float(colour.models.eotf_sRGB(v)), "encoded": v})
    return out


def to_json(value, indent: int = 0) -> str:
    """JSON with one record (or list of numbers) a line; floats as repr."""
    pad = " " * indent
    if isinstance(value, dict):
        if all(not isinstance(v, (dict, list)) or is_flat(v) for v in value.values()) and indent:
            return pad + json.dumps(value)
        items = [f'{pad} {json.dumps(k)}: {to_json(v, indent + 1).lstrip()}' for k, v in value.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and not is_flat(value):
        items = [to_json(v, indent + 1) for v in value]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(value)


def is_flat(value) -> bool:
    """A list of scalars or of lists of scalars (a vector or a matrix)."""
    if not isinstance(value, list):
        return False
    return all(
        not isinstance(v, (dict, list)) or (isinstance(v, list) and is_flat(v)) for v in value
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="engine/tests/data/colour/reference.json")
    args = parser.parse_args()

    # The derived matrix rounds to the four-decimal one IEC 61966-2-1 prints.
    if np.max(np.abs(XYZ_FROM_RGB - SRGB.matrix_RGB_to_XYZ)) > 5e-5 + 1e-12:
        fail("derived sRGB matrix does not round to the IEC 61966-2-1 one")

    rng = np.random.default_rng(SEED)
    data = {
        "generator": "scripts/colour_reference.py",
        "colour_science_version": colour.__version__,
        "numpy_version": np.__version__,
        "constants": {
            "d50_xy": D50_XY.tolist(),
            "d65_xy": D65_XY.tolist(),
            "d50_xyz": D50_XYZ.tolist(),
            "d65_xyz": D65_XYZ.tolist(),
            "xyz_from_linear_srgb": XYZ_FROM_RGB.tolist(),
            "linear_srgb_from_xyz": RGB_FROM_XYZ.tolist(),
            "bradford_d65_to_d50": colour.adaptation.matrix_chromatic_adaptation_VonKries(
                D65_XYZ, D50_XYZ, "Bradford"
            ).tolist(),
            "bradford_d50_to_d65": colour.adaptation.matrix_chromatic_adaptation_VonKries(
                D50_XYZ, D65_XYZ, "Bradford"
            ).tolist(),
        },
        "ciede2000": ciede2000_section(rng),
        "lab": lab_section(rng),
        "colorchecker": colorchecker_section(),
        "srgb_transfer": srgb_transfer_section(),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(to_json(data))
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
