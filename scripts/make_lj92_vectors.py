#!/usr/bin/env python3
"""Writes the lossless JPEG (ITU T.81 process 14, "LJ92") test vectors.

The vectors feed the tests of ``engine/dng/src/lj92.rs``. Each vector NAME is
three files in ``engine/tests/data/lj92/``:

  NAME.ljpeg  the stream, SOI .. EOI
  NAME.u16    the samples a decoder must return: width x height x components,
              interleaved, row-major, little-endian u16
  NAME.txt    ``key=value`` lines: width, height, components, precision,
              predictor, point_transform, restart_interval, encoder, checked_by

Three encoders write them:

* ``ljt_*``  libjpeg-turbo 3.x (``imagecodecs.jpeg8_encode(lossless=True)``):
  every predictor 1..7, precisions 2..16, 1 to 4 components, odd sizes,
  difference category 16 (jumps of 32768 in 16-bit data).
* ``lj92_*`` liblj92 (``imagecodecs.ljpeg_encode``), the encoder many DNG
  writers descend from: one component, predictor 6.
* ``mini_*`` the small encoder in this script, for what the two above cannot
  be asked for: restart intervals (DRI + RSTn), point transforms, a table per
  component with ids 2 and 3, AC-class tables, APPn/COM segments, fill bytes
  before markers, Huffman codes of 10..16 bits. Every one of these streams is
  decoded back by libjpeg-turbo (``imagecodecs.jpeg8_decode``) and must equal
  the expected samples, or the script stops; ``checked_by`` names the decoders
  that agreed.

Expected samples are the encoder's input (shifted down and back up by the
point transform), never a decoder's output.

Run from the repository root with imagecodecs (2026.3.6 was used) and numpy::

    python3 scripts/make_lj92_vectors.py

The output is deterministic (seeded generators); re-running gives the same
bytes for the same imagecodecs version.
"""

import pathlib
import sys

import imagecodecs
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "engine" / "tests" / "data" / "lj92"


# ---------------------------------------------------------------------------
# Test images


def make_image(rng, h, w, c, bits, spikes=0.02, jumps16=False):
    """A smooth ramp plus noise plus rare spikes, values in [0, 2^bits)."""
    top = (1 << bits) - 1
    yy, xx = np.mgrid[0:h, 0:w]
    planes = []
    for k in range(c):
        base = (xx * (top / max(w, 1)) * 0.6 + yy * (top / max(h, 1)) * 0.3 + k * top * 0.05)
        noise = rng.normal(0.0, max(1.0, top / 200.0), size=(h, w))
        p = np.clip(base + noise, 0, top)
        mask = rng.random((h, w)) < spikes
        p[mask] = rng.integers(0, top + 1, size=int(mask.sum()))
        planes.append(p)
    img = np.stack(planes, axis=-1).astype(np.int64)
    if jumps16:
        # Neighbours 32768 apart: difference category 16 for every predictor.
        for k in range(c):
            for i in range(0, h, 3):
                j = (i * 7 + k * 3) % w
                img[i, j, k] = 0
                if j + 1 < w:
                    img[i, j + 1, k] = 32768
                if i + 1 < h:
                    img[i + 1, j, k] = 32768
    return np.clip(img, 0, top).astype(np.uint16)


# ---------------------------------------------------------------------------
# The small encoder (T.81 Annex H, Huffman coding per Annexes C and K.2)


def predict(sel, ra, rb, rc):
    if sel == 1:
        return ra
    if sel == 2:
        return rb
    if sel == 3:
        return rc
    if sel == 4:
        return ra + rb - rc
    if sel == 5:
        return ra + ((rb - rc) >> 1)
    if sel == 6:
        return rb + ((ra - rc) >> 1)
    if sel == 7:
        return (ra + rb) >> 1
    raise ValueError(sel)


def differences(v, precision, pt, sel, restart):
    """Differences (T.81 H.1.2) of the shifted image v (h, w, c), in MCU order."""
    h, w, c = v.shape
    if restart:
        assert restart % w == 0, "the small encoder restarts at row starts only"
    init = 1 << (precision - pt - 1)
    out = np.zeros((h, w, c), dtype=np.int64)
    first_row_of_interval = 0
    for y in range(h):
        if restart and (y * w) % restart == 0:
            first_row_of_interval = y
        for x in range(w):
            for k in range(c):
                if y == first_row_of_interval and x == 0:
                    p = init
                elif y == first_row_of_interval:
                    p = int(v[y, x - 1, k])
                elif x == 0:
                    p = int(v[y - 1, x, k])
                else:
                    p = predict(sel, int(v[y, x - 1, k]), int(v[y - 1, x, k]), int(v[y - 1, x - 1, k]))
                d = (int(v[y, x, k]) - p) & 0xFFFF
                if d >= 0x8000:
                    d -= 0x10000
                if d == -0x8000:
                    d = 0x8000
                out[y, x, k] = d
    return out


def category(d):
    if d == 0x8000:
        return 16
    return abs(int(d)).bit_length()


def huffman_bits(freq):
    """BITS and HUFFVAL for the symbol frequencies (Annex K.2, 16-bit limit)."""
    freq = dict(freq)
    freq[256] = 1  # reserved so that no code is all ones
    codesize = {s: 0 for s in freq}
    others = {s: -1 for s in freq}
    while True:
        live = [s for s in freq if freq[s] > 0]
        if len(live) < 2:
            break
        # least frequency, largest symbol on ties (as in the figure)
        live.sort(key=lambda s: (freq[s], -s))
        v1, v2 = live[0], live[1]
        freq[v1] += freq[v2]
        freq[v2] = 0
        codesize[v1] += 1
        while others[v1] != -1:
            v1 = others[v1]
            codesize[v1] += 1
        others[v1] = v2
        codesize[v2] += 1
        while others[v2] != -1:
            v2 = others[v2]
            codesize[v2] += 1
    bits = [0] * 33
    for s, n in codesize.items():
        if n:
            bits[n] += 1
    for i in range(32, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1
    huffval = sorted((s for s in codesize if s != 256 and codesize[s]), key=lambda s: (codesize[s], s))
    return bits[1:17], huffval


def canonical_codes(bits, huffval):
    codes = {}
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[huffval[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


class BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, n):
        if n == 0:
            return
        self.acc = (self.acc << n) | (value & ((1 << n) - 1))
        self.n += n
        while self.n >= 8:
            b = (self.acc >> (self.n - 8)) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)
            self.n -= 8
            self.acc &= (1 << self.n) - 1

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)


def segment(marker, payload, fill=0):
    return b"\xff" * fill + bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + bytes(payload)


def mini_encode(img, precision, sel, pt=0, restart=0, per_component_tables=False,
                table_ids=None, extras=False, fill=0, one_dht_segment=True, ac_table=False,
                fixed_table=None):
    h, w, c = img.shape
    v = (img.astype(np.int64) >> pt)
    diffs = differences(v, precision, pt, sel, restart)
    ntab = c if per_component_tables else 1
    if table_ids is None:
        table_ids = list(range(ntab))
    comp_table = [table_ids[k] if per_component_tables else table_ids[0] for k in range(c)]
    tables = {}
    for t in range(ntab):
        comps = [k for k in range(c) if comp_table[k] == table_ids[t]]
        freq = {}
        for k in comps:
            for d in diffs[:, :, k].ravel():
                s = category(int(d))
                freq[s] = freq.get(s, 0) + 1
        bits, vals = fixed_table if fixed_table else huffman_bits(freq)
        tables[table_ids[t]] = (bits, vals)
    codes = {tid: canonical_codes(*tables[tid]) for tid in tables}

    bw = BitWriter()
    scan = bytearray()
    rst = 0
    mcu = 0
    for y in range(h):
        for x in range(w):
            if restart and mcu and mcu % restart == 0:
                bw.flush()
                scan += bw.out
                scan += bytes([0xFF, 0xD0 + rst])
                rst = (rst + 1) % 8
                bw = BitWriter()
            for k in range(c):
                d = int(diffs[y, x, k])
                s = category(d)
                code, length = codes[comp_table[k]][s]
                bw.put(code, length)
                if 0 < s < 16:
                    bw.put(d if d >= 0 else d + (1 << s) - 1, s)
            mcu += 1
    bw.flush()
    scan += bw.out

    out = bytearray(b"\xff\xd8")
    if extras:
        out += segment(0xE1, b"Exif\x00\x00not really exif")
        out += segment(0xFE, b"written by scripts/make_lj92_vectors.py")
    dht = []
    for tid in table_ids[:ntab]:
        bits, vals = tables[tid]
        dht.append(bytes([0x00 | tid]) + bytes(bits) + bytes(vals))
        if ac_table:
            dht.append(bytes([0x10 | tid]) + bytes(bits) + bytes(vals))
    sof = bytes([precision]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes([c])
    ids = [1 + 3 * k for k in range(c)]
    for k in range(c):
        sof += bytes([ids[k], 0x11, 0])
    out += segment(0xC3, sof, fill)
    if one_dht_segment:
        out += segment(0xC4, b"".join(dht), fill)
    else:
        for t in dht:
            out += segment(0xC4, t, fill)
    if restart:
        out += segment(0xDD, restart.to_bytes(2, "big"))
    sos = bytes([c])
    for k in range(c):
        sos += bytes([ids[k], comp_table[k] << 4])
    sos += bytes([sel, 0, pt])
    out += segment(0xDA, sos, fill)
    out += scan
    out += b"\xff" * fill + b"\xff\xd9"
    return bytes(out)


# ---------------------------------------------------------------------------


def as_hwc(a):
    return a if a.ndim == 3 else a[:, :, None]


def write(name, stream, expected, precision, predictor, pt=0, restart=0, encoder="", checked_by=()):
    expected = as_hwc(expected)
    h, w, c = expected.shape
    (OUT / f"{name}.ljpeg").write_bytes(stream)
    (OUT / f"{name}.u16").write_bytes(expected.astype("<u2").tobytes())
    meta = {
        "width": w, "height": h, "components": c, "precision": precision,
        "predictor": predictor, "point_transform": pt, "restart_interval": restart,
        "encoder": encoder, "checked_by": ",".join(checked_by),
    }
    (OUT / f"{name}.txt").write_text("".join(f"{k}={v}\n" for k, v in meta.items()))


def check_with(decoder, stream, expected):
    try:
        got = decoder(stream)
    except Exception as e:  # noqa: BLE001
        return False, str(e)
    got = as_hwc(np.asarray(got)).astype(np.uint16)
    exp = as_hwc(expected)
    if got.shape != exp.shape:
        return False, f"shape {got.shape} != {exp.shape}"
    if not (got == exp).all():
        return False, "samples differ"
    return True, ""


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.iterdir():
        if f.suffix in (".ljpeg", ".u16", ".txt"):
            f.unlink()
    rng = np.random.default_rng(20260314)
    ljt_version = imagecodecs.jpeg8_version()
    lj92_version = imagecodecs.ljpeg_version()

    def ljt(name, h, w, c, bits, pred, **kw):
        img = make_image(rng, h, w, c, bits, **kw)
        data = img if c > 1 else img[:, :, 0]
        if bits <= 8:
            data = data.astype(np.uint8)
        stream = imagecodecs.jpeg8_encode(data, lossless=True, predictor=pred, bitspersample=bits)
        ok, why = check_with(imagecodecs.jpeg8_decode, stream, img)
        if not ok:
            sys.exit(f"{name}: libjpeg-turbo does not read back its own stream: {why}")
        write(name, stream, img, bits, pred, encoder=ljt_version, checked_by=["libjpeg-turbo"])

    # every predictor at 16 bits with category-16 differences, one component
    for p in range(1, 8):
        ljt(f"ljt_p{p}_b16_c1_23x13", 13, 23, 1, 16, p, jumps16=True)
    # every predictor, 3 components, 12 bits, odd width
    for p in range(1, 8):
        ljt(f"ljt_p{p}_b12_c3_11x7", 7, 11, 3, 12, p)
    # components and precisions DNG uses
    ljt("ljt_p1_b14_c2_17x9", 9, 17, 2, 14, 1)
    ljt("ljt_p6_b14_c4_9x7", 7, 9, 4, 14, 6)
    ljt("ljt_p4_b16_c4_7x5", 5, 7, 4, 16, 4, jumps16=True)
    ljt("ljt_p7_b16_c2_13x6", 6, 13, 2, 16, 7, jumps16=True)
    ljt("ljt_p1_b8_c1_31x9", 9, 31, 1, 8, 1)
    ljt("ljt_p5_b8_c3_5x5", 5, 5, 3, 8, 5)
    ljt("ljt_p2_b10_c1_15x8", 8, 15, 1, 10, 2)
    for bits in (2, 3, 5, 7, 9, 11, 13, 15):
        ljt(f"ljt_p{1 + bits % 7}_b{bits}_c1_9x6", 6, 9, 1, bits, 1 + bits % 7)
    ljt("ljt_p6_b12_c1_1x9", 9, 1, 1, 12, 6)
    ljt("ljt_p4_b12_c1_9x1", 1, 9, 1, 12, 4)
    ljt("ljt_p3_b12_c1_1x1", 1, 1, 1, 12, 3)

    # liblj92, the DNG-flavoured encoder (predictor 6, one component)
    for bits, (h, w) in ((8, (7, 19)), (12, (11, 21)), (14, (9, 33)), (16, (8, 15))):
        img = make_image(rng, h, w, 1, bits)
        stream = imagecodecs.ljpeg_encode(img[:, :, 0], bitspersample=bits)
        checked = []
        for dname, dec in (("liblj92", imagecodecs.ljpeg_decode), ("libjpeg-turbo", imagecodecs.jpeg8_decode)):
            ok, why = check_with(dec, stream, img)
            if not ok:
                sys.exit(f"lj92 b{bits}: {dname} does not read it back: {why}")
            checked.append(dname)
        sos = stream.index(b"\xff\xda")
        pred = stream[sos + 4 + 1 + 2 * stream[sos + 4]]
        write(f"lj92_p{pred}_b{bits}_c1_{w}x{h}", stream, img, bits, pred, encoder=lj92_version, checked_by=checked)

    # the small encoder, for what the libraries cannot be asked for
    def mini(name, img, bits, pred, pt=0, restart=0, **kw):
        stream = mini_encode(img, bits, pred, pt=pt, restart=restart, **kw)
        expected = ((img.astype(np.int64) >> pt) << pt).astype(np.uint16)
        checked = []
        ok, why = check_with(imagecodecs.jpeg8_decode, stream, expected)
        if not ok:
            sys.exit(f"{name}: libjpeg-turbo disagrees with the small encoder: {why}")
        checked.append("libjpeg-turbo")
        if expected.shape[2] == 1 and pt == 0 and restart == 0:
            ok, _ = check_with(imagecodecs.ljpeg_decode, stream, expected)
            if ok:
                checked.append("liblj92")
        write(name, stream, expected, bits, pred, pt, restart, encoder="make_lj92_vectors.py", checked_by=checked)

    mini("mini_rst2rows_p6_b14_c2_9x8", make_image(rng, 8, 9, 2, 14), 14, 6, restart=18,
         per_component_tables=True, table_ids=[2, 3], extras=True, fill=2, one_dht_segment=False)
    mini("mini_rst1row_p7_b12_c1_13x5", make_image(rng, 5, 13, 1, 12), 12, 7, restart=13, extras=True)
    mini("mini_rst3rows_p4_b16_c4_5x10", make_image(rng, 10, 5, 4, 16, jumps16=True), 16, 4, restart=15,
         per_component_tables=True, ac_table=True)
    mini("mini_rst1row_p1_b12_c3_6x20", make_image(rng, 20, 6, 3, 12), 12, 1, restart=6)
    mini("mini_pt2_p1_b12_c1_11x6", make_image(rng, 6, 11, 1, 12), 12, 1, pt=2)
    mini("mini_pt3_rst_p5_b16_c3_7x6", make_image(rng, 6, 7, 3, 16, jumps16=True), 16, 5, pt=3, restart=14,
         per_component_tables=True, fill=1)
    mini("mini_pt1_p2_b8_c2_10x4", make_image(rng, 4, 10, 2, 8), 8, 2, pt=1, ac_table=True)
    # a fixed table with codes of 1..14 and 16 bits (category k gets k + 1
    # bits, categories 14..16 get 16), on noisy 16-bit data: the long codes
    # exercise a decoder's slow path
    long_bits = [1] * 14 + [0, 3]
    long_vals = list(range(17))
    noisy = make_image(rng, 12, 21, 1, 16, spikes=0.3, jumps16=True)
    mini("mini_longcodes_p1_b16_c1_21x12", noisy, 16, 1, fixed_table=(long_bits, long_vals))
    mini("mini_p3_b2_c1_12x4", make_image(rng, 4, 12, 1, 2), 2, 3)
    mini("mini_flat_p1_b12_c1_8x3", np.full((3, 8, 1), 2048, dtype=np.uint16), 12, 1)

    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {len(list(OUT.glob('*.ljpeg')))} vectors, {total} bytes, into {OUT}")


if __name__ == "__main__":
    main()
