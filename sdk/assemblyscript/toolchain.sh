# Shared by build.sh and install.sh (sourced, with $here and $root set).

ASSEMBLYSCRIPT_VERSION=0.28.20
# npm packages live in the project's cache, not globally; FLESS_SDK_CACHE
# moves that cache (default .cache/sdk in the repository).
prefix="${FLESS_SDK_CACHE:-$root/.cache/sdk}/assemblyscript"
asc="$prefix/node_modules/.bin/asc"

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then
        PYTHON="$root/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

missing() {
    echo "build.sh: $1 is missing; install the toolchains with: make toolchains" \
         "(or sh sdk/assemblyscript/install.sh)" >&2
    exit 127
}
