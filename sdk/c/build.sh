#!/bin/sh
# Builds a C function project: every .c at its top, with the SDK's fless.c,
# to a FunLess-ABI reactor module, with zig's clang (the ziglang package).
#
#   build.sh PROJECT_DIR OUT_WASM
set -eu
sdk=$(cd "$(dirname "$0")" && pwd)
project=$1
out=$2
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c "import ziglang" 2>/dev/null; then
    echo "fless: zig is missing for $PYTHON; run \`fless toolchain install c\` (or: $PYTHON -m pip install ziglang)" >&2
    exit 127
fi
# zig's own global cache (~/.cache/zig) keeps the wasi-libc it compiles:
# shared with every other zig build on the machine, so the first of them
# pays for it (a minute or more) and the rest do not.

set -- "$project"/*.c
if [ ! -e "$1" ]; then
    echo "fless: no .c file in $project" >&2
    exit 1
fi
# -mexec-model=reactor: no main; fless calls _initialize, then __invoke.
# A 1 MiB stack (zig's default is 16 MiB) lets the function run under small
# memory limits. ${CFLAGS} adds the project's own flags.
exec "$PYTHON" -m ziglang cc -target wasm32-wasi -O2 -s -mexec-model=reactor \
    -Wl,-z,stack-size=1048576 -I"$sdk/include" -I"$project" ${CFLAGS:-} \
    -o "$out" "$sdk/fless.c" "$@"
