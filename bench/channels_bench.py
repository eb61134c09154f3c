#!/usr/bin/env python3
"""Params and latency before and after structured channel pruning, in pare-run and onnxruntime.

usage: channels_bench.py [--build DIR] [--testdata DIR] [--ratio R] [--threads N]
                         [--channel-multiple LIST] [--clock cpu|wall] [--rounds K]
                         [--light] [--markdown]

For each model it runs `pare-prune --structured channels --ratio R` once per
value in the --channel-multiple LIST (comma-separated; "default" runs
pare-prune without the option, its default of 16), then times the original
and every pruned model in both runtimes, 1 thread each (--threads):

- onnxruntime: all sessions in this process (CPUExecutionProvider, every
  graph optimization on, intra-op threads --threads, sequential), one run of
  each in turn, for about 3 s (at least 20 runs each, after 10 warmup).
  --clock cpu (the default) times each run with this thread's CPU time
  (time.thread_time: with 1 intra-op thread onnxruntime runs on the calling
  thread), so another process on the machine slows it little; --clock wall
  (and any --threads above 1) with time.perf_counter. ms: the median per
  model; the change: the median of each turn's pruned/original ratio.
- pare-run: --rounds rounds, each running pare-run once per model (the
  order reversed every other round), each giving its own p50 (--json) over
  -n N runs (N sized for about 0.5 s, after 5 warmup). ms: the median p50
  of the rounds; the change: the median of each round's pruned/original
  ratio, so load that comes and goes between rounds cancels out. (The
  child's CPU time is no better on a shared machine: it is the mean over
  the runs, the occasional slow run included.)

Models: cnn_digits at batch 1 and 64 on digits_val.npz; with --light also
light_resnet50, light_squeezenet and light_shufflenet at batch 1, their
ConstantOfShape weights first materialized as seeded random initializers
(tests/interop/channels_check.py) since the stored files have no weights to
prune. light_shufflenet is first put through `pare-prune --cleanup-only`
(after its BatchNorm variances are made positive) and that cleaned model is
both the "before" model and the one pruned.

One row per model, batch and multiple: params before -> after (counted in the
two files), MACs before -> after (pare-prune's report over the layers it
changed), ms per run before -> after and the change in each runtime, then
whether the quality bars of structured pruning hold: params down at least 25%
and latency down at least 20% in each runtime ("yes"/"NO"). The last lines,
one per multiple, say for how many rows each bar holds. Exit status 0 even
when a bar fails (it is a measurement, not a test).
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

PARAMS_BAR = 0.25
LATENCY_BAR = 0.20


def prune(args, src, out, rep, multiple):
    cmd = [os.path.join(args.build, "tools/pare-prune"), "--structured", "channels", "--ratio",
           str(args.ratio), src, "-o", out, "--json", "--report", rep, "-q"]
    if multiple != "default":
        cmd += ["--channel-multiple", multiple]
    subprocess.run(cmd, check=True)
    with open(rep) as f:
        return json.load(f)["prune"]


def params(path):
    import onnx
    m = onnx.load(path)
    return sum(int(np.prod(i.dims)) for i in m.graph.initializer if i.data_type == 1)


def pare_cmd(args, model, data, batch):
    cmd = [os.path.join(args.build, "tools/pare-run"), model, "--json", "-q", "--batch",
           str(batch), "-t", str(args.threads)]
    if data:
        cmd += ["--inputs", data]
    return cmd


def pare_p50(args, model, data, batch, n):
    cmd = pare_cmd(args, model, data, batch) + ["-n", str(n)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)["speed"]["p50_ms"]


def pare_iters(args, model, data, batch):
    """-n for about 0.5 s of runs."""
    return max(20, int(500.0 / max(pare_p50(args, model, data, batch, 10), 1e-3)))


def ort_ms(args, paths, feeds):
    """ms of every run of each model, runs of the models alternated."""
    import onnxruntime as ort
    clock = time.thread_time if args.clock == "cpu" and args.threads == 1 else time.perf_counter
    sessions = []
    for p in paths:
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        s = ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
        for _ in range(10):
            s.run(None, feeds)
        sessions.append(s)
    ts = [[] for _ in sessions]
    t0 = time.perf_counter()
    while len(ts[0]) < 20 or (time.perf_counter() - t0 < 3 and len(ts[0]) < 2000):
        for s, t in zip(sessions, ts):
            c = clock()
            s.run(None, feeds)
            t.append((clock() - c) * 1e3)
    return ts


def cases(a, tmp):
    import onnx
    out = []
    d = np.load(os.path.join(a.testdata, "digits_val.npz"))
    cnn = os.path.join(a.testdata, "cnn_digits.onnx")
    for b in (1, 64):
        data = os.path.join(tmp, "digits_%d.npz" % b)
        np.savez(data, input=d["input"][:b])
        out.append(("cnn_digits", cnn, data, b, {"input": d["input"][:b]}))
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
            out.append((name, src, data, 1, feeds))
    return out


def cut(before, after):
    return (before - after) / before if before else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--testdata", default=os.path.join(ROOT, "testdata"))
    ap.add_argument("--ratio", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channel-multiple", default="default",
                    help="comma-separated pare-prune --channel-multiple values to compare; "
                         "'default' runs without the option (16)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="how onnxruntime runs are timed (thread CPU time or wall)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--light", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    multiples = [m.strip() for m in a.channel_multiple.split(",") if m.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, src, data, batch, feeds in cases(a, tmp):
            p0 = params(src)
            outs, reps = [], []
            for mult in multiples:
                out = os.path.join(tmp, "%s_%d_%s.pruned.onnx" % (name, batch, mult))
                reps.append(prune(a, src, out, out + ".json", mult))
                outs.append(out)
            paths = [src] + outs
            n = [pare_iters(a, p, data, batch) for p in paths]
            pare = [[] for _ in paths]
            for r in range(a.rounds):
                order = list(range(len(paths)))
                for i in (order if r % 2 == 0 else order[::-1]):
                    pare[i].append(pare_p50(a, paths[i], data, batch, n[i]))
            ort = ort_ms(a, paths, feeds)
            pb = float(np.median(pare[0]))
            for i, (mult, rep) in enumerate(zip(multiples, reps), 1):
                pchg = float(np.median([x / y for x, y in zip(pare[i], pare[0])]))
                ochg = float(np.median([x / y for x, y in zip(ort[i], ort[0])]))
                rows.append((name, batch, mult, p0, params(paths[i]), rep.get("macs_before", 0),
                             rep.get("macs_after", 0), pb, float(np.median(pare[i])), pchg,
                             float(np.median(ort[0])), float(np.median(ort[i])), ochg))
            print("done %s batch %d" % (name, batch), file=sys.stderr, flush=True)
    head = ("model", "batch", "multiple", "params before -> after", "MACs before -> after",
            "pare ms before -> after", "ort ms before -> after", "params >=25%",
            "pare >=20%", "ort >=20%")
    body = []
    held = {m: [0, 0, 0, 0] for m in multiples}
    for name, batch, mult, p0, p1, m0, m1, pb, pa, pchg, ob, oa, ochg in rows:
        bars = (cut(p0, p1) >= PARAMS_BAR, 1 - pchg >= LATENCY_BAR, 1 - ochg >= LATENCY_BAR)
        h = held[mult]
        h[:] = [x + int(b) for x, b in zip(h, bars + (True,))]
        body.append((name, str(batch), "16 (default)" if mult == "default" else mult,
                     "%d -> %d (-%.0f%%)" % (p0, p1, 100 * cut(p0, p1)),
                     "%.3g -> %.3g (-%.0f%%)" % (m0, m1, 100 * cut(m0, m1)),
                     "%.4f -> %.4f (%+.0f%%)" % (pb, pa, 100 * (pchg - 1)),
                     "%.4f -> %.4f (%+.0f%%)" % (ob, oa, 100 * (ochg - 1)))
                    + tuple("yes" if b else "NO" for b in bars))
    print("ratio %g, %d thread(s); ms per run: pare-run p50 wall (median of %d rounds), "
          "onnxruntime median %s (runs of the models alternated); the change in %%: "
          "median of the paired pruned/original ratios"
          % (a.ratio, a.threads, a.rounds,
             "thread CPU time" if a.clock == "cpu" and a.threads == 1 else "wall time"))
    if a.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in body:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]
        for r in [head] + body:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    for m in multiples:
        h = held[m]
        print("--channel-multiple %s: %s" % (
            "16 (default)" if m == "default" else m,
            "; ".join("%s %s (%d of %d rows)" % (label, "holds" if x == h[3] else "FAILS", x, h[3])
                      for label, x in zip(("params down >= 25%", "pare-run latency down >= 20%",
                                           "onnxruntime latency down >= 20%"), h[:3]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
