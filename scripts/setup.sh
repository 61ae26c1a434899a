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

# The packaging tests validate the desktop entry with desktop-file-validate (Debian's desktop-file-utils).
# As root on a Debian/Ubuntu machine (CI) it is installed; otherwise a missing tool is only reported
# here, with the command to install it, and those tests fail saying the same.
ensure_desktop_file_utils() {
    command -v desktop-file-validate >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing desktop-file-utils (desktop-file-validate, for the packaging tests)…"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq desktop-file-utils >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq desktop-file-utils >/dev/null; } ||
            echo "Could not install desktop-file-utils with apt-get; the packaging tests will fail." >&2
    else
        echo "desktop-file-validate is missing; the packaging tests need it. Install desktop-file-utils" \
            "(Debian/Ubuntu: sudo apt-get install desktop-file-utils; Fedora: sudo dnf install" \
            "desktop-file-utils; Arch: sudo pacman -S desktop-file-utils)." >&2
    fi
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
    [ "$extra" = "test" ] && ensure_desktop_file_utils
    # llama-cpp-python compiles llama.cpp the first time (a few minutes); pip caches the wheel.
    # For a GPU build set CMAKE_ARGS first (see README, Troubleshooting).
    echo "Installing Fireside and its dependencies into $VENV (the first time compiles llama.cpp: a few minutes)…"
    "$PY" -m pip install --quiet --editable "$target"

    # The starter model: fetched once into the user cache, sha256-checked, never used unverified.
    "$PY" -m app.core.models.starter >/dev/null
}
