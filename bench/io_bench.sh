#!/bin/bash
# Model I/O benchmark (issue: foundation, section 8).
# Generates a ~500 MB model in two forms (external data, embedded) and
# reports wall time and peak RSS of: cp of the same bytes, load+inspect,
# load+save (pare-roundtrip). Needs python3 with onnx and numpy to generate.
# Usage: bench/io_bench.sh [BUILD_DIR] [SIZE_MB] [REPEAT]
# BUILD_DIR holds tools/pare-inspect and tests/pare-roundtrip (build/release;
# PARE_ROUNDTRIP overrides the latter). Files are read from the page cache
# (they were just written), for cp as for pare: the figures compare the
# programs, not the disk. Each step runs REPEAT times (default 1, each time
# into an emptied output folder); the row shows the fastest run and its peak
# RSS (on a shared machine the fastest run is the least disturbed one).
# "load" is pare-inspect --check: load and validate, weights not read.
set -eu
build=${1:-build/release}
mb=${2:-500}
repeat=${3:-1}
py=${PARE_PYTHON:-python3}
work=$(mktemp -d /tmp/pare-io-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
inspect=$build/tools/pare-inspect
roundtrip=${PARE_ROUNDTRIP:-$build/tests/pare-roundtrip}
for p in "$inspect" "$roundtrip"; do
    [ -x "$p" ] || { echo "io_bench: $p: not an executable (build first, or give BUILD_DIR)" >&2; exit 1; }
done
for p in /usr/bin/time bc; do
    command -v "$p" >/dev/null || { echo "io_bench: $p is needed" >&2; exit 1; }
done
"$py" - "$work" "$mb" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
out, mb = sys.argv[1], int(sys.argv[2])
n_layers = 8
dim = int((mb * 1024 * 1024 / 4 / n_layers) ** 0.5)
rng = np.random.default_rng(0)
nodes, inits = [], []
prev = "x"
for i in range(n_layers):
    w = rng.standard_normal((dim, dim), dtype=np.float32)
    inits.append(numpy_helper.from_array(w, f"w{i}"))
    nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
    prev = f"h{i}"
g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim])],
                      [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, dim])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.save_model(m, f"{out}/embedded.onnx")
import os
os.makedirs(f"{out}/ext", exist_ok=True)
onnx.save_model(m, f"{out}/ext/model.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                location="weights.bin", size_threshold=0)
PY
failed=0
out=$work/o
measure() { # label, command... (writes go under $out, emptied before each run)
    local label=$1; shift
    local t0 t1 res rss rc k best="" best_rss=""
    for k in $(seq "$repeat"); do
        rm -rf "$out"; mkdir -p "$out/rt"
        sync
        t0=$(date +%s.%N)
        /usr/bin/time -f '%M %x' -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || true
        t1=$(date +%s.%N)
        res=$(tail -1 "$work/time.out")
        rss=${res%% *} rc=${res##* }
        if [ "$rc" != 0 ]; then
            printf '%-34s FAILED (exit %s): %s\n' "$label" "$rc" "$(head -1 "$work/err.out")"
            failed=$((failed + 1))
            return 0
        fi
        wall=$(echo "$t1 - $t0" | bc)
        if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc)" = 1 ]; then
            best=$wall best_rss=$rss
        fi
    done
    printf '%-34s %8.3f s %10.1f MB\n' "$label" "$best" "$(echo "$best_rss / 1024" | bc -l)"
}
sync
emb=$(stat -c %s "$work/embedded.onnx"); ext=$(($(stat -c %s "$work/ext/model.onnx") + $(stat -c %s "$work/ext/weights.bin")))
printf 'model: %d MB embedded, %d MB external (8 MatMul weights)\n' $((emb >> 20)) $((ext >> 20))
printf 'load average: %s (%s cores); best of %d run(s) per step\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" "$repeat"
printf '%-34s %10s %13s\n' "step" "wall" "peak RSS"
measure "cp embedded" cp "$work/embedded.onnx" "$out/copy.onnx"
# pare's saves, like cp, do not fsync unless PARE_FSYNC=1 asks for it
measure "cp embedded + fsync" sh -c 'cp "$1" "$2" && sync "$2"' sh "$work/embedded.onnx" "$out/copy.onnx"
measure "load embedded (inspect --check)" "$inspect" --check "$work/embedded.onnx"
measure "pare-inspect embedded" "$inspect" "$work/embedded.onnx"
measure "load+save embedded" "$roundtrip" "$work/embedded.onnx" "$out/rt.onnx"
measure "load+save embedded, PARE_FSYNC=1" env PARE_FSYNC=1 "$roundtrip" "$work/embedded.onnx" \
    "$out/rt.onnx"
measure "cp external (both files)" cp "$work/ext/model.onnx" "$work/ext/weights.bin" "$out/"
measure "cp external + fsync" sh -c 'cp "$1" "$2" "$3" && sync "$3/model.onnx" "$3/weights.bin"' sh \
    "$work/ext/model.onnx" "$work/ext/weights.bin" "$out/"
measure "load external (inspect --check)" "$inspect" --check "$work/ext/model.onnx"
measure "pare-inspect external" "$inspect" "$work/ext/model.onnx"
measure "load+save external" "$roundtrip" "$work/ext/model.onnx" "$out/rt/model.onnx"
measure "load+save external, PARE_FSYNC=1" env PARE_FSYNC=1 "$roundtrip" "$work/ext/model.onnx" \
    "$out/rt/model.onnx"
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$failed" -eq 0 ]
