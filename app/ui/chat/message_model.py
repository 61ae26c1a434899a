"""The chat's messages as a Qt list model; streaming text is appended in O(new text)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from app.core.chat.messages import Conversation, Message, Role
from app.core.values.replies import ReplyStats

MessageRole = Qt.ItemDataRole.UserRole + 1
#: Only the "left out of the prompt" mark changed: nothing to re-measure, just repaint.
LeftOutRole = MessageRole + 1


class MessageListModel(QAbstractListModel):
    """Rows are `Message`s of one conversation. Only the GUI thread changes it."""

    #: (row, delta): text was appended to a streaming reply. Views update that row only.
    textAppended = Signal(int, str)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.conversation = Conversation()
        # Parts of the reply being streamed, joined only when someone reads the text.
        self._parts: dict[int, list[str]] = {}

    # ----- Qt model interface ------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of messages."""
        return 0 if parent.isValid() else len(self.conversation.messages)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Display text, or the Message itself for MessageRole."""
        if not index.isValid() or not 0 <= index.row() < len(self.conversation.messages):
            return None
        message = self.message(index.row())
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return message.content
        if role == MessageRole:
            return message
        return None

    def roleNames(self) -> dict[int, Any]:
        """Names for QML and tools."""
        return {Qt.ItemDataRole.DisplayRole: b"display", MessageRole: b"message"}

    # ----- editing (GUI thread) ----------------------------------------------------------

    def message(self, row: int) -> Message:
        """The message at `row`, with any streamed parts folded into its content."""
        message = self.conversation.messages[row]
        parts = self._parts.get(row)
        if parts:
            if len(parts) > 1:
                parts[:] = ["".join(parts)]
            message.content = parts[0]
        return message

    def peek(self, row: int) -> Message:
        """The message at `row` without folding streamed parts (cheap: for painting its frame)."""
        return self.conversation.messages[row]

    def add_message(self, role: Role, content: str, *, streaming: bool = False) -> int:
        """Append a message; returns its row."""
        row = len(self.conversation.messages)
        self.beginInsertRows(QModelIndex(), row, row)
        message = Message(role, content, incomplete=streaming)
        self.conversation.messages.append(message)
        if streaming:
            self._parts[row] = [content] if content else []
        self.endInsertRows()
        return row

    def append_text(self, row: int, delta: str) -> None:
        """Add streamed text to a reply: stores the delta and tells views; nothing is re-rendered here."""
        if not delta:
            return
        parts = self._parts.setdefault(row, [self.conversation.messages[row].content])
        parts.append(delta)
        self.textAppended.emit(row, delta)

    def finish(self, row: int, text: str, stats: ReplyStats | None, error: str | None = None) -> None:
        """Close a streaming reply with its final text, stats, or error."""
        self._parts.pop(row, None)
        message = self.conversation.messages[row]
        message.content = text
        message.stats = stats
        message.error = error
        message.incomplete = error is not None  # as the store keeps it: a failed reply did not finish
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, MessageRole])

    def load(self, messages: list[Message]) -> None:
        """Show another conversation's messages (one reset, however many there are)."""
        self.beginResetModel()
        self.conversation = Conversation(list(messages))
        self._parts.clear()
        self.endResetModel()

    def resume(self, row: int) -> None:
        """Make a finished reply stream again (Continue): new text is appended to it."""
        message = self.conversation.messages[row]
        message.incomplete = True
        message.error = None
        self._parts[row] = [message.content]
        index = self.index(row)
        self.dataChanged.emit(index, index, [MessageRole])

    def truncate(self, row: int) -> None:
        """Keep rows before `row` (an edit or regeneration continues the conversation from there)."""
        if row >= len(self.conversation.messages):
            return
        self.beginRemoveRows(QModelIndex(), row, len(self.conversation.messages) - 1)
        del self.conversation.messages[row:]
        for stale in [r for r in self._parts if r >= row]:
            del self._parts[stale]
        self.endRemoveRows()

    def set_versions(self, versions: dict[int, tuple[int, int]]) -> None:
        """Show "< 2/3 >" on rows with alternatives: {row: (version, count)}."""
        for row, version in versions.items():
            if (
                0 <= row < len(self.conversation.messages)
                and self.conversation.messages[row].version != version
            ):
                self.conversation.messages[row].version = version
                index = self.index(row)
                self.dataChanged.emit(index, index, [MessageRole])

    def set_left_out(self, rows: set[int]) -> None:
        """Mark the rows the context policy left out of the latest prompt (and unmark the others)."""
        changed = []
        for row, message in enumerate(self.conversation.messages):
            if message.left_out != (row in rows):
                message.left_out = row in rows
                changed.append(row)
        if changed:  # one signal: thousands of rows can change at once
            self.dataChanged.emit(self.index(changed[0]), self.index(changed[-1]), [LeftOutRole])

    def prompt_rows(self) -> list[int]:
        """The row of each message `prompt_messages` returns."""
        for row in list(self._parts):
            self.message(row)
        return self.conversation.prompt_rows()

    def clear(self) -> None:
        """Remove every message."""
        self.beginResetModel()
        self.conversation = Conversation()
        self._parts.clear()
        self.endResetModel()

    def prompt_messages(self) -> list[dict[str, str]]:
        """The conversation in the form chat templates take."""
        for row in list(self._parts):
            self.message(row)
        return self.conversation.prompt_messages()
