#!/usr/bin/env python3
"""pare-distill-export: peak RSS of a soft-target export against the number
of samples (issue 6, section 5: bounded by the teacher, the executor's arena
and a buffer, not by the dataset).

Makes datasets of N samples by repeating testdata/digits_train.npz rows
(cnn_digits teacher) and transformer_data.npz rows (transformer_tiny2),
exports top-k probabilities for each N, and prints wall time, peak RSS
(pare's own measure, --json) and the output size.

    python3 bench/distill_bench.py --build build/release
    python3 bench/distill_bench.py --build build/release --sizes 1000,10000,50000
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--testdata", default=os.path.join(os.path.dirname(__file__), "..", "testdata"))
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--threads", default="1")
    a = ap.parse_args()
    tool = os.path.join(a.build, "tools", "pare-distill-export")
    if not os.path.exists(tool):
        sys.exit("distill_bench: %s: not built" % tool)
    cases = [
        ("cnn_digits.onnx", "digits_train.npz", "input",
         ["--temperature", "2", "--top-k", "3"]),
        ("transformer_tiny2.onnx", "transformer_data.npz", "x",
         ["--temperature", "2", "--top-k", "8", "--dtype", "float16"]),
    ]
    # the peak RSS is measured by /usr/bin/time (a small process that forks
    # the tool), as a child forked from this Python would inherit its peak
    timer = ["/usr/bin/time", "-f", "maxrss %M"] if os.path.exists("/usr/bin/time") else []
    print("%-24s %8s %8s %12s %12s %12s %12s" % ("teacher", "samples", "wall s", "RSS MiB",
                                                 "pare's MiB", "data MiB", "output MiB"))
    with tempfile.TemporaryDirectory() as tmp:
        for model, data, inp, opts in cases:
            base = np.load(os.path.join(a.testdata, data))[inp]
            for n in [int(s) for s in a.sizes.split(",")]:
                reps = -(-n // len(base))
                x = np.concatenate([base] * reps)[:n]
                dpath = os.path.join(tmp, "data.npz")
                np.savez(dpath, **{inp: x})
                del x  # a forked child inherits the parent's peak RSS: keep it small
                out = os.path.join(tmp, "t.npz")
                t0 = time.time()
                r = subprocess.run(timer + [tool, os.path.join(a.testdata, model), "--data", dpath,
                                    "-o", out, "--json", "--threads", a.threads] + opts,
                                   capture_output=True, text=True)
                wall = time.time() - t0
                if r.returncode:
                    sys.exit(r.stderr)
                rep = json.loads(r.stdout)
                rss = float("nan")
                for line in r.stderr.splitlines():
                    if line.startswith("maxrss "):
                        rss = int(line.split()[1]) / 1024
                print("%-24s %8d %8.2f %12.1f %12.1f %12.1f %12.1f" % (
                    model, n, wall, rss, rep["peak_rss"] / 2**20, os.path.getsize(dpath) / 2**20,
                    os.path.getsize(out) / 2**20))


if __name__ == "__main__":
    main()
