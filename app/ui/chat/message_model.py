"""The chat's messages as a Qt list model that follows the session's Transcript (the state is there).

Streamed text costs O(new text): the transcript keeps the pieces, this model only relays
`textAppended` for the streaming row, and views append that piece to what they already laid out.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from app.core.chat.messages import Message
from app.core.chat.transcript import Transcript

MessageRole = Qt.ItemDataRole.UserRole + 1
#: Only the "left out of the prompt" mark changed: nothing to re-measure, just repaint.
LeftOutRole = MessageRole + 1


class MessageListModel(QAbstractListModel):
    """Rows are the Transcript's messages. Only the GUI thread changes the transcript."""

    #: (row, delta): text was appended to a streaming reply. Views update that row only.
    textAppended = Signal(int, str)

    def __init__(self, transcript: Transcript | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self.transcript = transcript if transcript is not None else Transcript()
        self.transcript.subscribe(self)

    # ----- Qt model interface ------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of messages."""
        return 0 if parent.isValid() else len(self.transcript)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Display text, or the Message itself for MessageRole."""
        if not index.isValid() or not 0 <= index.row() < len(self.transcript):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.transcript.message(index.row()).content
        if role == MessageRole:
            return self.transcript.message(index.row())
        return None

    def roleNames(self) -> dict[int, Any]:
        """Names for QML and tools."""
        return {Qt.ItemDataRole.DisplayRole: b"display", MessageRole: b"message"}

    def message(self, row: int) -> Message:
        """The message at `row`, its streamed text joined."""
        return self.transcript.message(row)

    def peek(self, row: int) -> Message:
        """The message at `row` without joining streamed text (cheap: for painting its frame)."""
        return self.transcript.peek(row)

    # ----- following the transcript (its TranscriptListener calls) ------------------------------

    def inserting(self, first: int, last: int) -> None:
        """Rows are about to be added."""
        self.beginInsertRows(QModelIndex(), first, last)

    def inserted(self) -> None:
        """They were."""
        self.endInsertRows()

    def removing(self, first: int, last: int) -> None:
        """Rows are about to go."""
        self.beginRemoveRows(QModelIndex(), first, last)

    def removed(self) -> None:
        """They went."""
        self.endRemoveRows()

    def resetting(self) -> None:
        """Every row is about to be replaced."""
        self.beginResetModel()

    def reset(self) -> None:
        """They were (one reset, however many rows)."""
        self.endResetModel()

    def appended(self, row: int, text: str) -> None:
        """Streamed text: views append it to the row they laid out."""
        self.textAppended.emit(row, text)

    def changed(self, first: int, last: int, paint_only: bool) -> None:
        """Rows changed (or only their marks, which need a repaint and no new layout)."""
        roles = [LeftOutRole] if paint_only else [Qt.ItemDataRole.DisplayRole, MessageRole]
        self.dataChanged.emit(self.index(first), self.index(last), roles)
