#!/usr/bin/env python3
"""Fixtures for the pare-run CLI tests (run once; outputs are committed).

- cnn_noisy.onnx: testdata/cnn_digits.onnx with noise added to the first
  Conv's weight, so it differs from the original from that layer on.
- wrong_name.npz: inputs under a name the model does not have.
- truncated.npz: the first 100 bytes of testdata/digits_val.npz.
- set/test_data_set_0: input_0.pb / output_0.pb of cnn_digits on 4 samples.
"""
import os
import numpy as np
import onnx
from onnx import numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
td = os.path.join(here, "..", "..", "testdata")
out = os.path.join(here, "data")
os.makedirs(out, exist_ok=True)

m = onnx.load(os.path.join(td, "cnn_digits.onnx"))
conv = next(n for n in m.graph.node if n.op_type == "Conv")
w = next(i for i in m.graph.initializer if i.name == conv.input[1])
arr = numpy_helper.to_array(w).copy()
rng = np.random.default_rng(1)
arr += rng.normal(0, 0.05 * float(np.abs(arr).mean()), arr.shape).astype(np.float32)
w.CopyFrom(numpy_helper.from_array(arr, w.name))
onnx.save(m, os.path.join(out, "cnn_noisy.onnx"))

val = np.load(os.path.join(td, "digits_val.npz"))
x = val["input"][:4]
np.savez(os.path.join(out, "wrong_name.npz"), images=x)
with open(os.path.join(td, "digits_val.npz"), "rb") as f:
    head = f.read(100)
with open(os.path.join(out, "truncated.npz"), "wb") as f:
    f.write(head)

import onnxruntime as ort
sess = ort.InferenceSession(os.path.join(td, "cnn_digits.onnx"), providers=["CPUExecutionProvider"])
y = sess.run(None, {"input": x})[0]
sd = os.path.join(out, "set", "test_data_set_0")
os.makedirs(sd, exist_ok=True)
with open(os.path.join(sd, "input_0.pb"), "wb") as f:
    f.write(numpy_helper.from_array(x, "input").SerializeToString())
with open(os.path.join(sd, "output_0.pb"), "wb") as f:
    f.write(numpy_helper.from_array(y, "logits").SerializeToString())
