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

# System tools some tests need, beyond Python packages:
# - desktop-file-validate (desktop-file-utils): the packaging tests check the Linux desktop entry;
# - Xvfb, dbus-run-session, AT-SPI and pyatspi (xvfb, dbus, at-spi2-core, python3-pyatspi) and Qt's
#   X11 libraries: the accessibility test reads the message list over AT-SPI as a screen reader does.
# As root on a Debian/Ubuntu machine (CI) the missing ones are installed with apt-get; otherwise they
# are only named here, with the command to install them: the packaging tests then fail saying the same,
# and the AT-SPI test is skipped with that reason.
TEST_PACKAGES="desktop-file-utils xvfb dbus at-spi2-core python3-pyatspi libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0 libxcb-image0"

missing_test_tools() {
    command -v desktop-file-validate >/dev/null 2>&1 || echo desktop-file-utils
    command -v Xvfb >/dev/null 2>&1 || echo xvfb
    command -v dbus-run-session >/dev/null 2>&1 || echo dbus
    [ -x /usr/libexec/at-spi-bus-launcher ] || command -v at-spi-bus-launcher >/dev/null 2>&1 || echo at-spi2-core
    /usr/bin/python3 -c 'import pyatspi' >/dev/null 2>&1 || echo python3-pyatspi
}

ensure_test_tools() {
    local missing
    missing="$(missing_test_tools | tr '\n' ' ')"
    [ -n "${missing// /}" ] || return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing what some tests need from the system: $missing(and Qt's X11 libraries)…"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086 # a list of package names
        apt-get install -y -qq $TEST_PACKAGES >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq $TEST_PACKAGES >/dev/null; } ||
            echo "Could not install $missing with apt-get; the tests that need them fail or are skipped." >&2
    else
        echo "Some tests need system tools that are missing: $missing. Install them" \
            "(Debian/Ubuntu: sudo apt-get install $TEST_PACKAGES; on Fedora and Arch:" \
            "desktop-file-utils, xorg-x11-server-Xvfb / xorg-server-xvfb, at-spi2-core, python3-pyatspi /" \
            "python-atspi). Without desktop-file-utils the packaging tests fail; without the others the" \
            "AT-SPI test is skipped." >&2
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
    [ "$extra" = "test" ] && ensure_test_tools
    # llama-cpp-python compiles llama.cpp the first time (a few minutes); pip caches the wheel.
    # For a GPU build set CMAKE_ARGS first (see README, Troubleshooting).
    run_with_progress "Installing Fireside and its dependencies into $VENV (the first time compiles llama.cpp: a few minutes)…" \
        "$PY" -m pip install --progress-bar off --editable "$target"

    # The starter model: fetched once into the user cache, sha256-checked, never used unverified.
    # Its progress goes to the terminal (stderr); stdout is only the file's path.
    "$PY" -m app.core.models.starter --progress >/dev/null
}
