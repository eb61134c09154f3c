#!/usr/bin/env python3
"""Check that pare's load-then-save leaves ONNX models unchanged.

usage: roundtrip_check.py --tool PATH_TO_pare-roundtrip [--node-tests] [MODEL_OR_DIR ...]

For every .onnx and .onnx.gz file under the given paths (directories are
searched recursively; files under testdata/bad are skipped), runs
`TOOL IN OUT`, then parses IN and OUT with onnx (gzip is undone first, found
by its magic bytes; external data is not loaded) and asserts the two
ModelProto messages are equal, unknown fields included. On a mismatch it
prints the first differing field. For a model with external data, the tool
may keep the references (the data file, when written beside OUT under the
same name, must hold the same bytes) or move the data (another file name,
other offsets, inline): then both models are compared with every external
tensor read in. --strict-external asks for unchanged references.

--node-tests adds the models of the installed onnx package's backend node
tests (backend/test/data/node/*/model.onnx) and light models
(backend/test/data/light/*.onnx).

The last line printed is `N passed, N failed`; the exit status is 1 if any
case failed (or none was found), 2 on bad usage.
"""

import argparse
import concurrent.futures
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import onnx

GZIP_MAGIC = b"\x1f\x8b"

MAX_GUNZIP = 512 << 20  # refuse to inflate more than this (testdata/bad/bomb.onnx.gz is 1 GiB)


def gunzip_capped(data, limit=MAX_GUNZIP):
    """gzip.decompress with a cap on the output size."""
    import zlib
    d = zlib.decompressobj(31)
    out = d.decompress(data, limit + 1)
    if len(out) > limit:
        raise ValueError(f"more than {limit >> 20} MiB once decompressed")
    if not d.eof:
        raise EOFError("compressed data ended before the end-of-stream marker")
    return out


# --------------------------------------------------------------------------
# collecting cases
# --------------------------------------------------------------------------

def is_model_name(name):
    return name.endswith(".onnx") or name.endswith(".onnx.gz")


def under_testdata_bad(p):
    parts = os.path.abspath(p).split(os.sep)
    return any(parts[i] == "testdata" and parts[i + 1] == "bad" for i in range(len(parts) - 1))


def collect(paths):
    found, skipped = [], 0
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if not is_model_name(name):
                        continue
                    f = os.path.join(root, name)
                    if under_testdata_bad(f):
                        skipped += 1
                    else:
                        found.append(f)
        elif os.path.isfile(p):
            if under_testdata_bad(p):
                skipped += 1
            else:
                found.append(p)
        else:
            print(f"roundtrip_check: {p}: no such file or directory", file=sys.stderr)
            sys.exit(2)
    return found, skipped


def node_test_models():
    base = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    node = sorted(glob.glob(os.path.join(base, "node", "*", "model.onnx")))
    light = sorted(glob.glob(os.path.join(base, "light", "*.onnx")))
    return node, light


# --------------------------------------------------------------------------
# comparing
# --------------------------------------------------------------------------

def read_model_bytes(p):
    with open(p, "rb") as f:
        data = f.read()
    if data[:2] == GZIP_MAGIC:
        data = gunzip_capped(data)
    return data


def short(v, n=60):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "..."


def unknown_fields(msg):
    try:
        from google.protobuf import unknown_fields as uf
        return [(f.field_number, f.wire_type, f.data) for f in uf.UnknownFieldSet(msg)]
    except Exception:  # noqa: BLE001
        return None


def first_diff(a, b, where):
    """Path and description of the first field where messages a and b differ."""
    for f in a.DESCRIPTOR.fields:
        name = f"{where}.{f.name}" if where else f.name
        va, vb = getattr(a, f.name), getattr(b, f.name)
        is_msg = f.message_type is not None
        if f.is_repeated:
            for i in range(min(len(va), len(vb))):
                if va[i] != vb[i]:
                    if is_msg:
                        return first_diff(va[i], vb[i], f"{name}[{i}]")
                    return f"{name}[{i}]: {short(va[i])} != {short(vb[i])}"
            if len(va) != len(vb):
                return f"{name}: {len(va)} entries in input, {len(vb)} in output"
            continue
        ha = a.HasField(f.name) if f.has_presence else True
        hb = b.HasField(f.name) if f.has_presence else True
        if ha != hb:
            return f"{name}: {'set' if ha else 'absent'} in input, {'set' if hb else 'absent'} in output"
        if not ha:
            continue
        if is_msg:
            if va != vb or va.SerializeToString(deterministic=True) != vb.SerializeToString(deterministic=True):
                return first_diff(va, vb, name)
        elif va != vb:
            if isinstance(va, bytes) and len(va) > 40:
                return f"{name}: {len(va)} bytes in input, {len(vb)} bytes in output" + (
                    "" if len(va) != len(vb) else ", contents differ")
            return f"{name}: {short(va)} != {short(vb)}"
    ua, ub = unknown_fields(a), unknown_fields(b)
    if ua is not None and ub is not None:
        na = sorted({n for n, _, _ in ua})
        nb = sorted({n for n, _, _ in ub})
        return (f"{where or 'ModelProto'}: unknown fields differ (input has field numbers {na}, "
                f"output {nb})")
    return f"{where or 'ModelProto'}: unknown fields differ"


def external_tensors(model):
    from onnx.external_data_helper import _get_all_tensors, uses_external_data
    for t in _get_all_tensors(model):
        if uses_external_data(t):
            yield t


def ext_bytes(t, base):
    info = {e.key: e.value for e in t.external_data}
    p = os.path.join(base, info["location"])
    off = int(info.get("offset", 0) or 0)
    with open(p, "rb") as f:
        f.seek(off)
        if "length" in info:
            return f.read(int(info["length"]))
        return f.read()


def same_msg(a, b):
    return a == b and a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def resolved(data, base):
    """The model in data with each external tensor's bytes read in as raw_data."""
    m = onnx.ModelProto.FromString(data)
    for t in list(external_tensors(m)):
        raw = ext_bytes(t, base)
        t.ClearField("external_data")
        t.ClearField("data_location")
        t.raw_data = raw
    return m


def check_one(args):
    """Returns (path, ok, message, byte_identical, note)."""
    tool, src, out_dir, timeout, strict_external = args
    name = os.path.basename(src)
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, name)
    try:
        r = subprocess.run(tool + [src, dst], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return src, False, f"tool ran past {timeout} s", False, None
    except OSError as ex:
        return src, False, f"cannot run tool: {ex}", False, None
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        return src, False, f"tool exited {r.returncode}: {err[-1] if err else '(no message)'}", False, None
    if not os.path.isfile(dst):
        return src, False, "tool wrote no output file", False, None
    try:
        ia = read_model_bytes(src)
    except Exception as ex:  # noqa: BLE001
        return src, False, f"input unreadable: {ex}", False, None
    try:
        ib = read_model_bytes(dst)
    except Exception as ex:  # noqa: BLE001
        return src, False, f"output unreadable: {ex}", False, None
    try:
        ma = onnx.ModelProto.FromString(ia)
    except Exception as ex:  # noqa: BLE001
        return src, False, f"onnx cannot parse the input: {type(ex).__name__}: {ex}", False, None
    try:
        mb = onnx.ModelProto.FromString(ib)
    except Exception as ex:  # noqa: BLE001
        return src, False, f"onnx cannot parse the output: {type(ex).__name__}: {ex}", False, None
    if not same_msg(ma, mb):
        ext_in = any(True for _ in external_tensors(ma))
        ext_out = any(True for _ in external_tensors(mb))
        if strict_external or not (ext_in or ext_out):
            return src, False, "messages differ: " + first_diff(ma, mb, ""), False, None
        # The tool may have moved external data (another file name, offsets,
        # or inline): compare with every external tensor read in.
        try:
            ra = resolved(ia, os.path.dirname(os.path.abspath(src)))
            rb = resolved(ib, out_dir)
        except Exception as ex:  # noqa: BLE001
            return src, False, (f"messages differ: {first_diff(ma, mb, '')} "
                                f"(and external data cannot be read in: {ex})"), False, None
        if not same_msg(ra, rb):
            return src, False, "messages differ (external data read in): " + first_diff(ra, rb, ""), False, None
        return src, True, "", False, "external data moved, contents equal"
    note = None
    ext = list(external_tensors(ma))
    if ext:
        base_a = os.path.dirname(os.path.abspath(src))
        written = 0
        for t in ext:
            loc = {e.key: e.value for e in t.external_data}.get("location", "")
            if not os.path.isfile(os.path.join(out_dir, loc)):
                continue
            written += 1
            try:
                if ext_bytes(t, base_a) != ext_bytes(t, out_dir):
                    return src, False, f"external data of tensor '{t.name}' differs", False, None
            except Exception as ex:  # noqa: BLE001
                return src, False, f"external data of tensor '{t.name}': {ex}", False, None
        if written == 0:
            note = "external data not written beside the output (references kept)"
    return src, True, "", ia == ib, note


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="Load-then-save round trip check for ONNX models (see module docstring).")
    ap.add_argument("--tool", required=True,
                    help="the round-trip program, run as TOOL IN OUT (a command with arguments is split like a shell)")
    ap.add_argument("--node-tests", action="store_true",
                    help="add the onnx package's backend node test and light models")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per tool run (default 120)")
    ap.add_argument("--keep", metavar="DIR", help="write outputs under DIR and keep them")
    ap.add_argument("--require-identical-bytes", action="store_true",
                    help="also fail a case whose output bytes differ from the input bytes")
    ap.add_argument("--strict-external", action="store_true",
                    help="external data references must come back unchanged (by default the tool may move "
                         "the data to another file or inline as long as the tensor bytes are equal)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case")
    ap.add_argument("paths", nargs="*", metavar="MODEL_OR_DIR")
    a = ap.parse_args()

    tool = [a.tool] if os.path.exists(a.tool) else shlex.split(a.tool)
    if not tool:
        ap.error("--tool is empty")
    if a.jobs < 1:
        ap.error("--jobs must be at least 1")
    cases, skipped = collect(a.paths)
    if skipped:
        print(f"skipped {skipped} file(s) under testdata/bad")
    if a.node_tests:
        node, light = node_test_models()
        print(f"onnx {onnx.__version__} backend tests: {len(node) + len(light)} cases found "
              f"({len(node)} node, {len(light)} light)")
        cases += node + light
    if not a.paths and not a.node_tests:
        ap.error("give MODEL_OR_DIR paths or --node-tests")
    if not cases:
        print("roundtrip_check: no models found", file=sys.stderr)
        print("0 passed, 0 failed")
        return 1

    work = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="pare-roundtrip-")
    os.makedirs(work, exist_ok=True)
    jobs = [(tool, c, os.path.join(work, f"{i:05d}"), a.timeout, a.strict_external) for i, c in enumerate(cases)]
    results = []
    try:
        if a.jobs == 1:
            results = [check_one(j) for j in jobs]
        else:
            with concurrent.futures.ProcessPoolExecutor(max_workers=a.jobs) as ex:
                results = list(ex.map(check_one, jobs, chunksize=8))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    passed = failed = identical = 0
    for src, ok, msg, same_bytes, note in results:
        if ok and a.require_identical_bytes and not same_bytes:
            ok, msg = False, "messages equal but bytes differ"
        if ok:
            passed += 1
            identical += same_bytes
            if a.verbose:
                print(f"ok   {src}" + (" (byte-identical)" if same_bytes else "") + (f" [{note}]" if note else ""))
        else:
            failed += 1
            print(f"FAIL {src}: {msg}")
    print(f"{identical} of {passed} passed case(s) byte-identical")
    notes = {}
    for src, ok, msg, same_bytes, note in results:
        if ok and note:
            notes[note] = notes.get(note, 0) + 1
    for note, n in sorted(notes.items()):
        print(f"{n} passed case(s): {note}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
