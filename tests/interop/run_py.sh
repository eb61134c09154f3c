#!/bin/sh
# Runs a Python check with the test environment's interpreter (PARE_PYTHON,
# which has the pinned onnx/onnxruntime); skips when there is none.
py=${PARE_PYTHON:-}
if [ -z "$py" ] || ! "$py" -c 'import onnx, onnxruntime' 2>/dev/null; then
    echo "PARE_PYTHON with onnx and onnxruntime not available: skipping"
    exit 77
fi
exec "$py" "$@"
