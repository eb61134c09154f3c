#!/usr/bin/env python3
"""pare-run's outputs against onnxruntime's on the testdata models.

usage: pare_vs_ort.py --pare-run PATH [--testdata DIR] [--threads LIST] [--tol X]

For each testdata model that comes with data, runs

    pare-run MODEL --inputs DATA --save-outputs OUT.npz -n 1 --batch B -t T -q

with every sample in one batch (B = the samples on axis 0), and
scripts/ort_run.py (onnxruntime, CPU provider) on the same inputs, then
compares the two with scripts/compare_npz.py: float32 outputs within 1e-4
relative error (max |a-b| / max(max |b|, 1e-6)), integers exact.

Data whose inputs are not batched on axis 0 (control_flow: a [3] vector and
two scalars) cannot be an .npz for pare-run, which reads samples on axis 0;
it is given as an ONNX test_data_set folder of input_K.pb files instead
(one set, one run), written from the same arrays.

Each (model, data, threads) is one case. The last line printed is
`N passed, N failed`; the exit status is 1 if any case failed, 2 on bad usage.
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

# (model, data) under testdata/
CASES = [
    ("cnn_digits.onnx", "digits_val.npz"),
    ("transformer_block.onnx", "transformer_data.npz"),
    ("transformer_tiny2.onnx", "transformer_data.npz"),
    ("control_flow.onnx", "control_flow_data.npz"),
    ("control_flow.onnx", "control_flow_data_else.npz"),
    ("mlp_external/model.onnx", "mlp_external_data.npz"),
]


def model_inputs(path):
    m = onnx.load(path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits]


def prepare_inputs(model, data, work):
    """(inputs path for pare-run, batch or None, the .npz for onnxruntime)."""
    names = model_inputs(model)
    d = np.load(data, allow_pickle=False)
    missing = [n for n in names if n not in d.files]
    if missing:
        raise ValueError(f"{data}: no array for input(s) {', '.join(missing)}")
    arrays = {n: d[n] for n in names}
    firsts = {a.shape[0] if a.ndim else None for a in arrays.values()}
    if None not in firsts and len(firsts) == 1:
        return data, firsts.pop(), data
    # not batched on axis 0: one test_data_set with the whole inputs
    ds = os.path.join(work, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    for k, n in enumerate(names):
        with open(os.path.join(ds, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(arrays[n], n).SerializeToString())
    return ds, None, data


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def main():
    ap = argparse.ArgumentParser(description="pare-run against onnxruntime on the testdata models")
    ap.add_argument("--pare-run", required=True, metavar="PATH")
    ap.add_argument("--testdata", default=os.path.join(ROOT, "testdata"), metavar="DIR")
    ap.add_argument("--threads", default="1,3", metavar="LIST",
                    help="pare-run thread counts, comma-separated (1,3: one and an uneven split)")
    ap.add_argument("--tol", default="1e-4", help="relative error bound for floats (1e-4)")
    a = ap.parse_args()
    try:
        threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        ap.error("--threads takes a comma-separated list of numbers")
    if not threads or min(threads) < 0:
        ap.error("--threads takes numbers >= 0")

    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="pare-vs-ort.") as tmp:
        for n, (model_rel, data_rel) in enumerate(CASES):
            model = os.path.join(a.testdata, model_rel)
            data = os.path.join(a.testdata, data_rel)
            work = os.path.join(tmp, str(n))
            os.makedirs(work)
            label = f"{model_rel} + {data_rel}"
            try:
                inputs, batch, ort_in = prepare_inputs(model, data, work)
            except Exception as ex:  # noqa: BLE001
                print(f"FAIL {label}: {ex}")
                failed += len(threads)
                continue
            ref = os.path.join(work, "ort.npz")
            rc, out = run([sys.executable, os.path.join(SCRIPTS, "ort_run.py"), model,
                           "--inputs", ort_in, "--out", ref])
            if rc != 0:
                print(f"FAIL {label}: onnxruntime failed:\n{out.rstrip()}")
                failed += len(threads)
                continue
            for t in threads:
                case = f"{label} (batch {batch if batch else 'whole inputs, test_data_set'}, threads {t})"
                got = os.path.join(work, f"pare_t{t}.npz")
                cmd = [a.pare_run, model, "--inputs", inputs, "--save-outputs", got, "-n", "1",
                       "-t", str(t), "-q"]
                if batch:
                    cmd += ["--batch", str(batch)]
                rc, out = run(cmd)
                if rc != 0:
                    print(f"FAIL {case}: pare-run exit {rc}:\n  $ {' '.join(cmd)}\n{out.rstrip()}")
                    failed += 1
                    continue
                rc, out = run([sys.executable, os.path.join(SCRIPTS, "compare_npz.py"), got, ref,
                               "--tol", a.tol])
                lines = "\n".join("  " + s for s in out.rstrip().splitlines()[:-1])
                if rc == 0:
                    print(f"ok   {case}\n{lines}")
                    passed += 1
                else:
                    print(f"FAIL {case}:\n{lines}")
                    failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
