#!/bin/sh
# pare-quantize: every mode end to end on testdata, each result gated by
# pare-run against the original (the quality bars of the issue, through the CLI).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/common.sh"

# static int8 per-channel on the CNN: accuracy within 1 point, top-1
# agreement >= 99%, weights <= 0.3x
run "$PROG" --mode static --calibrate "$train" --calib-samples 256 "$cnn" -o "$tmp/static.onnx" \
    --validate "$val" --labels "$labels" --json
expect_rc 0
expect_qjson
expect_le "$(jnum weight_ratio)" 0.3 "static int8 weight ratio"
expect_le "$(jnum drop)" 0.01 "static int8 accuracy drop"
expect_le 1 "$(jnum nodes_quantized)" "static int8 quantized nodes"
gate "$tmp/static.onnx" "$cnn" "$val" --labels "$labels" --max-accuracy-drop 0.01 \
    --min-top1-agreement 0.99

# other calibration methods and types
for m in minmax entropy mse; do
    run "$PROG" --mode static --calibrate "$train" --calib-samples 128 --calib-method "$m" \
        --per-tensor "$cnn" -o "$tmp/static-$m.onnx"
    expect_rc 0
    expect_out "$m calibration"
    gate "$tmp/static-$m.onnx" "$cnn" "$val" --min-top1-agreement 0.97
done
run "$PROG" --mode static --calibrate "$train" --calib-samples 128 --calib-method minmax \
    --moving-average --activation-type int8 --percentile 99.9 "$cnn" -o "$tmp/x.onnx"
expect_rc 2
run "$PROG" --mode static --calibrate "$train" --calib-samples 128 --calib-method minmax \
    --moving-average --activation-type int8 --calib-batch 16 --threads 1 --seed 7 \
    --device auto "$cnn" -o "$tmp/static-int8.onnx"
expect_rc 0
expect_out "int8 activations"
gate "$tmp/static-int8.onnx" "$cnn" "$val" --min-top1-agreement 0.97
run "$PROG" --mode static --calibrate "$train" --calib-samples 64 --percentile 99.99 \
    --per-channel --device cpu "$cnn" -o "$tmp/static-p.onnx"
expect_rc 0
expect_out "percentile 99.99 calibration"

# which nodes: --op-types, --exclude-nodes, --exclude-op-types (left float, with why)
run "$PROG" --mode static --calibrate "$train" --calib-samples 64 --op-types Conv,Add,MaxPool \
    --exclude-nodes conv3 --exclude-op-types Add "$cnn" -o "$tmp/static-f.onnx" -v
expect_rc 0
expect_out_re '^  fc +Gemm'
expect_out_re '^  conv3 +Conv'
expect_out_re '^  residual +Add'
gate "$tmp/static-f.onnx" "$cnn" "$val" --min-top1-agreement 0.98

# SmoothQuant on the transformer
run "$PROG" --mode static --calibrate "$tdata" --smooth-quant 0.5 "$tb" -o "$tmp/sq.onnx" \
    --validate "$tdata" --json
expect_rc 0
expect_qjson
gate "$tmp/sq.onnx" "$tb" "$tdata" --min-cosine 0.98

# dynamic int8: the transformer keeps cosine >= 0.99 on every output
run "$PROG" --mode dynamic "$tb" -o "$tmp/dyn.onnx" --validate "$tdata" --metric cosine --json
expect_rc 0
expect_qjson
expect_le "$(jnum drop)" 0.01 "dynamic int8 1 - cosine"
gate "$tmp/dyn.onnx" "$tb" "$tdata" --min-cosine 0.99
run "$PROG" --mode dynamic --per-tensor "$cnn" -o "$tmp/dyn-cnn.onnx"
expect_rc 0
expect_out "per-tensor weights"
gate "$tmp/dyn-cnn.onnx" "$cnn" "$val" --min-top1-agreement 0.97

# weight-only int4 block 32: GPTQ has a lower output error than RTN
run "$PROG" --mode weight-only --bits 4 --block-size 32 --algo rtn "$tb" -o "$tmp/rtn.onnx" \
    --validate "$tdata" --metric rel-l2 --json
expect_rc 0
expect_qjson
rtn=$(jnum drop)
run "$PROG" --mode weight-only --bits 4 --block-size 32 --algo gptq --calibrate "$tdata" \
    --damp 0.01 "$tb" -o "$tmp/gptq.onnx" --validate "$tdata" --metric rel-l2 --json
expect_rc 0
expect_qjson
gptq=$(jnum drop)
expect_lt "$gptq" "$rtn" "GPTQ rel L2 below RTN's"
gate "$tmp/gptq.onnx" "$tb" "$tdata" --min-cosine 0.98
run "$PROG" --mode weight-only --algo gptq --act-order --calibrate "$tdata" --calib-samples 32 \
    "$tb" -o "$tmp/gptq-ao.onnx"
expect_rc 0
expect_out "GPTQ"
gate "$tmp/gptq-ao.onnx" "$tb" "$tdata" --min-cosine 0.98
run "$PROG" --mode weight-only --format matmulnbits --block-size 64 "$tb" -o "$tmp/nbits.onnx"
expect_rc 0
expect_out "MatMulNBits"
gate "$tmp/nbits.onnx" "$tb" "$tdata" --min-cosine 0.98
run "$PROG" --mode weight-only --bits 8 --symmetric --block-size 128 --embeddings "$tb" \
    -o "$tmp/w8.onnx"
expect_rc 0
expect_out "weight-only int8"
gate "$tmp/w8.onnx" "$tb" "$tdata" --min-cosine 0.999

# fp16 / bf16
run "$PROG" --mode fp16 "$cnn" -o "$tmp/fp16.onnx"
expect_rc 0
gate "$tmp/fp16.onnx" "$cnn" "$val" --min-cosine 0.999 --min-top1-agreement 1
run "$PROG" --mode fp16 --keep-io-types "$tb" -o "$tmp/fp16-tb.onnx"
expect_rc 0
gate "$tmp/fp16-tb.onnx" "$tb" "$tdata" --min-cosine 0.999
# bf16: by default bfloat16 weights with float32 compute (onnxruntime's CPU
# provider has no bfloat16 Conv/MatMul/Gemm); --bf16-compute converts compute
run "$PROG" --mode bf16 "$cnn" -o "$tmp/bf16.onnx" --json
expect_rc 0
expect_qjson
expect_out '"compute": "float32"'
expect_le "$(jnum weight_ratio)" 0.55 "bf16 weights, weight ratio"
gate "$tmp/bf16.onnx" "$cnn" "$val" --min-cosine 0.999 --min-top1-agreement 1
run "$PROG" --mode bf16 "$cnn" -o "$tmp/bf16.onnx"
expect_rc 0
expect_out "bf16 weights, float32 compute"
expect_out "bfloat16 weights, float32 compute"
run "$PROG" --mode bf16 --bf16-compute "$cnn" -o "$tmp/bf16c.onnx" --json
expect_rc 0
expect_qjson
expect_out '"compute": "bfloat16"'
gate "$tmp/bf16c.onnx" "$cnn" "$val" --min-cosine 0.99
run "$PROG" --mode bf16 --bf16-compute --no-keep-io-types "$tb" -o "$tmp/bf16c-io.onnx"
expect_rc 0
expect_out "inputs and outputs converted"
run "$PROG" --mode fp16 --block-ops Gemm --block-nodes conv3 "$cnn" -o "$tmp/fp16-b.onnx"
expect_rc 0
expect_out_re '^  fc +Gemm'
expect_out_re '^  conv3 +Conv'
gate "$tmp/fp16-b.onnx" "$cnn" "$val" --min-cosine 0.999
run "$PROG" --mode fp16 --no-default-block-list "$cnn" -o "$tmp/fp16-n.onnx"
expect_rc 0
# inputs become float16: --validate converts the data
run "$PROG" --mode fp16 --no-keep-io-types "$cnn" -o "$tmp/fp16-io.onnx" --validate "$val" --json
expect_rc 0
expect_qjson
expect_le "$(jnum drop)" 0.01 "fp16 with float16 inputs, top-1 drop"

# fp8 e4m3fn QDQ
run "$PROG" --mode fp8 --calibrate "$train" --calib-samples 128 "$cnn" -o "$tmp/fp8.onnx"
expect_rc 0
expect_out "fp8 e4m3fn"
gate "$tmp/fp8.onnx" "$cnn" "$val" --min-top1-agreement 0.97
finish
