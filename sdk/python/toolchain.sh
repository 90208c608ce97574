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
    echo "build.sh: $1 is missing; install it with: fless toolchain install python" >&2
    exit 127
}

need_toolchain() {
    "$PYTHON" -c "import componentize_py" 2>/dev/null || missing "componentize-py (PyPI, for $PYTHON)"
}
