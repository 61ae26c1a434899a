# Sourced by run.sh and test.sh: defines fireside_setup, which creates .venv with Python >= 3.11
# and installs Fireside into it. Usage: source scripts/setup.sh; fireside_setup [extra]
# (extra = "test" adds the test tools). Sets VENV and PY.
set -euo pipefail

FIRESIDE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$FIRESIDE_ROOT"

pick_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3 python; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "Fireside needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
    return 1
}

fireside_setup() {
    VENV="${FIRESIDE_VENV:-$FIRESIDE_ROOT/.venv}"
    if [ ! -x "$VENV/bin/python" ]; then
        "$(pick_python)" -m venv "$VENV"
    fi
    PY="$VENV/bin/python"
    "$PY" -m pip install --quiet --upgrade pip

    local extra="${1:-}" target="."
    [ -n "$extra" ] && target=".[$extra]"
    # llama-cpp-python compiles llama.cpp the first time (a few minutes); pip caches the wheel.
    # For a GPU build set CMAKE_ARGS first (see README, Troubleshooting).
    echo "Installing Fireside and its dependencies into $VENV (the first time compiles llama.cpp: a few minutes)…"
    "$PY" -m pip install --quiet --editable "$target"

    # The starter model: fetched once into the user cache, sha256-checked, never used unverified.
    "$PY" -m app.core.starter >/dev/null
}
