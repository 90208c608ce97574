#!/bin/sh
# The Zig toolchain: zig, from the ziglang package on PyPI.
set -eu
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import ziglang" 2>/dev/null && exit 0
"$PYTHON" -m pip install --quiet ziglang
