#!/usr/bin/env python3
"""pare-prune's outputs are valid ONNX and run in onnxruntime like in pare-run.

usage: prune_check.py --pare-prune PATH --pare-run PATH [--testdata DIR] [--light]

For each case (a testdata model, pruning options, data) it runs pare-prune,
checks the result with onnx.checker (full_check, which also infers shapes),
checks that the pruned layers hold the asked sparsity or N:M pattern (read
with numpy from the written file), runs it with pare-run --save-outputs and
with onnxruntime (scripts/ort_run.py) on the same inputs, and compares the
outputs with scripts/compare_npz.py (float32 within 1e-4 relative error).
--light adds the ONNX light zoo's squeezenet and shufflenet: their weights
are computed by ConstantOfShape, so nothing is pruned; the output must still
pass the full check.
The last line is `N passed, N failed`; exit status 1 if any case failed.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(ROOT, "scripts")

CAL = ["--calibrate", "{td}/digits_train.npz", "--calib-samples", "64"]
# (model, data, options, check): check is "s=X" (every pruned weight's share
# of zeros is X within 1%) or "nm=N:M"
CASES = [
    ("cnn_digits.onnx", "digits_val.npz", ["--sparsity", "0.5", "--per-layer"], "s=0.5"),
    ("cnn_digits.onnx", "digits_val.npz", ["--pattern", "2:4", "--criterion", "sparsegpt"] + CAL,
     "nm=2:4"),
    ("cnn_digits.onnx", "digits_val.npz", ["--sparsity", "0.6", "--criterion", "wanda"] + CAL,
     "s=0.6"),
    ("cnn_digits.onnx", "digits_val.npz",
     ["--sparsity", "0.9", "--per-layer", "--include-first-last", "--sparse-format", "coo"], None),
    ("cnn_digits.onnx", "digits_val.npz", ["--sparsity", "0.5", "--cleanup"], None),
    ("transformer_block.onnx", "transformer_data.npz",
     ["--sparsity", "0.5", "--per-layer", "--include-first-last"], "s=0.5"),
    ("transformer_tiny2.onnx", "transformer_data.npz", ["--pattern", "2:4"], "nm=2:4"),
    ("mlp_external/model.onnx", "mlp_external_data.npz",
     ["--sparsity", "0.5", "--include-first-last"], None),
]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def pruned_weights(orig_path, new_path):
    """(name, original array, new array) of every weight the prune zeroed more of
    (a weight only rescaled, by BatchNormalization folded into it, is not pruned)."""
    a = onnx.load(orig_path)
    b = onnx.load(new_path)
    old = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    new = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer}
    for s in b.graph.sparse_initializer:
        dense = np.zeros(int(np.prod(s.dims)), dtype=np.float32)
        idx = numpy_helper.to_array(s.indices).reshape(-1)
        dense[idx] = numpy_helper.to_array(s.values)
        new[s.values.name] = dense.reshape(tuple(s.dims))
    out = []
    for k, v in new.items():
        if k in old and old[k].shape == v.shape and v.dtype == np.float32 and \
                int((v == 0).sum()) > int((old[k] == 0).sum()):
            out.append((k, old[k], v))
    return out, b


def check_pattern(changed, model, check):
    if check == "any":  # the light zoo: weights are computed (ConstantOfShape), none to prune
        return
    if not changed:
        raise RuntimeError("no weight was pruned")
    if check is None:
        return
    kind, val = check.split("=")
    users = {}
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            users.setdefault(name, []).append((n, i))
    for name, _, w in changed:
        if kind == "s":
            share = float((w == 0).mean())
            if abs(share - float(val)) > 0.01:
                raise RuntimeError("%s: %.4f zero, expected %s" % (name, share, val))
            continue
        nn, mm = (int(x) for x in val.split(":"))
        node = users[name][0][0]
        if node.op_type == "Conv":
            rows = w.reshape(w.shape[0], -1)
        elif node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
            rows = w
        else:  # MatMul / Gemm [K, N]: the reduction axis is K
            rows = w.T
        k = rows.shape[1] - rows.shape[1] % mm
        groups = (rows[:, :k] != 0).reshape(rows.shape[0], -1, mm).sum(axis=2)
        if groups.max() > nn:
            raise RuntimeError("%s: a group of %d holds %d nonzero" % (name, mm, groups.max()))


def case(args, model, data, opts, check, work):
    td = args.testdata
    mpath = os.path.join(td, model)
    out = os.path.join(work, "pruned.onnx")
    opts = [o.replace("{td}", td) for o in opts]
    run([args.pare_prune, "-q", mpath, "-o", out] + opts)
    # onnx's shape inference types a sparse_initializer as sparse_tensor, which
    # no dense op input accepts, so full_check refuses every COO model
    # (onnxruntime densifies them at load); those get the structural check
    coo = "coo" in opts
    onnx.checker.check_model(out, full_check=not coo)
    changed, m = pruned_weights(mpath, out)
    check_pattern(changed, m, check)
    inputs = os.path.join(td, data) if data else None
    if inputs is None:
        return
    pare_out = os.path.join(work, "pare.npz")
    ort_out = os.path.join(work, "ort.npz")
    n = np.load(inputs)
    batch = None
    for k in n.files:
        batch = n[k].shape[0]
        break
    run([args.pare_run, out, "--inputs", inputs, "--save-outputs", pare_out, "-n", "1", "-q",
         "--batch", str(batch)])
    run([sys.executable, os.path.join(SCRIPTS, "ort_run.py"), out, "--inputs", inputs,
         "--out", ort_out])
    run([sys.executable, os.path.join(SCRIPTS, "compare_npz.py"), pare_out, ort_out, "-q"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pare-prune", required=True)
    ap.add_argument("--pare-run", required=True)
    ap.add_argument("--testdata", default=os.path.join(ROOT, "testdata"))
    ap.add_argument("--light", action="store_true")
    args = ap.parse_args()
    cases = list(CASES)
    if args.light:
        light = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light")
        for name in ("light_squeezenet.onnx", "light_shufflenet.onnx"):
            cases.append((os.path.join(light, name), None, ["--sparsity", "0.5"], "any"))
    passed = failed = 0
    for model, data, opts, check in cases:
        label = "%s %s" % (os.path.basename(model), " ".join(opts))
        with tempfile.TemporaryDirectory() as work:
            try:
                case(args, model, data, opts, check, work)
                print("PASS", label)
                passed += 1
            except Exception as e:  # one line per failed case
                print("FAIL", label, "-", e)
                failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
