#!/usr/bin/env python3
"""Writes the AWB model the ModelManager ships with (issue 13).

``assets/models/awb_shades_of_grey.onnx`` is a Shades-of-Grey illuminant
estimator (Finlayson & Trezzi 2004, Minkowski norm p = 6) built as an ONNX
graph, not trained: it reads the 3A statistics' zone means and returns the
white-balance gains that make the estimated illuminant grey.

  input  ``zones``  float32 [1, 3, 12, 16]  zone means of R, G, B, 0..1
                                           (unsaturated quads only)
  output ``gains``  float32 [1, 3]          R, G, B gains, G = 1

  m      = max over the channels of each zone
  w      = clip(20 (0.95 - m), 0, 1) * clip(100 (m - 0.01), 0, 1)
           (zones near clipping or near black count for nothing)
  e_c    = (sum(w x_c^p) / (sum(w) + 1e-6)) ^ (1/p)
  gain_c = e_G / (e_c + 1e-6)

The engine's test ``engine/tests/models.rs`` holds the file's output to this
formula computed in Rust; this script checks it against numpy when it writes.

Run from the repository root (Python 3.11, ``pip install onnx numpy``)::

    python3 scripts/make_awb_model.py

The committed file was written with onnx 1.23.2 / numpy 2.4.6 (opset 13,
IR version 8); re-running gives the same bytes.
"""

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

P = 6.0
ZONES_Y, ZONES_X = 12, 16
OUT = pathlib.Path("assets/models/awb_shades_of_grey.onnx")
# Models the engine's tests must refuse (shapes that do not fit the stage).
FIXTURES = pathlib.Path("engine/tests/data/models")


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def build():
    inits = [
        const("hi", 0.95),
        const("lo", 0.01),
        const("k_hi", 20.0),
        const("k_lo", 100.0),
        const("zero", 0.0),
        const("one", 1.0),
        const("p", P),
        const("inv_p", 1.0 / P),
        const("eps", 1e-6),
        numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "spatial"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "green"),
    ]
    n = helper.make_node
    nodes = [
        n("ReduceMax", ["zones"], ["m"], axes=[1], keepdims=1),
        n("Sub", ["hi", "m"], ["hi_gap"]),
        n("Mul", ["hi_gap", "k_hi"], ["hi_s"]),
        n("Clip", ["hi_s", "zero", "one"], ["w_hi"]),
        n("Sub", ["m", "lo"], ["lo_gap"]),
        n("Mul", ["lo_gap", "k_lo"], ["lo_s"]),
        n("Clip", ["lo_s", "zero", "one"], ["w_lo"]),
        n("Mul", ["w_hi", "w_lo"], ["w"]),
        n("Pow", ["zones", "p"], ["xp"]),
        n("Mul", ["xp", "w"], ["wxp"]),
        n("ReduceSum", ["wxp", "spatial"], ["num"], keepdims=0),
        n("ReduceSum", ["w", "spatial"], ["den0"], keepdims=0),
        n("Add", ["den0", "eps"], ["den"]),
        n("Div", ["num", "den"], ["mean_p"]),
        n("Pow", ["mean_p", "inv_p"], ["illum"]),
        n("Gather", ["illum", "green"], ["illum_g"], axis=1),
        n("Add", ["illum", "eps"], ["illum_e"]),
        n("Div", ["illum_g", "illum_e"], ["gains"]),
    ]
    graph = helper.make_graph(
        nodes,
        "awb_shades_of_grey",
        [helper.make_tensor_value_info("zones", TensorProto.FLOAT, [1, 3, ZONES_Y, ZONES_X])],
        [helper.make_tensor_value_info("gains", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        producer_name="isp-studio scripts/make_awb_model.py",
        doc_string="Shades-of-Grey AWB (p=6) over 3A zone means; see the script.",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def reference(x):
    m = x.max(axis=1, keepdims=True)
    w = np.clip(20 * (0.95 - m), 0, 1) * np.clip(100 * (m - 0.01), 0, 1)
    e = ((x**P * w).sum(axis=(2, 3)) / (w.sum(axis=(2, 3)) + 1e-6)) ** (1 / P)
    return e[:, 1:2] / (e + 1e-6)


def wrong_shapes():
    """Two models that load but do not fit an AWB stage: one gives two gains
    ([1, 2]), one takes a batch of any size (["batch", 3, 12, 16])."""
    n = helper.make_node
    spatial = numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "spatial")
    ends = numpy_helper.from_array(np.array([0, 2], dtype=np.int64), "ends")
    two = helper.make_graph(
        [
            n("ReduceSum", ["zones", "spatial"], ["s"], keepdims=0),
            n("Gather", ["s", "ends"], ["gains"], axis=1),
        ],
        "awb_two_gains",
        [helper.make_tensor_value_info("zones", TensorProto.FLOAT, [1, 3, ZONES_Y, ZONES_X])],
        [helper.make_tensor_value_info("gains", TensorProto.FLOAT, [1, 2])],
        [spatial, ends],
    )
    batch = helper.make_graph(
        [n("ReduceSum", ["zones", "spatial"], ["gains"], keepdims=0)],
        "awb_any_batch",
        [helper.make_tensor_value_info("zones", TensorProto.FLOAT, ["batch", 3, ZONES_Y, ZONES_X])],
        [helper.make_tensor_value_info("gains", TensorProto.FLOAT, ["batch", 3])],
        [spatial],
    )
    out = {}
    for name, g in [("awb_two_gains.onnx", two), ("awb_any_batch.onnx", batch)]:
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        out[name] = m
    return out


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, m in wrong_shapes().items():
        (FIXTURES / name).write_bytes(m.SerializeToString())
    model = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(model.SerializeToString())
    # A self-check of the graph's arithmetic with onnx's own evaluator.
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(13)
    x = rng.uniform(0, 1, (1, 3, ZONES_Y, ZONES_X)).astype(np.float32)
    (got,) = ReferenceEvaluator(model).run(None, {"zones": x})
    want = reference(x.astype(np.float64))
    assert np.allclose(got, want, rtol=1e-4), (got, want)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); gains of a random grid {got.ravel()}")


if __name__ == "__main__":
    main()
