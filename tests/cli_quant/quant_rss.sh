#!/bin/sh
# pare-quantize: calibration memory does not grow with the number of samples
# (peak RSS with 10 and with 1,000 samples within 10%), and quantizing
# weights holds the float model about once, not twice.
if [ "${PARE_SANITIZED:-0}" = 1 ]; then
    echo "skip: peak RSS under AddressSanitizer is its shadow and quarantine, not pare's"
    exit 77
fi
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/common.sh"

# rss N METHOD: calibrates on N samples; the peak RSS goes to $peak
rss() {
    run "$PROG" --mode static --calibrate "$train" --calib-samples "$1" --calib-method "$2" \
        --threads 1 "$cnn" -o "$tmp/rss.onnx" --json
    expect_rc 0
    expect_qjson
    check
    [ "$(jnum samples)" = "$1" ] || fail "calibration saw $(jnum samples) samples, not $1"
    peak=$(jnum peak_rss_bytes)
}
for m in percentile minmax; do
    rss 10 "$m"
    small=$peak
    rss 1000 "$m"
    large=$peak
    echo "peak RSS ($m): 10 samples $small bytes, 1000 samples $large bytes"
    expect_le "$large" "$(awk -v s="$small" 'BEGIN { printf "%.0f", s * 1.10 }')" \
        "peak RSS with 1000 samples ($m) more than 10% above 10 samples'"
    expect_le "$small" "$(awk -v s="$large" 'BEGIN { printf "%.0f", s * 1.10 }')" \
        "peak RSS with 10 samples ($m) more than 10% above 1000 samples'"
done

# weight quantization frees each float weight once its quantized form is in
# place (the copies the loader made first), and loading gives back the
# pages of the file it touched: the peak stays below the baseline (the tiny
# CNN) plus 1.4 times the model's bytes (it measures about 1.0 for dynamic
# and 1.2 for weight-only; before, 1.75 and 1.8: the float model twice).
# Needs python3 with numpy and onnx to write the model.
if python3 -c 'import numpy, onnx' 2>/dev/null; then
    python3 - "$tmp/big.onnx" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
rng = np.random.default_rng(1)
nodes, inits, x = [], [], "x"
for i in range(8):  # 8 MatMuls of 1024 x 1024: 32 MiB of float weights
    inits.append(numpy_helper.from_array(rng.normal(0, 0.03, (1024, 1024)).astype(np.float32),
                                         "w%d" % i))
    nodes.append(helper.make_node("MatMul", [x, "w%d" % i], ["h%d" % i], name="mm%d" % i))
    x = "h%d" % i
g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                   [1, 1024])],
                      [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1024])], inits)
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
PY
    size=$(wc -c <"$tmp/big.onnx" | tr -d ' ')
    run "$PROG" --mode dynamic --threads 1 "$cnn" -o "$tmp/small.onnx" --json
    expect_rc 0
    expect_qjson
    base=$(jnum peak_rss_bytes)
    for m in "dynamic" "weight-only" "weight-only --format matmulnbits"; do
        # shellcheck disable=SC2086
        run "$PROG" --mode $m --threads 1 "$tmp/big.onnx" -o "$tmp/big-q.onnx" --json
        expect_rc 0
        expect_qjson
        peak=$(jnum peak_rss_bytes)
        echo "peak RSS ($m): $peak bytes for a $size-byte model (baseline $base)"
        expect_le "$peak" "$(awk -v b="$base" -v s="$size" 'BEGIN { printf "%.0f", b + 1.4 * s }')" \
            "peak RSS of --mode $m above the baseline plus 1.4x the model"
    done
else
    echo "skipped the weight memory check: no python3 with numpy and onnx"
fi
finish
