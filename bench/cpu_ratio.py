#!/usr/bin/env python3
"""Single-thread CPU time per run: pare-run against onnxruntime.

usage: bench/cpu_ratio.py [--build DIR] [--baseline DIR] [--models LIST] [--batches LIST]
                          [--iterations N] [--repeat R] [--keep DIR] [--json FILE]

On a shared machine wall-clock latency measures the other load as much as
the runtime. CPU time (user + sys) of one thread does not: it is what the
process itself burnt. For each model and batch (the same prepared copies and
inputs as exec_bench.py, --reshape-batch on), this script measures

  pare: pare-run -t 1 --warmup 2 --iterations N and --iterations 2N in
        child processes; CPU time per run = (cpu(2N) - cpu(N)) / N, from the
        children's rusage (so loading, planning and warm-up cancel out),
        with the lowest cpu(N) and the lowest cpu(2N) over the repeats;
  ort:  onnxruntime (intra_op_num_threads = 1, inter_op_num_threads = 1,
        ORT_ENABLE_ALL) in a child process: 2 warm-up runs, then the process
        CPU time (time.process_time) of N runs / N.

Each is measured --repeat times (3), alternating, and the lowest CPU time
per run is kept (other load only adds time: cache misses, migrations, a
busy sibling hyperthread). The table gives both in ms and their ratio; the
goal of issue 3 is <= 1.5. --baseline DIR measures a second build's
pare-run the same way, in the same rounds (before/after a change).

Exit status 0 done, 1 when a run failed, 2 on bad usage.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import exec_bench  # noqa: E402

ORT_CODE = r"""
import sys, time, numpy as np, onnxruntime as ort
path, npz, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.log_severity_level = 3
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
d = np.load(npz)
feeds = {i.name: d[i.name] for i in s.get_inputs()}
for _ in range(2):
    s.run(None, feeds)
t0 = time.process_time()
for _ in range(n):
    s.run(None, feeds)
print((time.process_time() - t0) / n * 1e3)
"""


def child_cpu(cmd):
    """Runs cmd; returns (stdout, user+sys seconds of the child)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {p.stderr.strip()}\n  $ {' '.join(cmd)}")
    return p.stdout, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def pare_cpu(pare_run, model, npz, batch, n):
    """CPU seconds of pare-run with N and with 2N timed runs."""
    base = [pare_run, model, "--inputs", npz, "--batch", str(batch), "-t", "1", "--warmup", "2",
            "--json", "--iterations"]
    _, c1 = child_cpu(base + [str(n)])
    _, c2 = child_cpu(base + [str(2 * n)])
    return c1, c2


def pare_ms(cs, n):
    """ms per run from several (cpu(N), cpu(2N)) pairs: the lowest of each,
    subtracted (the lowest of the differences would favour a noisy pair)."""
    return max(min(c[1] for c in cs) - min(c[0] for c in cs), 0.0) / n * 1e3


def ort_ms(model, npz, n):
    out, _ = child_cpu([sys.executable, "-c", ORT_CODE, model, npz, str(n)])
    return float(out.strip().splitlines()[-1])


def main(argv=None):
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(exec_bench.ROOT, "build", "release"),
                    help="build directory with tools/pare-run (build/release)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also measure DIR/tools/pare-run (an earlier build) in the same rounds")
    ap.add_argument("--models", default=",".join(exec_bench.ALL_MODELS),
                    help="comma-separated name parts (all five)")
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes (1,8)")
    ap.add_argument("--iterations", type=int, default=0,
                    help="timed runs per measurement (0: by model, about 1 s of work)")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per runtime, lowest kept (3)")
    ap.add_argument("--keep", metavar="DIR", help="keep the prepared models and inputs in DIR")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    a = ap.parse_args(argv)
    pare_run = os.path.join(a.build, "tools", "pare-run")
    if not os.access(pare_run, os.X_OK):
        print(f"cpu_ratio: {pare_run}: not found (build first)", file=sys.stderr)
        return 1
    base_run = None
    if a.baseline:
        base_run = os.path.join(a.baseline, "tools", "pare-run")
        if not os.access(base_run, os.X_OK):
            print(f"cpu_ratio: {base_run}: not found", file=sys.stderr)
            return 1
    try:
        batches = [int(b) for b in a.batches.split(",") if b]
    except ValueError:
        ap.error(f"--batches {a.batches}: not a list of integers")
    if not batches or min(batches) < 1 or a.repeat < 1 or a.iterations < 0:
        ap.error("--batches, --repeat and --iterations must be positive")
    parts = [p for p in a.models.split(",") if p]
    models = [m for m in exec_bench.ALL_MODELS if any(p in m for p in parts)]
    if not models:
        ap.error(f"--models {a.models}: matches none of {', '.join(exec_bench.ALL_MODELS)}")
    work = a.keep or tempfile.mkdtemp(prefix="pare-cpu-ratio.")
    os.makedirs(work, exist_ok=True)
    opts = argparse.Namespace(as_is=False, reshape_batch=True)
    load0 = os.getloadavg()
    print(f"cpu_ratio: 1 thread, CPU time (user+sys) per run, lowest of {a.repeat}; "
          f"load average at start {load0[0]:.2f} ({os.cpu_count()} cores)")
    if base_run:
        print("| model | batch | pare ms | ort ms | pare/ort | baseline ms | baseline/ort |")
        print("|---|---|---|---|---|---|---|")
    else:
        print("| model | batch | pare ms | ort ms | pare/ort |")
        print("|---|---|---|---|---|")
    rows, failed = [], 0
    try:
        for m in models:
            for b in batches:
                row = {"model": m, "batch": b}
                rows.append(row)
                try:
                    prep = exec_bench.prepare(m, b, work, opts)
                    npz = os.path.join(work, f"{m}_b{b}_in.npz")
                    exec_bench.make_inputs(prep, 0, npz)
                    n = a.iterations
                    if n == 0:  # about 0.5-1 s of work per measurement
                        n = 1000 if m == "transformer_block" and b == 1 else \
                            150 if m == "transformer_block" else \
                            max(4, 64 // b) if "squeeze" in m else max(2, 12 // b)
                    ps, os_, bs = [], [], []
                    for _ in range(a.repeat):
                        ps.append(pare_cpu(pare_run, prep.path, npz, b, n))
                        os_.append(ort_ms(prep.path, npz, n))
                        if base_run:
                            bs.append(pare_cpu(base_run, prep.path, npz, b, n))
                    row.update(pare_ms=pare_ms(ps, n), ort_ms=min(os_), iterations=n,
                               pare_cpu_s=ps, ort_all=os_)
                    line = (f"| {m} | {b} | {row['pare_ms']:.3f} | {row['ort_ms']:.3f} | "
                            f"{row['pare_ms'] / row['ort_ms']:.2f} |")
                    if base_run:
                        row.update(baseline_ms=pare_ms(bs, n), baseline_cpu_s=bs)
                        line += f" {row['baseline_ms']:.3f} | {row['baseline_ms'] / row['ort_ms']:.2f} |"
                    print(line)
                except Exception as ex:  # noqa: BLE001
                    row["error"] = str(ex)
                    failed += 1
                    print(f"| {m} | {b} | error: {ex} | | |")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()
    print(f"load average at end {load1[0]:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"schema": "pare-cpu-ratio/1", "loadavg_start": load0, "loadavg_end": load1,
                       "rows": rows}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
