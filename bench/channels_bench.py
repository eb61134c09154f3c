#!/usr/bin/env python3
"""Latency before and after structured channel pruning, in pare-run and onnxruntime.

usage: channels_bench.py [--build DIR] [--testdata DIR] [--ratio R] [--threads N] [--channel-multiple M]
                         [--rounds K] [--light] [--markdown]

For each model it runs `pare-prune --structured channels --ratio R`, then
times the original and the pruned model in pare-run (--json p50 over
--duration 2 s after 5 warmup runs) and in onnxruntime (p50 of up to 200 runs or
2 s after 10 warmup, intra-op threads = --threads, sequential execution), alternating
original and pruned --rounds times and keeping each one's best p50 (the
machine is shared). Models: cnn_digits at batch 1 and 64 on digits_val.npz;
with --light also light_resnet50, light_squeezenet and light_shufflenet at
batch 1, their ConstantOfShape weights first materialized as seeded random
initializers (tests/interop/channels_check.py) since the stored files have
no weights to prune. light_shufflenet (grouped 1x1 convs and channel
shuffles) is first put through `pare-prune --cleanup-only` and that cleaned
model is both the "before" model and the one pruned, so the two differ only
by the channels removed. One row per model and batch: params before ->
after, MACs before -> after (pare-prune's report over the layers it
changed), p50 ms before -> after and the speedup, for each runtime.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))


def prune(args, src, out, rep):
    cmd = [os.path.join(args.build, "tools/pare-prune"), "--structured", "channels", "--ratio",
           str(args.ratio), "--channel-multiple", str(args.channel_multiple), src, "-o", out,
           "--json", "--report", rep, "-q"]
    subprocess.run(cmd, check=True)
    with open(rep) as f:
        return json.load(f)["prune"]


def pare_p50(args, model, data, batch):
    cmd = [os.path.join(args.build, "tools/pare-run"), model, "--json", "-q", "--batch",
           str(batch), "-t", str(args.threads), "--duration", "2"]
    if data:
        cmd += ["--inputs", data]
    p = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(p.stdout)["speed"]["p50_ms"]


def ort_p50(args, model, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for _ in range(10):
        s.run(None, feeds)
    ts = []
    t0 = time.perf_counter()
    while len(ts) < 200 and (len(ts) < 10 or time.perf_counter() - t0 < 2):
        t = time.perf_counter()
        s.run(None, feeds)
        ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--testdata", default=os.path.join(ROOT, "testdata"))
    ap.add_argument("--ratio", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channel-multiple", type=int, default=8,
                    help="pare-prune --channel-multiple (16 suits onnxruntime on AVX-512)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--light", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    import onnx
    import onnxruntime as ort
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        d = np.load(os.path.join(a.testdata, "digits_val.npz"))
        cnn = os.path.join(a.testdata, "cnn_digits.onnx")
        for b in (1, 64):
            data = os.path.join(tmp, "digits_%d.npz" % b)
            np.savez(data, input=d["input"][:b])
            cases.append(("cnn_digits", cnn, data, b, {"input": d["input"][:b]}))
        if a.light:
            from channels_check import materialize, random_feeds
            light = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light")
            for name in ("light_resnet50", "light_squeezenet", "light_shufflenet"):
                src = os.path.join(tmp, name + ".onnx")
                materialize(os.path.join(light, name + ".onnx"), src)
                if name == "light_shufflenet":
                    from grouped_check import positive_variances
                    positive_variances(src)  # NaN outputs otherwise
                    clean = os.path.join(tmp, name + ".clean.onnx")
                    subprocess.run([os.path.join(a.build, "tools/pare-prune"), "--cleanup-only",
                                    src, "-o", clean, "-q"], check=True)
                    src = clean
                feeds = random_feeds(src)
                data = os.path.join(tmp, name + "_in.npz")
                np.savez(data, **feeds)
                cases.append((name, src, data, 1, feeds))
        for name, src, data, batch, feeds in cases:
            out = os.path.join(tmp, "%s_%d.pruned.onnx" % (name, batch))
            rep = prune(a, src, out, out + ".json")
            best = {}
            for _ in range(a.rounds):
                for tag, path in (("before", src), ("after", out)):
                    for rt, fn in (("pare", lambda p: pare_p50(a, p, data, batch)),
                                   ("ort", lambda p: ort_p50(a, p, feeds))):
                        v = fn(path)
                        k = (rt, tag)
                        best[k] = min(best.get(k, v), v)
            rows.append((name, batch, rep, best))
    hdr = ("| model | batch | params before -> after | MACs before -> after | pare p50 ms before -> "
           "after | pare speedup | ort p50 ms before -> after | ort speedup |")
    print(hdr)
    print("|---|---|---|---|---|---|---|---|")
    for name, batch, rep, b in rows:
        pb, pa = rep.get("params_before", 0), rep.get("params_after", 0)
        mb, ma = rep.get("macs_before", 0), rep.get("macs_after", 0)
        print("| %s | %d | %d -> %d (-%.0f%%) | %.3g -> %.3g (-%.0f%%) | %.3f -> %.3f | %.2fx | "
              "%.3f -> %.3f | %.2fx |"
              % (name, batch, pb, pa, 100.0 * (pb - pa) / max(pb, 1), mb, ma,
                 100.0 * (mb - ma) / max(mb, 1), b[("pare", "before")], b[("pare", "after")],
                 b[("pare", "before")] / b[("pare", "after")], b[("ort", "before")],
                 b[("ort", "after")], b[("ort", "before")] / b[("ort", "after")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
