#!/usr/bin/env python3
"""Weight-only int4/int8 and float16/bfloat16 models written by pare against
onnx.checker and onnxruntime.

usage: wq_ort.py --writer WQ_WRITE --pare-run PARE_RUN --testdata DIR --quantdata DIR

For each (model, data, mode): wq-write MODE writes the model; it must pass
onnx.checker.check_model(full_check=True) and load and run in onnxruntime
(CPU); its outputs from onnxruntime and from pare-run (--save-outputs) must
agree within the mode's tolerance on max |a - b| / max |b| (onnxruntime with
session.qdq_matmulnbits_accuracy_level 0; its default, 4, fuses DequantizeLinear
+ MatMul into an int8-activation MatMulNBits, checked within 3e-2):
  int4/int8 (QDQ or MatMulNBits): 1e-3  (same integers and scales, float
                                        summation order differs)
  float16: 2e-2, bfloat16: 5e-2         (narrow intermediate rounding differs)
  bfloat16 weights, float32 compute (bf16w, pare-quantize --mode bf16's
  default): 1e-3                        (same weights, float32 everywhere)
and the quantized model must stay near the float model (relative L2 below
0.2 for 4 bits, 0.02 for 8 bits, float16 and bf16w, 0.05 for bfloat16).
bfloat16 compute (bf16, pare-quantize --bf16-compute, meant for GPU
runtimes): onnxruntime's CPU provider has no bfloat16 kernel for most ops
(of the ops tried it runs Cast, Identity, Sign, Flatten, Dropout, Transpose,
Clip, Shape, Concat and LayerNormalization in bfloat16; not MatMul, Gemm,
Conv, Add, Mul, Relu, Softmax, Reduce*, ...), so a NOT_IMPLEMENTED failure
there is reported (and allowed); the checker and pare-run must still pass.
bf16w must run. The last line is `N passed, N failed`.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

INT_TOL, F16_TOL, BF16_TOL, DEFAULT_TOL = 1e-3, 2e-2, 5e-2, 3e-2


def cases(td, qd):
    tb = (os.path.join(td, "transformer_block.onnx"), os.path.join(td, "transformer_data.npz"))
    t2 = (os.path.join(td, "transformer_tiny2.onnx"), os.path.join(td, "transformer_data.npz"))
    cnn = (os.path.join(td, "cnn_digits.onnx"), os.path.join(td, "digits_val.npz"))
    mixed = (os.path.join(qd, "wq_mixed.onnx"), None)
    small = (os.path.join(qd, "fq_small.onnx"), None)
    out = []
    for mode in ["qdq4", "qdq4s", "qdq8", "nbits4", "nbits4s", "nbits8", "gptq4", "gptq-nbits4",
                 "fp16", "bf16", "bf16w"]:
        out.append((tb, mode))
    for mode in ["qdq4", "nbits4"]:
        out.append((t2, mode))
    for mode in ["qdq4", "nbits4", "nbits8", "fp16", "bf16", "bf16w"]:
        out.append((cnn, mode))
    for mode in ["emb4", "nbits4", "fp16", "bf16w"]:
        out.append((mixed, mode))
    for mode in ["fp16", "bf16"]:
        out.append((small, mode))
    return out


def inputs_for(model_path, data, tmp):
    """Arrays for every model input (data file, else made here), limited to 64 samples."""
    if data:
        with np.load(data) as z:
            arrs = {k: z[k][:64] for k in z.files}
    else:
        rng = np.random.default_rng(0)
        m = onnx.load(model_path)
        arrs = {}
        for i in m.graph.input:
            dims = [d.dim_value for d in i.type.tensor_type.shape.dim]
            if i.type.tensor_type.elem_type == onnx.TensorProto.INT64:
                arrs[i.name] = np.array([0, 7, 3][: dims[0]], dtype=np.int64)
            else:
                arrs[i.name] = rng.normal(0, 1, dims).astype(np.float32)
    path = os.path.join(tmp, "in.npz")
    np.savez(path, **arrs)
    return arrs, path


def rel_max(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-6))


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), 1e-12))


def ort_run(path, arrs, accuracy_level=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    if accuracy_level is not None:
        so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", accuracy_level)
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    outs = s.run(None, {k: arrs[k] for k in names})
    return {o.name: v for o, v in zip(s.get_outputs(), outs)}


def one(args, model, data, mode, tmp):
    name = f"{os.path.basename(model)} {mode}"
    arrs, in_npz = inputs_for(model, data, tmp)
    out = os.path.join(tmp, "q.onnx")
    cmd = [args.writer, mode, model, out]
    if mode.startswith("gptq"):
        cmd.append(data)
    subprocess.run(cmd, check=True)
    onnx.checker.check_model(out, full_check=True)
    n = len(next(iter(arrs.values())))
    pare_npz = os.path.join(tmp, "pare.npz")
    subprocess.run([args.pare_run, out, "--inputs", in_npz, "--save-outputs", pare_npz, "-n",
                    "1", "--batch", str(n), "-t", "2", "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    with np.load(pare_npz) as z:
        pare = {k: z[k] for k in z.files}
    ref = ort_run(model, arrs)
    try:
        # onnxruntime fuses blocked DequantizeLinear + MatMul into MatMulNBits
        # with accuracy level 4 (int8 activations) by default; level 0 keeps
        # float32 activations, the model's own meaning
        got = ort_run(out, arrs, "0")
        dflt = ort_run(out, arrs) if mode.startswith(("qdq", "gptq4", "emb")) else got
    except Exception as e:  # noqa: BLE001 - reported below
        if mode == "bf16" and "NOT_IMPLEMENTED" in str(e):
            print(f"ok   {name}: onnxruntime CPU has no bfloat16 kernel here "
                  f"({str(e).splitlines()[0][:120]}); checker and pare-run passed")
            return True
        raise
    tol = BF16_TOL if mode == "bf16" else F16_TOL if mode == "fp16" else INT_TOL
    if mode == "bf16w":
        tol = INT_TOL
    near = 0.2 if "4" in mode else 0.05 if mode == "bf16" else 0.02
    ok = True
    for k, v in got.items():
        if v.dtype.kind != "f":
            continue
        d = rel_max(pare[k], v)
        # r is the mean of 16 outputs that mostly cancel: its relative error
        # against the float model says nothing about the quantization
        e = 0.0 if (os.path.basename(model), k) == ("wq_mixed.onnx", "r") else rel_l2(v, ref[k])
        dd = rel_max(pare[k], dflt[k])
        good = d <= tol and e <= near and dd <= DEFAULT_TOL
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} {name} '{k}': pare vs ort {d:.2e} (tol {tol:g}; "
              f"default ort session {dd:.2e}, tol {DEFAULT_TOL:g}), vs float rel L2 {e:.4f} "
              f"(max {near:g})")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    ap.add_argument("--pare-run", required=True)
    ap.add_argument("--testdata", required=True)
    ap.add_argument("--quantdata", required=True)
    args = ap.parse_args()
    passed = failed = 0
    for (model, data), mode in cases(args.testdata, args.quantdata):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                good = one(args, model, data, mode, tmp)
            except Exception as e:  # noqa: BLE001 - every case reports
                print(f"FAIL {os.path.basename(model)} {mode}: {e}")
                good = False
        passed += good
        failed += not good
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
