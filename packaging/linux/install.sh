#!/bin/sh
# Install Fireside for this user only (no root): run from the unpacked tarball.
#
#   ./install.sh
#
# Puts (and lists every file and folder it creates in a manifest, which uninstall.sh follows):
#   the app         ${XDG_DATA_HOME:-~/.local/share}/fireside-app/fireside/   (the whole bundle)
#   the command     ~/.local/bin/fireside -> the app's fireside   (FIRESIDE_BIN_DIR moves it)
#   the menu entry  ${XDG_DATA_HOME:-~/.local/share}/applications/fireside.desktop (Exec = the app's path)
#   the icon        ${XDG_DATA_HOME:-~/.local/share}/icons/hicolor/<N>x<N>/apps/fireside.png, scalable/apps
#   the uninstaller ${XDG_DATA_HOME:-~/.local/share}/fireside-app/uninstall.sh
# The app folder is "fireside-app", not "Fireside": that one is Fireside's data folder (models,
# conversations), which neither this script nor uninstall.sh ever touches.
# Installing again replaces the previous installation (it is uninstalled first).
set -eu

# printf, not echo: dash's echo would read backslashes in a path as escapes.
say() { printf '%s\n' "$*"; }

HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "${HOME:-}" ] || { say "install.sh: HOME is not set" >&2; exit 1; }
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
case $DATA_HOME in /*) ;; *) DATA_HOME=$HOME/.local/share ;; esac # the spec: relative values are ignored
BIN_DIR=${FIRESIDE_BIN_DIR:-$HOME/.local/bin}
APP_ROOT=$DATA_HOME/fireside-app
APPS=$DATA_HOME/applications
ICONS=$DATA_HOME/icons/hicolor
MANIFEST=$APP_ROOT/install-manifest

if [ ! -x "$HERE/fireside/fireside" ] || [ ! -f "$HERE/share/applications/fireside.desktop" ]; then
    say "install.sh: run it from the unpacked Fireside tarball (fireside/ and share/ beside it)" >&2
    exit 1
fi
case $(uname -m) in
    x86_64 | amd64) ;;
    *) say "install.sh: this bundle is for x86_64 Linux, this machine is $(uname -m)" >&2; exit 1 ;;
esac
for path in "$DATA_HOME" "$BIN_DIR"; do
    case $path in
        *'
'*) say "install.sh: a folder name with a line break is not supported: $path" >&2; exit 1 ;;
    esac
done

if [ -f "$MANIFEST" ]; then
    say "Removing the previous installation first…"
    if [ -f "$APP_ROOT/uninstall.sh" ]; then
        sh "$APP_ROOT/uninstall.sh" --quiet
    else
        sh "$HERE/uninstall.sh" --quiet # an install that stopped before copying its uninstaller
    fi
fi

# Every file, link and folder created is appended to the manifest at once, so even an install that
# fails or is killed half-way leaves a manifest uninstall.sh can follow. (Until the app folder exists,
# the lines wait in PENDING.)
PENDING=
record() {
    if [ -f "$MANIFEST" ]; then
        printf '%s %s\n' "$1" "$2" >>"$MANIFEST"
    else
        PENDING="$PENDING$1 $2
"
    fi
}

# mkdir -p that records each folder it creates, outermost first.
ensure_dir() {
    [ -d "$1" ] && return 0
    ensure_dir "$(dirname "$1")"
    mkdir "$1"
    record d "$1"
}

# A desktop entry's Exec value: the path in double quotes, with \ " ` $ escaped for the quoting,
# then every backslash doubled for the string, and % doubled for field codes.
exec_value() {
    printf '%s' "$1" | sed -e 's/[\\"`$]/\\&/g' -e 's/\\/\\\\/g' -e 's/%/%%/g' -e 's/^/"/' -e 's/$/"/'
}
string_value() {
    printf '%s' "$1" | sed -e 's/\\/\\\\/g'
}

ensure_dir "$APP_ROOT"
printf '%s' "$PENDING" >"$MANIFEST"
chmod 644 "$MANIFEST"
rm -rf "$APP_ROOT/fireside" # a leftover without a manifest (an install killed half-way): it is ours
cp -RP "$HERE/fireside" "$APP_ROOT/fireside"
record t "$APP_ROOT/fireside"
cp "$HERE/uninstall.sh" "$APP_ROOT/uninstall.sh"
chmod 755 "$APP_ROOT/uninstall.sh"
record f "$APP_ROOT/uninstall.sh"
BINARY=$APP_ROOT/fireside/fireside

# The command on PATH. Someone else's file of that name is left alone.
ensure_dir "$BIN_DIR"
if [ -e "$BIN_DIR/fireside" ] || [ -L "$BIN_DIR/fireside" ]; then
    say "install.sh: $BIN_DIR/fireside already exists and is not Fireside's; leaving it (start $BINARY)" >&2
else
    ln -s "$BINARY" "$BIN_DIR/fireside"
    record l "$BIN_DIR/fireside"
fi

# The menu entry, with Exec and TryExec naming the installed binary.
ensure_dir "$APPS"
exec_line=$(exec_value "$BINARY")
try_line=$(string_value "$BINARY")
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
        Exec=*) printf 'Exec=%s\nTryExec=%s\n' "$exec_line" "$try_line" ;;
        TryExec=*) ;;
        *) printf '%s\n' "$line" ;;
    esac
done <"$HERE/share/applications/fireside.desktop" >"$APPS/fireside.desktop"
chmod 644 "$APPS/fireside.desktop"
record f "$APPS/fireside.desktop"
if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$APPS/fireside.desktop" || say "install.sh: the menu entry has problems (above)" >&2
fi

# Icons, every size the tarball has.
for icon in "$HERE"/share/icons/hicolor/*/apps/fireside.*; do
    [ -f "$icon" ] || continue
    size_dir=$(basename "$(dirname "$(dirname "$icon")")")
    ensure_dir "$ICONS/$size_dir/apps"
    cp "$icon" "$ICONS/$size_dir/apps/"
    chmod 644 "$ICONS/$size_dir/apps/$(basename "$icon")"
    record f "$ICONS/$size_dir/apps/$(basename "$icon")"
done

# Desktops watch these folders; caches are refreshed only where one already exists (Fireside declares no
# MIME types, and a per-user icon cache that nothing keeps up to date would hide other apps' icons).
# Anything these tools create is recorded, so uninstall.sh removes it too.
refresh() {
    before=
    for cache in "$APPS/mimeinfo.cache" "$ICONS/icon-theme.cache"; do
        [ -e "$cache" ] && before="$before|$cache"
    done
    if [ -f "$APPS/mimeinfo.cache" ] && command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$APPS" || true
    fi
    if [ -f "$ICONS/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -f -t "$ICONS" || true
    fi
    if command -v xdg-desktop-menu >/dev/null 2>&1; then
        xdg-desktop-menu forceupdate --mode user >/dev/null 2>&1 || true
    fi
    for cache in "$APPS/mimeinfo.cache" "$ICONS/icon-theme.cache"; do
        case "$before|" in *"|$cache|"*) continue ;; esac
        [ -e "$cache" ] && record f "$cache"
    done
    return 0
}
refresh

say "Fireside is installed:"
say "  app:        $APP_ROOT/fireside"
say "  command:    $BIN_DIR/fireside"
say "  menu entry: $APPS/fireside.desktop"
say "  uninstall:  $APP_ROOT/uninstall.sh"
case ":${PATH:-}:" in
    *":$BIN_DIR:"*) ;;
    *) say "Note: $BIN_DIR is not on your PATH; start Fireside from the application menu or with $BINARY." ;;
esac
