#!/bin/sh
# Builds an AssemblyScript function to a FunLess-ABI .wasm with asc.
#
#   sdk/assemblyscript/build.sh PROJECT_DIR OUT_WASM
#
# PROJECT_DIR holds asconfig.json; its first entry (default
# assembly/index.ts) exports main(args: JsonObject): JsonValue, with the
# types from the "fless" package (sdk/assemblyscript/packages/fless). A
# generated entry file exports __invoke, which calls main.
set -eu

usage="usage: sdk/assemblyscript/build.sh PROJECT_DIR OUT_WASM"
[ $# -eq 2 ] || { echo "$usage" >&2; exit 2; }
project=$(cd "$1" && pwd)
out=$2
# -P: fless runs this through fless/sdk, a link to sdk/ in a checkout,
# whose toolchain lives in .cache/sdk, next to the real sdk/.
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd)
. "$here/toolchain.sh"

need_toolchain

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The entry imports the user's module by a path relative to itself.
"$PYTHON" - "$project" "$work/entry.ts" <<'PY'
import json, os, pathlib, sys
project, entry = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
try:
    config = json.loads((project / "asconfig.json").read_text())
except (OSError, ValueError) as exc:
    sys.exit(f"build.sh: cannot read {project / 'asconfig.json'}: {exc}")
main = project / (config.get("entries") or ["assembly/index.ts"])[0]
if not main.is_file():
    sys.exit(f"build.sh: {main} not found (asconfig.json \"entries\")")
module = os.path.relpath(main.with_suffix(""), entry.parent)
entry.write_text(
    f'import {{ invoke }} from "fless";\n'
    f'import {{ main }} from "{module}";\n'
    "export function __invoke(length: i32): i32 {\n"
    "  return invoke(length, main);\n"
    "}\n"
)
PY
mkdir -p "$(dirname "$out")"
# --use points abort, trace, seed and console at lib/fless_host.ts so the
# module imports only fl_imps and WASI; the minimal stub-free runtime keeps a
# GC, since a function may allocate a lot in one call.
# asc reads --lib relative to its working directory, even when absolute.
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
cd "$here"
# asc colours its messages on a terminal and whenever CI is set; a build
# log written to a file or a pipe stays plain text.
colors=
[ -t 2 ] || colors=--noColors
"$asc" "$work/entry.ts" -o "$out" -O3 --noAssert $colors \
    --path "$here/packages" --lib lib \
    --use abort=fless_abort --use trace=fless_trace \
    --use seed=fless_seed \
    --use console=fless_console
