#!/usr/bin/env python3
# Pinned requirements (Python 3.11):
#   rawpy==0.28.0 tifffile==2026.3.3 imagecodecs==2026.3.6 numpy
# `check` mode needs only rawpy + numpy (scripts/requirements-reference.txt);
# `make` mode also needs tifffile + imagecodecs (scripts/requirements-fixtures.txt).
"""LibRaw (rawpy) as an outside reference for DNG files.

Two modes, run from the repository root::

    python scripts/dng_reference.py make [--out engine/tests/data/dng]
    python scripts/dng_reference.py check FILE.dng [FILE.dng ...]

``make`` writes small test DNGs with a writer this project did not write
(tifffile + imagecodecs, plus a few documented byte-level steps done here from
the TIFF/DNG/JPEG specs: the EXIF sub-IFD, the OpcodeList2 bytes and the
2-component lossless-JPEG tiles), reads each one back with LibRaw and stores,
for every ``NAME.dng``:

* ``NAME.json``: what LibRaw reports (the fields listed under ``describe``)
  plus a ``truth`` object holding what the writer put in;
* ``NAME.visible.u16``: LibRaw's ``raw_image_visible`` as little-endian uint16
  bytes, row-major (it is also checked here to equal the writer's input).

Two unreadable files (``bad_truncated.dng``, ``bad_not_tiff.dng``) get a
``NAME.json`` with LibRaw's error and no ``.visible.u16``. Output is
deterministic (fixed seeds, no timestamps, no ImageDescription/Software tags):
re-running with the same package versions gives the same bytes.

``check`` prints ``{"files": [ {...}, ... ]}`` to stdout, one object per file
in argument order; a file LibRaw refuses gets ``{"file": ..., "error": ...}``.
The exit code is 0 unless the command line is wrong.

rawpy attribute names used (rawpy 0.28.0): ``raw.other`` is a property
returning a NamedTuple; ISO is ``raw.other.iso_speed`` (LibRaw
``imgdata.other.iso_speed``) and the exposure time in seconds is
``raw.other.shutter_speed`` (LibRaw ``imgdata.other.shutter``).

LibRaw 0.22 behaviours the fixtures were checked against (``make`` stops if
one changes):

* ``raw_image_visible`` is the ActiveArea; DefaultCrop is not applied (it only
  shows up in ``sizes.crop_*``).
* CFAPattern (like BlackLevel) is indexed from the ActiveArea's top-left, as
  the DNG spec says, not from raw (0, 0). For a Bayer image with an odd top or
  left ActiveArea offset LibRaw moves that margin in by one and shrinks the
  visible image by one (``open.cpp``), so its visible image is the ActiveArea
  minus its first row/column and its pattern shifts accordingly;
  ``truth.libraw_crop`` says where LibRaw's visible image sits inside the
  ActiveArea, ``truth.visible_sha256`` hashes the whole ActiveArea.
* The LinearizationTable is a plain lookup whose last entry repeats past its
  end; WhiteLevel wins over the table's maximum. GainMap opcodes are not
  applied to raw values.
* ``black_level_per_channel`` and ``camera_whitebalance`` are indexed by
  LibRaw colour (R, G, B, G2, with ``raw_pattern`` saying which G is "G2");
  ``camera_whitebalance`` is 1/AsShotNeutral with 0 for G2.
* ISO is read from the EXIF sub-IFD (34665); ExposureTime from the main IFD
  or the EXIF IFD. ``rgb_xyz_matrix`` (LibRaw's table of known cameras) stays
  zero for these files; the colour LibRaw derives from the file's own
  ColorMatrix is ``rgb_cam`` (``raw.color_matrix``: white-balanced camera RGB
  -> linear sRGB) and ``daylight_whitebalance`` (its D65 pre_mul). With two
  matrices LibRaw takes the one whose CalibrationIlluminant is D65 (21).
* Uncompressed strips are read as one contiguous run from the first strip's
  offset (tifffile writes them contiguously); lossless-JPEG tiles may be
  1-component (libjpeg via imagecodecs: APP0 + SOF3) or 2-component half-width
  (written here), including tiles that overlap the right edge.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------
# LibRaw side (check and make)
# ---------------------------------------------------------------------------


def _f(x) -> float:
    """A float32/float64 from rawpy as a plain Python float (exact)."""
    return float(x)


def describe_array(vis: np.ndarray) -> dict:
    le = np.ascontiguousarray(vis, dtype="<u2")
    return {
        "sha256": hashlib.sha256(le.tobytes()).hexdigest(),
        "sum": int(le.sum(dtype=np.uint64)),
        "min": int(le.min()) if le.size else 0,
        "max": int(le.max()) if le.size else 0,
    }


def describe(path: str | Path, name: str | None = None) -> tuple[dict, np.ndarray | None]:
    """What LibRaw (rawpy) reads from one file.

    Returns the JSON object and raw_image_visible (None on error).
    """
    import rawpy

    out: dict = {"file": name if name is not None else str(path)}
    try:
        with rawpy.imread(str(path)) as raw:
            vis = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
            sizes = raw.sizes
            other = raw.other
            pattern = raw.raw_pattern
            out.update(
                {
                    "width": int(vis.shape[1]),
                    "height": int(vis.shape[0]),
                    "raw_pattern": None if pattern is None else pattern.astype(int).tolist(),
                    # colour letters of raw_pattern via color_desc (G2 shows as G)
                    "raw_pattern_str": (
                        None
                        if pattern is None
                        else "".join(
                            raw.color_desc.decode("ascii", "replace")[int(c)]
                            for c in pattern.reshape(-1)
                        )
                    ),
                    "color_desc": raw.color_desc.decode("ascii", "replace"),
                    "num_colors": int(raw.num_colors),
                    "black_level_per_channel": [int(v) for v in raw.black_level_per_channel],
                    "white_level": int(raw.white_level),
                    "camera_white_level_per_channel": (
                        None
                        if raw.camera_white_level_per_channel is None
                        else [int(v) for v in raw.camera_white_level_per_channel]
                    ),
                    "camera_whitebalance": [_f(v) for v in raw.camera_whitebalance],
                    "rgb_xyz_matrix": [[_f(v) for v in row] for row in raw.rgb_xyz_matrix],
                    # LibRaw's camera -> linear sRGB matrix (imgdata.color.rgb_cam,
                    # the first three columns): for a DNG, made from the ColorMatrix
                    # of the D65 illuminant (else the last one), dcraw's way.
                    "rgb_cam": [[_f(v) for v in row[:3]] for row in raw.color_matrix],
                    # pre_mul: the white balance that matrix implies for D65
                    # (1 / the rows of ColorMatrix x sRGB->XYZ), R G B G2.
                    "daylight_whitebalance": [_f(v) for v in raw.daylight_whitebalance],
                    # rawpy 0.28: raw.other.iso_speed / raw.other.shutter_speed
                    "iso": _f(other.iso_speed),
                    "shutter": _f(other.shutter_speed),
                    "sizes": {
                        k: (_f(v) if isinstance(v, float) else int(v))
                        for k, v in sizes._asdict().items()
                    },
                }
            )
            out.update(describe_array(vis))
            return out, vis
    except Exception as e:  # rawpy.LibRawError and friends, OSError
        msg = e.args[0] if len(e.args) == 1 else str(e)
        if isinstance(msg, bytes):  # rawpy passes LibRaw's strerror() as bytes
            msg = msg.decode("utf-8", "replace")
        out["error"] = f"{type(e).__name__}: {msg}"
        return out, None


def cmd_check(files: list[str]) -> int:
    result = {"files": [describe(f)[0] for f in files]}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


# ---------------------------------------------------------------------------
# Writer side (make only)
# ---------------------------------------------------------------------------

CFA_CODES = {"R": 0, "G": 1, "B": 2}


def cfa_bytes(pattern: str) -> tuple[int, ...]:
    return tuple(CFA_CODES[c] for c in pattern)


def shifted_pattern(pattern: str, top: int, left: int) -> str:
    """The 2x2 pattern seen from (top, left) of a mosaic whose (0,0) is `pattern`."""
    p = [[pattern[0], pattern[1]], [pattern[2], pattern[3]]]
    return "".join(p[(top + r) % 2][(left + c) % 2] for r in (0, 1) for c in (0, 1))


def mosaic(h: int, w: int, lo: int, hi: int, seed: int) -> np.ndarray:
    """Deterministic test mosaic in [lo, hi]: per-CFA-site gradients, seeded
    noise, one saturated square, one square at `lo` and one mid-grey square."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    gy, gx = y / (h - 1), x / (w - 1)
    span = float(hi - lo)
    out = np.empty((h, w), dtype=np.float64)
    slopes = [(0.8, 0.2), (0.3, 0.7), (0.5, 0.5), (0.1, 0.9)]
    levels = [0.55, 0.70, 0.40, 0.65]
    for s, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        a, b = slopes[s]
        g = (a * gx[dy::2, dx::2] + b * gy[dy::2, dx::2]) / (a + b)
        out[dy::2, dx::2] = lo + span * (0.05 + levels[s] * g)
    out += rng.normal(0.0, 0.015 * span, size=(h, w))
    out[2:8, 4:12] = hi  # clipped highlight
    out[h - 9 : h - 3, w - 13 : w - 5] = lo  # black
    out[h // 2 - 3 : h // 2 + 3, w // 2 - 4 : w // 2 + 4] = lo + span * 0.18
    return np.clip(np.rint(out), lo, hi).astype(np.uint16)


def srational(values, den: int = 10000) -> tuple[int, ...]:
    flat: list[int] = []
    for v in values:
        flat += [int(round(v * den)), den]
    return tuple(flat)


def from_rational(flat) -> list[float]:
    return [flat[i] / flat[i + 1] for i in range(0, len(flat), 2)]


# XYZ(D50-adapted) -> camera matrices, plausible values (not from any camera).
CM_D65 = [0.6722, -0.0635, -0.0963, -0.4287, 1.2460, 0.2028, -0.0908, 0.2162, 0.5668]
CM_STDA = [0.7171, -0.1986, -0.0648, -0.8085, 1.5555, 0.2718, -0.2170, 0.2512, 0.7457]
# a second camera's pair (made up, of the usual shape: positive diagonal,
# rows far from neutral), so two different matrices are checked
CM2_D65 = [0.8112, -0.2315, -0.0891, -0.3843, 1.1926, 0.2156, -0.0605, 0.1647, 0.6124]
CM2_STDA = [0.9283, -0.3811, 0.0127, -0.6429, 1.4570, 0.1980, -0.1322, 0.2765, 0.7014]
NEUTRAL = ((1, 2), (1, 1), (5, 8))  # AsShotNeutral as rationals: 0.5, 1, 0.625
NEUTRAL_BE = ((2, 5), (1, 1), (3, 4))  # 0.4, 1, 0.75


class Fixture:
    """Collects the tags and the truth for one DNG."""

    def __init__(self, name: str, pattern: str, raw: np.ndarray, bits: int):
        self.name = name
        self.pattern = pattern
        self.raw = raw  # stored sample values (before linearization)
        self.bits = bits
        self.tags: list[tuple] = [
            (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
            (33422, "B", 4, cfa_bytes(pattern), True),  # CFAPattern
            (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
            (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
            (50708, "s", 0, "ISP Studio test", True),  # UniqueCameraModel
        ]
        self.exif: list[tuple] = []  # (code, type, count, value) in the EXIF IFD
        self.truth: dict = {
            "cfa_pattern": list(cfa_bytes(pattern)),
            "cfa_pattern_str": pattern,
            "raw_width": int(raw.shape[1]),
            "raw_height": int(raw.shape[0]),
            "bits_per_sample": bits,
            "compression": 1,
            "tiled": False,
            "tile_width": None,
            "tile_length": None,
            "rows_per_strip": None,
            "lj92_components": None,
            "black_level": [0],
            "black_repeat": [1, 1],
            "white_level": (1 << bits) - 1,
            "linearization_table": None,
            "active_area": [0, 0, int(raw.shape[0]), int(raw.shape[1])],
            "default_crop_origin": None,
            "default_crop_size": None,
            "color_matrix1": None,
            "color_matrix2": None,
            "calibration_illuminant1": None,
            "calibration_illuminant2": None,
            "as_shot_neutral": None,
            "exposure_time": None,
            "exposure_time_ifd": None,
            "iso": None,
            "byte_order": "<",
            "gain_maps": [],
            "visible_pattern": pattern,
            "raw_origin_pattern": pattern,
            "libraw_crop": {"top": 0, "left": 0, "height": int(raw.shape[0]),
                            "width": int(raw.shape[1])},
        }

    def black(self, values, repeat=(1, 1)):
        self.tags.append((50713, "H", 2, tuple(repeat), True))  # BlackLevelRepeatDim
        self.tags.append((50714, "H", len(values), tuple(values), True))  # BlackLevel
        self.truth["black_level"] = list(values)
        self.truth["black_repeat"] = list(repeat)

    def white(self, value: int):
        self.tags.append((50717, "I" if value > 65535 else "H", 1, value, True))
        self.truth["white_level"] = value

    def matrix1(self, m, illuminant: int):
        v = srational(m)
        self.tags.append((50721, "2i", 9, v, True))  # ColorMatrix1
        self.tags.append((50778, "H", 1, illuminant, True))  # CalibrationIlluminant1
        self.truth["color_matrix1"] = from_rational(v)
        self.truth["calibration_illuminant1"] = illuminant

    def matrix2(self, m, illuminant: int):
        v = srational(m)
        self.tags.append((50722, "2i", 9, v, True))  # ColorMatrix2
        self.tags.append((50779, "H", 1, illuminant, True))  # CalibrationIlluminant2
        self.truth["color_matrix2"] = from_rational(v)
        self.truth["calibration_illuminant2"] = illuminant

    def neutral(self, rats):
        flat = tuple(x for r in rats for x in r)
        self.tags.append((50728, "2I", 3, flat, True))  # AsShotNeutral
        self.truth["as_shot_neutral"] = from_rational(flat)

    def exposure(self, num: int, den: int, in_exif: bool = False):
        if in_exif:
            self.exif.append((33434, 5, 1, (num, den)))
        else:
            self.tags.append((33434, "2I", 1, (num, den), True))  # ExposureTime
        self.truth["exposure_time"] = num / den
        self.truth["exposure_time_ifd"] = "exif" if in_exif else "main"

    def iso(self, value: int):
        self.exif.append((34855, 3, 1, (value,)))  # ISOSpeedRatings (EXIF IFD)
        self.truth["iso"] = value

    def linearization(self, table):
        table = [int(v) for v in table]
        self.tags.append((50712, "H", len(table), tuple(table), True))
        self.truth["linearization_table"] = table

    def active_area(self, top, left, bottom, right):
        self.tags.append((50829, "I", 4, (top, left, bottom, right), True))
        self.truth["active_area"] = [top, left, bottom, right]
        # DNG: CFAPattern (and BlackLevel) are indexed from the ActiveArea's
        # top-left, so the visible image starts with the tag's pattern; the
        # pattern at raw (0, 0) is the shifted one.
        self.truth["visible_pattern"] = self.pattern
        self.truth["raw_origin_pattern"] = shifted_pattern(self.pattern, top, left)
        # LibRaw moves an odd top/left margin in by one (and shrinks the image
        # by one) to keep Bayer margins even: its raw_image_visible is the
        # ActiveArea minus this many leading rows/columns.
        self.truth["libraw_crop"] = {
            "top": top & 1,
            "left": left & 1,
            "height": (bottom - top) - (top & 1),
            "width": (right - left) - (left & 1),
        }

    def default_crop(self, origin, size):
        # tags store (horizontal, vertical) = (x, y); truth keeps the same order
        self.tags.append((50719, "I", 2, tuple(origin), True))  # DefaultCropOrigin
        self.tags.append((50720, "I", 2, tuple(size), True))  # DefaultCropSize
        self.truth["default_crop_origin"] = list(origin)
        self.truth["default_crop_size"] = list(size)

    def expected_visible(self) -> np.ndarray:
        v = self.raw.astype(np.int64)
        lut = self.truth["linearization_table"]
        if lut is not None:
            lut = np.asarray(lut, dtype=np.int64)
            v = lut[np.minimum(v, len(lut) - 1)]
        t, l, b, r = self.truth["active_area"]
        return v[t:b, l:r].astype(np.uint16)

    def expected_libraw_visible(self) -> np.ndarray:
        c = self.truth["libraw_crop"]
        v = self.expected_visible()
        return v[c["top"] : c["top"] + c["height"], c["left"] : c["left"] + c["width"]]

    def expected_libraw_pattern(self) -> str:
        c = self.truth["libraw_crop"]
        return shifted_pattern(self.truth["visible_pattern"], c["top"], c["left"])


# -- GainMap opcodes (DNG 1.3+ OpcodeList, big-endian) ----------------------


def gain_map_opcode(gm: dict) -> bytes:
    params = struct.pack(
        ">10I",
        gm["top"], gm["left"], gm["bottom"], gm["right"],
        gm["plane"], gm["planes"], gm["row_pitch"], gm["col_pitch"],
        gm["map_points_v"], gm["map_points_h"],
    )
    params += struct.pack(
        ">4d", gm["map_spacing_v"], gm["map_spacing_h"], gm["map_origin_v"], gm["map_origin_h"]
    )
    params += struct.pack(">I", gm["map_planes"])
    params += struct.pack(f">{len(gm['gains'])}f", *gm["gains"])
    # OpcodeID 9 (GainMap), DNG version 1.3.0.0, flags 0, parameter byte count
    return struct.pack(">4I", 9, 0x01030000, gm["flags"], len(params)) + params


def make_gain_maps(h: int, w: int) -> list[dict]:
    maps = []
    nv, nh = 5, 7
    for site, (top, left) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        k = [0.30, 0.22, 0.18, 0.36][site]
        gains = []
        for i in range(nv):
            for j in range(nh):
                v, u = i / (nv - 1), j / (nh - 1)
                r2 = ((v - 0.5) ** 2 + (u - 0.5) ** 2) / 0.5
                # round through float32 so the truth equals what is stored
                gains.append(float(np.float32(1.0 + k * r2)))
        maps.append(
            {
                "opcode_id": 9,
                "dng_version": [1, 3, 0, 0],
                "flags": 0,
                "top": top,
                "left": left,
                "bottom": h,
                "right": w,
                "plane": 0,
                "planes": 1,
                "row_pitch": 2,
                "col_pitch": 2,
                "map_points_v": nv,
                "map_points_h": nh,
                "map_spacing_v": 1.0 / (nv - 1),
                "map_spacing_h": 1.0 / (nh - 1),
                "map_origin_v": 0.0,
                "map_origin_h": 0.0,
                "map_planes": 1,
                "gains": gains,  # [v][h][plane], flattened
            }
        )
    return maps


# -- lossless JPEG (ITU T.81 process 14, SOF3) with N interleaved components --


def _bits_needed(v: int) -> int:
    return 0 if v == 0 else int(abs(v)).bit_length()


# One Huffman table for SSSS 0..16: 14 codes of 4 bits, 3 of 5 bits (the
# all-ones 5-bit code stays unused, as T.81 requires).
_HUFF_BITS = [0, 0, 0, 14, 3] + [0] * 11
_HUFF_VALS = list(range(17))


def _huff_codes() -> dict[int, tuple[int, int]]:
    codes, code, k = {}, 0, 0
    for length, count in enumerate(_HUFF_BITS, start=1):
        for _ in range(count):
            codes[_HUFF_VALS[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


def lj92_encode(samples: np.ndarray, precision: int) -> bytes:
    """Encode (rows, cols, components) uint16 samples as a lossless JPEG with
    predictor 1 (left; top for the first column), point transform 0."""
    rows, cols, ncomp = samples.shape
    x = samples.astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0, :] = 1 << (precision - 1)
    pred[0, 1:, :] = x[0, :-1, :]
    pred[1:, 0, :] = x[:-1, 0, :]
    pred[1:, 1:, :] = x[1:, :-1, :]
    diff = ((x - pred + 32768) % 65536) - 32768
    codes = _huff_codes()

    out = bytearray()
    acc, nacc = 0, 0

    def put(value: int, n: int):
        nonlocal acc, nacc
        acc = (acc << n) | (value & ((1 << n) - 1))
        nacc += n
        while nacc >= 8:
            byte = (acc >> (nacc - 8)) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0x00)  # byte stuffing
            nacc -= 8
        acc &= (1 << nacc) - 1

    for d in diff.reshape(-1).tolist():
        if d == -32768:  # SSSS 16 encodes +32768 with no extra bits
            ssss = 16
        else:
            ssss = _bits_needed(d)
        code, length = codes[ssss]
        put(code, length)
        if 0 < ssss < 16:
            put(d if d > 0 else d + (1 << ssss) - 1, ssss)
    if nacc:
        put((1 << (8 - nacc)) - 1, 8 - nacc)  # pad with 1-bits

    dht = bytes([0x00]) + bytes(_HUFF_BITS) + bytes(_HUFF_VALS)
    sof = struct.pack(">BHHB", precision, rows, cols, ncomp)
    sof += b"".join(bytes([c + 1, 0x11, 0]) for c in range(ncomp))
    sos = bytes([ncomp]) + b"".join(bytes([c + 1, 0x00]) for c in range(ncomp))
    sos += bytes([1, 0, 0])  # Ss = predictor 1, Se = 0, Ah/Al = 0

    def seg(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    return (
        b"\xff\xd8"
        + seg(0xFFC4, dht)
        + seg(0xFFC3, sof)
        + seg(0xFFDA, sos)
        + bytes(out)
        + b"\xff\xd9"
    )


def lj92_tiles_2comp(raw: np.ndarray, tile_len: int, tile_wid: int, precision: int):
    """Tiles in TIFF order, each tile_len x tile_wid CFA samples encoded as a
    (tile_len, tile_wid/2, 2) JPEG: the samples in raster order, two
    interleaved components (Adobe DNG Converter's layout). Edge tiles are
    padded by repeating the last column/row."""
    h, w = raw.shape
    th, tw = -(-h // tile_len), -(-w // tile_wid)
    padded = np.pad(raw, ((0, th * tile_len - h), (0, tw * tile_wid - w)), mode="edge")
    for ty in range(th):
        for tx in range(tw):
            t = padded[ty * tile_len : (ty + 1) * tile_len, tx * tile_wid : (tx + 1) * tile_wid]
            yield lj92_encode(t.reshape(tile_len, tile_wid // 2, 2), precision)


# -- EXIF sub-IFD -------------------------------------------------------------

EXIF_PLACEHOLDER = 34664  # unused code that sorts where 34665 (ExifIFD) does


def attach_exif(path: Path, entries: list[tuple]) -> None:
    """tifffile will not write IFD-pointer tags, so the file is written with a
    LONG placeholder tag (34664) in IFD0; here an EXIF IFD is appended
    (word-aligned) and the placeholder becomes ExifIFD (34665, LONG) pointing
    at it. Entries: (code, type, count, values) with type 3 SHORT or 5
    RATIONAL."""
    data = bytearray(path.read_bytes())
    bo = {b"II": "<", b"MM": ">"}[bytes(data[:2])]
    (magic,) = struct.unpack(bo + "H", data[2:4])
    assert magic == 42, "classic TIFF expected"
    (ifd0,) = struct.unpack(bo + "I", data[4:8])
    (n,) = struct.unpack(bo + "H", data[ifd0 : ifd0 + 2])
    slot = None
    for i in range(n):
        e = ifd0 + 2 + 12 * i
        code, typ, count = struct.unpack(bo + "HHI", data[e : e + 8])
        if code == EXIF_PLACEHOLDER:
            assert typ == 4 and count == 1
            slot = e
    assert slot is not None, "placeholder tag not found"

    if len(data) % 2:
        data += b"\0"
    exif_at = len(data)
    entries = sorted(entries)
    ifd_len = 2 + 12 * len(entries) + 4
    extra_at = exif_at + ifd_len
    ifd = bytearray(struct.pack(bo + "H", len(entries)))
    extra = bytearray()
    for code, typ, count, values in entries:
        if typ == 3:
            payload = struct.pack(bo + f"{count}H", *values)
        elif typ == 5:
            payload = struct.pack(bo + f"{2 * count}I", *values)
        else:
            raise ValueError(typ)
        if len(payload) <= 4:
            field = payload.ljust(4, b"\0")
        else:
            field = struct.pack(bo + "I", extra_at + len(extra))
            extra += payload
            if len(extra) % 2:
                extra += b"\0"
        ifd += struct.pack(bo + "HHI", code, typ, count) + field
    ifd += struct.pack(bo + "I", 0)  # no next IFD
    data += ifd + extra
    struct.pack_into(bo + "HHII", data, slot, 34665, 4, 1, exif_at)
    path.write_bytes(bytes(data))


# -- writing one fixture --------------------------------------------------------


def write_dng(fx: Fixture, path: Path, *, tile=None, rowsperstrip=None, ljpeg=None,
              byteorder="<", extratags=()):
    import tifffile

    tags = list(fx.tags) + list(extratags)
    if fx.exif:
        tags.append((EXIF_PLACEHOLDER, "I", 1, 0, True))
    kw: dict = dict(
        photometric=32803,  # CFA
        extratags=tags,
        metadata=None,
        software=False,
        subfiletype=0,
        byteorder=byteorder,
    )
    data = fx.raw if fx.bits > 8 else fx.raw.astype(np.uint8)
    if tile is not None:
        kw["tile"] = tile
        fx.truth["tiled"] = True
        fx.truth["tile_length"], fx.truth["tile_width"] = tile
    if rowsperstrip is not None:
        kw["rowsperstrip"] = rowsperstrip
    if ljpeg == "tifffile":
        # one-component lossless JPEG per tile, encoded by imagecodecs
        kw.update(compression="jpeg", compressionargs={"lossless": True},
                  bitspersample=fx.bits)
        fx.truth["compression"] = 7
        fx.truth["lj92_components"] = 1
    elif ljpeg == "2comp":
        assert tile is not None
        kw.update(compression=7, bitspersample=fx.bits, shape=fx.raw.shape,
                  dtype=np.uint16)
        data = lj92_tiles_2comp(fx.raw, tile[0], tile[1], fx.bits)
        fx.truth["compression"] = 7
        fx.truth["lj92_components"] = 2
    elif fx.bits not in (8, 16):
        kw["bitspersample"] = fx.bits  # tifffile packs MSB-first, rows byte-aligned
    tifffile.imwrite(path, data, **kw)
    if fx.exif:
        attach_exif(path, fx.exif)
    fx.truth["byte_order"] = byteorder

    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        if tile is None:
            fx.truth["rows_per_strip"] = int(page.rowsperstrip)
        fx.truth["strip_or_tile_count"] = len(page.dataoffsets)
        assert page.photometric == 32803
        assert page.bitspersample == fx.bits, (page.bitspersample, fx.bits)
        assert page.compression == fx.truth["compression"]
        assert page.tags[33422].value == bytes(fx.truth["cfa_pattern"])
        assert (tf.byteorder == byteorder)
        if fx.exif:
            exif = page.tags[34665].value
            if fx.truth["iso"] is not None:
                assert exif["ISOSpeedRatings"] == fx.truth["iso"], exif
            if fx.truth["exposure_time_ifd"] == "exif":
                assert tuple(exif["ExposureTime"]) == fx.exif[0][3], exif
        if fx.truth["compression"] == 1:
            # tifffile decodes the (packed) samples back
            assert np.array_equal(page.asarray(), data), fx.name
        elif fx.truth["lj92_components"] == 1:
            assert np.array_equal(page.asarray(), fx.raw), fx.name
        else:
            import imagecodecs

            # decode the 2-component tiles with imagecodecs as a cross-check
            tl, tw = tile
            h, w = fx.raw.shape
            tx_n = -(-w // tw)
            fh = tf.filehandle
            for i, (off, cnt) in enumerate(zip(page.dataoffsets, page.databytecounts)):
                fh.seek(off)
                dec = imagecodecs.ljpeg_decode(fh.read(cnt))
                ty, tx = divmod(i, tx_n)
                got = np.asarray(dec).reshape(tl, tw)
                want = fx.raw[ty * tl : (ty + 1) * tl, tx * tw : (tx + 1) * tw]
                assert np.array_equal(got[: want.shape[0], : want.shape[1]], want), i


def finish(fx: Fixture, path: Path, out: Path, notes: list[str] | None = None) -> dict:
    info, vis = describe(path, name=path.name)
    if vis is None:
        raise SystemExit(f"{path.name}: LibRaw refused the fixture: {info['error']}")
    # the ActiveArea as the DNG spec defines it (what our reader should return)
    fx.truth["visible_sha256"] = describe_array(fx.expected_visible())["sha256"]
    want = fx.expected_libraw_visible()
    if vis.shape != want.shape or not np.array_equal(vis, want):
        raise SystemExit(f"{path.name}: LibRaw's raw_image_visible differs from the written data")
    pat = info["raw_pattern_str"]
    if pat != fx.expected_libraw_pattern():
        raise SystemExit(f"{path.name}: LibRaw pattern {pat} != {fx.expected_libraw_pattern()}")
    info["truth"] = fx.truth
    if notes:
        info["notes"] = notes
    (out / f"{fx.name}.visible.u16").write_bytes(np.ascontiguousarray(vis, dtype="<u2").tobytes())
    return info


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def cmd_make(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def emit(fx: Fixture, notes=None, **kw):
        p = out / f"{fx.name}.dng"
        write_dng(fx, p, **kw)
        info = finish(fx, p, out, notes)
        write_json(out / f"{fx.name}.json", info)
        written.append(fx.name)
        return p

    # 1. 16-bit uncompressed strips, RGGB
    fx = Fixture("u16_strips_rggb", "RGGB", mosaic(48, 64, 64, 4095, seed=1), 16)
    fx.black([64])
    fx.white(4095)
    fx.neutral(NEUTRAL)
    fx.matrix1(CM_D65, 21)
    fx.exposure(1, 100)
    fx.iso(200)
    p1 = emit(fx, rowsperstrip=16)

    # 2. 12-bit packed, one strip, BGGR, 2x2 black levels
    fx = Fixture("u12_packed_bggr", "BGGR", mosaic(46, 62, 67, 4000, seed=2), 12)
    fx.black([64, 65, 66, 67], (2, 2))
    fx.white(4000)
    fx.neutral(NEUTRAL)
    fx.matrix1(CM_D65, 21)
    emit(fx)

    # 3. 10-bit packed, 32x32 tiles overlapping the right/bottom edges, GRBG
    fx = Fixture("u10_tiles_grbg", "GRBG", mosaic(48, 80, 16, 1023, seed=3), 10)
    fx.black([16])
    fx.white(1023)
    fx.neutral(NEUTRAL)
    emit(fx, tile=(32, 32))

    # 4. 14-bit packed strips (rows of 62 samples = 108.5 bytes, padded), GBRG
    fx = Fixture("u14_packed_gbrg", "GBRG", mosaic(40, 62, 256, 16383, seed=4), 14)
    fx.black([256])
    fx.white(16383)
    fx.neutral(NEUTRAL)
    emit(fx, rowsperstrip=8)

    # 5. 8-bit codes with a full 256-entry LinearizationTable, RGGB
    fx = Fixture("u8_linearization", "RGGB", mosaic(48, 64, 0, 255, seed=5), 8)
    fx.linearization([round(4095 * (i / 255) ** 2.2) for i in range(256)])
    fx.black([0])
    fx.white(4095)
    fx.neutral(NEUTRAL)
    emit(fx)

    # 5b. table shorter than the code range: codes >= 200 take the last entry
    fx = Fixture("u8_linearization_short", "RGGB", mosaic(48, 64, 0, 255, seed=6), 8)
    fx.linearization([round(3900 * (i / 199) ** 1.8) for i in range(200)])
    fx.black([0])
    fx.white(4095)
    fx.neutral(NEUTRAL)
    fx.raw[10:40, 40:60] = np.rint(np.linspace(150, 255, 20)).astype(np.uint16)  # codes past the end
    assert int((fx.raw >= 200).sum()) > 100
    emit(fx)

    # 6. 12-bit lossless JPEG, 32x32 tiles, one component (imagecodecs)
    fx = Fixture("lj92_tiles_rggb", "RGGB", mosaic(64, 96, 128, 4095, seed=7), 12)
    fx.black([128])
    fx.white(4095)
    fx.neutral(NEUTRAL)
    fx.matrix1(CM_D65, 21)
    emit(fx, tile=(32, 32), ljpeg="tifffile")

    # 7. 14-bit lossless JPEG, 32x64 tiles (right column overlaps the edge),
    #    each tile a 2-component JPEG of half width (encoder above)
    fx = Fixture("lj92_2comp_bggr", "BGGR", mosaic(64, 96, 512, 16383, seed=8), 14)
    fx.black([512])
    fx.white(16383)
    fx.neutral(NEUTRAL)
    emit(fx, tile=(32, 64), ljpeg="2comp")

    # 8. ActiveArea with an odd left offset, plus DefaultCrop (ignored by LibRaw)
    full = mosaic(56, 72, 256, 4095, seed=9)
    rng = np.random.default_rng(90)
    masked = np.ones(full.shape, bool)
    masked[2:50, 3:67] = False
    full[masked] = (240 + rng.integers(0, 32, size=int(masked.sum()))).astype(np.uint16)
    fx = Fixture("active_area_gbrg", "GBRG", full, 16)
    fx.black([256])
    fx.white(4095)
    fx.neutral(NEUTRAL)
    fx.active_area(2, 3, 50, 67)
    fx.default_crop((4, 4), (56, 40))
    emit(fx)

    # 8b. ActiveArea on even offsets (LibRaw's visible area == the ActiveArea)
    full = mosaic(52, 68, 128, 4095, seed=13)
    masked = np.ones(full.shape, bool)
    masked[2:50, 4:66] = False
    full[masked] = (112 + rng.integers(0, 32, size=int(masked.sum()))).astype(np.uint16)
    fx = Fixture("active_area_even_rggb", "RGGB", full, 16)
    fx.black([128])
    fx.white(4095)
    fx.neutral(NEUTRAL)
    fx.active_area(2, 4, 50, 66)
    emit(fx)

    # 9. GainMap opcodes in OpcodeList2 (not applied by LibRaw)
    h, w = 48, 64
    fx = Fixture("gainmap_rggb", "RGGB", mosaic(h, w, 64, 4095, seed=10), 16)
    fx.black([64])
    fx.white(4095)
    fx.neutral(NEUTRAL)
    maps = make_gain_maps(h, w)
    oplist = struct.pack(">I", len(maps)) + b"".join(gain_map_opcode(m) for m in maps)
    fx.truth["gain_maps"] = maps
    fx.truth["opcode_list2_sha256"] = hashlib.sha256(oplist).hexdigest()
    emit(fx, extratags=[(51009, "B", len(oplist), oplist, True)])

    # 10. big-endian, two colour matrices, ExposureTime + ISO in the EXIF IFD
    fx = Fixture("two_matrices_be", "RGGB", mosaic(48, 64, 128, 4095, seed=11), 16)
    fx.black([128])
    fx.white(4095)
    fx.neutral(NEUTRAL_BE)
    fx.matrix1(CM_STDA, 17)
    fx.matrix2(CM_D65, 21)
    fx.exposure(1, 250, in_exif=True)
    fx.iso(800)
    emit(fx, byteorder=">")

    # 11. two matrices with D65 first (LibRaw and our reader both pick the
    #     D65 one whatever its place), a second camera's numbers
    fx = Fixture("two_matrices_d65_first", "GRBG", mosaic(48, 64, 64, 4095, seed=14), 16)
    fx.black([64])
    fx.white(4095)
    fx.neutral(((9, 20), (1, 1), (7, 10)))
    fx.matrix1(CM2_D65, 21)
    fx.matrix2(CM2_STDA, 17)
    emit(fx)

    # 12. one matrix, for Standard Light A only: it is the one used
    fx = Fixture("one_matrix_stda_bggr", "BGGR", mosaic(48, 64, 64, 4095, seed=15), 16)
    fx.black([64])
    fx.white(4095)
    fx.neutral(((3, 5), (1, 1), (1, 2)))
    fx.matrix1(CM2_STDA, 17)
    emit(fx)

    # bad files
    src = p1.read_bytes()
    cut = src[: int(len(src) * 0.6)]
    bad = out / "bad_truncated.dng"
    bad.write_bytes(cut)
    info, _ = describe(bad, name=bad.name)
    info["truth"] = {"kind": "truncated", "source": p1.name, "source_bytes": len(src),
                     "bytes": len(cut)}
    write_json(out / "bad_truncated.json", info)
    written.append("bad_truncated")

    bad = out / "bad_not_tiff.dng"
    bad.write_bytes(np.random.default_rng(12345).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    info, _ = describe(bad, name=bad.name)
    info["truth"] = {"kind": "random bytes", "bytes": 4096, "seed": 12345}
    write_json(out / "bad_not_tiff.json", info)
    written.append("bad_not_tiff")

    for n in written:
        r = json.loads((out / f"{n}.json").read_text())
        status = r.get("error") or f"{r['width']}x{r['height']} ok"
        print(f"{n}.dng: {(out / f'{n}.dng').stat().st_size} bytes, {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    mk = sub.add_parser("make", help="write the DNG fixtures and LibRaw's expectations")
    mk.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "engine" / "tests" / "data" / "dng",
        help="output folder (default: engine/tests/data/dng of this repository)",
    )
    ck = sub.add_parser("check", help="print what LibRaw reads from DNG files as JSON")
    ck.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    if args.mode == "make":
        return cmd_make(args.out)
    return cmd_check(args.files)


if __name__ == "__main__":
    sys.exit(main())
