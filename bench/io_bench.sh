#!/bin/bash
# Model I/O benchmark (issue: foundation, section 8).
# Generates a ~500 MB model in two forms (external data, embedded) and
# reports wall time and peak RSS of: cp of the same bytes, load+inspect,
# load+save (pare-roundtrip). Needs python3 with onnx and numpy to generate.
# Usage: bench/io_bench.sh [BUILD_DIR] [SIZE_MB]
# BUILD_DIR holds tools/pare-inspect and tests/pare-roundtrip (build/release;
# PARE_ROUNDTRIP overrides the latter). Files are read from the page cache
# (they were just written), for cp as for pare: the figures compare the
# programs, not the disk.
set -eu
build=${1:-build/release}
mb=${2:-500}
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
measure() { # label, command...
    local label=$1; shift
    local t0 t1 res rss rc
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
    printf '%-34s %8.3f s %10.1f MB\n' "$label" "$(echo "$t1 - $t0" | bc)" "$(echo "$rss / 1024" | bc -l)"
}
sync
emb=$(stat -c %s "$work/embedded.onnx"); ext=$(($(stat -c %s "$work/ext/model.onnx") + $(stat -c %s "$work/ext/weights.bin")))
printf 'model: %d MB embedded, %d MB external (8 MatMul weights)\n' $((emb >> 20)) $((ext >> 20))
printf 'load average: %s (%s cores)\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
printf '%-34s %10s %13s\n' "step" "wall" "peak RSS"
measure "cp embedded" cp "$work/embedded.onnx" "$work/copy.onnx"
rm -f "$work/copy.onnx"
# pare's save fsyncs the file before renaming it into place; cp does not
measure "cp embedded + fsync" sh -c 'cp "$1" "$2" && sync "$2"' sh "$work/embedded.onnx" "$work/copy.onnx"
measure "pare-inspect embedded" "$inspect" "$work/embedded.onnx"
measure "load+save embedded" "$roundtrip" "$work/embedded.onnx" "$work/rt.onnx"
measure "cp external (both files)" cp "$work/ext/model.onnx" "$work/ext/weights.bin" "$work/"
rm -f "$work/model.onnx" "$work/weights.bin"
measure "cp external + fsync" sh -c 'cp "$1" "$2" "$3" && sync "$3/model.onnx" "$3/weights.bin"' sh \
    "$work/ext/model.onnx" "$work/ext/weights.bin" "$work/"
measure "pare-inspect external" "$inspect" "$work/ext/model.onnx"
rm -f "$work/rt.onnx" "$work/copy.onnx" "$work/model.onnx" "$work/weights.bin"
mkdir -p "$work/rt"
measure "load+save external" "$roundtrip" "$work/ext/model.onnx" "$work/rt/model.onnx"
[ "$failed" -eq 0 ]
