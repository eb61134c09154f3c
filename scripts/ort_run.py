#!/usr/bin/env python3
"""Run a model with onnxruntime on the CPU; inputs and outputs as .npz.

usage: ort_run.py MODEL --inputs X.npz --out OUT.npz [--threads N] [--opt LEVEL]

Arrays in X.npz are matched to the model's inputs by name (arrays the model
does not take, such as "label", are ignored; a missing input is an error).
Outputs are saved in OUT.npz under the model's output names. A .onnx.gz model
is decompressed in memory (external data is then not found). Exit status 0
done, 1 failure, 2 bad usage.
"""

import argparse
import os
import sys
import zipfile

import numpy as np


MAX_GUNZIP = 512 << 20  # refuse to inflate more than this (testdata/bad/bomb.onnx.gz is 1 GiB)


def gunzip_capped(data, limit=MAX_GUNZIP):
    """gzip.decompress with a cap on the output size."""
    import zlib
    d = zlib.decompressobj(31)
    out = d.decompress(data, limit + 1)
    if len(out) > limit:
        raise ValueError(f"more than {limit >> 20} MiB once decompressed")
    if not d.eof:
        raise EOFError("compressed data ended before the end-of-stream marker")
    return out


def savez(p, arrays):
    """np.savez with a fixed timestamp (same outputs give the same bytes)."""
    tmp = p + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
    os.replace(tmp, p)


def main():
    ap = argparse.ArgumentParser(description="run a model with onnxruntime (CPU)")
    ap.add_argument("model")
    ap.add_argument("--inputs", required=True, metavar="X.npz")
    ap.add_argument("--out", required=True, metavar="OUT.npz")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: onnxruntime's choice)")
    ap.add_argument("--opt", choices=["disable", "basic", "extended", "all"], default="all",
                    help="onnxruntime graph optimization level (default all)")
    a = ap.parse_args()
    if a.threads < 0:
        ap.error("--threads must be >= 0")

    import onnxruntime as ort

    so = ort.SessionOptions()
    if a.threads:
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[a.opt]
    try:
        if a.model.endswith(".gz"):
            with open(a.model, "rb") as f:
                src = gunzip_capped(f.read())
        else:
            src = a.model
        sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    except Exception as ex:  # noqa: BLE001
        print(f"ort_run: {a.model}: {ex}", file=sys.stderr)
        return 1
    try:
        data = np.load(a.inputs, allow_pickle=False)
    except Exception as ex:  # noqa: BLE001
        print(f"ort_run: {a.inputs}: {ex}", file=sys.stderr)
        return 1
    feeds = {}
    for i in sess.get_inputs():
        if i.name not in data.files:
            print(f"ort_run: {a.inputs}: no array named '{i.name}' for model input "
                  f"(arrays: {', '.join(data.files) or 'none'})", file=sys.stderr)
            return 1
        feeds[i.name] = data[i.name]
    names = [o.name for o in sess.get_outputs()]
    try:
        outs = sess.run(names, feeds)
    except Exception as ex:  # noqa: BLE001
        print(f"ort_run: {a.model}: {ex}", file=sys.stderr)
        return 1
    try:
        savez(a.out, dict(zip(names, outs)))
    except Exception as ex:  # noqa: BLE001
        print(f"ort_run: {a.out}: {ex}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
