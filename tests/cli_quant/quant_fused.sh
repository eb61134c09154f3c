#!/bin/sh
# What pare-quantize --mode static writes runs in pare-run as 8-bit kernels
# (the executor's QDQ fusion, pare/exec.h): DequantizeLinear -> Conv [-> Relu]
# -> QuantizeLinear and the QDQ residual Add are one kernel each, MaxPool and
# Flatten run on the 8-bit data, for uint8
# and int8 activations; the fused run is as accurate as the unfused one
# (PARE_NO_FUSION=1) and close to the float model.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/common.sh"

for at in uint8 int8; do
    run "$PROG" --mode static --activation-type "$at" --calibrate "$train" --calib-samples 256 \
        -q "$cnn" -o "$tmp/q_$at.onnx"
    expect_rc 0
    run "$PARE_RUN" --plan "$tmp/q_$at.onnx"
    expect_rc 0
    for c in conv1 conv2 conv3 proj; do
        expect_out_re "^$c +Conv +cpu +Conv/1\(float32,float32,float32\) +8-bit QDQ kernel: reads [^ ]+_quantized, writes [^ ]+_quantized$"
    done
    expect_out_re '^residual +Add +cpu +Add/1\(float32,float32\) +8-bit QDQ kernel: reads relu3_out_quantized and proj_out_quantized, writes res_out_quantized$'
    expect_out_re '^relu1 +Relu +cpu +Relu/1\(float32\) +Relu fused into conv1$'
    expect_out_re '^relu1_out_QuantizeLinear +QuantizeLinear +cpu .* QuantizeLinear fused into conv1$'
    expect_out_re '^conv1.weight_bnfold_DequantizeLinear +DequantizeLinear +cpu .* DequantizeLinear fused into conv1$'
    # the pooled activation is read by conv3 and proj: its DequantizeLinear
    # has nothing left to do
    expect_out_re '^pool_out_DequantizeLinear +DequantizeLinear +cpu .* DequantizeLinear fused into conv3$'
    # MaxPool and Flatten keep their input's scale: they run on the 8-bit data
    expect_out_re '^pool +MaxPool +cpu +MaxPool/1\(float32\) +8-bit QDQ kernel: reads relu2_out_quantized, writes pool_out_quantized$'
    expect_out_re '^flatten +Flatten +cpu +Flatten/1\(float32\) +8-bit QDQ kernel: reads gap_out_quantized, writes flat_out_quantized$'
    # the classifier's Gemm: the integer product, dequantized once into the
    # float logits
    expect_out_re '^fc +Gemm +cpu +Gemm/1\(float32,float32,float32\) +8-bit QDQ kernel: reads flat_out_quantized, writes logits$'
    check
    [ "$(grep -c '8-bit QDQ kernel' "$tmp/out")" -eq 8 ] || fail "$at: expected 8 fused QDQ kernels"
    run env PARE_NO_FUSION=1 "$PARE_RUN" --plan "$tmp/q_$at.onnx"
    expect_rc 0
    expect_no_out_text "8-bit QDQ"

    # accuracy on the validation set: fused and unfused agree, both close
    # to the float model
    for f in 0 1; do
        run env PARE_NO_FUSION=$f "$PARE_RUN" -r "$cnn" -i "$val" --labels "$labels" -n 1 \
            --warmup 0 --min-cosine 0.999 --min-top1-agreement 0.99 "$tmp/q_$at.onnx"
        expect_rc 0
        check
        sed -n 's/^logits .* \([0-9.]*\)\/[0-9.]*$/\1/p' "$tmp/out" >"$tmp/acc$f"
        [ -s "$tmp/acc$f" ] || fail "$at: no accuracy figure (PARE_NO_FUSION=$f)"
    done
    check
    cmp -s "$tmp/acc0" "$tmp/acc1" ||
        fail "$at: fused accuracy $(cat "$tmp/acc0") != unfused $(cat "$tmp/acc1")"
done

finish
