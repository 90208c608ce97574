#!/bin/sh
# Installs what sdk/js/build.sh needs: zig (PyPI ziglang, in $PYTHON's
# environment) and the QuickJS sources (the quickjs-ng sdist from PyPI, kept
# in .cache/sdk/js). Idempotent; a no-op when both are there.
set -eu
# -P: fless fn build runs this through fless/sdk, a link to sdk/; the
# toolchain lives in the checkout's .cache/sdk, next to the real sdk/.
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

"$PYTHON" -c "import ziglang" 2>/dev/null || "$PYTHON" -m pip install --quiet ziglang
if [ ! -f "$cache/$QUICKJS_SDIST" ]; then
    mkdir -p "$cache"
    "$PYTHON" -m pip download --quiet --no-binary :all: --no-deps \
        "quickjs-ng==$QUICKJS_VERSION" -d "$cache"
fi
