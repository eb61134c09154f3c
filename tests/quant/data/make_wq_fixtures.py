#!/usr/bin/env python3
"""Writes the small models of the weight-only and float conversion tests
(tests/quant/test_wq_*.c, test_fq_*.c). Run from anywhere; deterministic."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save(model, name):
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(HERE, name))


def known():
    """MatMul x[1,32] @ W[32,2] with exactly representable 4-bit codes:
    column 0 is (k % 16) - 8, column 1 is 0.5 * (k % 16)."""
    k = np.arange(32)
    w = np.stack([(k % 16) - 8.0, 0.5 * (k % 16)], axis=1).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "known",
                          [x], [y], [numpy_helper.from_array(w, "W")])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
         "wq_known.onnx")


def mixed():
    """K = 40 (not a multiple of the block), a Gemm with transB, alpha, beta
    and C, an embedding Gather, a ReduceMean with the pre-18 axes attribute,
    and a Gemm with transA that must stay float."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.3, (40, 24)).astype(np.float32)
    b2 = rng.normal(0, 0.3, (16, 24)).astype(np.float32)
    c2 = rng.normal(0, 0.1, (16,)).astype(np.float32)
    emb = rng.normal(0, 1.0, (10, 40)).astype(np.float32)
    b3 = rng.normal(0, 0.3, (16, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
        helper.make_node("Add", ["x", "e"], ["h"], name="add"),
        helper.make_node("MatMul", ["h", "W1"], ["m1"], name="mm1"),
        helper.make_node("Gemm", ["m1", "B2", "C2"], ["g2"], name="gemm2", transB=1,
                         alpha=0.5, beta=2.0),
        helper.make_node("ReduceMean", ["g2"], ["r"], name="mean", axes=[1], keepdims=1),
        helper.make_node("Transpose", ["g2"], ["g2t"], name="tr", perm=[1, 0]),
        helper.make_node("Gemm", ["g2t", "B3"], ["g3"], name="gemm_ta", transA=1),
    ]
    g = helper.make_graph(
        nodes, "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 40]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("g2", TensorProto.FLOAT, [3, 16]),
         helper.make_tensor_value_info("r", TensorProto.FLOAT, [3, 1]),
         helper.make_tensor_value_info("g3", TensorProto.FLOAT, [3, 4])],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(b2, "B2"),
         numpy_helper.from_array(c2, "C2"), numpy_helper.from_array(emb, "table"),
         numpy_helper.from_array(b3, "B3")])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
         "wq_mixed.onnx")


def fq_small():
    """For float conversion: a constant beyond float16's range, a node to
    block by name, a TopK (default block list), a Resize whose scales come
    from a shape computation, and a ConstantOfShape without a value."""
    rng = np.random.default_rng(3)
    big = np.array([1e6, 1.0, -2.0, 3.0], dtype=np.float32)
    w = rng.normal(0, 0.5, (4, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Mul", ["x", "big"], ["m"], name="scale"),
        helper.make_node("MatMul", ["m", "W"], ["h"], name="mm"),
        helper.make_node("Sigmoid", ["h"], ["s"], name="keep"),
        helper.make_node("Tanh", ["s"], ["t"], name="tanh"),
        helper.make_node("TopK", ["t", "k"], ["vals", "idx"], name="topk", axis=1),
        helper.make_node("Shape", ["t"], ["shp"], name="shape"),
        helper.make_node("Cast", ["shp"], ["shpf"], name="shape_f", to=TensorProto.FLOAT),
        helper.make_node("Div", ["two", "shpf"], ["sc"], name="shape_div"),
        helper.make_node("Mul", ["sc", "half"], ["scales"], name="shape_mul"),
        helper.make_node("Unsqueeze", ["t", "ax"], ["t4"], name="unsq"),
        helper.make_node("Unsqueeze", ["t4", "ax"], ["t5"], name="unsq2"),
        helper.make_node("ConstantOfShape", ["shp"], ["zeros"], name="zeros"),
        helper.make_node("Add", ["t", "zeros"], ["y"], name="add"),
    ]
    g = helper.make_graph(
        nodes, "fq_small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("vals", TensorProto.FLOAT, [2, 2]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [2, 2]),
         helper.make_tensor_value_info("scales", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(big, "big"), numpy_helper.from_array(w, "W"),
         numpy_helper.from_array(np.array([2], dtype=np.int64), "k"),
         numpy_helper.from_array(np.array([2.0], dtype=np.float32), "two"),
         numpy_helper.from_array(np.array([0.5], dtype=np.float32), "half"),
         numpy_helper.from_array(np.array([0], dtype=np.int64), "ax")])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
         "fq_small.onnx")


def dft17():
    """A MatMul before a DFT-17, whose axis became an input in opset 20:
    blocked DequantizeLinear (opset 21) must refuse the model."""
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.3, (8, 8)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Reshape", ["h", "shape"], ["h3"], name="rs"),
        helper.make_node("DFT", ["h3"], ["y"], name="dft", axis=1),
    ]
    g = helper.make_graph(
        nodes, "dft17",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, 2])],
        [numpy_helper.from_array(w, "W"),
         numpy_helper.from_array(np.array([2, 8, 1], dtype=np.int64), "shape")])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
         "wq_dft17.onnx")


def shared():
    """Weights read by more than one node: W by two MatMuls, and a tied
    embedding table read by a Gather and by the output Gemm (transB), so
    both read it in the [V, D] layout with blocks along D."""
    rng = np.random.default_rng(11)
    w = rng.normal(0, 0.3, (32, 16)).astype(np.float32)
    p = rng.normal(0, 0.3, (16, 32)).astype(np.float32)
    table = rng.normal(0, 1.0, (10, 32)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
        helper.make_node("MatMul", ["e", "W"], ["h1"], name="mm1"),
        helper.make_node("MatMul", ["x", "W"], ["h2"], name="mm2"),
        helper.make_node("Add", ["h1", "h2"], ["a"], name="add"),
        helper.make_node("MatMul", ["a", "P"], ["p"], name="proj"),
        helper.make_node("Gemm", ["p", "table"], ["logits"], name="lm_head", transB=1),
    ]
    g = helper.make_graph(
        nodes, "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 32]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [3, 10])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(p, "P"),
         numpy_helper.from_array(table, "table")])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
         "wq_shared.onnx")


if __name__ == "__main__":
    shared()
    dft17()
    known()
    mixed()
    fq_small()
