#!/bin/sh
# Remove what install.sh installed for this user, exactly: it follows the manifest install.sh wrote
# (every file, link and folder it created) and nothing else. Fireside's data folder (models,
# conversations, settings) is kept; delete ~/.local/share/Fireside yourself to remove it too.
#
#   ~/.local/share/fireside-app/uninstall.sh      (or ./uninstall.sh from the unpacked tarball)
set -eu

QUIET=
[ "${1:-}" = "--quiet" ] && QUIET=1
# printf, not echo: dash's echo would read backslashes in a path as escapes.
say() { [ -n "$QUIET" ] || printf '%s\n' "$*"; }

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -f "$HERE/install-manifest" ]; then
    APP_ROOT=$HERE
else
    [ -n "${HOME:-}" ] || { printf '%s\n' "uninstall.sh: HOME is not set" >&2; exit 1; }
    DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
    case $DATA_HOME in /*) ;; *) DATA_HOME=$HOME/.local/share ;; esac
    APP_ROOT=$DATA_HOME/fireside-app
fi
MANIFEST=$APP_ROOT/install-manifest
if [ ! -f "$MANIFEST" ]; then
    say "Fireside is not installed for this user (no $MANIFEST)."
    exit 0
fi

# Files and links first, then the bundle, then the folders install.sh created (deepest first, and
# only when empty: something of yours in them keeps them).
while IFS= read -r line || [ -n "$line" ]; do
    kind=${line%% *}
    path=${line#* }
    case $path in /*) ;; *) continue ;; esac
    case $kind in
        f) [ -f "$path" ] && rm -f -- "$path" ;;
        l) [ -L "$path" ] && rm -f -- "$path" ;;
        t) case $path in "$APP_ROOT"/fireside) rm -rf -- "$path" ;; esac ;;
    esac
done <"$MANIFEST"

# Refresh caches that exist (ones install.sh created were in the manifest and are gone already).
APPS=$(sed -n 's#^f \(.*\)/fireside\.desktop$#\1#p' "$MANIFEST" | head -n 1)
ICONS=$(sed -n 's#^f \(.*\)/scalable/apps/fireside\.svg$#\1#p' "$MANIFEST" | head -n 1)
if [ -n "$APPS" ] && [ -f "$APPS/mimeinfo.cache" ] && command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$APPS" || true
fi
if [ -n "$ICONS" ] && [ -f "$ICONS/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -f -t "$ICONS" || true
fi

dirs=$(awk '/^d \// { lines[++n] = substr($0, 3) } END { for (i = n; i > 0; i--) print lines[i] }' "$MANIFEST")
rm -f -- "$MANIFEST"
printf '%s\n' "$dirs" | while IFS= read -r dir; do
    [ -n "$dir" ] && rmdir -- "$dir" 2>/dev/null || true
done
say "Fireside is uninstalled (its data folder, with your models and conversations, is kept)."
