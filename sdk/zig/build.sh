#!/bin/sh
# Builds a Zig function project (main.zig, or src/main.zig, importing the SDK
# module "fless") to wasm32-wasi with zig from the ziglang package on PyPI.
#
#   build.sh PROJECT_DIR OUT_WASM
set -eu
sdk=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$1" && pwd)
out=$2
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c "import ziglang" 2>/dev/null; then
    echo "fless: zig is missing for $PYTHON; run \`fless toolchain install zig\` (or: $PYTHON -m pip install ziglang)" >&2
    exit 127
fi
main="$project/main.zig"
[ -f "$main" ] || main="$project/src/main.zig"
if [ ! -f "$main" ]; then
    echo "fless: no main.zig or src/main.zig in $project" >&2
    exit 1
fi
# The local cache goes with the other build caches, not into the project;
# the global one stays zig's own, shared with every zig build on the machine.
if [ -n "${FLESS_CACHE:-}" ]; then
    export ZIG_LOCAL_CACHE_DIR="$FLESS_CACHE/zig-local"
fi
# -fno-entry -rdynamic: a library-like module that exports __invoke (and its
# memory) and has no _start. A 1 MiB stack instead of zig's 16 MiB: the
# stack is part of the initial memory, which must fit the function's memory
# cap. ReleaseSmall keeps the module small; ZIG_OPTIMIZE changes it.
cd "$project"
exec "$PYTHON" -m ziglang build-exe -target wasm32-wasi -fno-entry -rdynamic -fstrip \
    --stack 1048576 \
    -O "${ZIG_OPTIMIZE:-ReleaseSmall}" --dep fless -Mroot="$main" -Mfless="$sdk/fless.zig" \
    -femit-bin="$out"
