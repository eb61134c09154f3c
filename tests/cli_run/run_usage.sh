#!/bin/sh
# pare-run: --help, --version, usage errors (exit 2).
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
need "$cnn"

run "$PROG" --help
expect_rc 0
for opt in "--inputs DATA" "--shape NAME=DIMS" "--seed N" "--batch N" "--samples N" "--warmup N" \
    "--iterations N" "--duration S" "--threads N" "--batch-sweep LIST" "--concurrency C" \
    "--max-batch B" "--max-delay-us D" "--device DEV" "--gpu N" --tf32 "--cuda-graph MODE" --plan \
    "--reference MODEL" "--reference-device DEV" \
    "--labels FILE" --per-tensor "--tensor-min-cosine X" "--save-outputs FILE.npz" "--atol X" \
    "--rtol X" "--min-cosine X" "--min-top1-agreement X" "--max-accuracy-drop X" \
    "--min-speedup X" "--max-p99-ms MS" "--max-size-ratio X" --json "--max-decompressed BYTES"; do
    expect_out "$opt"
done
run "$PROG" --version
expect_rc 0
expect_out_re '^pare-run \(pare\) [0-9]+\.[0-9]+\.[0-9]+$'

run "$PROG"
expect_rc 2
expect_one_error
run "$PROG" --bogus "$cnn"
expect_rc 2
expect_one_error
run "$PROG" --min-cosine 0.9 "$cnn"
expect_rc 2
expect_err "need --reference"
run "$PROG" --per-tensor "$cnn"
expect_rc 2
run "$PROG" --device tpu "$cnn"
expect_rc 2
expect_err "cpu, cuda or auto"
run "$PROG" --batch 0 "$cnn"
expect_rc 2
run "$PROG" --min-cosine 2 --reference "$cnn" "$cnn"
expect_rc 2
run "$PROG" --batch-sweep 1,x -n 1 "$cnn"
expect_rc 2
expect_err "batch-sweep"
run "$PROG" --shape input=1xZ "$cnn"
expect_rc 2
run "$PROG" --labels "$TESTDATA/digits_val_labels.npy" "$cnn"
expect_rc 2
expect_err "needs --inputs"
finish
