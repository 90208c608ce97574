#!/bin/sh
# Builds a Python function to a Wasm component with componentize-py.
#
#   sdk/python/build.sh PROJECT_DIR OUT_WASM
#
# PROJECT_DIR holds app.py defining main(args) -> result (JSON values), and
# may hold more modules and pure-Python packages next to it. The component
# targets wit/fless.wit; runtime/fless_entry.py wraps main.
set -eu

usage="usage: sdk/python/build.sh PROJECT_DIR OUT_WASM"
[ $# -eq 2 ] || { echo "$usage" >&2; exit 2; }
project=$(cd "$1" && pwd)
out=$2
# -P: fless runs this through fless/sdk, a link to sdk/ in a checkout,
# whose toolchain lives in .cache/sdk, next to the real sdk/.
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

need_toolchain
[ -f "$project/app.py" ] || { echo "build.sh: $project/app.py not found" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
# Without VIRTUAL_ENV (and with -p given) componentize-py bundles only the
# project and the runtime, not the build machine's site-packages.
env -u VIRTUAL_ENV PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -c "import sys, componentize_py; sys.argv[0] = 'componentize-py'; sys.exit(componentize_py.script())" \
    --quiet -d "$here/wit" -w function \
    componentize fless_entry -p "$project" -p "$here/runtime" -o "$out"
