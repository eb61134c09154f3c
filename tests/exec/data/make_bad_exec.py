#!/usr/bin/env python3
"""Models that are valid ONNX but fail at run time on given inputs, for the
executor's bad-input tests (run once; outputs committed)."""
import os
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

out = os.path.dirname(os.path.abspath(__file__))

def save(name, nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name + ".onnx"))

f = TensorProto.FLOAT
i64 = TensorProto.INT64
i32 = TensorProto.INT32
# Gather with an index out of range
save("gather_oob", [helper.make_node("Gather", ["x", "idx"], ["y"], name="gather_oob", axis=0)],
     [helper.make_tensor_value_info("x", f, [4, 3])], [helper.make_tensor_value_info("y", f, [2, 3])],
     [numpy_helper.from_array(np.array([1, 7], np.int64), "idx")])
# ScatterND with an index out of range
save("scatternd_oob", [helper.make_node("ScatterND", ["x", "idx", "upd"], ["y"], name="scatter_oob")],
     [helper.make_tensor_value_info("x", f, [4])], [helper.make_tensor_value_info("y", f, [4])],
     [numpy_helper.from_array(np.array([[9]], np.int64), "idx"),
      numpy_helper.from_array(np.array([1.0], np.float32), "upd")])
# integer division by zero
save("div_zero", [helper.make_node("Div", ["a", "b"], ["y"], name="int_div")],
     [helper.make_tensor_value_info("a", i32, [3])], [helper.make_tensor_value_info("y", i32, [3])],
     [numpy_helper.from_array(np.array([1, 0, 2], np.int32), "b")])
# Reshape to an impossible shape
save("reshape_bad", [helper.make_node("Reshape", ["x", "shape"], ["y"], name="bad_reshape")],
     [helper.make_tensor_value_info("x", f, [2, 3])], [helper.make_tensor_value_info("y", f, ["a", "b", "c"])],
     [numpy_helper.from_array(np.array([4, -1, 5], np.int64), "shape")])
# NaN in the output (Log of a negative number) - reported, not an error
save("log_nan", [helper.make_node("Log", ["x"], ["y"], name="log")],
     [helper.make_tensor_value_info("x", f, [1, 4])], [helper.make_tensor_value_info("y", f, [1, 4])])
