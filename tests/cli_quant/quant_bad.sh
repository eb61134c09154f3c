#!/bin/sh
# pare-quantize: bad input exits 1 with one line that names the file and the
# problem, and writes nothing.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/common.sh"
out=$tmp/q.onnx

# bad1 FILE-IN-MESSAGE TEXT ARGS...: exit 1, one error line, TEXT in it, no output
bad1() {
    file=$1
    text=$2
    shift 2
    run "$PROG" "$@"
    expect_rc 1
    expect_one_error "$file"
    expect_err "$text"
    expect_no_file "$out"
}
bad1 "$tmp/none.onnx" "No such file" --mode dynamic "$tmp/none.onnx" -o "$out"
bad1 "$val" "" --mode dynamic "$val" -o "$out"
# calibration data that does not fit: the model's expected signature
bad1 "$tdata" "the model expects 'input' float32" --mode static --calibrate "$tdata" \
    "$cnn" -o "$out"
bad1 "$tmp/none.npz" "" --mode static --calibrate "$tmp/none.npz" "$cnn" -o "$out"
bad1 "$val" "the model expects 'x' float32" --mode weight-only --algo gptq \
    --calibrate "$val" "$tb" -o "$out"
bad1 "$tdata" "the model expects" --mode dynamic --validate "$tdata" "$cnn" -o "$out"
bad1 "$TESTDATA/transformer_block_ref.npz" "labels are float32; expected int64 or int32" \
    --mode dynamic --validate "$val" --labels "$TESTDATA/transformer_block_ref.npz" "$cnn" \
    -o "$out"
bad1 "$tmp/none.npy" "" --mode dynamic --validate "$val" --labels "$tmp/none.npy" "$cnn" \
    -o "$out"
# names that are not in the model: usage errors (exit 2, quant_usage.sh)
# fewer labels than samples
bad1 "$labels" "360 labels for 1437 samples" --mode dynamic --validate "$train" \
    --labels "$labels" "$cnn" -o "$out"

# an already quantized model is refused unless --requantize
run "$PROG" --mode weight-only "$tb" -o "$tmp/w.onnx"
expect_rc 0
bad1 "$tmp/w.onnx" "already quantized" --mode weight-only "$tmp/w.onnx" -o "$out"
expect_err "--requantize"
run "$PROG" --mode dynamic "$tb" -o "$tmp/d.onnx"
expect_rc 0
bad1 "$tmp/d.onnx" "already quantized (it has quantized node" --mode fp16 "$tmp/d.onnx" -o "$out"
run "$PROG" --mode fp16 --requantize "$tmp/w.onnx" -o "$tmp/w16.onnx"
expect_rc 0
gate "$tmp/w16.onnx" "$tb" "$tdata" --min-cosine 0.98
finish
