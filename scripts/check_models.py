#!/usr/bin/env python3
"""Run onnx.checker (full check, with shape inference) on ONNX models.

usage: check_models.py MODEL_OR_DIR ...

A .onnx file is checked by path, so its external data is found beside it; a
.onnx.gz file is decompressed and checked in memory. A directory is searched
recursively for .onnx and .onnx.gz files. The last line printed is
`N passed, N failed`; the exit status is 1 if any model failed, 2 on bad usage.
"""

import argparse
import os
import sys

import onnx


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


def collect(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out += [os.path.join(root, f) for f in sorted(files)
                        if f.endswith(".onnx") or f.endswith(".onnx.gz")]
        else:
            out.append(p)
    return out


def check(p):
    if p.endswith(".gz"):
        with open(p, "rb") as f:
            model = onnx.load_model_from_string(gunzip_capped(f.read()))
        onnx.checker.check_model(model, full_check=True)
    else:
        onnx.checker.check_model(p, full_check=True)


def main():
    ap = argparse.ArgumentParser(description="onnx.checker full check on each model")
    ap.add_argument("-v", "--verbose", action="store_true", help="print passing models too")
    ap.add_argument("models", nargs="+", metavar="MODEL_OR_DIR")
    a = ap.parse_args()
    passed = failed = 0
    for p in collect(a.models):
        try:
            if not os.path.isfile(p):
                raise FileNotFoundError("no such file")
            check(p)
        except Exception as ex:  # noqa: BLE001
            failed += 1
            msg = str(ex).strip().splitlines()
            print(f"FAIL {p}: {type(ex).__name__}: {msg[0] if msg else ''}")
            continue
        passed += 1
        if a.verbose:
            print(f"ok   {p}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
