"""A label that shortens its text with "…" when narrow, instead of cutting it off."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QLabel


class ElidedLabel(QLabel):
    """Paints its one line of text elided to the width it is given; its text (and what a screen
    reader reads) stays whole. A layout may shrink it to a few characters."""

    def __init__(
        self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, inset: int = 8
    ) -> None:
        super().__init__(text)
        self.mode = mode
        self.inset = inset  # the status bar's style sheet pads its labels 8px at each side

    def minimumSizeHint(self) -> QSize:
        """A few characters wide: the rest is elided."""
        hint = super().minimumSizeHint()
        few = self.fontMetrics().horizontalAdvance("Xxxx…") + 2 * self.inset
        return QSize(min(hint.width(), few), hint.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the text elided to the width there is."""
        rect = self.contentsRect().adjusted(self.inset, 0, -self.inset, 0)
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        text = self.fontMetrics().elidedText(self.text(), self.mode, max(0, rect.width()))
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
