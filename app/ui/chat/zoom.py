"""The chat's text size: Ctrl+plus, Ctrl+minus and Ctrl+0 zoom the messages and the composer, in the
steps browsers use, on top of the size the system gives; the choice is kept in the settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget

#: The zoom levels, in percent of the system's text size.
STEPS = (50, 67, 80, 90, 100, 110, 125, 150, 175, 200, 250, 300)
DEFAULT = 100


def nearest_step(percent: int) -> int:
    """The zoom level closest to `percent` (a settings file may hold anything)."""
    return min(STEPS, key=lambda step: abs(step - percent))


class ChatZoom(QObject):
    """Scales the fonts of `widgets` (the message list, the composer) and keeps the level."""

    def __init__(
        self,
        widgets: Sequence[QWidget],
        window: QWidget,
        percent: int,
        remember: Callable[[int], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._widgets = list(widgets)
        #: Each widget's own point size at 100%: what the system (or the style) gave it.
        self._base = [widget.font().pointSizeF() for widget in self._widgets]
        self._remember = remember
        self.percent = DEFAULT
        self._apply(nearest_step(percent))
        plus_unshifted = QKeySequence(Qt.Modifier.CTRL | Qt.Key.Key_Equal)  # Ctrl+= : + without Shift
        shortcuts: list[tuple[QKeySequence | QKeySequence.StandardKey, Callable[[], None]]] = [
            (QKeySequence.StandardKey.ZoomIn, self.zoom_in),
            (QKeySequence.StandardKey.ZoomOut, self.zoom_out),
            (QKeySequence(Qt.Modifier.CTRL | Qt.Key.Key_0), self.reset),
        ]
        if plus_unshifted not in QKeySequence.keyBindings(QKeySequence.StandardKey.ZoomIn):
            shortcuts.append((plus_unshifted, self.zoom_in))  # twice would make both ambiguous
        for keys, action in shortcuts:
            QShortcut(keys, window, action)

    def zoom_in(self) -> None:
        """One step larger (up to 300%)."""
        self._set(STEPS[min(len(STEPS) - 1, STEPS.index(self.percent) + 1)])

    def zoom_out(self) -> None:
        """One step smaller (down to 50%)."""
        self._set(STEPS[max(0, STEPS.index(self.percent) - 1)])

    def reset(self) -> None:
        """Back to the system's size."""
        self._set(DEFAULT)

    def _set(self, percent: int) -> None:
        if percent != self.percent:
            self._apply(percent)
            self._remember(percent)

    def _apply(self, percent: int) -> None:
        self.percent = percent
        for widget, base in zip(self._widgets, self._base, strict=True):
            font = widget.font()
            font.setPointSizeF(base * percent / 100)
            widget.setFont(font)  # the message list lays its rows out again (FontChange)
