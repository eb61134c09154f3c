#!/usr/bin/env python3
"""Sparsity against accuracy and size for pare-prune on the testdata models.

usage: prune_bench.py [--build DIR] [--testdata DIR] [--samples N] [--markdown]

For each model and method it runs pare-prune (report as JSON), then pare-run
against the original on the model's validation data, and prints one row:
the share of zero weights, accuracy against the labels (cnn_digits) or the
top-1 agreement / cosine of the output with the original's, the relative L2
error of the output, the model's bytes and gzipped bytes (before -> after,
and their ratio), and the wall time of pare-prune. Calibration (wanda,
sparsegpt): the first 256 samples of digits_train.npz, or of
transformer_data.npz for the transformer (the same data is then also the
evaluation data: read its figures as reconstruction, not generalization).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prune(args, model, opts, out, rep):
    cmd = [os.path.join(args.build, "tools/pare-prune"), model, "-o", out, "--json",
           "--report", rep, "-q"] + opts
    t = time.time()
    subprocess.run(cmd, check=True)
    dt = time.time() - t
    with open(rep) as f:
        return json.load(f)["prune"], dt


def evaluate(args, orig, model, data, labels):
    cmd = [os.path.join(args.build, "tools/pare-run"), "--reference", orig, "--inputs", data,
           "-n", "1", "--json", "-q", model, "--batch", "64"]
    if labels:
        cmd += ["--labels", labels]
    if args.samples:
        cmd += ["--samples", str(args.samples)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)["outputs"][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-p2"))
    ap.add_argument("--testdata", default=os.path.join(ROOT, "testdata"))
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    td = args.testdata
    cnn = (os.path.join(td, "cnn_digits.onnx"), os.path.join(td, "digits_val.npz"),
           os.path.join(td, "digits_val_labels.npy"), os.path.join(td, "digits_train.npz"))
    tr = (os.path.join(td, "transformer_block.onnx"), os.path.join(td, "transformer_data.npz"),
          None, os.path.join(td, "transformer_data.npz"))
    methods = [("magnitude", []), ("magnitude --cleanup", ["--cleanup"]),
               ("wanda", ["--criterion", "wanda"]), ("sparsegpt", ["--criterion", "sparsegpt"])]
    rows = []
    for name, (model, data, labels, calib) in (("cnn_digits", cnn), ("transformer_block", tr)):
        cal = ["--calibrate", calib, "--calib-samples", "256"]
        runs = [("dense", ["--sparsity", "0"])]
        for s in ("0.3", "0.5", "0.7", "0.9"):
            for mname, mo in methods:
                o = ["--sparsity", s] + mo + (cal if "--criterion" in mo else [])
                runs.append((mname + " " + s, o))
        for mname, mo in methods:
            runs.append(("2:4 " + mname, ["--pattern", "2:4"] + mo +
                         (cal if "--criterion" in mo else [])))
        for label, opts in runs:
            with tempfile.TemporaryDirectory() as w:
                out = os.path.join(w, "m.onnx")
                r, dt = prune(args, model, opts, out, os.path.join(w, "r.json"))
                ev = evaluate(args, model, out, data, labels)
            zero = 1 - r["nonzero_after"] / r["params_after"] if r["params_after"] else 0
            if labels:
                quality = "%.2f%% (%.2f%%)" % (100 * ev["accuracy"], 100 * ev["reference_accuracy"])
            else:
                quality = "top1 %.3f cos %.4f" % (ev["top1_agreement"] or 0, ev["cosine"])
            rows.append((name, label, "%.1f%%" % (100 * zero), quality, "%.3g" % ev["rel_l2"],
                         "%d -> %d" % (r["bytes_before"], r["bytes_after"]),
                         "%d -> %d" % (r["gzip_before"], r["gzip_after"]),
                         "%.2f" % (r["gzip_after"] / r["gzip_before"]), "%.2f" % dt))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    head = ("model", "method", "zero weights", "accuracy (original) / agreement", "rel L2",
            "bytes", "gzip bytes", "gzip ratio", "prune s")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(x[i]) for x in rows + [head]) for i in range(len(head))]
        for r in [head] + rows:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
