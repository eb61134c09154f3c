#!/bin/sh
# pare-inspect --json: valid JSON with the pare-inspect/1 schema for every
# test model, and the values the man page promises.
. "$(dirname "$0")/lib.sh"
need "$TESTDATA/cnn_digits.onnx"
cnn=$TESTDATA/cnn_digits.onnx

for m in "$cnn" "$TESTDATA/cnn_digits.onnx.gz" "$TESTDATA/transformer_block.onnx" \
    "$TESTDATA/transformer_tiny2.onnx" "$TESTDATA/control_flow.onnx" \
    "$TESTDATA/mlp_external/model.onnx" "$FIXTURES/qdq.onnx" "$FIXTURES/qop.onnx" \
    "$FIXTURES/fp16.onnx"; do
    [ -e "$m" ] || continue
    for extra in "" --nodes; do
        run "$PROG" --json $extra "$m"
        expect_rc 0
        expect_json
        expect_out '"mode": "summary",'
        expect_out "\"file\": \"$m\","
        for key in file_bytes external_data_bytes ir_version producer opsets inputs outputs graph \
            params sparsity quantization compute memory notes; do
            expect_out "  \"$key\": "
        done
        if [ -n "$extra" ]; then expect_out '  "nodes": ['; else expect_no_out_text '  "nodes": ['; fi
    done
done

# values
run "$PROG" --json "$cnn"
expect_out '"ir_version": 8,'
expect_out '"producer": {"name": "pare-testdata", "version": "1"},'
expect_out '{"domain": "ai.onnx", "version": 17}'
expect_out '{"name": "input", "dtype": "float32", "shape": ["N", 1, 8, 8]}'
expect_out '{"op": "Conv", "domain": "ai.onnx", "count": 4},'
expect_out '    "total": 60906,'
expect_out '    "bytes": 243624,'
expect_out '{"dtype": "float32", "tensors": 17, "params": 60906, "bytes": 243624}'
expect_out '    "scanned_params": 60906,'
expect_out '    "quantized": false,'
expect_out '{"name": "input", "shape": [1, 1, 8, 8]}'
expect_out '{"name": "N", "value": 1, "defaulted": true}'
expect_out '    "macs": 1854080,'
expect_out '    "flops": 3727616,'
expect_out '    "shape_inference_complete": true,'
expect_out '    "peak_activation_bytes": '
expect_out '"symbolic dim N bound to 1 (set with --dim NAME=N or --shape)"'
cp "$tmp/out" "$tmp/first"
run "$PROG" --json "$cnn"
check
cmp -s "$tmp/out" "$tmp/first" || fail "two JSON runs differ"
run "$PROG" --json --dim N=3 "$cnn"
expect_out '{"name": "N", "value": 3, "defaulted": false}'
expect_out '    "macs": 5562240,'
run sh -c "\"$PROG\" --json - < \"$cnn\""
expect_rc 0
expect_json
expect_out '"file": "-",'

if [ -e "$TESTDATA/transformer_block.onnx" ]; then
    run "$PROG" --json --nodes --shape x=2x16x64 "$TESTDATA/transformer_block.onnx"
    expect_json
    expect_out '    "macs": 1638400,'
    expect_out '"index": "0",'
    expect_out '"name": "q/MatMul",'
    expect_out '{"name": "q.weight", "dtype": "float32", "shape": [64, 64], "initializer": true}'
    expect_out '"macs": 131072,'
    expect_out '"macs": 32768,'
    expect_out '"peak_activation_bytes": 106496,'
    expect_out '"peak_at_node": "gelu/Erf",'
fi
if [ -e "$TESTDATA/mlp_external/model.onnx" ]; then
    run "$PROG" --json "$TESTDATA/mlp_external/model.onnx"
    expect_out '"external_tensors": 4,'
    expect_out '"skipped_external_tensors": 4,'
    expect_out '"scanned_params": 0,'
    expect_out '"share": null,'
fi
run "$PROG" --json "$FIXTURES/qdq.onnx"
expect_out '"quantized": true,'
expect_out '"weight_share": 1,'
expect_out '{"op": "Conv", "nodes": 1, "weights": "int8 (QDQ, per-channel)", "activations": "uint8 (QDQ)", "weight_params": 216, "macs": 3456}'
expect_out '{"dtype": "uint8", "count": 2}'
expect_out '{"storage": "int8 per-channel", "count": 2, "params": 1496}'
expect_out '{"name": "conv.w_q", "params": 216, "zeros": 109, "share": 0.50463}'
run "$PROG" --json "$FIXTURES/qop.onnx"
expect_out '{"op": "com.microsoft:MatMulNBits", "nodes": 1, "weights": "int4 (blocked 16)", "activations": "float32", "weight_params": 512, "macs": 512}'
expect_out '{"op": "QLinearConv", "count": 1}'
expect_out '{"op": "MatMulNBits", "domain": "com.microsoft", "count": 1}'

finish
