#!/usr/bin/env python3
"""GPU benchmark: pare-run on CUDA beside PyTorch (onnx2torch) and the roofline.

usage: bench/cuda_bench.py [--build DIR] [--models LIST] [--batches LIST] [--precisions LIST]
                           [--duration S] [--warmup N] [--tf32] [--budget S] [--json FILE]
                           [--conv-algo search|heuristic] [--profile]
       bench/cuda_bench.py --dry [--build DIR]

Models: light_resnet50 (the onnx package's backend/test/data/light, prepared
as bench/exec_bench.py does: ConstantOfShape weights folded into
initializers, the batch dim made symbolic 'N' and the Reshape before the
classifier made [-1, k]) and testdata/transformer_block.onnx (x of
[B,128,64]), at batch 1 and 32, each in three precisions:
  fp32  the model
  fp16  pare-quantize --mode fp16 (inputs and outputs stay float32)
  int8  pare-quantize --mode static (QDQ), calibrated on 16 random samples
        (testdata/transformer_data.npz for the transformer)

Per row: pare-run --device cuda --json on the same random inputs (uniform
in [-1, 1), numpy default_rng(--seed)) for --duration seconds after
--warmup runs: its end-to-end p50 (host inputs to host outputs), GPU compute
p50 (device time of the kernels, CUDA events) and throughput. PyTorch runs
the same ONNX file converted by onnx2torch on the same GPU, inputs already
on the GPU: eager, and replayed from a CUDA graph (torch.cuda.CUDAGraph),
p50 of CUDA-event times, so it compares with pare's GPU compute time. fp16
rows give PyTorch the fp16 file; where onnx2torch cannot convert it, the
fp32 file converted and cast with .half() (marked "h"). int8 rows give
PyTorch the QDQ file, n/a where onnx2torch cannot convert it.

Roofline: FLOPs from pare-inspect --json (compute.flops), bytes = the
initializers' bytes + inputs + outputs (each read or written once, a lower
bound); ceilings measured on the GPU at start: the dense bf16 matrix rate
(torch.matmul of 8192^3 bf16) and the copy bandwidth (a 2 GiB device copy,
bytes read + written). roof ms = max(FLOPs / rate, bytes / bandwidth);
"GPU/roof" = pare's GPU compute p50 / roof ms (1.0 would be at the roof).
The bf16 rate is the ceiling for every precision: it overstates what fp32
(without --tf32) can reach.

--dry, for a machine without a GPU (CI): finds pare-run, pare-quantize and
pare-inspect, prepares every model variant with pare's tools, runs pare-run on
the CPU for 1 iteration of each (batches 1 and 2), and says whether torch,
onnx2torch and a CUDA device are available. Ends with "N passed, N failed".

--budget S: rows that would start after S seconds are left out (gpu-check).
Exit status 0 done, 1 when a pare step failed, 2 on bad usage.
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
sys.path.insert(0, HERE)
import exec_bench  # noqa: E402  (model preparation shared with the CPU bench)

ALL_MODELS = ["light_resnet50", "transformer_block"]
PRECISIONS = ["fp32", "fp16", "int8"]


def p50(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.5 * len(s)) - 1)] if s else float("nan")


def run(cmd, timeout=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {p.stderr.strip()[-500:]}\n  $ {' '.join(cmd)}")
    return p.stdout


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------

class Variant:
    def __init__(self, model, prec, path, input_name, sample_shape, note=None):
        self.model, self.prec, self.path = model, prec, path
        self.input_name, self.sample_shape = input_name, sample_shape  # shape without batch
        self.note = note


def prepare_fp32(a, name, work):
    """One file per model with a symbolic batch (any --batches)."""
    args = argparse.Namespace(as_is=False, reshape_batch=True)
    big = max(max(a.batch_list), 2)  # != 1: the batch dim becomes 'N'
    prep = exec_bench.prepare(name, big, work, args)
    if prep.na:
        raise RuntimeError(prep.na)
    (iname, shape), = prep.inputs.items()
    path = prep.path
    if not name.startswith("light_"):
        path = os.path.join(work, name + ".onnx")
        shutil.copy(prep.path, path)
    return Variant(name, "fp32", path, iname, list(shape[1:]), prep.note)


def calib_data(a, v, work):
    path = os.path.join(work, f"{v.model}_calib.npz")
    src = os.path.join(ROOT, "testdata", "transformer_data.npz")
    if v.model == "transformer_block" and os.path.isfile(src):
        return src
    rng = np.random.default_rng(a.seed + 1)
    n = 2 if a.dry else 16
    np.savez(path, **{v.input_name: rng.uniform(-1, 1, [n] + v.sample_shape).astype(np.float32)})
    return path


def make_variant(a, fp32, prec, work):
    if prec == "fp32":
        return fp32
    out = os.path.join(work, f"{fp32.model}_{prec}.onnx")
    if prec == "fp16":
        cmd = [a.pare_quantize, "--mode", "fp16", "-q", fp32.path, "-o", out]
    else:
        cmd = [a.pare_quantize, "--mode", "static", "-q", "--calibrate", calib_data(a, fp32, work),
               "--calib-samples", "2" if a.dry else "16", "--calib-batch", "2" if a.dry else "8",
               fp32.path, "-o", out]
    run(cmd, timeout=600)
    return Variant(fp32.model, prec, out, fp32.input_name, fp32.sample_shape)


def make_inputs(a, v, batch, work):
    rng = np.random.default_rng(a.seed)
    x = rng.uniform(-1, 1, [batch] + v.sample_shape).astype(np.float32)
    path = os.path.join(work, f"{v.model}_b{batch}_in.npz")
    np.savez(path, **{v.input_name: x})
    return path, x


def model_bytes(path, batch, inputs_bytes):
    """initializers + inputs + outputs (symbolic output dims = the batch)."""
    import onnx

    def size(dims, dtype):
        n = 1
        for d in dims:
            n *= d
        return n * onnx.helper.tensor_dtype_to_np_dtype(dtype).itemsize
    m = onnx.load(path)
    w = sum(size(t.dims, t.data_type) for t in m.graph.initializer)
    for o in m.graph.output:
        tt = o.type.tensor_type
        w += size([d.dim_value if d.HasField("dim_value") else batch for d in tt.shape.dim],
                  tt.elem_type or 1)
    return w + inputs_bytes


def flops(a, v, batch):
    out = run([a.pare_inspect, "--json", "-q", "--shape",
               f"{v.input_name}={'x'.join(str(d) for d in [batch] + v.sample_shape)}", v.path])
    return int(json.loads(out)["compute"]["flops"])


# --------------------------------------------------------------------------
# pare
# --------------------------------------------------------------------------

def run_pare(a, v, batch, npz, device, iterations=None):
    cmd = [a.pare_run, v.path, "--device", device, "--inputs", npz, "--batch", str(batch),
           "--json", "-q"]
    if iterations is not None:
        cmd += ["--warmup", "0", "--iterations", str(iterations)]
    else:
        cmd += ["--warmup", str(a.warmup), "--duration", str(a.duration)]
    if a.tf32:
        cmd.append("--tf32")
    if a.conv_algo:
        cmd += ["--conv-algo", a.conv_algo]
    if a.profile:
        cmd += ["--profile", "--profile-runs", "5"]
    return json.loads(run(cmd, timeout=600))


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------

def torch_status():
    """(torch module or None, why not)."""
    try:
        import torch
    except Exception as ex:  # noqa: BLE001
        return None, f"torch unavailable ({ex})"
    try:
        import onnx2torch  # noqa: F401
    except Exception as ex:  # noqa: BLE001
        return None, f"onnx2torch unavailable ({ex})"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__}: no CUDA device"
    return torch, None


def cuda_times(torch, fn, warmup, duration):
    for _ in range(max(warmup, 1)):
        fn()
    torch.cuda.synchronize()
    times = []
    t_end = time.time() + duration
    while time.time() < t_end or len(times) < 3:
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return p50(times), len(times)


def run_torch(a, torch, v, fp32, x):
    """{'eager_ms', 'graph_ms', 'e2e_ms', 'note'} or raises."""
    from onnx2torch import convert
    note = None
    half = False
    try:
        mod = convert(v.path)
    except Exception as ex:  # noqa: BLE001
        if v.prec != "fp16":
            raise RuntimeError(f"onnx2torch: {str(ex).splitlines()[0][:120]}")
        mod = convert(fp32.path)
        half, note = True, "h"
    mod = mod.cuda().eval()
    if half:
        mod = mod.half()
    torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
    torch.backends.cudnn.allow_tf32 = bool(a.tf32)
    xin = torch.from_numpy(x).cuda()
    if half:
        xin = xin.half()
    res = {"note": note}
    with torch.inference_mode():
        res["eager_ms"], res["eager_iterations"] = cuda_times(
            torch, lambda: mod(xin), a.warmup, a.duration)
        # end to end as pare-run measures it: host input in, host outputs back
        xh = torch.from_numpy(x)

        def e2e():
            y = mod(xh.cuda().half() if half else xh.cuda())
            ys = y if isinstance(y, (tuple, list)) else [y]
            return [t.float().cpu() for t in ys]
        t = []
        for _ in range(max(a.warmup, 1)):
            e2e()
        t_end = time.time() + a.duration
        while time.time() < t_end or len(t) < 3:
            t0 = time.perf_counter()
            e2e()
            t.append((time.perf_counter() - t0) * 1e3)
        res["e2e_ms"] = p50(t)
        # a CUDA graph of the module; onnx2torch's modules read shapes on
        # the host (a synchronisation, refused while capturing): then of its
        # torch.jit.trace, where those reads are constants of the trace
        res["graph_ms"] = None
        for how in ("trace", "module"):
            try:
                static_x = xin.clone()
                m = mod
                if how == "trace":
                    m = torch.jit.trace(mod, (static_x,), check_trace=False)
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        m(static_x)
                torch.cuda.current_stream().wait_stream(s)
                torch.cuda.synchronize()
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    m(static_x)
                res["graph_ms"], _ = cuda_times(torch, g.replay, a.warmup, a.duration)
                res["graph_of"] = how
                res.pop("graph_error", None)
                break
            except Exception as ex:  # noqa: BLE001
                res["graph_error"] = f"{how}: " + str(ex).splitlines()[0][:120]
                try:
                    torch.cuda.synchronize()
                except Exception:  # noqa: BLE001
                    pass
    return res


def ceilings(torch):
    """(bf16 matrix FLOP/s, copy bytes/s) measured on the GPU."""
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms, _ = cuda_times(torch, lambda: torch.matmul(a, b), 3, 0.5)
    rate = 2 * n ** 3 / (ms * 1e-3)
    del a, b
    src = torch.empty(2 ** 31, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    ms, _ = cuda_times(torch, lambda: dst.copy_(src), 3, 0.5)
    bw = 2 * src.numel() / (ms * 1e-3)
    del src, dst
    torch.cuda.empty_cache()
    return rate, bw


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description="pare-run on CUDA beside PyTorch and the roofline")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                    help="build with tools/pare-run, pare-quantize, pare-inspect (build/release)")
    ap.add_argument("--models", default=",".join(ALL_MODELS),
                    help="names or parts of names (" + ",".join(ALL_MODELS) + ")")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (1,32; --dry 1,2)")
    ap.add_argument("--precisions", default=",".join(PRECISIONS), help="fp32,fp16,int8")
    ap.add_argument("--warmup", type=int, default=10, help="untimed runs first (10)")
    ap.add_argument("--duration", type=float, default=1.0,
                    help="seconds of timed runs per runtime and row (1)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs (0)")
    ap.add_argument("--tf32", action="store_true", help="pare-run --tf32, and TF32 in PyTorch")
    ap.add_argument("--conv-algo", choices=("search", "heuristic"), default=None,
                    help="pare-run --conv-algo (its default: search)")
    ap.add_argument("--profile", action="store_true",
                    help="also pare-run --profile: the time per op type of each row")
    ap.add_argument("--budget", type=float, default=0, help="seconds; later rows are left out (0: none)")
    ap.add_argument("--no-torch", action="store_true", help="pare only")
    ap.add_argument("--device", default="cuda",
                    help="pare-run --device (cuda; cpu to try the table without a GPU)")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    ap.add_argument("--dry", action="store_true",
                    help="no GPU needed: prepare every variant, run each on the CPU once")
    a = ap.parse_args(argv)
    tools = os.path.join(a.build, "tools")
    a.pare_run = os.path.join(tools, "pare-run")
    a.pare_quantize = os.path.join(tools, "pare-quantize")
    a.pare_inspect = os.path.join(tools, "pare-inspect")
    try:
        a.batch_list = [int(b) for b in (a.batches or ("1,2" if a.dry else "1,32")).split(",")]
    except ValueError:
        ap.error("--batches takes a comma-separated list of numbers")
    if not a.batch_list or min(a.batch_list) < 1:
        ap.error("--batches takes numbers >= 1")
    a.prec_list = [p for p in a.precisions.split(",") if p]
    if not a.prec_list or any(p not in PRECISIONS for p in a.prec_list):
        ap.error(f"--precisions takes {','.join(PRECISIONS)}")
    wanted = [w for w in a.models.split(",") if w]
    a.model_list = [m for m in ALL_MODELS if any(w in m for w in wanted)]
    if not a.model_list:
        ap.error(f"--models {a.models}: matches none of {', '.join(ALL_MODELS)}")
    return a


def dry(a, work):
    passed = failed = 0

    def result(label, fn):
        nonlocal passed, failed
        try:
            msg = fn()
            passed += 1
            print(f"ok   {label}" + (f": {msg}" if msg else ""))
            return True
        except Exception as ex:  # noqa: BLE001
            failed += 1
            print(f"FAIL {label}: {ex}")
            return False

    for m in a.model_list:
        box = {}

        def prep32():
            box["fp32"] = prepare_fp32(a, m, work)
            return box["fp32"].note
        if not result(f"{m} fp32: prepare", prep32):
            continue
        for prec in a.prec_list:
            def variant():
                box[prec] = make_variant(a, box["fp32"], prec, work)
                return f"{os.path.getsize(box[prec].path)} bytes"
            if not result(f"{m} {prec}: pare-quantize" if prec != "fp32" else f"{m} fp32: file",
                          variant):
                continue
            for b in a.batch_list:
                def cpu_run():
                    npz, _ = make_inputs(a, box[prec], b, work)
                    r = run_pare(a, box[prec], b, npz, "cpu", iterations=1)
                    assert r["device"] == "cpu" and r["speed"]["iterations"] == 1, r
                    assert r["speed"]["gpu_compute"] is None, r
                    if a.profile:  # every node timed, the op rows add up to the total
                        pr = r["profile"]
                        assert len(pr["nodes"]) == r["nodes_cpu"], pr
                        assert abs(sum(o["ms"] for o in pr["ops"]) - pr["total_ms"]) < 1e-6 + \
                            1e-6 * pr["total_ms"], pr
                    return f"{r['speed']['p50_ms']:.1f} ms on the CPU, {r['nodes_cpu']} nodes"
                result(f"{m} {prec} batch {b}: pare-run --device cpu -n 1", cpu_run)
    torch, why = torch_status()
    print(f"torch/onnx2torch: {'available' if torch else 'unavailable: ' + why}")
    r = subprocess.run([a.pare_run, "--plan", "--device", "cuda",
                        os.path.join(ROOT, "testdata", "cnn_digits.onnx")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    print("pare-run --device cuda: " + ("usable" if r.returncode == 0 else
                                         "unavailable: " + r.stderr.strip()))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def fmt(x, f="{:.3f}"):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f.format(x)


def bench(a, work):
    t0 = time.time()
    torch, why = (None, "--no-torch") if a.no_torch else torch_status()
    rate = bw = None
    if torch is not None:
        try:
            rate, bw = ceilings(torch)
            print(f"GPU {torch.cuda.get_device_name(0)}: bf16 matmul {rate / 1e12:.0f} TFLOP/s, "
                  f"copy {bw / 1e12:.2f} TB/s (read + write)")
        except Exception as ex:  # noqa: BLE001
            print(f"ceilings not measured: {ex}")
    else:
        print(f"PyTorch: n/a ({why})")
    rows, bad = [], 0
    for m in a.model_list:
        try:
            fp32 = prepare_fp32(a, m, work)
        except Exception as ex:  # noqa: BLE001
            rows.append({"model": m, "error": f"prepare: {ex}"})
            bad += 1
            continue
        for prec in a.prec_list:
            try:
                v = make_variant(a, fp32, prec, work)
            except Exception as ex:  # noqa: BLE001
                rows.append({"model": m, "prec": prec, "error": f"pare-quantize: {ex}"})
                bad += 1
                continue
            for b in a.batch_list:
                row = {"model": m, "prec": prec, "batch": b}
                rows.append(row)
                if a.budget and time.time() - t0 > a.budget:
                    row["error"] = "left out (--budget)"
                    continue
                npz, x = make_inputs(a, v, b, work)
                try:
                    r = run_pare(a, v, b, npz, a.device)
                    s = r["speed"]
                    row.update(pare_ms=s["p50_ms"], pare_gpu_ms=(s["gpu_compute"] or {}).get("p50_ms"),
                               pare_tput=s["throughput"], h2d_ms=s["h2d_ms"], d2h_ms=s["d2h_ms"],
                               graph_replays=s["graph_replays"], iterations=s["iterations"],
                               nodes_device=r["nodes_device"], nodes_cpu=r["nodes_cpu"],
                               device_mem_peak=r["device_mem_peak_bytes"])
                    if r.get("profile"):
                        row["profile_ops"] = [(o["op"], o["nodes"], o["ms"])
                                              for o in r["profile"]["ops"][:8]]
                        print(f"  profile {m} {prec} b{b} (ms per run, nodes): " +
                              ", ".join(f"{op} {ms:.3f} ({n})" for op, n, ms in
                                        row["profile_ops"]), file=sys.stderr)
                except Exception as ex:  # noqa: BLE001
                    row["error"] = f"pare-run: {ex}"
                    bad += 1
                try:
                    row["flops"] = flops(a, v, b)
                    row["bytes"] = model_bytes(v.path, b, x.nbytes)
                    if rate and bw:
                        row["roof_ms"] = max(row["flops"] / rate, row["bytes"] / bw) * 1e3
                except Exception as ex:  # noqa: BLE001
                    row["roof_error"] = str(ex)[:200]
                if torch is not None:
                    try:
                        tr = run_torch(a, torch, v, fp32, x)
                        row.update(torch_eager_ms=tr["eager_ms"], torch_graph_ms=tr["graph_ms"],
                                   torch_e2e_ms=tr["e2e_ms"], torch_note=tr["note"])
                        if tr.get("graph_error"):
                            row["torch_graph_error"] = tr["graph_error"]
                    except Exception as ex:  # noqa: BLE001
                        row["torch_error"] = str(ex).splitlines()[0][:160]
                    torch.cuda.empty_cache()
                print(f"  {m} {prec} b{b}: " + (row.get("error") or
                      f"pare {fmt(row.get('pare_ms'))} ms (GPU {fmt(row.get('pare_gpu_ms'))}), "
                      f"torch eager {fmt(row.get('torch_eager_ms'))} graph "
                      f"{fmt(row.get('torch_graph_ms'))}"), file=sys.stderr)
    print_table(rows, torch is not None)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rate_flops": rate, "copy_bytes_per_s": bw, "tf32": a.tf32, "rows": rows},
                      f, indent=1)
    return 1 if bad else 0


def print_table(rows, have_torch):
    hdr = ["model", "prec", "batch", "pare ms", "pare GPU ms", "H2D+D2H ms", "pare samples/s",
           "nodes gpu/cpu", "torch e2e ms", "torch eager ms", "torch graph ms", "GFLOP",
           "roof ms", "GPU/roof", "pare GPU / torch graph"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for r in rows:
        head = [r["model"], r.get("prec", "-"), str(r.get("batch", "-"))]
        if "pare_ms" not in r:
            print("| " + " | ".join(head + [f"FAILED: {r.get('error', '?')}".replace("\n", " ")[:200]])
                  + " |" * (len(hdr) - 3))
            continue
        tn = r.get("torch_note") or ""
        tg = r.get("torch_graph_ms")
        gpu = r.get("pare_gpu_ms")
        roof = r.get("roof_ms")
        te = "n/a" if "torch_error" in r or not have_torch else fmt(r.get("torch_eager_ms")) + tn
        print("| " + " | ".join(head + [
            fmt(r["pare_ms"]), fmt(gpu), fmt(r["h2d_ms"] + r["d2h_ms"]), fmt(r["pare_tput"], "{:.1f}"),
            f"{r['nodes_device']}/{r['nodes_cpu']}",
            "n/a" if "torch_error" in r or not have_torch else fmt(r.get("torch_e2e_ms")) + tn,
            te, "n/a" if tg is None else fmt(tg) + tn,
            fmt(r.get("flops", 0) / 1e9) if "flops" in r else "-",
            fmt(roof, "{:.4f}"), fmt(gpu / roof if gpu and roof else None, "{:.1f}"),
            fmt(gpu / tg if gpu and tg else None, "{:.2f}")]) + " |")
    errs = [(r, r["torch_error"]) for r in rows if "torch_error" in r]
    for r, e in errs:
        print(f"torch n/a for {r['model']} {r['prec']} b{r['batch']}: {e}")
    for r in rows:
        if (r.get("iterations") and r.get("nodes_device") and "error" not in r and
                r.get("graph_replays", 0) < r["iterations"]):
            print(f"pare: {r['model']} {r['prec']} b{r['batch']}: a CUDA graph was replayed in "
                  f"{r.get('graph_replays', 0)} of {r['iterations']} timed runs")
    if any(r.get("torch_note") for r in rows):
        print("h: onnx2torch could not convert the fp16 file: the fp32 file converted, then .half()")


def main(argv=None):
    sys.stdout.reconfigure(line_buffering=True)
    a = parse_args(argv)
    missing = [p for p in (a.pare_run, a.pare_quantize, a.pare_inspect)
               if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        for p in missing:
            print(f"cuda_bench: {p}: not an executable (build first, or give --build)",
                  file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="pare-cuda-bench.")
    try:
        return dry(a, work) if a.dry else bench(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
