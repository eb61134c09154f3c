#!/bin/sh
# pare-inspect: the text summary and --nodes over the test models; stdin;
# -o; -q and -v; deterministic output; external data not read.
. "$(dirname "$0")/lib.sh"
need "$TESTDATA/cnn_digits.onnx" "$TESTDATA/transformer_block.onnx"
cnn=$TESTDATA/cnn_digits.onnx

run "$PROG" "$cnn"
expect_rc 0
expect_err_empty
expect_out_re "^$cnn: [0-9.]+ KiB \([0-9,]+ bytes\)$"
expect_out "ir version: 8"
expect_out "opsets: ai.onnx 17"
expect_out "producer: pare-testdata"
expect_out_re '^  input +float32 +Nx1x8x8$'
expect_out_re '^  logits +float32 +Nx10$'
expect_out "ops: 14 nodes, 8 op types"
expect_out_re '^  Conv +4$'
expect_out_re '^  BatchNormalization +2$'
expect_out "parameters: 60,906 in 17 tensors"
expect_out_re '^  float32 +60,906 params +17 tensors'
expect_out "sparsity: 0.0% exact zeros (0 of 60,906 scanned params)"
expect_out "most sparse:"
expect_out "quantization: none (weights float32)"
expect_out "compute: 1.85 M MACs, 3.73 M FLOPs"
expect_out "for inputs: input 1x1x8x8"
expect_out "peak activation memory:"
expect_out "symbolic dim N bound to 1"
cp "$tmp/out" "$tmp/first"
# the same bytes every time
run "$PROG" "$cnn"
check
cmp -s "$tmp/out" "$tmp/first" || fail "two runs differ"

# --dim and --shape change the estimates, and the note goes away
run "$PROG" --dim N=4 "$cnn"
expect_rc 0
expect_out "compute: 7.42 M MACs"
expect_out "for inputs: input 4x1x8x8"
expect_no_out_text "bound to 1"
run "$PROG" --shape input=4x1x8x8 "$cnn"
expect_rc 0
expect_out "compute: 7.42 M MACs"
# a --dim no input uses: a warning, silenced by -q
run "$PROG" --dim Z=3 "$cnn"
expect_rc 0
expect_one_error "$cnn"
expect_err "warning: --dim Z: no input of the model has a dim named 'Z'"
run "$PROG" -q --dim Z=3 "$cnn"
expect_rc 0
expect_err_empty
run "$PROG" -v "$cnn"
expect_rc 0
expect_err "$NAME: $cnn: loaded: 14 nodes"

# gzip and stdin
run "$PROG" "$TESTDATA/cnn_digits.onnx.gz"
expect_rc 0
expect_out "ops: 14 nodes"
run sh -c "\"$PROG\" - < \"$cnn\""
expect_rc 0
expect_out_re '^<stdin>: '
expect_out "ops: 14 nodes"
run sh -c "cat \"$TESTDATA/cnn_digits.onnx.gz\" | \"$PROG\" -"
expect_rc 0
expect_out "parameters: 60,906"

# transformer: MatMul MACs, symbolic dims, --nodes
tb=$TESTDATA/transformer_block.onnx
run "$PROG" "$tb"
expect_rc 0
expect_out_re '^  x +float32 +NxSx64$'
expect_out "symbolic dims N, S bound to 1"
expect_out "compute: 49.3 K MACs"
run "$PROG" --nodes --dim N=2 --dim S=16 "$tb"
expect_rc 0
expect_out "compute: 1.64 M MACs"
expect_out "nodes (* marks initializers):"
expect_out_re '^ +#  name +op +inputs +outputs +params +MACs$'
expect_out_re '^ +0  q/MatMul +MatMul +x 2x16x64, q\.weight\* 64x64 +q_mm 2x16x64 +4,096 +131,072$'
expect_out_re '^ +12  attn/MatMul_qk +MatMul +q_t 2x4x16x16, k_t 2x4x16x16 +scores 2x4x16x16 +32,768$'
# peak: fc1_out, gelu_div, gelu_erf (32 KiB each) and ln1_out (8 KiB) live at gelu/Erf
expect_out "peak activation memory: 104 KiB (while node 'gelu/Erf' (Erf) runs)"

# control flow: subgraph nodes counted and listed under their owner
if [ -e "$TESTDATA/control_flow.onnx" ]; then
    run "$PROG" --nodes "$TESTDATA/control_flow.onnx"
    expect_rc 0
    expect_out "(13 in subgraphs)"
    expect_out_re '^ +2\.body\.0  body/cast +Cast'
    expect_out_re '^ +1\.then_branch\.1  then/add +Add'
    expect_out "nodes inside If/Loop/Scan bodies are counted once"
fi

# a model with custom domains, functions and odd tensors: one error line or a summary
if [ -e "$TESTDATA/lossless.onnx" ]; then
    run "$PROG" "$TESTDATA/lossless.onnx"
    if [ "$rc" -eq 0 ]; then
        expect_out "pare.test"
        expect_out "ir version: 11"
    else
        expect_rc 1
        expect_one_error "$TESTDATA/lossless.onnx"
    fi
fi

# external data: counted from dims, zeros only with --scan-weights
ext=$TESTDATA/mlp_external/model.onnx
if [ -e "$ext" ]; then
    run "$PROG" "$ext"
    expect_rc 0
    expect_out_re 'KiB external data$'
    expect_out "parameters: 676 in 4 tensors"
    expect_out "4 external tensors not scanned (use --scan-weights)"
    run "$PROG" --scan-weights "$ext"
    expect_rc 0
    expect_out "of 676 scanned params)"
    expect_no_out_text "not scanned"
    # from stdin the external file cannot be found: one error line
    run sh -c "\"$PROG\" - < \"$ext\""
    expect_rc 1
    expect_one_error "<stdin>"
    expect_err "external data"
fi

# 500 MiB of external weights (a sparse file): counted without reading them
big=$FIXTURES/big_external/model.onnx
if [ -e "$big" ] && command -v truncate >/dev/null 2>&1; then
    mkdir "$tmp/big"
    cp "$big" "$tmp/big/model.onnx"
    truncate -s 524288000 "$tmp/big/weights.bin"
    run "$PROG" "$tmp/big/model.onnx"
    expect_rc 0
    expect_out "+ 500 MiB external data"
    expect_out "parameters: 131,072,000 in 20 tensors, 500 MiB"
    expect_out "20 external tensors not scanned"
    expect_out "compute: 131 M MACs"
fi

# quantized and float16 fixtures
run "$PROG" "$FIXTURES/qdq.onnx"
expect_rc 0
expect_out "quantization: 100.0% of MAC-op weights (by params), 100.0% of MACs"
expect_out_re '^  Conv +1  int8 \(QDQ, per-channel\) +uint8 \(QDQ\)$'
expect_out_re '^  Gemm +1  int8 \(QDQ, per-channel\) +uint8 \(QDQ\)$'
expect_out "QDQ pairs (activations): uint8 2"
expect_out "DequantizeLinear of stored weights: int8 per-channel 2"
expect_out_re '^  most sparse: +conv\.w_q +50\.5% of +216$'
expect_out "compute: 4.74 K MACs"
run "$PROG" "$FIXTURES/qop.onnx"
expect_rc 0
expect_out_re '^  QLinearConv +1  int8 +uint8$'
expect_out_re '^  MatMulInteger +1  uint8 +uint8 \(dynamic\)$'
expect_out_re '^  com\.microsoft:MatMulNBits +1  int4 \(blocked 16\) +float32$'
expect_out "QOperator ops: MatMulInteger 1, QLinearConv 1, com.microsoft:MatMulNBits 1"
expect_out "opsets: ai.onnx 17, com.microsoft 1"
run "$PROG" --nodes "$FIXTURES/fp16.onnx"
expect_rc 0
expect_out_re '^  ConvTranspose +1  float16 +float16$'
expect_out_re '^ +0  deconv +ConvTranspose .* 648$'
expect_out_re '^ +3  lstm +LSTM .* 1,540$'
expect_out "compute: 2.19 K MACs"

# -o writes the report atomically; stdout stays empty
run "$PROG" -o "$tmp/report.txt" "$cnn"
expect_rc 0
expect_out_empty
check
cmp -s "$tmp/report.txt" "$tmp/first" || fail "-o wrote something else than stdout gets"
# a failed run leaves an existing report alone and no temporary file behind
echo "old" >"$tmp/keep.txt"
run "$PROG" -o "$tmp/keep.txt" "$TESTDATA/no-such-model.onnx"
expect_rc 1
expect_one_error "$TESTDATA/no-such-model.onnx"
check
[ "$(cat "$tmp/keep.txt")" = old ] || fail "a failed run changed the -o file"
check
[ -z "$(ls -A "$tmp" | grep -F '.tmp')" ] || fail "a temporary file was left: $(ls -A "$tmp")"
run "$PROG" -o "$tmp/no/such/dir/r.txt" "$cnn"
expect_rc 1
expect_one_error "$tmp/no/such/dir/r.txt"

finish
