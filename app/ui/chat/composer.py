"""The message composer: multi-line input where Enter sends and Shift+Enter adds a line."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QImage, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import QFrame, QPlainTextEdit, QWidget

MAX_VISIBLE_LINES = 8
PLACEHOLDER = "Message the model…  (Enter to send, Shift+Enter for a new line)"
SHORT_PLACEHOLDER = "Message the model…"


def dropped_files(mime: QMimeData) -> list[Path]:
    """The local files a drop or a paste carries (none for text or remote addresses)."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class Composer(QPlainTextEdit):
    """Grows with its text up to MAX_VISIBLE_LINES; emits `submitted` on Enter. Files and pictures
    pasted or dropped on it are attached (`filesGiven`, `imageGiven`), not written in as text."""

    submitted = Signal()
    #: Local files were dropped or pasted (paths).
    filesGiven = Signal(list)
    #: A picture that is not a file was pasted (a QImage).
    imageGiven = Signal(QImage)

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

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        """Files and pictures are welcome, besides text."""
        return bool(dropped_files(source)) or source.hasImage() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        """A paste or a drop: files and pictures are attached; text goes in as plain text."""
        files = dropped_files(source)
        if files:
            self.filesGiven.emit(files)
        elif source.hasImage():
            image = source.imageData()
            self.imageGiven.emit(image if isinstance(image, QImage) else QImage())
        else:
            super().insertFromMimeData(source)

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
