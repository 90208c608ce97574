# Shared by build.sh and install.sh (sourced, with $here and $root set).

ASSEMBLYSCRIPT_VERSION=0.28.20
# npm packages live in fless's cache, not globally. fless sets
# FLESS_SDK_CACHE (docs/LANGUAGES.md); run by hand, the cache is the
# checkout's .cache/sdk, or the user's cache for an installed package.
if [ -z "${FLESS_SDK_CACHE:-}" ]; then
    if [ -f "$root/fless/__init__.py" ]; then
        FLESS_SDK_CACHE="$root/.cache/sdk"
    else
        FLESS_SDK_CACHE="${FLESS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fless}/sdk"
    fi
fi
prefix="$FLESS_SDK_CACHE/assemblyscript"
asc="$prefix/node_modules/.bin/asc"

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then
        PYTHON="$root/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

missing() {
    echo "build.sh: $1 is missing; install it with: fless toolchain install assemblyscript" >&2
    exit 127
}

need_toolchain() {
    command -v node >/dev/null || missing "Node.js"
    [ -x "$asc" ] || missing "asc (npm assemblyscript, in $prefix)"
}
