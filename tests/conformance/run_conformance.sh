#!/bin/sh
# Runs the ONNX backend node tests with the committed ratchet.
# Needs PARE_NODE_TESTS (the onnx package's backend/test/data/node); skips otherwise.
runner=$1 ratchet=$2
if [ -z "${PARE_NODE_TESTS:-}" ] || [ ! -d "$PARE_NODE_TESTS" ]; then
    echo "PARE_NODE_TESTS not set: skipping (scripts/test-all sets it)"
    exit 77
fi
exec "$runner" --min-pass-file "$ratchet" "$PARE_NODE_TESTS"
