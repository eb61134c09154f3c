#!/bin/sh
# Runs the light model zoo; needs PARE_LIGHT_MODELS; skips otherwise.
if [ -z "${PARE_LIGHT_MODELS:-}" ] || [ ! -d "$PARE_LIGHT_MODELS" ]; then
    echo "PARE_LIGHT_MODELS not set: skipping (scripts/test-all sets it)"
    exit 77
fi
exec "$1" "$PARE_LIGHT_MODELS"
