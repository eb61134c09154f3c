#!/bin/sh
# pare-quantize: where the model and the report go: stdout, .onnx.gz,
# external data, stdin, --report, --json; determinism; no partial output.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/common.sh"

# a file and standard output give the same bytes; the report then goes to stderr
run "$PROG" --mode weight-only "$tb" -o "$tmp/w.onnx"
expect_rc 0
expect_out "quantized: 6 nodes"
expect_err_empty
"$PROG" --mode weight-only "$tb" -o - >"$tmp/w-stdout.onnx" 2>"$tmp/err"
rc=$?
last="pare-quantize --mode weight-only -o -"
expect_rc 0
expect_err "quantized: 6 nodes"
check
cmp -s "$tmp/w.onnx" "$tmp/w-stdout.onnx" || fail "stdout and file outputs differ"
"$PROG" -q --mode weight-only "$tb" >"$tmp/w-default.onnx" 2>"$tmp/err"
rc=$?
last="pare-quantize -q (no -o: stdout)"
expect_rc 0
expect_err_empty
check
cmp -s "$tmp/w.onnx" "$tmp/w-default.onnx" || fail "-o absent: stdout output differs"

# the model on stdin
"$PROG" --mode weight-only - -o "$tmp/w-stdin.onnx" <"$tb" >"$tmp/out" 2>"$tmp/err"
rc=$?
last="pare-quantize --mode weight-only - <model"
expect_rc 0
expect_out "<stdin> -> "
check
cmp -s "$tmp/w.onnx" "$tmp/w-stdin.onnx" || fail "stdin input gives other bytes"

# .onnx.gz: a gzip stream of the same model, which pare-run reads
run "$PROG" --mode fp16 "$cnn" -o "$tmp/h.onnx"
expect_rc 0
run "$PROG" --mode fp16 "$cnn" -o "$tmp/h.onnx.gz"
expect_rc 0
check
[ "$(od -An -tx1 -N2 "$tmp/h.onnx.gz" | tr -d ' ')" = 1f8b ] || fail "h.onnx.gz is not gzip"
check
gzip -dc "$tmp/h.onnx.gz" | cmp -s - "$tmp/h.onnx" || fail ".onnx.gz does not hold the model"
gate "$tmp/h.onnx.gz" "$cnn" "$val" --min-cosine 0.999

# a gzip input
run "$PROG" --mode fp16 "$TESTDATA/cnn_digits.onnx.gz" -o "$tmp/h2.onnx"
expect_rc 0
check
cmp -s "$tmp/h.onnx" "$tmp/h2.onnx" || fail "gzip input gives other bytes"
run "$PROG" --mode fp16 --max-decompressed 1K "$TESTDATA/cnn_digits.onnx.gz" -o "$tmp/h3.onnx"
expect_rc 1
expect_one_error
expect_no_file "$tmp/h3.onnx"

# external data: tensors of at least 1K go to FILE.data
run "$PROG" --mode fp16 --external-data 1K "$tb" -o "$tmp/ext.onnx"
expect_rc 0
expect_file "$tmp/ext.onnx.data"
check
[ "$(wc -c <"$tmp/ext.onnx")" -lt 20000 ] || fail "ext.onnx still holds the weights"
run "$PROG" --mode fp16 "$tb" -o "$tmp/emb.onnx"
expect_rc 0
gate "$tmp/ext.onnx" "$tmp/emb.onnx" "$tdata" --atol 0
# an input with external data gets external data by default (1K threshold)
run "$PROG" --mode fp16 "$TESTDATA/mlp_external/model.onnx" -o "$tmp/mlp16.onnx"
expect_rc 0
expect_file "$tmp/mlp16.onnx.data"
gate "$tmp/mlp16.onnx" "$TESTDATA/mlp_external/model.onnx" "$TESTDATA/mlp_external_data.npz" \
    --min-cosine 0.999

# determinism: the same input and options give the same bytes
for args in "--mode static --calibrate $train --calib-samples 200" "--mode dynamic" \
    "--mode weight-only --algo gptq --calibrate $tdata" "--mode bf16" \
    "--mode fp8 --calibrate $train --calib-samples 100"; do
    case $args in *gptq*|*dynamic*) m=$tb ;; *) m=$cnn ;; esac
    # shellcheck disable=SC2086
    run "$PROG" $args "$m" -o "$tmp/d1.onnx"
    expect_rc 0
    # shellcheck disable=SC2086
    run "$PROG" $args "$m" -o "$tmp/d2.onnx"
    expect_rc 0
    check
    cmp -s "$tmp/d1.onnx" "$tmp/d2.onnx" || fail "two runs of '$args' differ"
    rm -f "$tmp/d1.onnx" "$tmp/d2.onnx"
done

# --json on stdout; --report FILE (text or JSON) with the model on stdout
run "$PROG" --mode fp16 "$cnn" -o "$tmp/j.onnx" --json
expect_rc 0
expect_qjson
expect_out '"mode": "fp16"'
expect_out '"written": true'
expect_out '"quantization": {'
expect_out '"nodes_quantized": '
expect_out '"weight_bytes_before": 243624,'
expect_out '"validation": null'
expect_out '"accuracy_aware": null'
expect_out '"peak_rss_bytes": '
"$PROG" --mode fp16 --json --report "$tmp/r.json" - -o - <"$cnn" >"$tmp/j2.onnx" 2>"$tmp/err"
rc=$?
last="pare-quantize --mode fp16 --json --report r.json - -o -"
expect_rc 0
expect_err_empty
expect_qjson "$tmp/r.json"
check
cmp -s "$tmp/j.onnx" "$tmp/j2.onnx" || fail "the model on stdout differs"
run "$PROG" --mode fp16 --report "$tmp/r.txt" "$cnn" -o "$tmp/j3.onnx"
expect_rc 0
expect_out_empty
check
grep -q "^quantized: " "$tmp/r.txt" || fail "--report FILE lacks the text report"

# no partial output: a failure leaves an existing target as it was and no
# temporary file behind
mkdir "$tmp/o"
echo old >"$tmp/o/q.onnx"
echo old >"$tmp/o/r.json"
run "$PROG" --mode static --calibrate "$tdata" "$cnn" -o "$tmp/o/q.onnx" --json \
    --report "$tmp/o/r.json"
expect_rc 1
expect_one_error
check
[ "$(cat "$tmp/o/q.onnx")" = old ] || fail "a failed run changed the output"
check
[ "$(cat "$tmp/o/r.json")" = old ] || fail "a failed run changed the report"
run "$PROG" --mode dynamic --exclude-nodes no_such_node "$cnn" -o "$tmp/o/q.onnx"
expect_rc 2
check
[ "$(cat "$tmp/o/q.onnx")" = old ] || fail "a failed run changed the output"
check
[ "$(ls "$tmp/o" | wc -l | tr -d ' ')" = 2 ] || fail "files left behind: $(ls "$tmp/o")"

# --seed: with fewer calibration samples than the data, the same seed draws
# the same samples (same bytes), another seed other samples (other ranges),
# and seed 0 the first samples in file order
for s in 1 1b 2 0; do
    run "$PROG" -q --mode static --calibrate "$train" --calib-samples 64 --calib-method minmax \
        --seed "${s%b}" "$cnn" -o "$tmp/seed$s.onnx"
    expect_rc 0
done
run "$PROG" -q --mode static --calibrate "$train" --calib-samples 64 --calib-method minmax \
    "$cnn" -o "$tmp/first.onnx"
expect_rc 0
check
cmp -s "$tmp/seed1.onnx" "$tmp/seed1b.onnx" || fail "--seed 1 twice gave other bytes"
cmp -s "$tmp/seed1.onnx" "$tmp/seed2.onnx" && fail "--seed 1 and --seed 2 gave the same model"
cmp -s "$tmp/seed0.onnx" "$tmp/first.onnx" || fail "--seed 0 is not the first samples"
cmp -s "$tmp/seed1.onnx" "$tmp/first.onnx" && fail "--seed 1 took the first samples"
finish
