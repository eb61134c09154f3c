#!/usr/bin/env python3
"""Writes the small models the pare-inspect CLI tests use (tests/cli/data/).

The committed .onnx files are what the tests read; this script is how they
were made (python3 with the onnx and numpy packages):

    python3 tests/cli/make_fixtures.py tests/cli/data

- qdq.onnx:   static QDQ int8: QuantizeLinear/DequantizeLinear pairs (uint8)
              on activations, per-channel int8 weights through
              DequantizeLinear into Conv and Gemm; half of the conv weights
              are exact zeros.
- qop.onnx:   QOperator form: QLinearConv, DynamicQuantizeLinear +
              MatMulInteger, and com.microsoft MatMulNBits (4 bit, block 16).
- fp16.onnx:  float16 weights and activations; a ConvTranspose and an LSTM
              for their MAC formulas.
- big_external/model.onnx: twenty 2560x2560 float32 MatMul weights, 500 MiB
              of external data in weights.bin, which is not committed: the
              test makes it as a sparse file (truncate -s 524288000), to show
              that describing the model does not read the weights.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(model, path):
    model.producer_name = "pare-cli-fixtures"
    model.producer_version = "1"
    onnx.checker.check_model(model, full_check=False)
    onnx.save(model, path)


def qdq(path):
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 127, size=(8, 3, 3, 3), dtype=np.int8)
    w[:4] = 0  # half the output channels pruned
    fcw = rng.integers(-127, 127, size=(10, 8 * 4 * 4), dtype=np.int8)
    inits = [
        numpy_helper.from_array(w, "conv.w_q"),
        numpy_helper.from_array(np.full(8, 0.02, np.float32), "conv.w_scale"),
        numpy_helper.from_array(np.zeros(8, np.int8), "conv.w_zp"),
        numpy_helper.from_array(fcw, "fc.w_q"),
        numpy_helper.from_array(np.full(10, 0.01, np.float32), "fc.w_scale"),
        numpy_helper.from_array(np.zeros(10, np.int8), "fc.w_zp"),
        numpy_helper.from_array(np.array(0.05, np.float32), "act_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "act_zp"),
        numpy_helper.from_array(np.zeros(8, np.float32), "conv.b"),
        numpy_helper.from_array(np.array([1, -1], np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "act_scale", "act_zp"], ["x_q"], name="x/q"),
        helper.make_node("DequantizeLinear", ["x_q", "act_scale", "act_zp"], ["x_dq"], name="x/dq"),
        helper.make_node("DequantizeLinear", ["conv.w_q", "conv.w_scale", "conv.w_zp"], ["conv.w"],
                         name="conv/w_dq", axis=0),
        helper.make_node("Conv", ["x_dq", "conv.w", "conv.b"], ["c"], name="conv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "act_scale", "act_zp"], ["r_q"], name="r/q"),
        helper.make_node("DequantizeLinear", ["r_q", "act_scale", "act_zp"], ["r_dq"], name="r/dq"),
        helper.make_node("Reshape", ["r_dq", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("DequantizeLinear", ["fc.w_q", "fc.w_scale", "fc.w_zp"], ["fc.w"],
                         name="fc/w_dq", axis=0),
        helper.make_node("Gemm", ["flat", "fc.w"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def qop(path):
    rng = np.random.default_rng(2)
    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(128, np.uint8), "zp"),
        numpy_helper.from_array(rng.integers(-127, 127, size=(4, 2, 3, 3), dtype=np.int8), "cw"),
        numpy_helper.from_array(np.full(4, 0.02, np.float32), "cws"),
        numpy_helper.from_array(np.zeros(4, np.int8), "cwzp"),
        numpy_helper.from_array(rng.integers(0, 255, size=(16, 16), dtype=np.uint8), "mw"),
        numpy_helper.from_array(rng.integers(0, 255, size=(32, 1, 8), dtype=np.uint8), "nb_w"),
        numpy_helper.from_array(np.full(32, 0.1, np.float32), "nb_s"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="quant_x"),
        helper.make_node("QLinearConv", ["xq", "s", "zp", "cw", "cws", "cwzp", "s", "zp"], ["cq"],
                         name="qconv"),
        helper.make_node("DequantizeLinear", ["cq", "s", "zp"], ["c"], name="deq_c"),
        helper.make_node("Reshape", ["c", "shape2"], ["c2"], name="flatten"),
        helper.make_node("DynamicQuantizeLinear", ["c2"], ["c2q", "c2s", "c2zp"], name="dql"),
        helper.make_node("MatMulInteger", ["c2q", "mw", "c2zp"], ["mi"], name="mmi"),
        helper.make_node("Cast", ["mi"], ["mif"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("MatMulNBits", ["mif", "nb_w", "nb_s"], ["y"], name="mnb", domain="com.microsoft",
                         K=16, N=32, bits=4, block_size=16),
    ]
    inits.append(numpy_helper.from_array(np.array([1, 16], np.int64), "shape2"))
    g = helper.make_graph(nodes, "qop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])], inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                           ir_version=8), path)


def fp16(path):
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float16), "ct.w"),
        numpy_helper.from_array(rng.standard_normal((1, 4 * 5, 6)).astype(np.float16), "lstm.W"),
        numpy_helper.from_array(rng.standard_normal((1, 4 * 5, 5)).astype(np.float16), "lstm.R"),
        numpy_helper.from_array(np.array([7, 1, 6], np.int64), "seq_shape"),
    ]
    nodes = [
        # 1x4x3x3 -> ConvTranspose (4 -> 2 channels, 3x3, stride 2) -> 1x2x7x7
        helper.make_node("ConvTranspose", ["x", "ct.w"], ["ct"], name="deconv", strides=[2, 2]),
        helper.make_node("Slice", ["ct", "starts", "ends", "axes"], ["ct6"], name="crop"),
        helper.make_node("Reshape", ["ct6", "seq_shape"], ["seq"], name="to_seq"),
        helper.make_node("LSTM", ["seq", "lstm.W", "lstm.R"], ["h", "h_last"], name="lstm",
                         hidden_size=5),
    ]
    inits += [numpy_helper.from_array(np.array([0, 0, 0, 0], np.int64), "starts"),
              numpy_helper.from_array(np.array([1, 2, 7, 3], np.int64), "ends"),
              numpy_helper.from_array(np.array([0, 1, 2, 3], np.int64), "axes")]
    g = helper.make_graph(nodes, "fp16", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4, 3, 3])],
                          [helper.make_tensor_value_info("h", TensorProto.FLOAT16, [7, 1, 1, 5]),
                           helper.make_tensor_value_info("h_last", TensorProto.FLOAT16, [1, 1, 5])], inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def big_external(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    k, inits, nodes, prev, off = 2560, [], [], "x", 0
    for i in range(20):
        t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[k, k],
                        data_location=TensorProto.EXTERNAL)
        for key, value in (("location", "weights.bin"), ("offset", str(off)), ("length", str(k * k * 4))):
            e = t.external_data.add()
            e.key, e.value = key, value
        off += k * k * 4
        inits.append(t)
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"y{i}"], name=f"mm{i}"))
        prev = f"y{i}"
    assert off == 524288000
    g = helper.make_graph(nodes, "big_external", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", k])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", k])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model.producer_name = "pare-cli-fixtures"
    model.producer_version = "1"
    with open(path, "wb") as f:  # onnx.save would look for the external file
        f.write(model.SerializeToString())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "data")
    os.makedirs(out, exist_ok=True)
    qdq(os.path.join(out, "qdq.onnx"))
    qop(os.path.join(out, "qop.onnx"))
    fp16(os.path.join(out, "fp16.onnx"))
    big_external(os.path.join(out, "big_external", "model.onnx"))


if __name__ == "__main__":
    main()
