#!/bin/sh
# pare-inspect and pare-inspect --check on every ONNX backend node test model
# and every light zoo model: each must succeed (exit 0).
# Needs PARE_NODE_TESTS and PARE_LIGHT_MODELS; skips otherwise.
inspect=$1
if [ -z "${PARE_NODE_TESTS:-}" ] || [ ! -d "$PARE_NODE_TESTS" ]; then
    echo "PARE_NODE_TESTS not set: skipping"
    exit 77
fi
pass=0 fail=0
for m in "$PARE_NODE_TESTS"/*/model.onnx ${PARE_LIGHT_MODELS:+"$PARE_LIGHT_MODELS"/*.onnx}; do
    if "$inspect" -q "$m" >/dev/null 2>/tmp/pare-inspect-all.err &&
        "$inspect" --check "$m" >/dev/null 2>>/tmp/pare-inspect-all.err; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $m: $(head -c 300 /tmp/pare-inspect-all.err)"
    fi
done
rm -f /tmp/pare-inspect-all.err
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
