#!/bin/sh
# Builds hello.wasm, a FunLess-ABI function, with zig from the ziglang package.
#
#   ./build.sh [OUTPUT]        default OUTPUT: hello.wasm next to this script
#
# The Python that runs zig is $PYTHON, else the project's .venv, else python3.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/hello.wasm"}

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$here/../../.venv/bin/python" ]; then
        PYTHON="$here/../../.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

if ! "$PYTHON" -c "import ziglang" 2>/dev/null; then
    echo "build.sh: zig not found for $PYTHON; install it with: fless toolchain install c" \
         "(or: $PYTHON -m pip install ziglang)" >&2
    exit 1
fi

# -mexec-model=reactor: no main; the module exports _initialize (run by
# fless before each call) and __invoke. A 1 MiB stack (zig's default is
# 16 MiB) lets the function run under small memory limits.
exec "$PYTHON" -m ziglang cc -target wasm32-wasi -O2 -s \
    -mexec-model=reactor -Wl,-z,stack-size=1048576 \
    -I"$here/../../sdk/c/include" -o "$out" "$here/hello.c"
