#!/bin/sh
# Installs what sdk/python/build.sh needs: componentize-py (PyPI, in
# $PYTHON's environment; it carries its own CPython for wasm32-wasi).
# Idempotent; a no-op when it is there.
set -eu
# -P: fless fn build runs this through fless/sdk, a link to sdk/; the
# toolchain lives in the checkout's .cache/sdk, next to the real sdk/.
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

installed=$("$PYTHON" -c "import importlib.metadata as m; print(m.version('componentize-py'))" \
    2>/dev/null || true)
if [ "$installed" != "$COMPONENTIZE_PY_VERSION" ]; then
    "$PYTHON" -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
