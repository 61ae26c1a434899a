#!/usr/bin/env bash
# Make packaging/macos/Fireside.icns from the committed PNGs (resources/icons) with macOS's iconutil.
# The 1024 px image (512@2x) is rendered from the SVG with packaging/make_icons.py (needs PySide6:
# run with the build venv's python as PYTHON). macOS only (iconutil).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
command -v iconutil >/dev/null || { echo "make_icns.sh: iconutil not found (it comes with macOS)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
ICONS="$ROOT/resources/icons/hicolor"
"$PYTHON" "$ROOT/packaging/make_icons.py" --sizes 1024 --out "$TMP/render" --no-ico >/dev/null
SET="$TMP/Fireside.iconset"
mkdir -p "$SET"
png() { echo "$ICONS/$1x$1/apps/fireside.png"; }
cp "$(png 16)" "$SET/icon_16x16.png"
cp "$(png 32)" "$SET/icon_16x16@2x.png"
cp "$(png 32)" "$SET/icon_32x32.png"
cp "$(png 64)" "$SET/icon_32x32@2x.png"
cp "$(png 128)" "$SET/icon_128x128.png"
cp "$(png 256)" "$SET/icon_128x128@2x.png"
cp "$(png 256)" "$SET/icon_256x256.png"
cp "$(png 512)" "$SET/icon_256x256@2x.png"
cp "$(png 512)" "$SET/icon_512x512.png"
cp "$TMP/render/hicolor/1024x1024/apps/fireside.png" "$SET/icon_512x512@2x.png"
iconutil -c icns "$SET" -o "$ROOT/packaging/macos/Fireside.icns"
echo "$ROOT/packaging/macos/Fireside.icns"
