#!/usr/bin/env bash
# Turn the PyInstaller bundle into the Linux tarball users download:
#
#   bash packaging/make_tarball.sh [BUNDLE_DIR] [OUT_DIR]      (defaults: dist/fireside, dist)
#
# writes OUT_DIR/fireside-<version>-linux-x86_64.tar.gz holding one folder:
#
#   fireside-<version>-linux-x86_64/
#     fireside/                                   the bundle (run fireside/fireside)
#     share/applications/fireside.desktop         the menu entry (install.sh sets its Exec path)
#     share/icons/hicolor/<N>x<N>/apps/fireside.png, scalable/apps/fireside.svg
#     install.sh, uninstall.sh, README.txt
#
# The version is app/__init__.py's; the desktop entry and icons come from resources/ of the checkout
# this script is in (packaging/build.sh runs the copy in its clean checkout).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$(cd "${1:-$ROOT/dist/fireside}" && pwd)"
OUT="${2:-$ROOT/dist}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

[ -x "$BUNDLE/fireside" ] || { echo "make_tarball.sh: no bundle at $BUNDLE (build it with packaging/build.sh)" >&2; exit 1; }
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/app/__init__.py")"
[ -n "$VERSION" ] || { echo "make_tarball.sh: no __version__ in app/__init__.py" >&2; exit 1; }
NAME="fireside-$VERSION-linux-x86_64"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/fireside-tarball.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
TOP="$STAGE/$NAME"
mkdir -p "$TOP/share/applications" "$TOP/share/icons"
cp -a "$BUNDLE" "$TOP/fireside"
cp "$ROOT/resources/fireside.desktop" "$TOP/share/applications/"
cp -R "$ROOT/resources/icons/hicolor" "$TOP/share/icons/"
install -m 755 "$ROOT/packaging/linux/install.sh" "$ROOT/packaging/linux/uninstall.sh" "$TOP/"
cat >"$TOP/README.txt" <<EOF
Fireside $VERSION for Linux x86_64: run large language models on your own computer.

Try it without installing:   ./fireside/fireside
Install for this user:       ./install.sh      (no root; adds Fireside to the application menu)
Uninstall:                   ~/.local/share/fireside-app/uninstall.sh

install.sh copies the app to \${XDG_DATA_HOME:-~/.local/share}/fireside-app, links ~/.local/bin/fireside,
and adds the menu entry and icons under \${XDG_DATA_HOME:-~/.local/share}. Your models and conversations
live in ~/.local/share/Fireside and are never touched by install.sh or uninstall.sh.
The window needs an X11 or Wayland desktop (Qt's xcb platform needs libxcb-cursor0, libxcb-icccm4,
libxcb-keysyms1 and libxkbcommon-x11-0, present on most desktops); 'fireside --selftest' runs without one.
EOF

TARBALL="$OUT/$NAME.tar.gz"
# Stable order and owner, so the same bundle gives the same archive listing.
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$STAGE" -czf "$TARBALL.partial" "$NAME"
mv "$TARBALL.partial" "$TARBALL"
echo "$TARBALL"
du -h "$TARBALL" | cut -f1 | sed 's/^/tarball size: /'
