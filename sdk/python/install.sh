#!/bin/sh
# Installs what sdk/python/build.sh needs: componentize-py (PyPI, in
# $PYTHON's environment; it carries its own CPython for wasm32-wasi).
# Idempotent; a no-op when it is there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

if [ "$("$PYTHON" -m pip show componentize-py 2>/dev/null | sed -n 's/^Version: //p')" \
     != "$COMPONENTIZE_PY_VERSION" ]; then
    "$PYTHON" -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
