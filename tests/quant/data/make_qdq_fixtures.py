#!/usr/bin/env python3
"""Small models and data for the int8/fp8 tests (test_qdq.c). Seeded; rerun
with the same numpy/onnx versions gives the same bytes (npz written with a
fixed timestamp).

    python3 tests/quant/data/make_qdq_fixtures.py

qdq_cnn.onnx (opset 17): x [N,3,8,8] ->
    c1 Conv(3->8, 3x3, pads 1, bias) -> r1 Relu
    c2 Conv(8->8, 1x1, bias) (no activation)       on r1
    c3 Conv(8->8, 3x3, pads 1, no bias) -> r3 Clip(0, 6)   on r1
    cat Concat(c2, r3) axis 1 -> mp MaxPool 2x2
    c4 Conv(16->16, 1x1, bias) on mp; res Add(mp, c4) (residual)
    gap GlobalAveragePool -> flat Flatten -> fc Gemm(transB=1, 16->5) -> y
qdq_cnn_data.npz: x float32 [64,3,8,8]
qdq_ln_mm.onnx (opset 17): x [N,4,16] -> ln LayerNormalization -> mm1 MatMul(16->32)
    -> add1 Add bias -> relu Relu -> mm2 MatMul(32->8) -> y; also gm Gemm on a
    2-D input z [N,16] (transB=1, alpha 0.5, beta 2) -> w
qdq_ln_mm_data.npz: x [64,4,16] with outlier channels 3 and 11 (x20), z [64,16]
    (the same sample count; z for the Gemm)
opset11_squeeze.onnx: opset 11, Squeeze with an axes attribute after a Conv
    (raising to 13 would change its meaning)
qdq_mm_mm.onnx (opset 17): x [N,16] -> mmA MatMul(16->16, channel 5 of the
    weight x30: an outlier channel) -> mmB MatMul(16->8) -> y;
    qdq_mm_mm_data.npz: x [64,16]
ir3_opset9.onnx: IR version 3, opset 9 (initializers also listed as graph
    inputs, as IR 3 wants): Conv(2->4, bias) -> Dropout(ratio 0.3) -> Relu ->
    GlobalAveragePool -> Softmax(axis 1) on [N,4,1,1] (the same at opset 13,
    all later dims being 1) -> y; its data: qdq_ir3_data.npz x [16,2,5,5]
"""
import io
import os
import zipfile

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

HERE = os.path.dirname(os.path.abspath(__file__))


def save_npz(path, arrays):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, buf.getvalue())


def init(name, a):
    return nh.from_array(np.ascontiguousarray(a), name)


def model(nodes, inits, ins, outs, opset=17):
    g = h.make_graph(nodes, "g", ins, outs, inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="qdq-fixtures")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def cnn(rng):
    f = np.float32
    w = lambda *s: (rng.standard_normal(s) / np.sqrt(np.prod(s[1:]))).astype(f)
    b = lambda n: (rng.standard_normal(n) * 0.1).astype(f)
    inits = [init("W1", w(8, 3, 3, 3)), init("B1", b(8)), init("W2", w(8, 8, 1, 1)),
             init("B2", b(8)), init("W3", w(8, 8, 3, 3)), init("W4", w(16, 16, 1, 1)),
             init("B4", b(16)), init("Wf", w(5, 16)), init("Bf", b(5)),
             init("clip_lo", np.array(0, f)), init("clip_hi", np.array(6, f))]
    nodes = [
        h.make_node("Conv", ["x", "W1", "B1"], ["c1_out"], name="c1", pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c1_out"], ["r1_out"], name="r1"),
        h.make_node("Conv", ["r1_out", "W2", "B2"], ["c2_out"], name="c2"),
        h.make_node("Conv", ["r1_out", "W3"], ["c3_out"], name="c3", pads=[1, 1, 1, 1]),
        h.make_node("Clip", ["c3_out", "clip_lo", "clip_hi"], ["r3_out"], name="r3"),
        h.make_node("Concat", ["c2_out", "r3_out"], ["cat_out"], name="cat", axis=1),
        h.make_node("MaxPool", ["cat_out"], ["mp_out"], name="mp", kernel_shape=[2, 2],
                    strides=[2, 2]),
        h.make_node("Conv", ["mp_out", "W4", "B4"], ["c4_out"], name="c4"),
        h.make_node("Add", ["mp_out", "c4_out"], ["res_out"], name="res"),
        h.make_node("GlobalAveragePool", ["res_out"], ["gap_out"], name="gap"),
        h.make_node("Flatten", ["gap_out"], ["flat_out"], name="flat"),
        h.make_node("Gemm", ["flat_out", "Wf", "Bf"], ["y"], name="fc", transB=1),
    ]
    m = model(nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, 8, 8])],
              [h.make_tensor_value_info("y", T.FLOAT, ["N", 5])])
    onnx.save(m, os.path.join(HERE, "qdq_cnn.onnx"))
    save_npz(os.path.join(HERE, "qdq_cnn_data.npz"),
             {"x": rng.standard_normal((64, 3, 8, 8)).astype(f)})


def ln_mm(rng):
    f = np.float32
    inits = [init("gamma", (1 + 0.1 * rng.standard_normal(16)).astype(f)),
             init("beta", (0.1 * rng.standard_normal(16)).astype(f)),
             init("W1", (rng.standard_normal((16, 32)) / 4).astype(f)),
             init("b1", (0.1 * rng.standard_normal(32)).astype(f)),
             init("W2", (rng.standard_normal((32, 8)) / 6).astype(f)),
             init("Wg", (rng.standard_normal((6, 16)) / 4).astype(f)),
             init("Cg", (0.1 * rng.standard_normal(6)).astype(f))]
    # outlier channels after the LayerNorm: gamma large on two channels
    g = nh.to_array(inits[0]).copy()
    g[3] = 20.0
    g[11] = -15.0
    inits[0] = init("gamma", g)
    nodes = [
        h.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln_out"], name="ln", axis=-1),
        h.make_node("MatMul", ["ln_out", "W1"], ["mm1_out"], name="mm1"),
        h.make_node("Add", ["mm1_out", "b1"], ["add1_out"], name="add1"),
        h.make_node("Relu", ["add1_out"], ["relu_out"], name="relu"),
        h.make_node("MatMul", ["relu_out", "W2"], ["y"], name="mm2"),
        h.make_node("Gemm", ["z", "Wg", "Cg"], ["w"], name="gm", transB=1, alpha=0.5, beta=2.0),
    ]
    m = model(nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, ["N", 4, 16]),
                             h.make_tensor_value_info("z", T.FLOAT, ["N", 16])],
              [h.make_tensor_value_info("y", T.FLOAT, ["N", 4, 8]),
               h.make_tensor_value_info("w", T.FLOAT, ["N", 6])])
    onnx.save(m, os.path.join(HERE, "qdq_ln_mm.onnx"))
    save_npz(os.path.join(HERE, "qdq_ln_mm_data.npz"),
             {"x": rng.standard_normal((64, 4, 16)).astype(f),
              "z": rng.standard_normal((64, 16)).astype(f)})


def squeeze11(rng):
    f = np.float32
    nodes = [h.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             h.make_node("Squeeze", ["c"], ["y"], name="sq", axes=[2, 3])]
    m = model(nodes, [init("W", rng.standard_normal((4, 3, 1, 1)).astype(f))],
              [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, 1, 1])],
              [h.make_tensor_value_info("y", T.FLOAT, ["N", 4])], opset=11)
    onnx.save(m, os.path.join(HERE, "opset11_squeeze.onnx"))


def ir3(rng):
    f = np.float32
    W = init("W", rng.standard_normal((4, 2, 3, 3)).astype(f))
    B = init("B", (0.1 * rng.standard_normal(4)).astype(f))
    nodes = [h.make_node("Conv", ["x", "W", "B"], ["c"], name="conv"),
             h.make_node("Dropout", ["c"], ["d"], name="drop", ratio=0.3),
             h.make_node("Relu", ["d"], ["r"], name="relu"),
             h.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             h.make_node("Softmax", ["g"], ["y"], name="sm", axis=1)]
    ins = [h.make_tensor_value_info("x", T.FLOAT, ["N", 2, 5, 5]),
           h.make_tensor_value_info("W", T.FLOAT, [4, 2, 3, 3]),
           h.make_tensor_value_info("B", T.FLOAT, [4])]
    g = h.make_graph(nodes, "g", ins, [h.make_tensor_value_info("y", T.FLOAT, ["N", 4, 1, 1])],
                     [W, B])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 9)], producer_name="qdq-fixtures")
    m.ir_version = 3
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(HERE, "ir3_opset9.onnx"))
    save_npz(os.path.join(HERE, "qdq_ir3_data.npz"),
             {"x": rng.standard_normal((16, 2, 5, 5)).astype(f)})


def mm_mm(rng):
    f = np.float32
    w0 = (rng.standard_normal((16, 16)) / 4).astype(f)
    w0[:, 5] *= 30
    nodes = [h.make_node("MatMul", ["x", "W0"], ["a"], name="mmA"),
             h.make_node("MatMul", ["a", "W1"], ["y"], name="mmB")]
    m = model(nodes, [init("W0", w0), init("W1", (rng.standard_normal((16, 8)) / 4).astype(f))],
              [h.make_tensor_value_info("x", T.FLOAT, ["N", 16])],
              [h.make_tensor_value_info("y", T.FLOAT, ["N", 8])])
    onnx.save(m, os.path.join(HERE, "qdq_mm_mm.onnx"))
    save_npz(os.path.join(HERE, "qdq_mm_mm_data.npz"),
             {"x": rng.standard_normal((64, 16)).astype(f)})


def main():
    rng = np.random.default_rng(20261130)
    cnn(rng)
    ln_mm(rng)
    squeeze11(rng)
    ir3(rng)
    mm_mm(rng)


if __name__ == "__main__":
    main()
