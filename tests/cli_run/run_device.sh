#!/bin/sh
# pare-run --device, --gpu, --tf32, --cuda-graph, --reference-device and the
# device fields of the report. Runs with or without a GPU:
#   PARE_HAVE_CUDA=0  a build without CUDA: cuda fails "built without CUDA"
#   PARE_HAVE_CUDA=1  a CUDA build: with no GPU usable cuda fails with the
#                     driver's reason; with one, the GPU checks run instead
#   PARE_EXPECT_GPU=1 (the gpu suite) skip (77) unless a GPU is usable
. "$(dirname "$0")/../cli/lib.sh"
cnn=$TESTDATA/cnn_digits.onnx
val=$TESTDATA/digits_val.npz
need "$cnn" "$val"
have_cuda=${PARE_HAVE_CUDA:-0}

# is a GPU usable? (--plan makes the session and exits)
run "$PROG" --plan --device cuda "$cnn"
gpu=0
[ "$rc" -eq 0 ] && gpu=1
if [ "${PARE_EXPECT_GPU:-0}" = 1 ] && [ $gpu = 0 ]; then
    echo "no GPU usable: $(cat "$tmp/err")"
    exit 77
fi

json_check() { # json_check FILE PYTHON-ASSERTIONS (d is the report)
    command -v python3 >/dev/null 2>&1 || return 0
    check
    python3 - "$1" "$2" <<'PY' || fail "JSON report: $2"
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])
PY
}

if [ $gpu = 0 ]; then
    # --device cuda without a usable GPU: one line naming the program and the
    # reason, exit 1, nothing on stdout
    run "$PROG" --device cuda -n 1 "$cnn"
    expect_rc 1
    expect_one_error "$cnn"
    expect_out_empty
    if [ "$have_cuda" = 1 ]; then
        expect_err "device 'cuda' is not usable: "
        check
        if grep -q "built without CUDA" "$tmp/err"; then fail "a CUDA build says built without CUDA"; fi
    else
        expect_err "pare was built without CUDA"
    fi
    run "$PROG" --device cuda --gpu 1 --reference-device cpu -n 1 "$cnn"
    expect_rc 1
    expect_one_error "$cnn"

    # --device auto: the CPU, and the report says so and why
    run "$PROG" --device auto -n 2 --warmup 0 "$cnn"
    expect_rc 0
    expect_out_re "^model: .*cnn_digits.onnx \([0-9]+ bytes\), device cpu, [0-9]+ threads$"
    expect_out "device: cpu (--device auto: CUDA is not usable: "
    [ "$have_cuda" = 1 ] || expect_out "pare was built without CUDA)"
    expect_no_out_text "GPU compute"
    expect_err_empty
    run "$PROG" --device auto -n 2 --warmup 0 --json "$cnn"
    expect_rc 0
    json_check "$tmp/out" '
assert d["device"] == "cpu" and d["device_requested"] == "auto", d
assert d["device_note"].startswith("--device auto: CUDA is not usable: "), d["device_note"]
assert d["gpu"] is None and d["speed"]["gpu_compute"] is None, d
assert d["nodes_device"] == 0 and d["nodes_cpu"] > 0, d
assert d["device_mem_peak_bytes"] == 0 and d["device_arena_bytes"] == 0, d
assert d["speed"]["h2d_ms"] == 0 and d["speed"]["d2h_ms"] == 0, d
assert d["speed"]["graph_replays"] == 0, d'
    # the batch sweep and the batching simulation run on the same session
    run "$PROG" --device auto --batch-sweep 1,3 --concurrency 2 --max-batch 2 --duration 0.3 \
        --warmup 0 "$cnn"
    expect_rc 0
    expect_out "device: cpu (--device auto"
    expect_out_re "^ +3 +[0-9.]+ +[0-9.]+ +[0-9.]+$"
    expect_out "dynamic batching: 2 clients"
fi

# --device cpu: the report as before, no device lines; JSON has the fields
run "$PROG" --device cpu -n 2 --warmup 0 "$cnn"
expect_rc 0
expect_out_re "^model: .*, device cpu, [0-9]+ threads$"
expect_no_out_text "device:"
expect_no_out_text "GPU"
expect_no_out_text "end to end"
run "$PROG" -n 3 --warmup 0 --json --tf32 --cuda-graph off --conv-algo heuristic --batch-sweep 1,2 "$cnn"
expect_rc 0
json_check "$tmp/out" '
assert d["schema"] == "pare-run/1" and d["device"] == "cpu", d
assert d["device_requested"] == "cpu" and d["device_note"] is None, d
assert d["tf32"] is True and d["cuda_graph"] == "off", d
assert d["conv_algo"] == "heuristic", d
assert d["speed"]["iterations"] == 3 and d["speed"]["gpu_compute"] is None, d
assert d["nodes_device"] == 0 and d["nodes_cpu"] >= 5, d
assert [b["batch"] for b in d["batch_sweep"]] == [1, 2], d
assert all(b["gpu_compute_p50_ms"] is None and b["h2d_ms"] == 0 for b in d["batch_sweep"]), d'

# --tf32 and --cuda-graph are accepted on the CPU (ignored); bad values exit 2
for m in auto on off; do
    run "$PROG" --cuda-graph $m --tf32 -n 1 --warmup 0 "$cnn"
    expect_rc 0
done
for m in search heuristic; do
    run "$PROG" --conv-algo $m -n 1 --warmup 0 "$cnn"
    expect_rc 0
done
run "$PROG" --conv-algo fastest "$cnn"
expect_rc 2
expect_one_error
expect_err "conv-algo"
run "$PROG" --cuda-graph sometimes "$cnn"
expect_rc 2
expect_one_error
expect_err "cuda-graph"
run "$PROG" --reference-device tpu "$cnn"
expect_rc 2
expect_one_error
run "$PROG" --gpu -1 "$cnn"
expect_rc 2

# --reference-device cpu without --reference: the model against itself on
# the CPU; on the CPU the comparison is exact and every gate holds
run "$PROG" --device cpu --reference-device cpu --inputs "$val" --batch 64 --samples 128 -n 1 \
    --warmup 0 --atol 0 --min-cosine 1 --min-top1-agreement 1 --per-tensor "$cnn"
expect_rc 0
expect_out_re "^reference: .*cnn_digits.onnx \([0-9]+ bytes\), device cpu$"
expect_out_re "^logits +0.000e\+00 +0.000e\+00 +0.000e\+00 +1.000000 +inf +1.0000 +1.0000 +0 +-$"
expect_out "none below cosine"
expect_err_empty
run "$PROG" --reference-device cpu --inputs "$val" --batch 64 --samples 64 -n 1 --warmup 0 \
    --json "$cnn"
expect_rc 0
json_check "$tmp/out" '
assert d["reference_device"] == "cpu" and d["reference"].endswith("cnn_digits.onnx"), d
o = d["outputs"][0]
assert o["name"] == "logits" and o["elements"] == 640 and o["max_abs"] == 0, o'
# with --reference, --reference-device names the reference run's device
run "$PROG" --reference "$cnn" --reference-device auto --inputs "$val" --batch 64 --samples 64 \
    -n 1 --warmup 0 --json "$cnn"
expect_rc 0
if [ $gpu = 0 ]; then
    json_check "$tmp/out" 'assert d["reference_device"] == "cpu", d'
else
    json_check "$tmp/out" 'assert d["reference_device"] == "cuda", d'
fi
# without a reference, accuracy gates still need one of the two
run "$PROG" --min-cosine 0.9 "$cnn"
expect_rc 2
expect_err "--reference-device"

if [ $gpu = 1 ]; then
    # a usable GPU: the device report, auto picks CUDA, GPU against CPU
    run "$PROG" --device cuda -n 5 "$cnn"
    expect_rc 0
    expect_out_re "^model: .*, device cuda \(GPU 0\), [0-9]+ threads$"
    expect_out "GPU compute ms"
    expect_out "H2D ms"
    expect_out "(end to end)"
    expect_out "GPU memory   peak"
    expect_out_re "^  nodes +[0-9]+ on cuda, [0-9]+ on the CPU$"
    run "$PROG" --device auto -n 5 --json --batch-sweep 1,4 --cuda-graph off "$cnn"
    expect_rc 0
    json_check "$tmp/out" '
assert d["device"] == "cuda" and d["device_note"].startswith("--device auto: GPU 0 is usable"), d
s = d["speed"]
assert s["gpu_compute"]["p50_ms"] > 0 and s["gpu_compute"]["p50_ms"] <= s["p99_ms"] * 1.5, s
assert s["h2d_ms"] > 0 and s["d2h_ms"] > 0 and s["graph_replays"] == 0, s
assert d["nodes_device"] > 0 and d["device_mem_peak_bytes"] > 0, d
assert all(b["gpu_compute_p50_ms"] > 0 for b in d["batch_sweep"]), d'
    run "$PROG" --device cuda --cuda-graph on -n 5 --json "$cnn"
    expect_rc 0
    json_check "$tmp/out" 'assert d["speed"]["graph_replays"] >= 1, d["speed"]'
    run "$PROG" --device cuda --reference-device cpu --inputs "$val" --batch 64 -n 2 \
        --per-tensor --min-cosine 0.9999 --min-top1-agreement 0.99 "$cnn"
    expect_rc 0
    expect_out_re "^reference: .*, device cpu$"
    run "$PROG" --device cuda --concurrency 4 --max-batch 4 --duration 0.5 -n 0 "$cnn"
    expect_rc 0
    expect_out "dynamic batching"
fi
finish
