#!/usr/bin/env python3
"""Execution benchmark: pare-run against onnxruntime (CPU) on the same inputs.

usage: bench/exec_bench.py [--build DIR] [--threads N] [--models LIST] [--batches LIST]
                           [--quick] [--rounds N] [--int8] [--dry-run] [--json FILE] ...

Models: light_resnet50, light_squeezenet, light_densenet121, light_inception_v1
(the onnx package's backend/test/data/light) and testdata/transformer_block.onnx
(input x [B,128,64]), each at batch 1 and 8.

The light models make their weights at run time (ConstantOfShape, value 0.02)
and list every initializer as a graph input (IR version 3). Each is prepared
once into a temporary copy, as a full model would be: ConstantOfShape nodes
with a constant shape folded into initializers, initializers no longer graph
inputs (IR version 4), unused initializers dropped (--as-is keeps the file,
so pare fills ~100 MB of weights per run of resnet50; onnxruntime folds them
at session creation). Their batch is fixed at 1 in the file: for another
batch the copy's first input and output dims become "N". A model with a
Reshape to a fixed [1, ...] (resnet50, inception_v1) cannot take another
batch and shows "n/a" in the table, unless --reshape-batch turns that target
into [-1, ...].

--int8 adds a row per model and batch for its int8 QDQ version: the
prepared model (light models with seeded He-initialized weights instead of
the constant 0.02, so that activations have realistic ranges) quantized by
pare-quantize --mode static with its defaults (uint8 activations, per-channel
int8 weights), calibrated on 16 random samples; both runtimes run that file
(pare-run through its fused 8-bit kernels, onnxruntime through its QDQ
transformations).

Inputs: uniform in [-1, 1) from numpy's default_rng(--seed), saved as one
.npz and given to both runtimes. pare-run runs them with --inputs, --batch,
-t THREADS, --warmup, --duration and --json (its speed.p50_ms); onnxruntime
runs the same model and arrays on the CPU provider with
intra_op_num_threads = THREADS, inter_op_num_threads = 1, ORT_ENABLE_ALL,
--warmup untimed runs, then timed runs until --duration seconds have passed;
p50 is by nearest rank. pare's outputs are compared with onnxruntime's (rel =
max |a-b| / max(max |b|, 1e-6), see scripts/compare_npz.py).

FLOPs come from `pare-inspect --json --shape INPUT=DIMS` of the prepared
model (compute.flops; marked "+" when pare-inspect left nodes out; with
--as-is, of the folded copy, which computes the same).
Peak GFLOP/s of the machine: the fastest of several numpy float32 matmuls
(n x n x n for n = 1024, 2048, 3072; 2 n^3 FLOPs) with numpy's BLAS held to
THREADS threads, run in a child process: what a tuned BLAS reaches here, not
the hardware's theoretical peak (a runtime may beat it).

--rounds N measures every row N times, pare and onnxruntime alternating,
and keeps each one's lowest p50 (other load only slows a run down).
--combine A.json B.json ... prints one table from earlier --json files the
same way (each runtime's lowest p50 per row, and the ratio of each run).
--dry-run only checks that everything starts: the tools and onnxruntime are
there, each model is found and prepared, pare-inspect estimates it,
`pare-run --plan` plans it, and onnxruntime creates a session for it.

Exit status 0 done, 1 when a run failed, 2 on bad usage.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ALL_MODELS = ["light_resnet50", "light_squeezenet", "light_densenet121", "light_inception_v1",
              "transformer_block"]
SEQ = 128  # transformer_block sequence length


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def p50(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.5 * len(s)) - 1)]


def light_dir():
    import onnx
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def model_source(name):
    if name.startswith("light_"):
        return os.path.join(light_dir(), name + ".onnx")
    return os.path.join(ROOT, "testdata", name + ".onnx")


def rel_error(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    fin = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf")
    if not fin.any():
        return 0.0
    return float(np.abs(a[fin] - b[fin]).max() / max(float(np.abs(b[fin]).max()), 1e-6))


def dims_str(shape):
    return "x".join(str(d) for d in shape)


# --------------------------------------------------------------------------
# preparing a model for a batch
# --------------------------------------------------------------------------

class Prepared:
    def __init__(self, path, inputs, note=None, na=None):
        self.path = path        # model file both runtimes load
        self.inputs = inputs    # {name: shape}
        self.note = note        # what was changed
        self.na = na            # why this row cannot run, or None


def fold_light(m):
    """ConstantOfShape(constant shape) -> initializer; initializers stop being inputs."""
    import onnx
    from onnx import numpy_helper
    inits = {t.name: t for t in m.graph.initializer}
    keep, folded = [], 0
    for node in m.graph.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in inits:
            shape = numpy_helper.to_array(inits[node.input[0]]).astype(np.int64)
            value = np.zeros(1, np.float32)
            for at in node.attribute:
                if at.name == "value":
                    value = numpy_helper.to_array(at.t).reshape(-1)
            m.graph.initializer.append(
                numpy_helper.from_array(np.full(shape, value[0], value.dtype), node.output[0]))
            folded += 1
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    init_names = set()
    kept = []
    for t in m.graph.initializer:
        if t.name in used:
            kept.append(t)
            init_names.add(t.name)
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept)
    real_inputs = [i for i in m.graph.input if i.name not in init_names and i.name in used]
    del m.graph.input[:]
    m.graph.input.extend(real_inputs)
    m.ir_version = max(m.ir_version, 4)
    return folded


def fixed_batch_reshapes(m):
    """Reshape nodes whose target shape is a constant starting with 1 and whose
    data comes from the network (not a weight): they pin the batch to 1."""
    from onnx import numpy_helper
    inits = {t.name: t for t in m.graph.initializer}
    out = []
    for node in m.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        if node.input[0] in inits or node.input[1] not in inits:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]])
        if shape.ndim == 1 and shape.size >= 1 and shape[0] == 1:
            out.append((node, shape))
    return out


def prepare(name, batch, work, args):
    import onnx
    from onnx import numpy_helper
    src = model_source(name)
    if not os.path.isfile(src):
        raise FileNotFoundError(f"{src}: no such file")
    if not name.startswith("light_"):
        m = onnx.load(src, load_external_data=False)
        inits = {t.name for t in m.graph.initializer}
        ins = [i for i in m.graph.input if i.name not in inits]
        return Prepared(src, {ins[0].name: [batch, SEQ, 64]})
    m = onnx.load(src)
    notes = []
    if not args.as_is:
        n = fold_light(m)
        notes.append(f"{n} ConstantOfShape folded")
    inits = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in inits]
    shape = [d.dim_value for d in ins[0].type.tensor_type.shape.dim]
    if batch != shape[0]:
        pins = fixed_batch_reshapes(m)
        if pins and not args.reshape_batch:
            node, target = pins[0]
            return Prepared(None, {}, na=f"Reshape '{node.name}' to [{', '.join(map(str, target))}] fixes batch 1")
        for node, target in pins:
            t = [x for x in m.graph.initializer if x.name == node.input[1]][0]
            new = target.copy()
            new[0] = -1
            t.CopyFrom(numpy_helper.from_array(new.astype(np.int64), t.name))
            notes.append(f"Reshape '{node.name}' [1,...] -> [-1,...]")
        for v in list(ins) + list(m.graph.output):
            d0 = v.type.tensor_type.shape.dim[0]
            d0.Clear()
            d0.dim_param = "N"
        del m.graph.value_info[:]
        notes.append("batch dim 'N'")
        shape[0] = batch
    path = os.path.join(work, f"{name}_b{batch}{'_asis' if args.as_is else ''}.onnx")
    onnx.save(m, path)
    return Prepared(path, {ins[0].name: shape}, note="; ".join(notes) or None)


def he_weights(m, seed):
    """Replaces the constant weights fold_light made with seeded random ones
    of realistic scale (He: normal with std sqrt(2 / fan_in) for Conv and
    Gemm weights; BatchNormalization scale 0.5, bias 0, mean 0, var 1), so
    that activations keep sane ranges through the network and a quantizer
    calibrates something like what a trained model would give it."""
    from onnx import numpy_helper
    rng = np.random.default_rng(seed)
    role = {}
    for n in m.graph.node:
        for k, i in enumerate(n.input):
            role.setdefault(i, (n.op_type, k))
    for i, t in enumerate(m.graph.initializer):
        op, k = role.get(t.name, ("", 0))
        a = numpy_helper.to_array(t)
        if a.dtype != np.float32 or a.ndim == 0:
            continue
        if op in ("Conv", "Gemm") and k == 1:
            fan = int(np.prod(a.shape[1:])) if op == "Conv" else int(a.shape[-1])
            a = rng.normal(0, np.sqrt(2.0 / max(fan, 1)), a.shape).astype(np.float32)
        elif op == "BatchNormalization":
            a = np.full(a.shape, (0.5, 0.0, 0.0, 1.0)[k - 1] if 1 <= k <= 4 else 0.0, np.float32)
        elif op in ("Conv", "Gemm") and k == 2:
            a = np.zeros(a.shape, np.float32)
        else:
            continue
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))


def prepare_int8(name, batch, work, args):
    """The model of prepare() quantized by pare-quantize --mode static (QDQ,
    the tool's defaults), calibrated on 16 random samples; light models get
    he_weights first (and opset 13, which per-channel weights need)."""
    import onnx
    prep = prepare(name, batch, work, args)
    if prep.na:
        return prep
    src = prep.path
    notes = [prep.note] if prep.note else []
    if name.startswith("light_"):
        m = onnx.load(src)
        he_weights(m, args.seed)
        opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
        if opset < 13:
            # per-channel DequantizeLinear needs opset 13 (densenet121 is at 9,
            # with an Unsqueeze whose signature changes at 13)
            from onnx import version_converter
            m = version_converter.convert_version(m, 13)
            notes.append(f"opset {opset} -> 13 (onnx.version_converter)")
        src = os.path.join(work, f"{name}_b{batch}_he.onnx")
        onnx.save(m, src)
        notes.append("He-initialized weights")
    (iname, shape), = prep.inputs.items()
    calib = os.path.join(work, f"{name}_calib.npz")
    rng = np.random.default_rng(args.seed + 1)
    np.savez(calib, **{iname: rng.uniform(-1, 1, [16] + list(shape[1:])).astype(np.float32)})
    out = os.path.join(work, f"{name}_b{batch}_int8.onnx")
    cmd = [args.pare_quantize, "--mode", "static", "-q", "--calibrate", calib, "--calib-samples",
           "16", "--calib-batch", "1", src, "-o", out]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"pare-quantize exit {p.returncode}: {p.stderr.strip()}")
    notes.append("int8 QDQ (pare-quantize --mode static, 16 random calibration samples)")
    return Prepared(out, prep.inputs, note="; ".join(notes))


def variants(a):
    return ["fp32", "int8"] if a.int8 else ["fp32"]


def prepare_variant(m, v, b, work, a):
    return prepare_int8(m, b, work, a) if v == "int8" else prepare(m, b, work, a)


def make_inputs(prep, seed, path):
    rng = np.random.default_rng(seed)
    arrays = {n: rng.uniform(-1, 1, s).astype(np.float32) for n, s in prep.inputs.items()}
    np.savez(path, **arrays)
    return arrays


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------

def flops_of(args, prep, name=None, batch=None, work=None):
    """FLOPs of the prepared model; with --as-is, of the folded copy (the same
    computation, but pare-inspect cannot size weights made at run time)."""
    path = prep.path
    if args.as_is and name and name.startswith("light_"):
        folded = argparse.Namespace(**vars(args))
        folded.as_is = False
        path = prepare(name, batch, work, folded).path
    cmd = [args.pare_inspect, "--json", "-q"]
    for n, s in prep.inputs.items():
        cmd += ["--shape", f"{n}={dims_str(s)}"]
    cmd.append(path)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"pare-inspect exit {p.returncode}: {p.stderr.strip()}")
    c = json.loads(p.stdout)["compute"]
    return int(c["flops"]), int(c["nodes_not_estimated"])


def run_pare(args, prep, batch, npz, out_npz):
    cmd = [args.pare_run, prep.path, "--inputs", npz, "--batch", str(batch), "-t", str(args.threads),
           "--warmup", str(args.warmup), "--duration", str(args.duration), "--json",
           "--save-outputs", out_npz]
    if args.device:
        cmd += ["--device", args.device]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"pare-run exit {p.returncode}: {p.stderr.strip()}\n  $ {' '.join(cmd)}")
    r = json.loads(p.stdout)
    return r["speed"]["p50_ms"], r["speed"]["iterations"], r


def ort_session(args, path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=[args.ort_provider])


def run_ort(args, prep, arrays):
    sess = ort_session(args, prep.path)
    feeds = {n: arrays[n] for n in prep.inputs}
    for _ in range(args.warmup):
        outs = sess.run(None, feeds)
    times = []
    t_end = time.perf_counter() + args.duration
    while True:
        t0 = time.perf_counter()
        outs = sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() >= t_end and len(times) >= 3:
            break
    names = [o.name for o in sess.get_outputs()]
    del sess
    return p50(times), len(times), dict(zip(names, outs))


PEAK_CODE = r"""
import sys, time, numpy as np
reps = int(sys.argv[1])
best = 0.0
for n in map(int, sys.argv[2:]):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    for _ in range(reps):
        t0 = time.perf_counter(); a @ b; t = time.perf_counter() - t0
        best = max(best, 2.0 * n ** 3 / t / 1e9)
print(best)
"""


def blas_name():
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        return f"{b.get('name', '?')} {b.get('version', '')}".strip()
    except Exception:  # noqa: BLE001
        return "numpy's BLAS"


def peak_gflops(threads, quick):
    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[v] = str(threads)
    sizes, reps = ([1024], 5) if quick else ([1024, 2048, 3072], 8)
    p = subprocess.run([sys.executable, "-c", PEAK_CODE, str(reps)] + [str(n) for n in sizes], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip())
    return float(p.stdout.strip()), sizes, reps


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description="pare-run against onnxruntime (CPU), same inputs and threads")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                    help="build directory with tools/pare-run and tools/pare-inspect (build/release)")
    ap.add_argument("--pare-run", help="pare-run program (BUILD/tools/pare-run)")
    ap.add_argument("--pare-inspect", help="pare-inspect program (BUILD/tools/pare-inspect)")
    ap.add_argument("-t", "--threads", type=int, default=0,
                    help="threads of both runtimes and of the peak matmul (0: all cores)")
    ap.add_argument("--models", default=",".join(ALL_MODELS),
                    help="comma-separated names or parts of names (all: " + ",".join(ALL_MODELS) + ")")
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes (1,8)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs first (5; --quick 1)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds of timed runs per runtime and row (2; --quick 0.3)")
    ap.add_argument("--quick", action="store_true", help="fewer runs: a smoke test of the figures")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure each row N times, alternating, keep the lowest p50 of each (1)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs (0)")
    ap.add_argument("--as-is", action="store_true",
                    help="run the light models' files unchanged (no ConstantOfShape folding)")
    ap.add_argument("--reshape-batch", action="store_true",
                    help="let a Reshape to [1, ...] take any batch ([-1, ...]) instead of n/a")
    ap.add_argument("--int8", action="store_true",
                    help="also run each model's int8 QDQ version made by pare-quantize --mode static")
    ap.add_argument("--pare-quantize", help="pare-quantize program (BUILD/tools/pare-quantize)")
    ap.add_argument("--device", default=None, help="pare-run --device (its default: cpu)")
    ap.add_argument("--ort-provider", default="CPUExecutionProvider", help="onnxruntime provider")
    ap.add_argument("--no-peak", action="store_true", help="skip the peak GFLOP/s measurement")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--combine", nargs="+", metavar="JSON",
                    help="print one table from earlier --json files (each runtime's lowest p50); run nothing")
    ap.add_argument("--dry-run", action="store_true",
                    help="check that everything starts (tools, models, plans, sessions); time nothing")
    a = ap.parse_args(argv)
    a.pare_run = a.pare_run or os.path.join(a.build, "tools", "pare-run")
    a.pare_inspect = a.pare_inspect or os.path.join(a.build, "tools", "pare-inspect")
    a.pare_quantize = a.pare_quantize or os.path.join(a.build, "tools", "pare-quantize")
    if a.threads < 0:
        ap.error("--threads must be >= 0")
    a.threads = a.threads or os.cpu_count() or 1
    if a.warmup is None:
        a.warmup = 1 if a.quick else 5
    if a.duration is None:
        a.duration = 0.3 if a.quick else 2.0
    if a.warmup < 0 or a.duration <= 0 or a.rounds < 1:
        ap.error("--warmup >= 0, --duration > 0 and --rounds >= 1")
    try:
        a.batch_list = [int(b) for b in a.batches.split(",")]
    except ValueError:
        ap.error("--batches takes a comma-separated list of numbers")
    if not a.batch_list or min(a.batch_list) < 1:
        ap.error("--batches takes numbers >= 1")
    wanted = [w.strip() for w in a.models.split(",") if w.strip()]
    a.model_list = [m for m in ALL_MODELS if any(w in m for w in wanted)]
    if not a.model_list:
        ap.error(f"--models {a.models}: matches none of {', '.join(ALL_MODELS)}")
    return a


def check_tools(a):
    problems = []
    for p in (a.pare_run, a.pare_inspect) + ((a.pare_quantize,) if a.int8 else ()):
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            problems.append(f"{p}: not an executable (build first, or give --build)")
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
        if a.ort_provider not in ort.get_available_providers():
            problems.append(f"onnxruntime {ort.__version__}: no {a.ort_provider} "
                            f"(has {', '.join(ort.get_available_providers())})")
    except ImportError as ex:
        problems.append(f"python: {ex}")
    return problems


def dry_run(a, work):
    passed = failed = 0

    def result(label, fn):
        nonlocal passed, failed
        try:
            msg = fn()
            passed += 1
            print(f"ok   {label}" + (f": {msg}" if msg else ""))
        except Exception as ex:  # noqa: BLE001
            failed += 1
            print(f"FAIL {label}: {ex}")

    for m, v in [(m, v) for m in a.model_list for v in variants(a)]:
        for b in a.batch_list:
            label = f"{m}{' int8' if v == 'int8' else ''} batch {b}"
            try:
                prep = prepare_variant(m, v, b, work, a)
            except Exception as ex:  # noqa: BLE001
                failed += 1
                print(f"FAIL {label}: prepare: {ex}")
                continue
            if prep.na:
                passed += 1
                print(f"ok   {label}: n/a ({prep.na})")
                continue

            def inspect():
                f, ne = flops_of(a, prep, m, b, work)
                return f"{f / 1e9:.3f} GFLOP" + (f" ({ne} nodes not estimated)" if ne else "")

            def plan():
                cmd = [a.pare_run, "--plan", "-t", str(a.threads), prep.path]
                for n, s in prep.inputs.items():
                    cmd += ["--shape", f"{n}={dims_str(s)}"]
                if a.device:
                    cmd += ["--device", a.device]
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if p.returncode != 0:
                    raise RuntimeError(f"exit {p.returncode}: {p.stderr.strip()}")
                lines = p.stdout.strip().splitlines()
                return f"{len(lines)} plan lines"

            def session():
                s = ort_session(a, prep.path)
                return f"{len(s.get_inputs())} input(s)"

            result(f"{label}: pare-inspect", inspect)
            result(f"{label}: pare-run --plan", plan)
            result(f"{label}: onnxruntime session", session)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv=None):
    sys.stdout.reconfigure(line_buffering=True)
    a = parse_args(argv)
    if a.combine:
        return combine(a.combine)
    problems = check_tools(a)
    if problems:
        for p in problems:
            print(f"exec_bench: {p}", file=sys.stderr)
        return 1
    import onnxruntime as ort
    work = tempfile.mkdtemp(prefix="pare-exec-bench.")
    try:
        if a.dry_run:
            return dry_run(a, work)
        return bench(a, work, ort.__version__)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(a, work, ort_version):
    load0 = os.getloadavg()
    print(f"exec_bench: {a.threads} threads, warmup {a.warmup}, >= {a.duration:g} s timed per runtime, "
          f"rounds {a.rounds}, seed {a.seed}, onnxruntime {ort_version} ({a.ort_provider})")
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} cores)")
    peak = None
    if not a.no_peak:
        peak, sizes, reps = peak_gflops(a.threads, a.quick)
        print(f"peak: {peak:.1f} GFLOP/s = the fastest of {reps} numpy float32 matmuls n x n x n "
              f"(2n^3 FLOPs) for each n in {', '.join(map(str, sizes))}; {blas_name()}, {a.threads} threads")
    rows, failed = [], 0
    for m, v in [(m, v) for m in a.model_list for v in variants(a)]:
        for b in a.batch_list:
            row = {"model": m + (" int8" if v == "int8" else ""), "batch": b}
            rows.append(row)
            try:
                prep = prepare_variant(m, v, b, work, a)
            except Exception as ex:  # noqa: BLE001
                row["error"] = f"prepare: {ex}"
                failed += 1
                continue
            if prep.na:
                row["na"] = prep.na
                continue
            row["note"] = prep.note
            row["input"] = {n: s for n, s in prep.inputs.items()}
            npz = os.path.join(work, f"{m}_{v}_b{b}_in.npz")
            out_npz = os.path.join(work, f"{m}_{v}_b{b}_pare.npz")
            try:
                arrays = make_inputs(prep, a.seed, npz)
                row["flops"], row["nodes_not_estimated"] = flops_of(a, prep, m, b, work)
                best_p, best_o = None, None
                for _ in range(a.rounds):
                    pm, pi, _ = run_pare(a, prep, b, npz, out_npz)
                    om, oi, outs = run_ort(a, prep, arrays)
                    if best_p is None or pm < best_p:
                        best_p, row["pare_iterations"] = pm, pi
                    if best_o is None or om < best_o:
                        best_o, row["ort_iterations"] = om, oi
                row["pare_p50_ms"], row["ort_p50_ms"] = best_p, best_o
                got = np.load(out_npz)
                row["rel_err"] = max(rel_error(got[k], v) if k in got.files else float("inf")
                                     for k, v in outs.items())
            except Exception as ex:  # noqa: BLE001
                row["error"] = str(ex)
                failed += 1
            print_row_progress(row)
    load1 = os.getloadavg()
    print()
    print_table(rows, peak)
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"schema": "pare-exec-bench/1", "threads": a.threads, "warmup": a.warmup,
                       "duration_s": a.duration, "rounds": a.rounds, "seed": a.seed,
                       "onnxruntime": ort_version, "peak_gflops": peak,
                       "loadavg_start": load0, "loadavg_end": load1, "rows": rows}, f, indent=1)
    return 1 if failed else 0


def combine(files):
    """One table from several --json files: each runtime's lowest p50 per row."""
    rows, order, peak, meta = {}, [], None, []
    for fn in files:
        try:
            with open(fn) as f:
                d = json.load(f)
        except (OSError, ValueError) as ex:
            print(f"exec_bench: {fn}: {ex}", file=sys.stderr)
            return 1
        if d.get("schema") != "pare-exec-bench/1":
            print(f"exec_bench: {fn}: not an exec_bench --json file", file=sys.stderr)
            return 1
        meta.append(d)
        if d.get("peak_gflops"):
            peak = max(peak or 0.0, d["peak_gflops"])
        for r in d["rows"]:
            k = (r["model"], r["batch"])
            if k not in rows:
                order.append(k)
                rows[k] = {kk: v for kk, v in r.items()
                           if kk not in ("pare_p50_ms", "ort_p50_ms", "rel_err", "error")}
            c = rows[k]
            if "pare_p50_ms" not in r:
                continue
            c.setdefault("run_ratios", []).append(r["pare_p50_ms"] / r["ort_p50_ms"])
            for kk in ("pare_p50_ms", "ort_p50_ms"):
                c[kk] = min(c.get(kk, float("inf")), r[kk])
            c["rel_err"] = max(c.get("rel_err", 0.0), r["rel_err"])
    threads = sorted({d["threads"] for d in meta})
    print(f"exec_bench: {len(files)} runs combined, each runtime's lowest p50 per row; "
          f"threads {', '.join(map(str, threads))}")
    for fn, d in zip(files, meta):
        ls, le = d["loadavg_start"], d["loadavg_end"]
        print(f"  {fn}: rounds {d['rounds']}, {d['duration_s']:g} s, load average {ls[0]:.2f} at start, "
              f"{le[0]:.2f} at end, peak {d['peak_gflops'] or 0:.1f} GFLOP/s")
    print()
    for c in rows.values():
        if "pare_p50_ms" not in c and "na" not in c:
            c["error"] = "no run measured it"
    print_table([rows[k] for k in order], peak)
    return 0


def print_row_progress(row):
    if "error" in row:
        print(f"  {row['model']} b{row['batch']}: FAILED: {row['error']}", file=sys.stderr)
    else:
        print(f"  {row['model']} b{row['batch']}: pare {row['pare_p50_ms']:.3f} ms "
              f"({row['pare_iterations']} runs), ort {row['ort_p50_ms']:.3f} ms ({row['ort_iterations']} runs)",
              file=sys.stderr)


def print_table(rows, peak):
    hdr = ["model", "batch", "pare p50 ms", "ort p50 ms", "pare/ort", "GFLOP", "pare GFLOP/s",
           "ort GFLOP/s", "pare % peak", "max rel err"]
    per_run = any("run_ratios" in r for r in rows)
    if per_run:
        hdr.insert(5, "pare/ort per run")
    lines = []
    for r in rows:
        if "na" in r or "error" in r:
            why = f"n/a: {r['na']}" if "na" in r else f"FAILED: {r['error'].splitlines()[0]}"
            lines.append([r["model"], str(r["batch"]), why])
            continue
        f = r["flops"]
        mark = "+" if r["nodes_not_estimated"] else ""
        pg = f / (r["pare_p50_ms"] * 1e-3) / 1e9
        og = f / (r["ort_p50_ms"] * 1e-3) / 1e9
        r["pare_gflops"], r["ort_gflops"] = pg, og
        r["ratio"] = r["pare_p50_ms"] / r["ort_p50_ms"]
        ln = [r["model"], str(r["batch"]), f"{r['pare_p50_ms']:.3f}", f"{r['ort_p50_ms']:.3f}",
              f"{r['ratio']:.2f}", f"{f / 1e9:.3f}{mark}", f"{pg:.1f}", f"{og:.1f}",
              f"{100 * pg / peak:.0f} %" if peak else "-", f"{r['rel_err']:.1e}"]
        if per_run:
            ln.insert(5, " / ".join(f"{x:.2f}" for x in r.get("run_ratios", [])))
        lines.append(ln)
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for ln in lines:
        if len(ln) == 3:
            print(f"| {ln[0]} | {ln[1]} | {ln[2]} |" + " |" * (len(hdr) - 3))
        else:
            print("| " + " | ".join(ln) + " |")
    if peak:
        print(f"\npeak {peak:.1f} GFLOP/s (numpy float32 matmul, same threads); target pare/ort <= 1.5")
    if any(r.get("nodes_not_estimated") for r in rows):
        print("+: pare-inspect left some nodes out of the FLOPs")
    notes = sorted({r["note"] for r in rows if r.get("note")})
    for n in notes:
        print(f"prepared: {n}")


if __name__ == "__main__":
    sys.exit(main())
