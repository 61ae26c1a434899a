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

# Runs "$@" with its output kept in a log instead of the terminal, saying every 10 seconds what it
# is doing (pip's latest step) and for how long; on failure it shows the end of the log. pip's own
# output is long and, with --quiet, silent for the minutes llama.cpp compiles; this keeps the
# terminal to a few lines that say something (and leaves out setuptools' editable-install notice).
run_with_progress() {
    local what="$1"
    shift
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/fireside-setup.XXXXXX")"
    echo "$what"
    "$@" >"$log" 2>&1 &
    local pid=$! started=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        local i
        for i in 1 2 3 4 5; do
            sleep 2
            kill -0 "$pid" 2>/dev/null || break
        done
        kill -0 "$pid" 2>/dev/null || break
        local elapsed=$((SECONDS - started)) step
        step="$(grep -E '^ *(Collecting|Obtaining|Downloading|Building wheel|Installing collected|Preparing|Running command)' "$log" | tail -n 1 | sed -e 's/^ *//' | cut -c1-90 || true)"
        case "$step" in
        *"wheel for llama"*|*"wheels for collected"*) step="$step (compiling llama.cpp: about 5 minutes on 2 cores, once; pip keeps the wheel)" ;;
        esac
        printf '  %dm%02ds  %s\n' $((elapsed / 60)) $((elapsed % 60)) "${step:-working…}"
    done
    local status=0
    wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "That failed (exit $status) after $((SECONDS - started)) s. The end of its output (all of it: $log):" >&2
        tail -n 40 "$log" >&2
        return "$status"
    fi
    rm -f "$log"
    echo "  done in $((SECONDS - started)) s."
}

fireside_setup() {
    VENV="${FIRESIDE_VENV:-$FIRESIDE_ROOT/.venv}"
    if [ ! -x "$VENV/bin/python" ]; then
        "$(pick_python)" -m venv "$VENV"
    fi
    PY="$VENV/bin/python"
    run_with_progress "Updating pip in $VENV…" "$PY" -m pip install --upgrade pip

    local extra="${1:-}" target="."
    [ -n "$extra" ] && target=".[$extra]"
    [ "$extra" = "test" ] && ensure_desktop_file_utils
    # llama-cpp-python compiles llama.cpp the first time (a few minutes); pip caches the wheel.
    # For a GPU build set CMAKE_ARGS first (see README, Troubleshooting).
    run_with_progress "Installing Fireside and its dependencies into $VENV (the first time compiles llama.cpp: a few minutes)…" \
        "$PY" -m pip install --progress-bar off --editable "$target"

    # The starter model: fetched once into the user cache, sha256-checked, never used unverified.
    # Its progress goes to the terminal (stderr); stdout is only the file's path.
    "$PY" -m app.core.models.starter --progress >/dev/null
}
