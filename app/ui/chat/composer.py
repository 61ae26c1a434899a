"""The message composer: multi-line input where Enter sends and Shift+Enter adds a line."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import QFrame, QPlainTextEdit, QWidget

MAX_VISIBLE_LINES = 8
PLACEHOLDER = "Message the model…  (Enter to send, Shift+Enter for a new line)"
SHORT_PLACEHOLDER = "Message the model…"


class Composer(QPlainTextEdit):
    """Grows with its text up to MAX_VISIBLE_LINES; emits `submitted` on Enter."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatInput")
        self.setAccessibleName("Message")
        self.setAccessibleDescription("Enter sends the message; Shift+Enter starts a new line")
        self.setPlaceholderText(PLACEHOLDER)
        self.setTabChangesFocus(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.document().contentsChanged.connect(self.updateGeometry)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter sends; Shift+Enter (or Ctrl+Enter) inserts a newline."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier):
                self.insertPlainText("\n")
            else:
                self.submitted.emit()
            return
        super().keyPressEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        """A new font (the chat's zoom) changes the height two lines need."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self.updateGeometry()
            self._fit_placeholder()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """The placeholder's key hints only while they fit in the box's two lines."""
        super().resizeEvent(event)
        self._fit_placeholder()

    def _fit_placeholder(self) -> None:
        room = 2 * (self.viewport().width() - 12)  # two lines, less the document's margins
        fits = QFontMetrics(self.font()).horizontalAdvance(PLACEHOLDER) * 1.1 < room
        text = PLACEHOLDER if fits else SHORT_PLACEHOLDER
        if self.placeholderText() != text:
            self.setPlaceholderText(text)

    def sizeHint(self) -> QSize:
        """Tall enough for the text, between 2 and MAX_VISIBLE_LINES lines."""
        line = QFontMetrics(self.font()).lineSpacing()
        lines = min(MAX_VISIBLE_LINES, max(2, self.document().lineCount()))
        margins = self.contentsMargins()
        height = lines * line + int(self.document().documentMargin() * 2) + margins.top() + margins.bottom()
        return QSize(super().sizeHint().width(), height)

    def minimumSizeHint(self) -> QSize:
        """Never smaller than two lines."""
        return QSize(100, self.sizeHint().height())
