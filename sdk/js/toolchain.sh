# Shared by build.sh and install.sh (sourced, with $here and $root set):
# where the toolchain lives and how the engine is built.

QUICKJS_VERSION=0.17.0.2
QUICKJS_SDIST="quickjs_ng-$QUICKJS_VERSION.tar.gz"
# fless sets FLESS_SDK_CACHE (docs/LANGUAGES.md); run by hand, the cache is
# the checkout's .cache/sdk, or the user's cache for an installed package.
if [ -z "${FLESS_SDK_CACHE:-}" ]; then
    if [ -f "$root/fless/__init__.py" ]; then
        FLESS_SDK_CACHE="$root/.cache/sdk"
    else
        FLESS_SDK_CACHE="${FLESS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fless}/sdk"
    fi
fi
cache="$FLESS_SDK_CACHE/js"

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then
        PYTHON="$root/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

zig_cc() {
    "$PYTHON" -m ziglang cc "$@"
}

missing() {
    echo "build.sh: $1 is missing; install it with: fless toolchain install js" >&2
    exit 127
}

need_toolchain() {
    "$PYTHON" -c "import ziglang" 2>/dev/null || missing "zig (PyPI ziglang, for $PYTHON)"
    [ -f "$cache/$QUICKJS_SDIST" ] || missing "the QuickJS sources ($cache/$QUICKJS_SDIST)"
    command -v flock >/dev/null || missing "flock (Debian util-linux)"
}

# QuickJS itself, built once per source version and zig version: the
# objects for wasm32-wasi, and fless_jsc, the native bytecode compiler.
QUICKJS_FLAGS="-O2 -D_GNU_SOURCE -DNDEBUG"

quickjs_dir() {
    key=$( (cat "$cache/$QUICKJS_SDIST"; echo "$QUICKJS_FLAGS"
            cat "$here/runtime/fless_jsc.c"; "$PYTHON" -m ziglang version) |
           sha256sum | cut -c1-16)
    echo "$cache/quickjs-$key"
}

build_quickjs() {
    dir=$1
    # A "fless: " line is shown to the user as it comes (docs/LANGUAGES.md):
    # without it the first build is silent for minutes.
    echo "fless: building the JavaScript engine (QuickJS $QUICKJS_VERSION) into $dir;" \
         "this happens once and takes a minute or three" >&2
    rm -rf "$dir"
    mkdir -p "$dir/wasm" "$dir/native" "$dir/src"
    tar -xzf "$cache/$QUICKJS_SDIST" -C "$dir/src" --strip-components=2 \
        "quickjs_ng-$QUICKJS_VERSION/upstream-quickjs"
    for unit in dtoa libregexp libunicode quickjs; do
        # shellcheck disable=SC2086  # the flags are words
        zig_cc -target wasm32-wasi $QUICKJS_FLAGS -c "$dir/src/$unit.c" \
            -o "$dir/wasm/$unit.o" &
        wasm_job=$!
        # shellcheck disable=SC2086
        zig_cc -target native-linux-musl $QUICKJS_FLAGS -c "$dir/src/$unit.c" \
            -o "$dir/native/$unit.o"
        wait "$wasm_job"
    done
    zig_cc -target native-linux-musl -O2 -I "$dir/src" -o "$dir/fless_jsc" \
        "$here/runtime/fless_jsc.c" "$dir"/native/*.o -lm
    touch "$dir/ready"
}

# The runtime (fless_js.c and the prelude's bytecode) for one QuickJS build:
# seconds to rebuild when the runtime changes.
runtime_dir() {
    key=$( (echo "$1"; cat "$here"/runtime/*) | sha256sum | cut -c1-16)
    echo "$cache/runtime-$key"
}

build_runtime() {
    qjs=$1 dir=$2
    rm -rf "$dir"
    mkdir -p "$dir"
    "$qjs/fless_jsc" --script "$here/runtime/prelude.js" fless_prelude_bc "$dir/prelude_bc.c"
    zig_cc -target wasm32-wasi -O2 -c "$dir/prelude_bc.c" -o "$dir/prelude_bc.o"
    zig_cc -target wasm32-wasi -O2 -I "$qjs/src" -c "$here/runtime/fless_js.c" \
        -o "$dir/fless_js.o"
    touch "$dir/ready"
}

# Runs "build_X DIR..." unless DIR is ready; one builder at a time, the
# others wait and find it ready.
once() {
    step=$1 dir=$2
    shift 2
    [ -f "$dir/ready" ] && return 0
    mkdir -p "$(dirname "$dir")"
    (
        flock -n 9 || {
            echo "fless: waiting for another build of the JavaScript engine to finish" >&2
            flock 9
        }
        [ -f "$dir/ready" ] || "$step" "$@" "$dir"
    ) 9>"$dir.lock"
}
