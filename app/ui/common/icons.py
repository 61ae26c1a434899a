"""The window's icons: Lucide's line icons (ISC licence, bundled in app/resources/icons), drawn in
the palette's text colour so they suit light and dark alike and stay sharp at any size."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from PySide6.QtCore import QByteArray, QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QGuiApplication,
    QIcon,
    QIconEngine,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractButton, QToolButton

#: What each action's icon is, by the window's own names: one place to change the look.
ICONS = {
    "chat": "message-square",
    "discover": "compass",
    "library": "hard-drive",
    "server": "server",
    "preferences": "settings",
    "help": "circle-help",
    "open_model": "folder-open",
    "remote": "cloud",
    "hide_panel": "panel-right-close",
    "show_panel": "panel-right-open",
    "new_conversation": "square-pen",
    "search": "search",
    "copy": "copy",
    "edit": "pencil",
    "regenerate": "refresh-cw",
    "continue": "step-forward",
    "delete": "trash-2",
    "expand": "chevron-right",
    "collapse": "chevron-down",
    "send": "send",
    "stop": "square",
    "download": "download",
    "cards": "layout-grid",
    "table": "list",
    "import": "file-input",
    "use": "play",
    "folder": "folder",
    "hardware": "cpu",
    "shortcuts": "keyboard",
    "about": "info",
    "close": "x",
    "add": "plus",
    "save": "save",
    "test": "plug-zap",
    "show": "eye",
    "retry": "rotate-ccw",
    "pause": "pause",
    "tools": "wrench",
    "attach": "paperclip",
    "document": "file-text",
    "resume": "play",
}


@cache
def _svg(file_name: str) -> str:
    return files("app").joinpath(f"resources/icons/{file_name}.svg").read_text(encoding="utf-8")


@cache
def _renderer(file_name: str, color: str) -> QSvgRenderer:
    # Lucide draws with stroke="currentColor"; Qt's SVG renderer has no CSS colour, so the colour is
    # written into the text. One renderer per icon and colour, kept for the process.
    return QSvgRenderer(QByteArray(_svg(file_name).replace("currentColor", color).encode()))


def _color(mode: QIcon.Mode, state: QIcon.State, accent: bool, on_accent: bool) -> QColor:
    """The colour an icon is drawn in, from the application's palette at paint time: a switch to dark
    mode repaints every icon in the new colours without rebuilding one."""
    palette = QGuiApplication.palette()
    if on_accent:  # on the primary button's accent background
        return QColor("#ffffff") if mode != QIcon.Mode.Disabled else palette.color(QPalette.ColorRole.Mid)
    if mode == QIcon.Mode.Disabled:
        return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
    if accent and state == QIcon.State.On:
        return palette.color(QPalette.ColorRole.Highlight)
    return palette.color(QPalette.ColorRole.ButtonText)


class TintedSvgEngine(QIconEngine):
    """Draws one bundled SVG icon in the palette's colour for each mode (and the accent when checked)."""

    def __init__(self, file_name: str, accent: bool = False, on_accent: bool = False) -> None:
        super().__init__()
        self.file_name = file_name
        self.accent = accent
        self.on_accent = on_accent

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        """Draw the icon into `rect`."""
        color = _color(mode, state, self.accent, self.on_accent).name()
        _renderer(self.file_name, color).render(painter, QRectF(rect))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        """The icon as a pixmap of `size` (device pixels)."""
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.paint(painter, QRect(QPoint(0, 0), size), mode, state)
        painter.end()
        return pixmap

    def clone(self) -> QIconEngine:
        """A copy (Qt copies engines when an icon is detached)."""
        return TintedSvgEngine(self.file_name, self.accent, self.on_accent)


def decorate(button: QAbstractButton, name: str) -> None:
    """Give `button` the icon of action `name`, its text beside it (a tool button shows only its icon
    otherwise)."""
    button.setIcon(icon(name))
    side = round(0.9 * QFontMetrics(button.font()).height())  # grows with the text size
    button.setIconSize(QSize(side, side))
    if isinstance(button, QToolButton):
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)


def icon(name: str, accent: bool = False, on_accent: bool = False) -> QIcon:
    """The icon for action `name` (a key of ICONS); `accent`: drawn in the highlight colour when the
    button holding it is checked (the navigation's current page); `on_accent`: white, for the primary
    button's accent background."""
    return QIcon(TintedSvgEngine(ICONS[name], accent, on_accent))
