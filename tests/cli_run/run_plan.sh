#!/bin/sh
# pare-run --plan: the node table of testdata/cnn_digits.onnx (backend,
# kernel and the dtypes it was chosen for), devices, and plan-time errors.
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
cf=$TESTDATA/control_flow.onnx
need "$cnn" "$cf" "$TESTDATA/lossless.onnx"

run "$PROG" --plan "$cnn"
expect_rc 0
expect_err_empty
expect_out_re '^node +op +backend +kernel\(input dtypes\) +note$'
# every node, in the order it runs, on the CPU with the kernel for float32
expect_out_re '^conv1 +Conv +cpu +Conv/1\(float32,float32\)$'
# fusion (pare/exec.h): bn1 and relu1 run inside conv1, the residual Add
# inside proj
expect_out_re '^bn1 +BatchNormalization +cpu +BatchNormalization/1\(float32,float32,float32,float32,float32\) +BatchNormalization fused into conv1$'
expect_out_re '^relu1 +Relu +cpu +Relu/1\(float32\) +Relu fused into conv1$'
expect_out_re '^conv2 +Conv +cpu +Conv/1\(float32,float32,float32\)$'
expect_out_re '^pool +MaxPool +cpu +MaxPool/1\(float32\)$'
expect_out_re '^residual +Add +cpu +Add/1\(float32,float32\) +Add fused into proj$'
expect_out_re '^gap +GlobalAveragePool +cpu +GlobalAveragePool/1\(float32\)$'
expect_out_re '^flatten +Flatten +cpu +Flatten/1\(float32\)$'
expect_out_re '^fc +Gemm +cpu +Gemm/1\(float32,float32,float32\)$'
check
[ "$(wc -l <"$tmp/out" | tr -d ' ')" -eq 15 ] || fail "expected a header and 14 nodes"
check
[ "$(sed -n '2p;$p' "$tmp/out" | awk '{print $1}' | tr '\n' ' ')" = "conv1 fc " ] ||
    fail "conv1 should run first and fc last"
# a CPU-only plan has no copies and no fallbacks
expect_no_out_text "copy:"
expect_no_out_text "fallback"
cp "$tmp/out" "$tmp/plan_cpu"
[ "$(grep -c ' fused into ' "$tmp/out")" -eq 6 ] || fail "expected 6 fused nodes"

# PARE_NO_FUSION=1: every node runs on its own
run env PARE_NO_FUSION=1 "$PROG" --plan "$cnn"
expect_rc 0
expect_out_re '^relu1 +Relu +cpu +Relu/1\(float32\)$'
expect_no_out_text "fused"

# the executor's switches for comparisons (pare(7)) change no output bit:
# PARE_CONV_PHASE=0 (im2col packed per call instead of phase planes, which
# conv2 takes at batch 1) and PARE_POOL_SPIN_US (0: idle threads sleep at
# once; a value out of range is ignored)
for b in 1 4; do
    run "$PROG" -t 2 --batch "$b" --iterations 1 --warmup 0 --save-outputs "$tmp/base.npz" "$cnn"
    expect_rc 0
    for e in PARE_CONV_PHASE=0 PARE_POOL_SPIN_US=0 PARE_POOL_SPIN_US=-5; do
        run env "$e" "$PROG" -t 2 --batch "$b" --iterations 1 --warmup 0 \
            --save-outputs "$tmp/env.npz" "$cnn"
        expect_rc 0
        cmp -s "$tmp/base.npz" "$tmp/env.npz" || fail "$e changed the outputs at batch $b"
    done
done

# cuda without a usable GPU fails cleanly when the model is loaded: in a
# build without CUDA, or (PARE_HAVE_CUDA=1) with the driver's reason
run "$PROG" --plan --device cuda "$cnn"
if [ "${PARE_HAVE_CUDA:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    echo "a GPU is usable: the no-GPU checks of --device are skipped"
else
    expect_rc 1
    expect_one_error "$cnn"
    if [ "${PARE_HAVE_CUDA:-0}" = 1 ]; then
        expect_err "device 'cuda' is not usable: "
    else
        expect_err "pare was built without CUDA"
    fi
    expect_out_empty

    # auto without a usable GPU: the same plan
    run "$PROG" --plan --device auto "$cnn"
    expect_rc 0
    check
    cmp -s "$tmp/out" "$tmp/plan_cpu" || fail "--device auto planned differently from cpu"
fi

# control flow: If, Loop and Scan on the CPU; an omitted input shows as -
run "$PROG" --plan "$cf"
expect_rc 0
expect_out_re '^if +If +cpu +If/1\(bool\)$'
expect_out_re '^loop +Loop +cpu +Loop/1\(int64,-,float32\)$'
expect_out_re '^scan +Scan +cpu +Scan/9\(float32,float32\)$'

# an op no backend has: a plan-time error naming node, op, domain and opset
run "$PROG" --plan "$TESTDATA/lossless.onnx"
expect_rc 1
expect_one_error "$TESTDATA/lossless.onnx"
expect_err "node 'call_fn' (ScaleAdd, domain 'pare.fn', opset 1): no kernel for the op on cpu"
expect_out_empty

finish
