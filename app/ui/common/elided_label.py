"""A label that shortens its text with "…" when narrow, instead of cutting it off."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QLabel


class ElidedLabel(QLabel):
    """Paints its one line of text elided to the width it is given; its text (and what a screen
    reader reads) stays whole. A layout may shrink it to a few characters."""

    def __init__(self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(text)
        self.mode = mode

    def minimumSizeHint(self) -> QSize:
        """A few characters wide (plus any padding): the rest is elided."""
        hint = super().minimumSizeHint()
        margins = self.contentsMargins()
        few = self.fontMetrics().horizontalAdvance("Xxxx…") + margins.left() + margins.right()
        return QSize(min(hint.width(), few), hint.height())

    def shown_text(self) -> str:
        """What is painted: the text, elided to the width inside the style sheet's padding (which
        the contents rectangle already leaves out)."""
        return self.fontMetrics().elidedText(self.text(), self.mode, max(0, self.contentsRect().width()))

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the text elided to the width there is."""
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(self.contentsRect(), align, self.shown_text())
