#!/usr/bin/env python3
"""pare-distill-export against onnxruntime and numpy (issue 6, section 5).

- soft targets equal onnxruntime's teacher outputs, softmax at T in numpy
  (float64): within 1e-5 as float32 and 1e-3 as float16; logits likewise;
- top-k indices identical to numpy.argsort(-p, axis=-1, kind='stable')[..., :K],
  values to the gathered probabilities, tail to the rest of the mass;
- features equal onnxruntime's intermediate tensor;
- sample ids, metadata (teacher SHA-256, options) as documented;
- students (dropped blocks + refit, low rank) pass onnx.checker's full
  check and run in onnxruntime with the teacher's output shape.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("FAIL: %s\n%s" % (" ".join(cmd), r.stderr))
    return r


def softmax(x, t):
    z = x.astype(np.float64) / t
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def ort_outputs(model, feeds, extra=()):
    m = onnx.load(model)
    for name in extra:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, feeds)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--testdata", required=True)
    a = ap.parse_args()
    td = a.testdata
    fails = []
    checks = 0

    def expect(cond, what):
        nonlocal checks
        checks += 1
        if not cond:
            fails.append(what)
            print("FAIL:", what)

    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("cnn_digits.onnx", "digits_val.npz", "input", "logits", []),
            ("transformer_tiny2.onnx", "transformer_data.npz", "x", "logits", ["layer0/out"]),
        ]
        for model, data, inp, out, feats in cases:
            mpath = os.path.join(td, model)
            dpath = os.path.join(td, data)
            x = np.load(dpath)[inp]
            ref = ort_outputs(mpath, {inp: x}, feats)
            logits = ref[out]
            sha = hashlib.sha256(open(mpath, "rb").read()).hexdigest()
            for dtype, tol in (("float32", 1e-5), ("float16", 1e-3)):
                # full probabilities at T = 2, and features
                o = os.path.join(tmp, "full.npz")
                cmd = [a.tool, mpath, "--data", dpath, "-o", o, "--temperature", "2",
                       "--dtype", dtype, "--batch", "13"]
                for f in feats:
                    cmd += ["--features", f]
                run(cmd)
                z = np.load(o)
                p = softmax(logits, 2.0)
                expect(z[out].dtype == np.dtype(dtype), "%s %s dtype" % (model, dtype))
                err = np.abs(z[out].astype(np.float64) - p).max()
                expect(err <= tol, "%s %s probabilities off by %g" % (model, dtype, err))
                expect((z["sample_id"] == np.arange(len(x))).all(), "%s sample ids" % model)
                for f in feats:
                    e = np.abs(z[f].astype(np.float64) - ref[f]).max()
                    expect(e <= tol * max(1.0, np.abs(ref[f]).max()),
                           "%s feature %s off by %g" % (model, f, e))
                meta = json.loads(bytes(z["__meta__"]))
                expect(meta["teacher_sha256"] == sha, "%s metadata hash" % model)
                expect(meta["temperature"] == 2 and meta["dtype"] == dtype and
                       meta["samples"] == len(x) and meta["outputs"] == [out] and
                       meta["values"] == "probabilities", "%s metadata %r" % (model, meta))
                # top-k probabilities
                k = 3
                run([a.tool, mpath, "--data", dpath, "-o", o, "--temperature", "1.5",
                     "--top-k", str(k), "--dtype", dtype, "--compress"])
                z = np.load(o)
                p = softmax(logits, 1.5)
                idx = np.argsort(-p, axis=-1, kind="stable")[..., :k]
                expect(z[out + ".indices"].dtype == np.int64, "indices dtype")
                expect((z[out + ".indices"] == idx).all(),
                       "%s top-k indices differ from numpy argsort" % model)
                top = np.take_along_axis(p, idx, axis=-1)
                e = np.abs(z[out + ".values"].astype(np.float64) - top).max()
                expect(e <= tol, "%s %s top-k values off by %g" % (model, dtype, e))
                e = np.abs(z[out + ".tail"].astype(np.float64) - (1 - top.sum(-1))).max()
                expect(e <= tol, "%s %s tail off by %g" % (model, dtype, e))
                expect(z[out + ".tail"].shape == logits.shape[:-1], "tail shape")
            # logits, top-k, with the logsumexp tail
            o = os.path.join(tmp, "lg.npz")
            run([a.tool, mpath, "--data", dpath, "-o", o, "--top-k", "4"])
            z = np.load(o)
            lg = logits.astype(np.float64)
            idx = np.argsort(-lg, axis=-1, kind="stable")[..., :4]
            expect((z[out + ".indices"] == idx).all(), "%s logit top-k indices" % model)
            e = np.abs(z[out + ".values"] - np.take_along_axis(lg, idx, -1)).max()
            expect(e <= 1e-4, "%s logit values off by %g" % (model, e))
            mask = np.ones_like(lg, dtype=bool)
            np.put_along_axis(mask, idx, False, axis=-1)
            rest = np.where(mask, lg, -np.inf)
            mx = rest.max(-1, keepdims=True)
            lse = (mx + np.log(np.exp(rest - mx).sum(-1, keepdims=True)))[..., 0]
            e = np.abs(z[out + ".tail"] - lse).max()
            expect(e <= 1e-4, "%s logsumexp tail off by %g" % (model, e))

        # students: valid ONNX, run in onnxruntime
        tf = os.path.join(td, "transformer_tiny2.onnx")
        tdata = os.path.join(td, "transformer_data.npz")
        x = np.load(tdata)["x"]
        for name, opts in (("drop", ["--drop-layers", "every-2nd", "--refit", tdata]),
                           ("lowrank", ["--low-rank", "16"]),
                           ("energy", ["--low-rank", "energy=0.8"])):
            o = os.path.join(tmp, name + ".onnx")
            run([a.tool, "--student", tf, "-o", o] + opts)
            m = onnx.load(o)
            try:
                onnx.checker.check_model(m, full_check=True)
                ok = True
            except Exception as e:  # noqa: BLE001
                ok = False
                print(e)
            expect(ok, "student %s fails onnx.checker full check" % name)
            y = ort.InferenceSession(o, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
            expect(y.shape == (64, 16, 32), "student %s output shape %r" % (name, y.shape))
            expect(np.isfinite(y).all(), "student %s output not finite" % name)
        # the refitted student agrees better with the teacher than the plain drop
        o0 = os.path.join(tmp, "drop0.onnx")
        run([a.tool, "--student", tf, "-o", o0, "--drop-layers", "every-2nd"])
        t = ort_outputs(tf, {"x": x})["logits"].argmax(-1)
        s0 = ort.InferenceSession(o0).run(None, {"x": x})[0].argmax(-1)
        s1 = ort.InferenceSession(os.path.join(tmp, "drop.onnx")).run(None, {"x": x})[0].argmax(-1)
        expect((s1 == t).mean() > (s0 == t).mean(),
               "refit did not raise top-1 agreement in onnxruntime: %g -> %g"
               % ((s0 == t).mean(), (s1 == t).mean()))
        # the light zoo's ResNet-50: Sum joins, stages of different widths joined by
        # projection blocks: the runs of identity blocks are found and half dropped
        light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                             "light_resnet50.onnx")
        if os.path.exists(light):
            o = os.path.join(tmp, "r50.onnx")
            r = run([a.tool, "--student", light, "-o", o, "--drop-layers", "every-2nd", "--json"])
            rep = json.loads(r.stdout)
            expect(len(rep["blocks"]) == 12, "resnet50: %d blocks found" % len(rep["blocks"]))
            expect(sum(b["dropped"] for b in rep["blocks"]) == 6, "resnet50: 6 dropped")
            m = onnx.load(o)
            onnx.checker.check_model(m, full_check=True)
            expect(len(m.graph.node) < len(onnx.load(light).graph.node) - 50,
                   "resnet50: nodes not removed")
            xi = m.graph.input[0].name
            y = ort.InferenceSession(o, providers=["CPUExecutionProvider"]).run(
                None, {xi: np.random.RandomState(0).rand(1, 3, 224, 224).astype(np.float32)})[0]
            expect(y.shape == (1, 1000), "resnet50 student output %r" % (y.shape,))
        cnn = os.path.join(td, "cnn_digits.onnx")
        o = os.path.join(tmp, "w.onnx")
        run([a.tool, "--student", cnn, "-o", o, "--width", "0.5", "--refit",
             os.path.join(td, "digits_train.npz")])
        onnx.checker.check_model(onnx.load(o), full_check=True)
        checks += 1

    if fails:
        print("%d of %d checks failed" % (len(fails), checks))
        return 1
    print("ok: %d checks" % checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
