#!/bin/sh
# Installs what sdk/js/build.sh needs: zig (PyPI ziglang, in $PYTHON's
# environment) and the QuickJS sources (the quickjs-ng sdist from PyPI, kept
# in $FLESS_SDK_CACHE/js), then builds the engine once, so that the first
# function build takes seconds. Idempotent; a no-op when all is there.
#
#   install.sh [--check]    --check: install nothing; say what is missing
#                           (exit status 1) or nothing (0)
set -eu
# -P: fless runs this through fless/sdk, a link to sdk/ in a checkout,
# whose toolchain lives in .cache/sdk, next to the real sdk/.
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

if [ "${1:-}" = --check ]; then
    missing() { echo "$1"; exit 1; }
    need_toolchain
    exit 0
fi
"$PYTHON" -c "import ziglang" 2>/dev/null || "$PYTHON" -m pip install --quiet ziglang
mkdir -p "$cache"
# Two installs at once: one downloads, the other waits and finds the file.
(
    flock 9
    if [ ! -f "$cache/$QUICKJS_SDIST" ]; then
        "$PYTHON" -m pip download --quiet --no-binary :all: --no-deps \
            "quickjs-ng==$QUICKJS_VERSION" -d "$cache"
    fi
) 9>"$cache/install.lock"
need_toolchain
once build_quickjs "$(quickjs_dir)"
