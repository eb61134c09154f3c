#!/usr/bin/env python3
"""Models that pare writes pass onnx.checker and run in onnxruntime.

usage: written_models.py --tool PATH_TO_pare-roundtrip [--testdata DIR]

For every testdata model (.onnx and .onnx.gz, testdata/bad left out) the
library loads it and saves it (tests/pare-roundtrip) four ways:

    plain     pare-roundtrip IN out/model.onnx
    external  pare-roundtrip IN out/model.onnx --external-threshold 1024
    gzip      pare-roundtrip IN out/model.onnx.gz --gzip
    gzip+ext  pare-roundtrip IN out/model.onnx.gz --gzip --external-threshold 1024

Then, for each written model:

- scripts/check_models.py (onnx.checker, full check) passes on it. A .onnx.gz
  is first gunzipped beside itself (check_models.py and onnxruntime read a
  gzip model in memory, where external data beside it would not be found);
- an external variant of a model with an initializer of more than 1024
  bytes (plus protobuf framing) stores at least one tensor outside the file;
- onnxruntime (CPU) loads it, unless it refuses the source model too
  (lossless.onnx has a custom op on purpose): then that step is skipped;
- where the model comes with data, onnxruntime's outputs on the written model
  equal its outputs on the source model (scripts/compare_npz.py --tol 0,
  both sessions single-threaded).

The last line printed is `N passed, N failed` (a case is one written model);
the exit status is 1 if any case failed, 2 on bad usage.
"""

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(ROOT, "scripts")

# testdata model -> data files (.npz whose arrays are named after its inputs)
DATA = {
    "cnn_digits.onnx": ["digits_val.npz"],
    "cnn_digits.onnx.gz": ["digits_val.npz"],
    "transformer_block.onnx": ["transformer_data.npz"],
    "transformer_tiny2.onnx": ["transformer_data.npz"],
    "control_flow.onnx": ["control_flow_data.npz", "control_flow_data_else.npz"],
    "mlp_external/model.onnx": ["mlp_external_data.npz"],
}

VARIANTS = [
    ("plain", "model.onnx", []),
    ("external", "model.onnx", ["--external-threshold", "1024"]),
    ("gzip", "model.onnx.gz", ["--gzip"]),
    ("gzip+ext", "model.onnx.gz", ["--gzip", "--external-threshold", "1024"]),
]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def testdata_models(td):
    out = []
    for root, dirs, files in os.walk(td):
        dirs[:] = sorted(d for d in dirs if not (root == td and d == "bad"))
        for f in sorted(files):
            if f.endswith(".onnx") or f.endswith(".onnx.gz"):
                out.append(os.path.relpath(os.path.join(root, f), td))
    return sorted(out)


def plain_path(p):
    """A .onnx path for p: p itself, or a gunzipped copy beside a .onnx.gz."""
    if not p.endswith(".gz"):
        return p
    q = p[:-len(".gz")] + ".gunzipped.onnx"
    with gzip.open(p, "rb") as f, open(q, "wb") as g:
        shutil.copyfileobj(f, g)
    return q


def external_tensors(path):
    """(tensors stored outside the file, largest initializer in bytes) of a .onnx."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    ext, big = 0, 0
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            ext += 1
            big = max(big, int(next((e.value for e in t.external_data if e.key == "length"), 0)))
        else:
            big = max(big, t.ByteSize())
    return ext, big


def ort_loads(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    try:
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return None
    except Exception as ex:  # noqa: BLE001
        return str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__


def ort_outputs(model, data, out):
    return run([sys.executable, os.path.join(SCRIPTS, "ort_run.py"), model, "--inputs", data,
                "--out", out, "--threads", "1"])


def main():
    ap = argparse.ArgumentParser(description="models written by pare pass onnx.checker and run in onnxruntime")
    ap.add_argument("--tool", required=True, metavar="PATH", help="tests/pare-roundtrip")
    ap.add_argument("--testdata", default=os.path.join(ROOT, "testdata"), metavar="DIR")
    a = ap.parse_args()
    if not os.path.isdir(a.testdata):
        ap.error(f"{a.testdata}: not a directory")

    passed = failed = 0
    models = testdata_models(a.testdata)
    if not models:
        print(f"written_models: no models under {a.testdata}")
    with tempfile.TemporaryDirectory(prefix="pare-written.") as tmp:
        for n, rel in enumerate(models):
            src = os.path.join(a.testdata, rel)
            src_plain = plain_path_copy(src, os.path.join(tmp, f"src{n}"))
            src_refused = ort_loads(src_plain)
            _, src_big = external_tensors(src_plain)
            ref_outs = {}
            for d in DATA.get(rel, []):
                ref = os.path.join(tmp, f"src{n}_{d}")
                rc, out = ort_outputs(src_plain, os.path.join(a.testdata, d), ref)
                if rc == 0:
                    ref_outs[d] = ref
                else:
                    print(f"note {rel}: onnxruntime cannot run the source on {d}: {out.strip()}")
            written = []
            for vname, fname, opts in VARIANTS:
                case = f"{rel} [{vname}]"
                outdir = os.path.join(tmp, str(n), vname.replace("+", "_"))
                os.makedirs(outdir)
                dst = os.path.join(outdir, fname)
                cmd = [a.tool, src, dst] + opts
                rc, out = run(cmd)
                if rc != 0:
                    print(f"FAIL {case}: pare-roundtrip exit {rc}:\n  $ {' '.join(cmd)}\n{out.rstrip()}")
                    failed += 1
                    continue
                extra = sorted(f for f in os.listdir(outdir) if f != fname)
                written.append((case, plain_path(dst), extra))
            if not written:
                continue
            # onnx.checker on every written model in one call
            rc, out = run([sys.executable, os.path.join(SCRIPTS, "check_models.py")] +
                          [p for _, p, _ in written])
            bad_check = {}
            for line in out.splitlines():
                if line.startswith("FAIL "):
                    path, _, why = line[5:].partition(": ")
                    bad_check[path] = why
            if rc != 0 and not bad_check:
                bad_check = {p: out.strip() for _, p, _ in written}
            for case, p, extra in written:
                problems = []
                if p in bad_check:
                    problems.append(f"onnx.checker: {bad_check[p]}")
                if "ext]" in case or "[external]" in case:
                    # a tensor of more than 1024 bytes must have gone to a file
                    ext, _ = external_tensors(p)
                    if src_big > 1024 + 64 and ext == 0:
                        problems.append(f"--external-threshold 1024 kept every tensor inline "
                                        f"(largest initializer {src_big} bytes)")
                notes = []
                if src_refused:
                    notes.append("onnxruntime refuses the source too: not run")
                else:
                    why = ort_loads(p)
                    if why:
                        problems.append(f"onnxruntime cannot load it: {why}")
                    else:
                        for d, ref in ref_outs.items():
                            got = os.path.join(os.path.dirname(p), f"ort_{d}")
                            rc, out = ort_outputs(p, os.path.join(a.testdata, d), got)
                            if rc != 0:
                                problems.append(f"onnxruntime fails on {d}: {out.strip()}")
                                continue
                            rc, out = run([sys.executable, os.path.join(SCRIPTS, "compare_npz.py"),
                                           "-q", "--tol", "0", "--tol-half", "0", got, ref])
                            if rc != 0:
                                problems.append(f"outputs on {d} differ from the source's:\n" +
                                                "\n".join("    " + s for s in out.strip().splitlines()))
                            else:
                                notes.append(f"same outputs on {d}")
                if extra:
                    notes.append("files beside it: " + ", ".join(extra))
                if problems:
                    failed += 1
                    print(f"FAIL {case}: " + "; ".join(problems))
                else:
                    passed += 1
                    print(f"ok   {case}" + (f" ({'; '.join(notes)})" if notes else ""))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


def plain_path_copy(src, workdir):
    """The source as a .onnx path onnxruntime can load: itself, or gunzipped
    into workdir (a gzip source has no external data in testdata)."""
    if not src.endswith(".gz"):
        return src
    os.makedirs(workdir, exist_ok=True)
    q = os.path.join(workdir, os.path.basename(src)[:-3])
    with gzip.open(src, "rb") as f, open(q, "wb") as g:
        shutil.copyfileobj(f, g)
    return q


if __name__ == "__main__":
    sys.exit(main())
