#!/bin/sh
# Run-time errors on valid models: an error naming the node, exit 1, no crash.
. "$(dirname "$0")/../cli/lib.sh"
d=$(cd "$(dirname "$0")/../exec/data" && pwd)
need "$d/gather_oob.onnx"

run "$PROG" -n 1 "$d/gather_oob.onnx"
expect_rc 1
expect_one_error "$d/gather_oob.onnx"
expect_err "node 'gather_oob' (Gather)"
expect_err "out of range"
run "$PROG" -n 1 "$d/scatternd_oob.onnx"
expect_rc 1
expect_one_error "$d/scatternd_oob.onnx"
expect_err "node 'scatter_oob' (ScatterND)"
run "$PROG" -n 1 "$d/div_zero.onnx"
expect_rc 1
expect_one_error "$d/div_zero.onnx"
expect_err "node 'int_div' (Div)"
expect_err "zero"
run "$PROG" -n 1 "$d/reshape_bad.onnx"
expect_rc 1
expect_one_error "$d/reshape_bad.onnx"
expect_err "node 'bad_reshape' (Reshape)"
# NaN in outputs is counted in the accuracy table, not an error
run "$PROG" -n 1 --reference "$d/log_nan.onnx" "$d/log_nan.onnx"
expect_rc 0
expect_out_re "^y +.* [1-9][0-9]* +-$"
finish
