"""Cleanup passes against onnx and onnxruntime.

Runs opt_models (all passes; it checks pare's own outputs before and after)
with --save on testdata's models and, when PARE_LIGHT_MODELS is set, on the
light model zoo; then every saved model must pass onnx.checker's full check
and give in onnxruntime the outputs onnxruntime gives for the original
(rtol 1e-4, atol 1e-5: BatchNormalization folding rounds differently), with
no more nodes than the original.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

NP_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(float16)": np.float16,
}


def feeds(sess, data):
    out = {}
    z = np.load(data) if data else {}
    rng = np.random.default_rng(7)
    for i in sess.get_inputs():
        if i.name in z:
            out[i.name] = z[i.name]
            continue
        shape = [d if isinstance(d, int) and d >= 0 else 1 for d in i.shape]
        out[i.name] = rng.uniform(-1, 1, size=shape).astype(NP_TYPES[i.type])
    return out


def count_nodes(g):
    n = len(g.node)
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                n += count_nodes(a.g)
            for sg in a.graphs:
                n += count_nodes(sg)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--testdata", required=True)
    args = ap.parse_args()
    td = args.testdata
    models = [  # (path, data, name of the saved copy)
        (f"{td}/cnn_digits.onnx", f"{td}/digits_val.npz", "cnn_digits.onnx"),
        (f"{td}/transformer_block.onnx", f"{td}/transformer_data.npz", "transformer_block.onnx"),
        (f"{td}/transformer_tiny2.onnx", f"{td}/transformer_data.npz", "transformer_tiny2.onnx"),
        (f"{td}/control_flow.onnx", f"{td}/control_flow_data.npz", "control_flow.onnx"),
        (f"{td}/mlp_external/model.onnx", f"{td}/mlp_external_data.npz", "mlp_external.onnx"),
    ]
    light = os.environ.get("PARE_LIGHT_MODELS")
    if light and os.path.isdir(light):
        for f in sorted(os.listdir(light)):
            if f.endswith(".onnx"):
                models.append((f"{light}/{f}", None, f))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [args.tool, "--save", tmp] + [p + (":" + d if d else "") for p, d, _ in models]
        r = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            print("FAIL opt_models:", r.stderr)
            return 1
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        for path, data, name in models:
            out = os.path.join(tmp, name)
            try:
                onnx.checker.check_model(out, full_check=True)
                before = onnx.load(path)
                after = onnx.load(out)
                nb, na = count_nodes(before.graph), count_nodes(after.graph)
                if na > nb:
                    raise AssertionError(f"node count went up: {nb} -> {na}")
                s0 = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                s1 = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"])
                f = feeds(s0, data)
                want = s0.run(None, f)
                got = s1.run(None, {k: v for k, v in f.items()
                                    if k in {i.name for i in s1.get_inputs()}})
                names = [o.name for o in s0.get_outputs()]
                if names != [o.name for o in s1.get_outputs()]:
                    raise AssertionError(f"outputs {names} became "
                                         f"{[o.name for o in s1.get_outputs()]}")
                for n, a, b in zip(names, got, want):
                    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=n)
                print(f"ok   {name}: checker full check, onnxruntime outputs equal, "
                      f"nodes {nb} -> {na}")
            except Exception as e:  # report every model, then fail
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {str(e)[:800]}")
    print(f"{len(models)} models, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
