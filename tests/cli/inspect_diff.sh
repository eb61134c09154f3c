#!/bin/sh
# pare-inspect --diff: two models side by side, as text and JSON.
. "$(dirname "$0")/lib.sh"
need "$TESTDATA/transformer_block.onnx" "$TESTDATA/transformer_tiny2.onnx"
a=$TESTDATA/transformer_block.onnx
b=$TESTDATA/transformer_tiny2.onnx

run "$PROG" --diff "$b" "$a"
expect_rc 0
expect_err_empty
expect_out_re "^ +$a +$b +change$"
expect_out_re '^file size +[0-9.]+ KiB +[0-9.]+ KiB +\+[0-9.]+%$'
expect_out_re '^parameters +49,995 +102,070 +\+104\.2%$'
expect_out_re '^  float32 '
expect_out_re '^  int64 '
expect_out_re '^sparsity '
expect_out_re '^quantized weights +0\.0% +0\.0% += *$'
expect_out_re '^MACs +49\.3 K +101 K +\+104\.2%$'
expect_out_re '^nodes +33 +68 +\+35$'
expect_out "op changes (0 op types unchanged):"
expect_out_re '^  MatMul +8 +17 +\+9$'
run "$PROG" --diff "$a" "$a"
expect_rc 0
expect_out_re '^parameters +49,995 +49,995 += *$'
expect_out "op changes: none (9 op types)"
# the other model from stdin
run sh -c "\"$PROG\" --diff - \"$a\" < \"$b\""
expect_rc 0
expect_out_re '^ +.* +<stdin> +change$'
expect_out_re '^nodes +33 +68 +\+35$'

# quantization shows up as a change of types and ops
if [ -e "$TESTDATA/cnn_digits.onnx" ]; then
    run "$PROG" --diff "$FIXTURES/qdq.onnx" "$TESTDATA/cnn_digits.onnx"
    expect_rc 0
    expect_out_re '^  int8 +- +[0-9.]+ KiB +new$'
    expect_out_re '^quantized weights +0\.0% +100\.0% +\+100\.0 pt$'
    expect_out_re '^  DequantizeLinear +0 +4 +\+4$'
    expect_out_re '^  BatchNormalization +2 +0 +-2$'
fi

run "$PROG" --diff "$b" --json "$a"
expect_rc 0
expect_json
expect_out '"mode": "diff",'
expect_out '  "a": {'
expect_out '  "b": {'
expect_out '  "changes": {'
expect_out '    "params": 52075,'
expect_out '    "nodes": 35,'
expect_out '{"op": "MatMul", "domain": "ai.onnx", "a": 8, "b": 17}'
check
[ "$(grep -c '"schema"' "$tmp/out")" -eq 1 ] || fail "the summaries inside a diff repeat the schema"

# a bad second model: one line naming it, exit 1
run "$PROG" --diff "$TESTDATA/does-not-exist.onnx" "$a"
expect_rc 1
expect_one_error "$TESTDATA/does-not-exist.onnx"
expect_out_empty

finish
