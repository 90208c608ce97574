# Shared by build.sh and install.sh (sourced, with $here and $root set).

COMPONENTIZE_PY_VERSION=0.25.1

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then
        PYTHON="$root/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

missing() {
    echo "build.sh: $1 is missing; install the toolchains with: make toolchains" \
         "(or sh sdk/python/install.sh)" >&2
    exit 127
}
