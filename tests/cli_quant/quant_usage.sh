#!/bin/sh
# pare-quantize: --help, --version, usage errors (exit 2, one line naming the option).
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
train=$TESTDATA/digits_train.npz
val=$TESTDATA/digits_val.npz
need "$cnn" "$train" "$val"
out=$tmp/q.onnx

run "$PROG" --help
expect_rc 0
for opt in "--mode MODE" --requantize "--calibrate DATA" "--calib-samples N" "--calib-batch N" \
    "--seed N" "--threads N" "--device DEV" "--op-types OPS" "--exclude-nodes NAMES" \
    "--exclude-op-types OPS" "--calib-method M" "--percentile P" --moving-average \
    "--activation-type T" --per-channel --per-tensor "--smooth-quant ALPHA" "--bits N" \
    "--block-size N" --symmetric "--format F" "--algo A" "--damp X" --act-order --embeddings \
    --keep-io-types --no-keep-io-types "--block-ops OPS" "--block-nodes NAMES" \
    --no-default-block-list --bf16-compute "--validate DATA" "--labels FILE" "--metric M" \
    "--max-accuracy-drop X" --write-best "--output FILE" "--external-data BYTES" --json \
    "--report FILE" "--max-decompressed BYTES" --quiet --verbose; do
    expect_out "$opt"
done
run "$PROG" --version
expect_rc 0
expect_out_re '^pare-quantize \(pare\) [0-9]+\.[0-9]+\.[0-9]+$'

# usage TEXT ARGS...: exit 2, one error line that contains TEXT, no output
usage() {
    text=$1
    shift
    run "$PROG" "$@"
    expect_rc 2
    expect_one_error
    expect_err "$text"
    expect_out_empty
    check
    [ ! -e "$out" ] || { fail "wrote $out on a usage error"; rm -f "$out"; }
}
usage "missing MODEL" --mode dynamic
usage "--mode is required" "$cnn" -o "$out"
usage "'int4' is not one of" --mode int4 "$cnn" -o "$out"
usage "unknown option '--bogus'" --mode dynamic --bogus "$cnn" -o "$out"
usage "needs --calibrate" --mode static "$cnn" -o "$out"
usage "needs --calibrate" --mode fp8 "$cnn" -o "$out"
usage "--mode weight-only --algo gptq needs --calibrate" --mode weight-only --algo gptq "$cnn" \
    -o "$out"
usage "--calibrate applies to" --mode dynamic --calibrate "$train" "$cnn" -o "$out"
usage "--calibrate applies to" --mode weight-only --calibrate "$train" "$cnn" -o "$out"
usage "--calib-samples needs --calibrate" --mode dynamic --calib-samples 10 "$cnn" -o "$out"
usage "--calib-batch needs --calibrate" --mode dynamic --calib-batch 4 "$cnn" -o "$out"
usage "--calib-samples" --mode static --calibrate "$train" --calib-samples 0 "$cnn" -o "$out"
usage "--device must be cpu, cuda or auto" --mode dynamic --device tpu "$cnn" -o "$out"
usage "--bits applies to --mode weight-only" --mode dynamic --bits 4 "$cnn" -o "$out"
usage "--block-size applies to --mode weight-only" --mode dynamic --block-size 32 "$cnn" -o "$out"
usage "--symmetric applies to" --mode fp16 --symmetric "$cnn" -o "$out"
usage "--format applies to" --mode dynamic --format qdq "$cnn" -o "$out"
usage "--algo applies to" --mode dynamic --algo rtn "$cnn" -o "$out"
usage "--embeddings applies to" --mode dynamic --embeddings "$cnn" -o "$out"
usage "'nbits' is not one of" --mode weight-only --format nbits "$cnn" -o "$out"
usage "--bits must be 4 or 8" --mode weight-only --bits 3 "$cnn" -o "$out"
usage "--block-size must be 32, 64 or 128" --mode weight-only --block-size 48 "$cnn" -o "$out"
usage "--damp goes with --algo gptq" --mode weight-only --damp 0.1 "$cnn" -o "$out"
usage "--act-order goes with --algo gptq" --mode weight-only --act-order "$cnn" -o "$out"
usage "--damp" --mode weight-only --algo gptq --calibrate "$train" --damp 2 "$cnn" -o "$out"
usage "--per-channel and --per-tensor exclude each other" --mode dynamic --per-channel \
    --per-tensor "$cnn" -o "$out"
usage "--per-tensor applies to" --mode weight-only --per-tensor "$cnn" -o "$out"
usage "--per-channel applies to" --mode fp16 --per-channel "$cnn" -o "$out"
usage "--calib-method applies to" --mode dynamic --calib-method minmax "$cnn" -o "$out"
usage "'kl' is not one of" --mode static --calibrate "$train" --calib-method kl "$cnn" -o "$out"
usage "--percentile applies to" --mode dynamic --percentile 99.9 "$cnn" -o "$out"
usage "--percentile goes with --calib-method percentile" --mode static --calibrate "$train" \
    --calib-method minmax --percentile 99 "$cnn" -o "$out"
usage "--percentile must be above 0" --mode static --calibrate "$train" --percentile 0 "$cnn" \
    -o "$out"
usage "--percentile" --mode static --calibrate "$train" --percentile 101 "$cnn" -o "$out"
usage "--moving-average goes with --calib-method minmax" --mode static --calibrate "$train" \
    --moving-average "$cnn" -o "$out"
usage "--moving-average applies to" --mode dynamic --moving-average "$cnn" -o "$out"
usage "--activation-type applies to --mode static" --mode fp8 --calibrate "$train" \
    --activation-type int8 "$cnn" -o "$out"
usage "'int16' is not one of" --mode static --calibrate "$train" --activation-type int16 "$cnn" \
    -o "$out"
usage "--smooth-quant applies to --mode static" --mode dynamic --smooth-quant 0.5 "$cnn" -o "$out"
usage "--smooth-quant ALPHA must be above 0" --mode static --calibrate "$train" --smooth-quant 0 \
    "$cnn" -o "$out"
usage "--smooth-quant" --mode static --calibrate "$train" --smooth-quant 1.5 "$cnn" -o "$out"
usage "--op-types applies to" --mode fp16 --op-types Conv "$cnn" -o "$out"
usage "--exclude-nodes applies to" --mode bf16 --exclude-nodes conv1 "$cnn" -o "$out"
usage "--exclude-op-types applies to" --mode fp16 --exclude-op-types Conv "$cnn" -o "$out"
usage "--keep-io-types applies to --mode fp16 and bf16" --mode dynamic --keep-io-types "$cnn" \
    -o "$out"
usage "--no-keep-io-types applies to" --mode weight-only --no-keep-io-types "$cnn" -o "$out"
usage "--block-ops applies to" --mode dynamic --block-ops Conv "$cnn" -o "$out"
usage "--block-nodes applies to" --mode dynamic --block-nodes conv1 "$cnn" -o "$out"
usage "--bf16-compute applies to --mode bf16" --mode fp16 --bf16-compute "$cnn" -o "$out"
usage "--no-keep-io-types needs --bf16-compute" --mode bf16 --no-keep-io-types "$cnn" -o "$out"
# node names that are not in the model: a usage error naming the name
usage "--exclude-nodes: no node named 'no_such_node'" --mode dynamic \
    --exclude-nodes conv1,no_such_node "$cnn" -o "$out"
usage "--exclude-nodes: no node named 'nope'" --mode static --calibrate "$train" \
    --exclude-nodes nope "$cnn" -o "$out"
usage "--block-nodes: no node named 'conv9'" --mode fp16 --block-nodes conv9 "$cnn" -o "$out"
usage "--block-nodes: no node named 'conv9'" --mode bf16 --block-nodes conv1,conv9 "$cnn" \
    -o "$out"
usage "--no-default-block-list applies to" --mode dynamic --no-default-block-list "$cnn" -o "$out"
usage "--keep-io-types and --no-keep-io-types exclude each other" --mode fp16 --keep-io-types \
    --no-keep-io-types "$cnn" -o "$out"
usage "--exclude-nodes 'a,,b': empty name" --mode dynamic --exclude-nodes a,,b "$cnn" -o "$out"
usage "--labels needs --validate" --mode dynamic --labels "$TESTDATA/digits_val_labels.npy" \
    "$cnn" -o "$out"
usage "--metric needs --validate" --mode dynamic --metric cosine "$cnn" -o "$out"
usage "--metric accuracy needs --labels" --mode dynamic --validate "$val" --metric accuracy \
    "$cnn" -o "$out"
usage "'l1' is not one of" --mode dynamic --validate "$val" --metric l1 "$cnn" -o "$out"
usage "--max-accuracy-drop needs --validate" --mode dynamic --max-accuracy-drop 0.01 "$cnn" \
    -o "$out"
usage "--max-accuracy-drop" --mode dynamic --validate "$val" --max-accuracy-drop 5 "$cnn" -o "$out"
usage "--write-best goes with --max-accuracy-drop" --mode dynamic --validate "$val" --write-best \
    "$cnn" -o "$out"
usage "--external-data needs -o FILE" --mode dynamic --external-data 1K "$cnn" -o -
usage "--json with the model on standard output needs --report" --mode dynamic --json "$cnn" -o -
usage "--report and -o name the same file" --mode dynamic --report "$out" "$cnn" -o "$out"
usage "--seed" --mode dynamic --seed -1 "$cnn" -o "$out"
usage "--threads" --mode dynamic --threads x "$cnn" -o "$out"
usage "--max-decompressed" --mode dynamic --max-decompressed 1Q "$cnn" -o "$out"
usage "unexpected argument" --mode dynamic "$cnn" "$cnn" -o "$out"
finish
