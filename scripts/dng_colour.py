#!/usr/bin/env python3
# Pinned requirements (Python 3.11): numpy colour-science==0.4.7
#   tifffile==2026.3.3 imagecodecs==2026.3.6 rawpy==0.28.0 (scripts/requirements-fixtures.txt)
"""DNG colour as the specification says: an outside oracle (issue 23).

LibRaw and dcraw take one ColorMatrix of a DNG; the DNG specification's
chapter 6 ("Mapping Camera Color Space to CIE XYZ Space") takes the whole
camera profile: two calibrations interpolated in inverse colour temperature
at the white balance, ForwardMatrix, CameraCalibration and AnalogBalance.
This script is that chapter in numpy, with colour-science's McCamy CCT,
Bradford adaptation and sRGB matrix, written from the specification and not
from the engine's code. Run from the repository root::

    python scripts/dng_colour.py make [--out engine/tests/data/dng_colour]

writes small DNGs (written with tifffile through scripts/dng_reference.py's
Fixture and write_dng, not by the engine) whose profiles have what LibRaw
ignores, and for each ``NAME.dng`` a ``NAME.json`` with the tags written and
what the chapter gives at the file's AsShotNeutral: the white's xy and CCT,
and the CCM the engine should make (white-balanced camera RGB -> linear sRGB
D65, each row divided by its sum). ``engine/tests/dng.rs`` holds the engine
to them. Deterministic: the same versions write the same bytes.

The steps (DNG 1.6, chapter 6):

1. XYZtoCamera(T) = AB * CC(T) * CM(T); CM, CC (and FM) weighted by
   g = (1/T - 1/T2) / (1/T1 - 1/T2), clipped to 0..1 (T1 < T2; one
   calibration: itself). T of a CalibrationIlluminant: the DNG SDK's table.
2. The white: from D50 (0.3457, 0.3585), xy = chromaticity of
   inverse(XYZtoCamera(T(xy))) * AsShotNeutral, repeated until it settles.
3. Camera -> XYZ (D50): with ForwardMatrix, FM * D * inverse(AB * CC) where
   D = inverse(diag(inverse(AB * CC) * neutral)); without,
   Bradford(white -> D50) * inverse(XYZtoCamera).
4. XYZ (D50) -> XYZ (D65) by Bradford, -> linear sRGB; times diag(neutral)
   for white-balanced input; rows divided by their sums.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

D50 = np.array([0.3457, 0.3585])
D65 = np.array([0.3127, 0.3290])

# The DNG SDK's temperatures of the LightSource codes used here.
CT_OF = {17: 2850.0, 21: 6500.0, 23: 5000.0}


def xyz_of(xy):
    return np.array([xy[0] / xy[1], 1.0, (1.0 - xy[0] - xy[1]) / xy[1]])


def cct(xy) -> float:
    import colour

    return float(colour.temperature.xy_to_CCT(np.asarray(xy), method="McCamy 1992"))


def bradford(src_xy, dst_xy):
    import colour

    return colour.adaptation.matrix_chromatic_adaptation_VonKries(
        xyz_of(src_xy), xyz_of(dst_xy), transform="Bradford"
    )


def profile_at(cals, t):
    """(CM, FM or None, CC) at temperature t."""
    if len(cals) == 1:
        c = cals[0]
        return c["cm"], c["fm"], c["cc"]
    lo, hi = sorted(cals, key=lambda c: c["ct"])[:2]
    g = float(np.clip((1 / t - 1 / hi["ct"]) / (1 / lo["ct"] - 1 / hi["ct"]), 0.0, 1.0))
    mix = lambda a, b: g * a + (1 - g) * b  # noqa: E731
    fm = mix(lo["fm"], hi["fm"]) if lo["fm"] is not None and hi["fm"] is not None else None
    return mix(lo["cm"], hi["cm"]), fm, mix(lo["cc"], hi["cc"])


def spec_colour(cals, ab, neutral):
    """The chapter's white xy, its CCT and the engine-form CCM."""
    import colour

    neutral = np.asarray(neutral, dtype=float)
    ab = np.diag(ab)

    def xyz_to_camera(t):
        cm, _, cc = profile_at(cals, t)
        return ab @ cc @ cm

    xy = D50.copy()
    for _ in range(100):
        xyz = np.linalg.solve(xyz_to_camera(np.clip(cct(xy), 1000, 50000)), neutral)
        nxt = xyz[:2] / xyz.sum()
        done = np.abs(nxt - xy).sum() < 1e-12
        xy = nxt
        if done:
            break
    t = float(np.clip(cct(xy), 1000, 50000))
    cm, fm, cc = profile_at(cals, t)
    abcc_inv = np.linalg.inv(ab @ cc)
    if fm is not None:
        ref = abcc_inv @ neutral
        cam_to_d50 = fm @ np.diag(1.0 / ref) @ abcc_inv
    else:
        cam_to_d50 = bradford(xy, D50) @ np.linalg.inv(ab @ cc @ cm)
    srgb = colour.RGB_COLOURSPACES["sRGB"].matrix_XYZ_to_RGB
    m = srgb @ bradford(D50, D65) @ cam_to_d50 @ np.diag(neutral)
    m = m / m.sum(axis=1, keepdims=True)
    return xy, t, m


# Matrices (XYZ -> camera) of a plausible sensor under A and D65, and
# ForwardMatrices (white-balanced camera -> XYZ D50, rows summing to D50).
CM_A = np.array([[0.9283, -0.3811, 0.0127], [-0.6429, 1.4570, 0.1980], [-0.1322, 0.2765, 0.7014]])
CM_D65 = np.array([[0.8112, -0.2315, -0.0891], [-0.3843, 1.1926, 0.2156], [-0.0605, 0.1647, 0.6124]])
FM_A = np.array([[0.6420, 0.2560, 0.0662], [0.2410, 0.8120, -0.0530], [0.0190, -0.2250, 1.0309]])
FM_D65 = np.array([[0.7020, 0.1360, 0.1262], [0.2810, 0.7450, -0.0260], [0.0050, -0.1300, 0.9499]])
ID = np.eye(3)


def rats(values, den=10000, signed=True):
    out = []
    for v in np.asarray(values, dtype=float).ravel():
        out += [int(round(v * den)), den]
    return tuple(out)


def from_rats(flat):
    return [flat[i] / flat[i + 1] for i in range(0, len(flat), 2)]


def cmd_make(out: Path) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import dng_reference as ref

    out.mkdir(parents=True, exist_ok=True)
    neutral_between = (0.55, 1.0, 0.7)
    # A camera's neutral under tungsten (A) and under D65, from its matrices.
    under = lambda cm, xy: tuple(float(v) for v in (cm @ xyz_of(xy)) / (cm @ xyz_of(xy))[1])  # noqa: E731
    a_white = np.array([0.44757, 0.40745])
    cases = [
        ("dual_between", dict(cal2=True), neutral_between),
        ("dual_tungsten", dict(cal2=True), under(CM_A, a_white)),
        ("dual_daylight", dict(cal2=True), under(CM_D65, D65)),
        ("forward", dict(cal2=True, fm=True), neutral_between),
        (
            "calibrated",
            dict(cal2=False, cc=np.diag([1.05, 1.0, 0.94]), ab=(1.1, 1.0, 0.9), be=0.5),
            neutral_between,
        ),
    ]
    written = []
    for name, kw, neutral in cases:
        rng = np.random.default_rng(len(name))
        raw = rng.integers(200, 3800, (16, 16), dtype=np.uint16)
        fx = ref.Fixture(name, "RGGB", raw, 12)
        fx.black([128])
        fx.white(4095)
        tags = []
        cals = []
        cc = kw.get("cc", ID)
        if kw.get("cal2"):
            fx.matrix1(CM_A.ravel().tolist(), 17)
            fx.matrix2(CM_D65.ravel().tolist(), 21)
            pairs = [(CM_A, 17, FM_A, 50964, 50723), (CM_D65, 21, FM_D65, 50965, 50724)]
        else:
            fx.matrix1(CM_D65.ravel().tolist(), 21)
            pairs = [(CM_D65, 21, FM_D65, 50964, 50723)]
        for cm, ill, fm, fm_tag, cc_tag in pairs:
            # What the file holds (rationals), not the float it came from.
            cm_q = np.array(from_rats(rats(cm))).reshape(3, 3)
            fm_q = np.array(from_rats(rats(fm))).reshape(3, 3) if kw.get("fm") else None
            cc_q = np.array(from_rats(rats(cc))).reshape(3, 3)
            if kw.get("fm"):
                tags.append((fm_tag, "2i", 9, rats(fm), True))
            if "cc" in kw:
                tags.append((cc_tag, "2i", 9, rats(cc), True))
            cals.append({"ct": CT_OF[ill], "cm": cm_q, "fm": fm_q, "cc": cc_q})
        ab = kw.get("ab", (1.0, 1.0, 1.0))
        if "ab" in kw:
            tags.append((50727, "2I", 3, rats(ab), True))
        if "be" in kw:
            tags.append((50730, "2i", 1, rats([kw["be"]]), True))
        n_rats = rats(neutral, den=100000)
        fx.tags.append((50728, "2I", 3, n_rats, True))  # AsShotNeutral
        n_q = from_rats(n_rats)
        ab_q = from_rats(rats(ab)) if "ab" in kw else [1.0, 1.0, 1.0]
        xy, t, ccm = spec_colour(cals, ab_q, n_q)
        p = out / f"{name}.dng"
        ref.write_dng(fx, p, extratags=tags)
        info = {
            "file": p.name,
            "as_shot_neutral": n_q,
            "analog_balance": ab_q,
            "baseline_exposure": kw.get("be"),
            "calibrations": [
                {
                    "ct": c["ct"],
                    "color_matrix": c["cm"].tolist(),
                    "forward_matrix": None if c["fm"] is None else c["fm"].tolist(),
                    "camera_calibration": c["cc"].tolist(),
                }
                for c in cals
            ],
            "expected": {"xy": xy.tolist(), "cct": t, "ccm": ccm.tolist()},
        }
        (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
        written.append(name)
    print(json.dumps({"written": written}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--out", type=Path, default=Path("engine/tests/data/dng_colour"))
    a = ap.parse_args(argv)
    return cmd_make(a.out)


if __name__ == "__main__":
    sys.exit(main())
