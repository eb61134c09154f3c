#!/bin/sh
# pare-prune outputs: gzip, stdout in a pipeline, the report file, external
# data, COO sparse initializers, same bytes for the same input, cleanup.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
need "$cnn"
RUN=${PARE_RUN:?PARE_RUN}

# .onnx.gz is gzip, and the report's gzip size is the file's
run "$PROG" --sparsity 0.5 --json -o "$tmp/p.onnx.gz" "$cnn"
expect_rc 0
check
[ "$(head -c 2 "$tmp/p.onnx.gz" | od -An -tx1 | tr -d ' ')" = "1f8b" ] || fail "not gzip"
size=$(wc -c <"$tmp/p.onnx.gz" | tr -d ' ')
expect_out "\"gzip_after\": $size,"
expect_out '"schema": "pare-prune/1"'
expect_out '"why": "first layer (kept dense)"'

# same input and options, same bytes
run "$PROG" --sparsity 0.5 -o "$tmp/p2.onnx.gz" "$cnn"
expect_rc 0
check
cmp -s "$tmp/p.onnx.gz" "$tmp/p2.onnx.gz" || fail "two runs gave different bytes"

# -o - in a pipeline: the model on stdout, the report on stderr
"$PROG" --sparsity 0.5 -o - "$cnn" 2>"$tmp/rep.txt" | "$RUN" -n 1 - >"$tmp/run.txt" 2>&1
rc=$?
last="pare-prune -o - | pare-run -"
expect_rc 0
check
grep -q "conv3" "$tmp/rep.txt" || fail "no report on stderr"
# with --report the JSON goes to the file
run "$PROG" --sparsity 0.5 -o "$tmp/s.onnx" --json --report "$tmp/r.json" "$cnn"
expect_rc 0
expect_out_empty
check
grep -q '"nonzero_after"' "$tmp/r.json" || fail "report file lacks the figures"

# external data
run "$PROG" --sparsity 0.5 --external-data 1K -o "$tmp/ext.onnx" "$cnn"
expect_rc 0
check
[ -s "$tmp/ext.onnx.data" ] || fail "no external data file"
run "$RUN" -n 1 --reference "$tmp/s.onnx" --inputs "$TESTDATA/digits_val.npz" --atol 0 \
    "$tmp/ext.onnx"
expect_rc 0

# COO: sparse weights stored as sparse_initializer, smaller, same outputs
run "$PROG" --sparsity 0.9 --per-layer --include-first-last -o "$tmp/dense.onnx" "$cnn"
expect_rc 0
run "$PROG" --sparsity 0.9 --per-layer --include-first-last --sparse-format coo \
    -o "$tmp/coo.onnx" "$cnn"
expect_rc 0
check
d=$(wc -c <"$tmp/dense.onnx" | tr -d ' ')
c=$(wc -c <"$tmp/coo.onnx" | tr -d ' ')
[ "$c" -lt "$d" ] || fail "COO file ($c) not smaller than dense ($d)"
run "$RUN" -n 1 --reference "$tmp/dense.onnx" --inputs "$TESTDATA/digits_val.npz" --atol 0 \
    "$tmp/coo.onnx"
expect_rc 0

# cleanup only: BatchNormalization folded, outputs unchanged
run "$PROG" --cleanup-only --json -o "$tmp/clean.onnx" --report "$tmp/c.json" "$cnn"
expect_rc 0
check
grep -q '"nodes_before": 14' "$tmp/c.json" || fail "cleanup report lacks nodes_before"
grep -q '"nodes_after": 12' "$tmp/c.json" || fail "BatchNormalization not folded"
run "$RUN" -n 1 --reference "$cnn" --inputs "$TESTDATA/digits_val.npz" --atol 1e-4 \
    "$tmp/clean.onnx"
expect_rc 0
# cut to one output
run "$PROG" --cleanup-only --outputs relu1_out -o "$tmp/cut.onnx" "$cnn"
expect_rc 0
expect_out "cleanup: 14 -> 2 nodes"
run "$PROG" --cleanup-only --outputs nope -o "$tmp/cut2.onnx" "$cnn"
expect_rc 2
expect_err "nope"
# which layers: op types, size, first/last (proj has 4096 params, conv1 288:
# both under --min-params 5000; conv2 and conv3 are larger)
run "$PROG" --sparsity 0.5 --include-first-last --exclude-op-types Gemm --min-params 5000 \
    --json -o "$tmp/f.onnx" --report "$tmp/f.json" "$cnn"
expect_rc 0
check
grep -q '"node": "fc", "op": "Gemm", "why": "op type excluded"' "$tmp/f.json" ||
    fail "fc not excluded by op type"
grep -q '"node": "proj", "op": "Conv", "why": "fewer params than --min-params"' "$tmp/f.json" ||
    fail "proj not left dense by --min-params"
grep -q '"why": "fewer params than --min-params"' "$tmp/f.json" || fail "conv1 not small"
# SparseGPT's knobs and the calibration options
run "$PROG" --sparsity 0.5 --criterion sparsegpt --calibrate "$TESTDATA/digits_train.npz" \
    --calib-samples 40 --calib-batch 16 --damp 0.1 --block-size 16 --seed 3 -t 1 --no-dead-code \
    --json -o "$tmp/g.onnx" --report "$tmp/g.json" "$cnn"
expect_rc 0
check
grep -q '"calibration_samples": 40' "$tmp/g.json" || fail "not 40 calibration samples"
# the scan's levels and sample count
run "$PROG" --sensitivity "$TESTDATA/digits_val.npz" --sensitivity-levels 0.5,0.8 --samples 50 \
    --json -o "$tmp/h.onnx" --report "$tmp/h.json" "$cnn"
expect_rc 0
check
grep -q '"levels": \[0.5, 0.8\]' "$tmp/h.json" || fail "levels not 0.5, 0.8"
grep -q '"samples": 50' "$tmp/h.json" || fail "not 50 samples"
grep -q '"metric": "top1"' "$tmp/h.json" || fail "without labels the metric is not top1"
# start from an inner tensor
run "$PROG" --cleanup-only --inputs pool_out -o "$tmp/in.onnx" "$cnn"
expect_rc 0
expect_out "cleanup: 14 -> 7 nodes"
# a gzip model larger than --max-decompressed is refused
run "$PROG" --sparsity 0.5 --max-decompressed 1K -o "$tmp/z.onnx" "$TESTDATA/cnn_digits.onnx.gz"
expect_rc 1
expect_one_error "$TESTDATA/cnn_digits.onnx.gz"
finish
