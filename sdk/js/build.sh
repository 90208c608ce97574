#!/bin/sh
# Builds a JavaScript function to a FunLess-ABI .wasm: QuickJS (quickjs-ng)
# compiled to wasm32-wasi with zig, and the function's module precompiled to
# QuickJS bytecode.
#
#   sdk/js/build.sh PROJECT_DIR OUT_WASM
#
# PROJECT_DIR holds package.json, whose "main" (default index.js) is an ES
# module exporting main(args), or only that index.js; FLESS_ENTRY, when set,
# names the module instead (fless fn build FILE.js sets it). QuickJS (its wasm objects and the native
# bytecode compiler) is built once per version into .cache/sdk/js/quickjs-*,
# the runtime once per change into .cache/sdk/js/runtime-*; a function build
# then only compiles its bytecode and links, in about a second.
set -eu

usage="usage: sdk/js/build.sh PROJECT_DIR OUT_WASM"
[ $# -eq 2 ] || { echo "$usage" >&2; exit 2; }
project=$(cd "$1" && pwd)
out=$2
# -P: fless runs this through fless/sdk, a link to sdk/ in a checkout,
# whose toolchain lives in .cache/sdk, next to the real sdk/.
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

need_toolchain
qjs=$(quickjs_dir)
once build_quickjs "$qjs"
runtime=$(runtime_dir "$qjs")
once build_runtime "$runtime" "$qjs"

if [ -n "${FLESS_ENTRY:-}" ]; then
    entry=$FLESS_ENTRY
elif [ -e "$project/package.json" ]; then
    entry=$("$PYTHON" - "$project" <<'PY'
import json, pathlib, sys
project = pathlib.Path(sys.argv[1])
try:
    package = json.loads((project / "package.json").read_text())
    main = package.get("main", "index.js") if isinstance(package, dict) else None
    if not isinstance(main, str) or not main:
        raise ValueError('"main" must name a file')
except (OSError, ValueError) as exc:
    sys.exit(f"build.sh: cannot read {project / 'package.json'}: {exc}")
print(project / main)
PY
    )
else
    entry="$project/index.js"
fi
[ -f "$entry" ] || { echo "build.sh: $entry not found (package.json \"main\")" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$qjs/fless_jsc" --module "$entry" fless_main_bc "$work/main_bc.c"
mkdir -p "$(dirname "$out")"
zig_cc -target wasm32-wasi -O2 -s -mexec-model=reactor \
    -Wl,-z,stack-size=1048576 -Wl,--gc-sections \
    -o "$out" "$work/main_bc.c" "$runtime"/*.o "$qjs"/wasm/*.o
