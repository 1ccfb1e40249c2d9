#!/usr/bin/env python3
"""Outside references for the engine's CPU stages (issue 9).

Runs code this project did not write on small, deterministic inputs and writes
the inputs and the expected outputs under ``engine/tests/data/reference/``,
where ``engine/tests/reference.rs`` holds the engine's stages to them. The Rust
tests need neither Python nor these packages: the data is committed.

Run (Python 3.11) from the repository root::

    pip install numpy scipy colour-science colour-demosaicing opencv-python-headless
    python3 scripts/references.py            # rewrites engine/tests/data/reference/

The committed data was produced with Python 3.11.7, numpy 2.4.6, scipy 1.17.1,
colour-science 0.4.7, colour-demosaicing 0.2.7, opencv-python-headless 5.0.0
(``manifest.json`` records the versions of the run that wrote it). Re-running
with the same versions gives the same bytes (fixed seeds, no timestamps).

References:

* demosaic: ``colour_demosaicing.demosaicing_CFA_Bayer_bilinear`` and
  ``demosaicing_CFA_Bayer_Malvar2004``, all four Bayer orders. colour-demosaicing
  convolves with scipy.ndimage's default border mode ``reflect`` (``c b a | a b
  c``: the edge sample repeats, which breaks the Bayer phase at the border); the
  engine mirrors without repeating the edge (``c b | a b c``: scipy's ``mirror``,
  numpy.pad's ``reflect``). So two outputs are stored per case: the plain call
  (compare the interior, 2 pixels in from every edge, where no border rule is
  used), and the call on the mosaic padded by 2 with ``numpy.pad(mode="reflect")``
  and cropped back (the engine's border rule, so the whole frame compares).
  Output is float and unclipped; the engine rounds half up and clamps to
  0..=65535.
* yuv: ``colour.RGB_to_YCbCr`` for BT.601/BT.709 x full/limited range, and
  OpenCV ``cv2.cvtColor(..., COLOR_RGB2YCrCb)`` (BT.601 full range, Y Cr Cb
  order) on float32 and uint8 input. ``COLOR_RGB2YUV`` is *not* a reference for
  the engine: OpenCV's "YUV" is the analogue U = 0.492 (B - Y), V = 0.877 (R - Y)
  scaling, not Y'CbCr's 0.564 / 0.713 (checked below and recorded).
* tone: ``colour.cctf_encoding(x, function="sRGB")`` (== ``eotf_inverse_sRGB``)
  for ``stages::tone::srgb_oetf`` and the tone stage's LUT in sRGB mode.
* ccm: ``colour.algebra.vecmul`` (float64) for the 3x3 matrix.
* unpack: MIPI CSI-2 RAW10 / RAW12 packing written here from the spec with
  numpy, and plain little-endian RAW8 / RAW10 / RAW16.

Files: raw little-endian arrays (``.u8``, ``.u16``, ``.f64``) described in
``manifest.json`` (file, dtype, shape). Values the engine would produce in
16-bit code units are stored as float64 before rounding/clamping, so the test
states its own rounding tolerance.
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # colour's "matplotlib not installed" notice

import colour  # noqa: E402
import colour_demosaicing  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from colour_demosaicing import (  # noqa: E402
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "engine" / "tests" / "data" / "reference"
ORDERS = ["RGGB", "BGGR", "GRBG", "GBRG"]


class Writer:
    """Writes arrays as raw little-endian files and records them."""

    DTYPES = {"u8": "<u1", "u16": "<u2", "f64": "<f8"}

    def __init__(self, out: Path):
        self.out = out
        self.total = 0

    def array(self, name: str, a: np.ndarray, dtype: str) -> dict:
        a = np.ascontiguousarray(a)
        if dtype in ("u8", "u16"):
            assert np.issubdtype(a.dtype, np.integer), name
            info = np.iinfo(self.DTYPES[dtype])
            assert a.min(initial=0) >= info.min and a.max(initial=0) <= info.max, name
        data = a.astype(self.DTYPES[dtype]).tobytes()
        path = self.out / f"{name}.{dtype}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.total += len(data)
        return {"file": f"{name}.{dtype}", "dtype": dtype, "shape": list(a.shape)}


# ----------------------------------------------------------------- demosaic


def test_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour gradients, an edge, noise and a few clipped sites."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 8000 + 40000 * x / w + 6000 * np.sin(y / 2.0)
    g = 20000 + 25000 * y / h + 5000 * np.cos(x / 1.5)
    b = 50000 - 30000 * (x + y) / (w + h)
    img = np.stack([r, g, b], axis=-1)
    img[:, w // 2 :, :] *= 0.4  # a vertical edge
    img += rng.normal(0.0, 1500.0, img.shape)
    img = np.clip(np.rint(img), 0, 65535)
    # Extremes: Malvar's negative lobes and overshoot must clamp.
    for _ in range(6):
        yy, xx, c = rng.integers(0, h), rng.integers(0, w), rng.integers(0, 3)
        img[yy, xx, c] = 65535 if rng.integers(0, 2) else 0
    return img.astype(np.uint16)


def mosaic(img: np.ndarray, order: str) -> np.ndarray:
    h, w, _ = img.shape
    out = np.zeros((h, w), np.uint16)
    ch = {"R": 0, "G": 1, "B": 2}
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        out[dy::2, dx::2] = img[dy::2, dx::2, ch[order[k]]]
    return out


def demosaic_cases(wr: Writer) -> dict:
    rng = np.random.default_rng(20240901)
    h, w = 14, 20
    img = test_image(rng, h, w)
    cases = []
    methods = {
        "bilinear": demosaicing_CFA_Bayer_bilinear,
        "malvar": demosaicing_CFA_Bayer_Malvar2004,
    }
    for order in ORDERS:
        cfa = mosaic(img, order)
        case = {
            "order": order,
            "input": wr.array(f"demosaic/{order}_mosaic", cfa, "u16"),
        }
        for mname, fn in methods.items():
            plain = fn(cfa.astype(np.float64), order)
            padded = fn(np.pad(cfa.astype(np.float64), 2, mode="reflect"), order)[
                2:-2, 2:-2, :
            ]
            # Away from the borders the border rule is not used: both agree.
            assert np.array_equal(plain[2:-2, 2:-2], padded[2:-2, 2:-2]), (order, mname)
            border_diff = int(np.count_nonzero(np.any(plain != padded, axis=-1)))
            case[mname] = {
                "plain": wr.array(f"demosaic/{order}_{mname}_plain", plain, "f64"),
                "mirror_padded": wr.array(
                    f"demosaic/{order}_{mname}_mirror_padded", padded, "f64"
                ),
                "pixels_where_plain_and_padded_differ": border_diff,
            }
        cases.append(case)
    return {
        "width": w,
        "height": h,
        "seed": 20240901,
        "interior_margin": 2,
        "cases": cases,
        "notes": "plain: colour-demosaicing as is (scipy.ndimage.convolve mode "
        "'reflect', edge repeated); mirror_padded: input padded by 2 with "
        "numpy.pad(mode='reflect') (edge not repeated, the engine's rule), "
        "output cropped. RGB interleaved, 16-bit code units, unclipped float.",
    }


# ---------------------------------------------------------------------- yuv


def yuv_input(rng: np.random.Generator, n: int) -> np.ndarray:
    corners = np.array(
        [[a, b, c] for a in (0, 65535) for b in (0, 65535) for c in (0, 65535)]
        + [[32768, 32768, 32768], [1, 2, 3], [65534, 65533, 65532]],
        np.uint16,
    )
    rest = rng.integers(0, 65536, (n - len(corners), 3), dtype=np.uint16)
    return np.concatenate([corners, rest])


def yuv_cases(wr: Writer) -> dict:
    rng = np.random.default_rng(601709)
    n = 512
    rgb = yuv_input(rng, n)
    out = {"pixels": n, "seed": 601709, "input": wr.array("yuv/rgb16", rgb, "u16")}
    colour_cases = []
    for matrix, key in (("bt601", "ITU-R BT.601"), ("bt709", "ITU-R BT.709")):
        for rng_name, legal in (("full", False), ("limited", True)):
            ycc = colour.RGB_to_YCbCr(
                rgb,
                K=colour.WEIGHTS_YCBCR[key],
                in_bits=16,
                in_legal=False,
                in_int=True,
                out_bits=16,
                out_legal=legal,
                out_int=False,
            )
            if not legal:
                # colour's float full range puts Cb/Cr in -0.5..0.5; the engine
                # (like 8-bit practice) offsets them by one half.
                ycc = ycc + np.array([0.0, 0.5, 0.5])
            colour_cases.append(
                {
                    "matrix": matrix,
                    "range": rng_name,
                    "K": [float(k) for k in colour.WEIGHTS_YCBCR[key]],
                    "expected": wr.array(
                        f"yuv/colour_{matrix}_{rng_name}", ycc * 65535.0, "f64"
                    ),
                }
            )
    out["colour"] = {
        "cases": colour_cases,
        "notes": "colour.RGB_to_YCbCr(rgb16, K, in_bits=16, in_int=True, "
        "in_legal=False, out_bits=16, out_int=False, out_legal=range=='limited'); "
        "full range: +0.5 on Cb, Cr. Stored x65535, columns Y Cb Cr, unclamped. "
        "Limited range is colour's 16-bit legal range (Y 4096..60160, the 8-bit "
        "codes times 256, as P010/P016 expect).",
    }

    # OpenCV float32: Y Cr Cb, chroma offset 0.5; coefficients 0.713 / 0.564.
    f = (rgb.astype(np.float64) / 65535.0).astype(np.float32).reshape(1, n, 3)
    cv_f = cv2.cvtColor(f, cv2.COLOR_RGB2YCrCb).reshape(n, 3).astype(np.float64)
    # OpenCV uint8 on 8-bit input (the engine gets v * 257, i.e. the same v/255).
    rgb8 = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    rgb8[:8] = (np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]) * 255)
    cv_8 = cv2.cvtColor(rgb8.reshape(1, n, 3), cv2.COLOR_RGB2YCrCb).reshape(n, 3)
    # The bound OpenCV's rounded Cr/Cb coefficients put on the float path.
    kr, kb = 0.299, 0.114
    max_r_y, max_b_y = 1 - kr, 1 - kb
    cr_bound = abs(0.713 - 1 / (2 * (1 - kr))) * max_r_y * 65535
    cb_bound = abs(0.564 - 1 / (2 * (1 - kb))) * max_b_y * 65535
    # COLOR_RGB2YUV is analogue YUV: U for pure blue is 0.5 + 0.492 * 0.886.
    blue = cv2.cvtColor(np.array([[[0, 0, 1]]], np.float32), cv2.COLOR_RGB2YUV)[0, 0]
    assert abs(blue[1] - (0.5 + 0.492 * 0.886)) < 2e-3, blue
    out["opencv"] = {
        "float32": {
            "expected": wr.array("yuv/opencv_ycrcb_f32", cv_f, "f64"),
            "cr_coefficient_bound_lsb16": cr_bound,
            "cb_coefficient_bound_lsb16": cb_bound,
        },
        "uint8": {
            "input": wr.array("yuv/opencv_rgb8", rgb8, "u8"),
            "expected": wr.array("yuv/opencv_ycrcb_u8", cv_8, "u8"),
        },
        "rgb2yuv_pure_blue": [float(v) for v in blue],
        "notes": "cv2.cvtColor(COLOR_RGB2YCrCb): BT.601 full range, columns Y Cr Cb, "
        "float32 input rgb16/65535 (output 0..1), uint8 input as is. OpenCV uses "
        "Cr = 0.713 (R-Y), Cb = 0.564 (B-Y) (exact: 0.71327, 0.56433), hence the "
        "bounds. COLOR_RGB2YUV is analogue YUV (0.492, 0.877), not comparable.",
    }
    return out


# --------------------------------------------------------------------- tone


def tone_cases(wr: Writer) -> dict:
    rng = np.random.default_rng(2_4)
    codes = set(range(0, 512))  # the linear segment (breakpoint ~205) and past it
    codes |= set(range(0, 65536, 97))
    codes |= set(int(v) for v in rng.integers(0, 65536, 1500))
    codes |= {65535, 65534, 32767, 32768}
    codes = np.array(sorted(codes), np.uint16)
    x = codes.astype(np.float64) / 65535.0
    enc = colour.cctf_encoding(x, function="sRGB")
    enc2 = colour.models.eotf_inverse_sRGB(x)
    assert np.array_equal(enc, enc2)
    return {
        "codes": wr.array("tone/codes", codes, "u16"),
        "srgb": wr.array("tone/srgb_encoded", enc, "f64"),
        "notes": "colour.cctf_encoding(code/65535, function='sRGB') == "
        "colour.models.eotf_inverse_sRGB, float64, 0..1.",
    }


# ---------------------------------------------------------------------- ccm


def ccm_cases(wr: Writer) -> dict:
    rng = np.random.default_rng(33)
    n = 512
    rgb = rng.integers(0, 65536, (n, 3), dtype=np.uint16)
    rgb[:4] = [[0, 0, 0], [65535, 65535, 65535], [65535, 0, 0], [1000, 30000, 200]]
    # The engine's default matrix and a random one; both exactly f32 values,
    # since the engine holds the matrix in f32.
    default = np.array(
        [[1.6, -0.45, -0.15], [-0.3, 1.55, -0.25], [-0.05, -0.5, 1.55]], np.float32
    )
    rand = rng.uniform(-1.5, 2.5, (3, 3)).astype(np.float32)
    cases = []
    for name, m in (("default", default), ("random", rand)):
        m64 = m.astype(np.float64)
        out = colour.algebra.vecmul(m64, rgb.astype(np.float64))
        assert np.allclose(out, rgb.astype(np.float64) @ m64.T)
        cases.append(
            {
                "name": name,
                "matrix": [[float(v) for v in row] for row in m64],
                "expected": wr.array(f"ccm/{name}", out, "f64"),
            }
        )
    return {
        "input": wr.array("ccm/rgb16", rgb, "u16"),
        "cases": cases,
        "notes": "colour.algebra.vecmul(M, rgb16) in float64, unclamped, 16-bit units.",
    }


# ------------------------------------------------------------------- unpack


def pack_raw10p(px: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """MIPI CSI-2 RAW10: per 4 pixels, bytes P1[9:2] P2[9:2] P3[9:2] P4[9:2],
    then P4[1:0] P3[1:0] P2[1:0] P1[1:0] (P1 in the low bits)."""
    h, w = px.shape
    groups = -(-w // 4)
    p = np.zeros((h, groups * 4), np.uint16)
    p[:, :w] = px
    p = p.reshape(h, groups, 4)
    hi = (p >> 2).astype(np.uint8)
    lo = (p & 3).astype(np.uint8)
    fifth = lo[..., 0] | (lo[..., 1] << 2) | (lo[..., 2] << 4) | (lo[..., 3] << 6)
    rows = np.concatenate([hi, fifth[..., None]], axis=-1).reshape(h, groups * 5)
    out = np.full((h, stride), pad, np.uint8)
    out[:, : groups * 5] = rows
    return out


def pack_raw12p(px: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """MIPI CSI-2 RAW12: per 2 pixels, bytes P1[11:4] P2[11:4], then
    P2[3:0] P1[3:0] (P1 in the low nibble)."""
    h, w = px.shape
    groups = -(-w // 2)
    p = np.zeros((h, groups * 2), np.uint16)
    p[:, :w] = px
    p = p.reshape(h, groups, 2)
    hi = (p >> 4).astype(np.uint8)
    third = ((p[..., 0] & 0xF) | ((p[..., 1] & 0xF) << 4)).astype(np.uint8)
    rows = np.concatenate([hi, third[..., None]], axis=-1).reshape(h, groups * 3)
    out = np.full((h, stride), pad, np.uint8)
    out[:, : groups * 3] = rows
    return out


def unpack_cases(wr: Writer) -> dict:
    rng = np.random.default_rng(0xC512)
    cases = []

    def add(name, bits, packing, w, h, stride, raw, samples, min_stride):
        cases.append(
            {
                "name": name,
                "bits": bits,
                "packing": packing,
                "width": w,
                "height": h,
                "stride": stride,
                "min_stride": min_stride,
                "bytes": wr.array(f"unpack/{name}_bytes", raw.reshape(-1), "u8"),
                "samples": wr.array(f"unpack/{name}_samples", samples, "u16"),
            }
        )

    # RAW10P: a width that is a multiple of 4, one that is not (a part group).
    for w, h, extra in ((16, 4, 0), (14, 6, 3)):
        px = rng.integers(0, 1024, (h, w), dtype=np.uint16)
        px[0, :4] = [0x3FF, 0x001, 0x200, 0x155]
        min_stride = -(-w // 4) * 5
        raw = pack_raw10p(px, min_stride + extra, 0xA5)
        add(f"raw10p_{w}x{h}", 10, "csi2", w, h, min_stride + extra, raw, px, min_stride)
    for w, h, extra in ((12, 4, 0), (10, 4, 5)):
        px = rng.integers(0, 4096, (h, w), dtype=np.uint16)
        px[0, :2] = [0xABC, 0x124]
        min_stride = -(-w // 2) * 3
        raw = pack_raw12p(px, min_stride + extra, 0x5A)
        add(f"raw12p_{w}x{h}", 12, "csi2", w, h, min_stride + extra, raw, px, min_stride)
    # Plain little-endian words; bits above the depth are noise to be ignored.
    for bits, w, h, extra in ((16, 8, 4, 0), (10, 6, 4, 4), (12, 8, 2, 2)):
        words = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        px = words & np.uint16((1 << bits) - 1)
        raw = np.full((h, w * 2 + extra), 0xEE, np.uint8)
        raw[:, : w * 2] = words.astype("<u2").view(np.uint8).reshape(h, w * 2)
        add(f"raw{bits}_{w}x{h}", bits, "plain", w, h, w * 2 + extra, raw, px, w * 2)
    w, h, extra = 10, 4, 6
    px = rng.integers(0, 256, (h, w), dtype=np.uint16)
    raw = np.full((h, w + extra), 0x77, np.uint8)
    raw[:, :w] = px
    add(f"raw8_{w}x{h}", 8, "plain", w, h, w + extra, raw, px, w)
    return {
        "cases": cases,
        "notes": "bytes: the frame as a sensor sends it (row padding filled with a "
        "non-zero byte); samples: width x height values. Packing written from the "
        "CSI-2 spec with numpy; plain: little-endian u16 words (high bits random).",
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.rglob("*"):
        if old.is_file() and old.suffix in (".u8", ".u16", ".f64"):
            old.unlink()
    wr = Writer(OUT)
    manifest = {
        "generator": "scripts/references.py",
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "colour-science": colour.__version__,
            "colour-demosaicing": colour_demosaicing.__version__,
            "opencv": cv2.__version__,
        },
        "byte_order": "little-endian, arrays row-major (C order)",
        "demosaic": demosaic_cases(wr),
        "yuv": yuv_cases(wr),
        "tone": tone_cases(wr),
        "ccm": ccm_cases(wr),
        "unpack": unpack_cases(wr),
    }
    text = json.dumps(manifest, indent=1, sort_keys=False) + "\n"
    (OUT / "manifest.json").write_text(text)
    total = wr.total + len(text)
    print(f"wrote {OUT.relative_to(ROOT)}: {total} bytes", file=sys.stderr)
    assert total < 512 * 1024, total
    return 0


if __name__ == "__main__":
    sys.exit(main())
