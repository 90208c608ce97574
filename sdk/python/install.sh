#!/bin/sh
# Installs what sdk/python/build.sh needs: componentize-py (PyPI, in
# $PYTHON's environment; it carries its own CPython for wasm32-wasi).
# Idempotent; a no-op when it is there.
#
#   install.sh [--check]    --check: install nothing; say what is missing
#                           (exit status 1) or nothing (0)
set -eu
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

if [ "${1:-}" = --check ]; then
    missing() { echo "$1"; exit 1; }
    need_toolchain
    exit 0
fi

installed=$("$PYTHON" -c "import importlib.metadata as m; print(m.version('componentize-py'))" \
    2>/dev/null || true)
if [ "$installed" != "$COMPONENTIZE_PY_VERSION" ]; then
    "$PYTHON" -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
