#!/usr/bin/env python3
"""Sparse initializers written by pare (pare_value_store_sparse) are valid ONNX.

usage: sparse_interop.py --make-sparse EXE --pare-run EXE --pare-inspect EXE --testdata DIR

For cnn_digits.onnx and transformer_block.onnx, tests/io/make_sparse writes
the model with 9 of 10 elements of each float initializer (>= 256 elements)
zeroed, once dense and once with those initializers as sparse_initializer.
Then, for each pair:

- the sparse file is smaller, and holds COO sparse initializers (int64
  linear indices, sorted) whose densified form equals the dense file's
  initializers bit for bit;
- onnx.checker.check_model accepts it (not full_check: onnx's strict shape
  inference types a sparse_initializer as sparse_tensor, which no dense op
  takes, so full_check refuses every such model, pare's or not);
- onnxruntime runs both on the model's data with identical outputs;
- pare-run runs both with identical outputs (--save-outputs);
- pare-inspect --json counts the same parameters and zeros in both.

Exit status 1 on any failure, 2 on bad usage.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

CASES = [("cnn_digits.onnx", "digits_val.npz"), ("transformer_block.onnx", "transformer_data.npz")]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def densify(sp):
    vals = numpy_helper.to_array(sp.values)
    idx = numpy_helper.to_array(sp.indices)
    check(sp.indices.data_type == onnx.TensorProto.INT64, "indices are int64")
    check(idx.ndim == 1 and idx.shape == vals.shape, "linear indices, one per value")
    check(np.all(np.diff(idx) > 0), "indices sorted and unique")
    out = np.zeros(int(np.prod(sp.dims)), dtype=vals.dtype)
    out[idx] = vals
    return out.reshape(tuple(sp.dims))


def ort_outputs(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def one(a, model, data, tmp):
    src = os.path.join(a.testdata, model)
    dense = os.path.join(tmp, "dense_" + model)
    sparse = os.path.join(tmp, "sparse_" + model)
    run([a.make_sparse, src, dense, sparse])
    sd, ss = os.path.getsize(dense), os.path.getsize(sparse)
    check(ss < sd * 0.6, "sparse file %d bytes, dense %d: not smaller" % (ss, sd))

    md, ms = onnx.load(dense), onnx.load(sparse)
    check(len(ms.graph.sparse_initializer) > 0, "no sparse_initializer written")
    dense_inits = {t.name: numpy_helper.to_array(t) for t in md.graph.initializer}
    sparse_names = set()
    for sp in ms.graph.sparse_initializer:
        name = sp.values.name
        sparse_names.add(name)
        check(name in dense_inits, "sparse initializer %r not in the dense model" % name)
        got, want = densify(sp), dense_inits[name]
        check(got.dtype == want.dtype and got.shape == want.shape, "%s: dtype/shape" % name)
        check(got.tobytes() == want.tobytes(), "%s: values differ" % name)
    rest = {t.name for t in ms.graph.initializer}
    check(rest | sparse_names == set(dense_inits) and not rest & sparse_names,
          "initializers lost or doubled")
    onnx.checker.check_model(sparse)

    with np.load(os.path.join(a.testdata, data)) as z:
        feeds = {k: z[k][:8] for k in z.files if k in {i.name for i in md.graph.input}}
    od, os_ = ort_outputs(dense, feeds), ort_outputs(sparse, feeds)
    for x, y in zip(od, os_):
        check(np.array_equal(x, y), "onnxruntime outputs differ")

    outs = []
    for m in (dense, sparse):
        o = os.path.join(tmp, os.path.basename(m) + ".out.npz")
        run([a.pare_run, "-q", "-i", os.path.join(a.testdata, data), "--samples", "8",
             "-t", "1", "--warmup", "0", "-n", "1", "--save-outputs", o, m])
        with np.load(o) as z:
            outs.append({k: z[k] for k in z.files})
    check(outs[0].keys() == outs[1].keys() and len(outs[0]) > 0, "pare-run output names")
    for k in outs[0]:
        check(np.array_equal(outs[0][k], outs[1][k]), "pare-run output %s differs" % k)

    jd = json.loads(run([a.pare_inspect, "--json", dense]))
    js = json.loads(run([a.pare_inspect, "--json", sparse]))
    check(js["params"]["total"] == jd["params"]["total"], "pare-inspect params differ")
    check(js["sparsity"]["zeros"] == jd["sparsity"]["zeros"] > 0, "pare-inspect zeros differ")
    return "%s: dense %d bytes, sparse %d bytes, %d sparse initializers" % (
        model, sd, ss, len(ms.graph.sparse_initializer))


def main():
    ap = argparse.ArgumentParser()
    for o in ("--make-sparse", "--pare-run", "--pare-inspect", "--testdata"):
        ap.add_argument(o, required=True)
    a = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for model, data in CASES:
            try:
                print("ok  ", one(a, model, data, tmp))
            except Exception as e:  # report every case, then fail
                failed += 1
                print("FAIL %s: %s" % (model, e))
    print("%d passed, %d failed" % (len(CASES) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
