#!/bin/sh
# The Zig toolchain: zig, from the ziglang package on PyPI.
#
#   install.sh [--check]    --check: install nothing; say what is missing
#                           (exit status 1) or nothing (0)
set -eu
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import ziglang" 2>/dev/null && exit 0
[ "${1:-}" = --check ] && { echo "zig (PyPI ziglang, for $PYTHON)"; exit 1; }
"$PYTHON" -m pip install --quiet ziglang
