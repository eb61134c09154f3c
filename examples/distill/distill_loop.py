#!/usr/bin/env python3
"""The offline distillation loop with pare-distill-export (see README.md).

Steps 1, 2 and 5 need only the built tools and numpy; steps 3 and 4
(training in PyTorch) run when torch and onnx2torch are importable and are
skipped with a message otherwise. Exit status 0 when every step that ran
worked.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def sh(cmd):
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.exit("distill_loop: step failed:\n" + r.stderr)
    return r.stdout


def topk_kl(student_logits, values, indices, tail, t):
    """KL over the K stored classes plus the tail bucket (torch tensors)."""
    import torch
    q = torch.softmax(student_logits / t, dim=-1)
    qk = torch.gather(q, -1, indices)
    qt = (1 - qk.sum(-1)).clamp_min(1e-12)
    p = values.clamp_min(1e-12)
    pt = tail.clamp_min(1e-12)
    kl = (p * (p.log() - qk.clamp_min(1e-12).log())).sum(-1) + pt * (pt.log() - qt.log())
    return kl.mean() * t * t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--steps", type=int, default=50)
    a = ap.parse_args()
    tool = os.path.join(a.build, "tools", "pare-distill-export")
    run = os.path.join(a.build, "tools", "pare-run")
    teacher = os.path.join(ROOT, "testdata", "transformer_tiny2.onnx")
    data = os.path.join(ROOT, "testdata", "transformer_data.npz")
    T, K = 2.0, 8
    with tempfile.TemporaryDirectory() as tmp:
        targets = os.path.join(tmp, "targets.npz")
        student = os.path.join(tmp, "student.onnx")
        # 1. soft targets
        sh([tool, teacher, "--data", data, "--temperature", str(T), "--top-k", str(K),
            "-o", targets])
        z = np.load(targets)
        meta = json.loads(bytes(z["__meta__"]))
        print("targets:", {k: z[k].shape for k in z.files}, "T =", meta["temperature"])
        # 2. student
        sh([tool, "--student", "--drop-layers", "every-2nd", "--refit", data, "--data", data,
            teacher, "-o", student])
        final = student
        # 3-4. training, when torch is there
        try:
            import torch
            import onnx2torch
        except ImportError:
            print("distill_loop: torch or onnx2torch is not installed: skipping training "
                  "(steps 3 and 4); see README.md")
        else:
            net = onnx2torch.convert(student)
            x = torch.from_numpy(np.load(data)["x"])
            ids = torch.from_numpy(z["sample_id"])
            vals = torch.from_numpy(z["logits.values"].astype(np.float32))
            idx = torch.from_numpy(z["logits.indices"])
            tail = torch.from_numpy(z["logits.tail"].astype(np.float32))
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            for step in range(a.steps):
                b = torch.randint(0, len(ids), (16,))
                loss = topk_kl(net(x[ids[b]]), vals[b], idx[b], tail[b], T)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step % 10 == 0:
                    print("step %d loss %.5f" % (step, loss.item()))
            final = os.path.join(tmp, "student_trained.onnx")
            torch.onnx.export(net, x[:1], final, input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, opset_version=17)
        # 5. verify against the teacher
        sh([run, "--reference", teacher, "--inputs", data, final])
    return 0


if __name__ == "__main__":
    sys.exit(main())
