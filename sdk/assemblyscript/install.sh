#!/bin/sh
# Installs what sdk/assemblyscript/build.sh needs: Node.js (Debian) and the
# assemblyscript compiler (npm, into $FLESS_SDK_CACHE/assemblyscript).
# Idempotent; a no-op when both are there.
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

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
installed=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' \
    "$prefix/node_modules/assemblyscript/package.json" 2>/dev/null || true)
if [ "$installed" != "$ASSEMBLYSCRIPT_VERSION" ] || [ ! -x "$asc" ]; then
    mkdir -p "$prefix"
    # Two installs at once: one runs npm, the other waits (npm is not safe
    # to run twice on one prefix).
    (
        flock 9
        npm install --prefix "$prefix" --no-audit --no-fund --silent \
            "assemblyscript@$ASSEMBLYSCRIPT_VERSION"
    ) 9>"$prefix.lock"
fi
