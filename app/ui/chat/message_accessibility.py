"""What a screen reader finds in the message list: a list whose items are the messages.

MessageView paints its rows itself, so Qt's own accessibility saw an empty scroll area. A factory
(QAccessible.installFactory) gives the view an interface of its own: role List, named "Messages",
with one ListItem child per message, named for who wrote it ("You", "Assistant") and holding the
message's text as its description and value, placed where its bubble is on screen. A finished reply is
announced (QAccessibleAnnouncementEvent), politely, so it does not cut the reader short.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from PySide6.QtCore import QObject, QRect
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QAccessibleEvent, QAccessibleInterface
from PySide6.QtWidgets import QAccessibleWidget, QWidget

from app.core.chat.messages import Message, Role
from app.ui.chat.message_model import MessageListModel


class ReadableView(Protocol):
    """What the interfaces ask of the message view (MessageView, which installs the factory)."""

    #: The message the keyboard cursor is on (-1: none yet).
    current_row: int

    def hasFocus(self) -> bool:
        """Whether the list has the keyboard focus."""

    def model(self) -> MessageListModel | None:
        """The messages shown."""

    def bubble_rect(self, row: int) -> QRect:
        """Where row `row`'s bubble is, in viewport coordinates."""

    def viewport(self) -> QWidget:
        """The widget the rows are painted on."""


#: What each author is called to a screen reader.
AUTHORS = {Role.USER: "You", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System prompt"}

#: The view class the factory makes interfaces for (set by install; None until then).
_view_class: type[QWidget] | None = None


def install(view_class: type[QWidget]) -> None:
    """Make every `view_class` widget readable as a list of messages (the factory is installed once
    per process)."""
    global _view_class
    if _view_class is None:
        QAccessible.installFactory(_factory)
    _view_class = view_class


def _factory(_key: str, obj: QObject) -> QAccessibleInterface | None:
    if _view_class is not None and isinstance(obj, _view_class):
        return MessageListAccessible(obj)
    return None


def spoken(message: Message) -> str:
    """A message's text as read out: its content, and whether it is unfinished."""
    text = message.content or ""
    if message.attachments:
        names = ", ".join(a.name for a in message.attachments)
        count = len(message.attachments)
        images = f"(with {count} image{'s' if count > 1 else ''}: {names})"
        text = f"{images} {text}" if text else images
    if message.streaming:
        return f"{text} (still being written)" if text else "(being written)"
    if message.error:
        return f"{text} (failed: {message.error})" if text else f"(failed: {message.error})"
    return text


class MessageListAccessible(QAccessibleWidget):
    """The message view as a list of messages."""

    def __init__(self, view: QWidget) -> None:
        super().__init__(view, QAccessible.Role.List, "Messages")
        self.view = cast(ReadableView, view)
        # Qt keeps the interfaces handed out by child() in its cache, by address: each stays alive
        # (and answers isValid False once its row is gone) as long as the view does.
        self._items: list[MessageItemAccessible] = []

    def childCount(self) -> int:
        """How many messages there are."""
        model = self.view.model()
        return model.rowCount() if model is not None else 0

    # Qt's API returns nullptr for "none"; PySide's stubs do not say so, hence the ignores below.
    def child(self, index: int) -> QAccessibleInterface | None:  # type: ignore[override]
        """Message `index`."""
        if not 0 <= index < self.childCount():
            return None
        while len(self._items) <= index:
            self._items.append(MessageItemAccessible(self, len(self._items)))
        return self._items[index]

    def indexOfChild(self, child: QAccessibleInterface) -> int:
        """The row of `child`, or -1."""
        row = getattr(child, "row", -1)
        return row if 0 <= row < len(self._items) and self._items[row] is child else -1

    def focusChild(self) -> QAccessibleInterface | None:  # type: ignore[override]
        """The message the keyboard cursor is on, while the list has the focus."""
        row = self.view.current_row
        return self.child(row) if self.view.hasFocus() and row >= 0 else None

    def text(self, kind: QAccessible.Text) -> str:
        """The list's name and description."""
        if kind == QAccessible.Text.Name:
            return "Messages"
        if kind == QAccessible.Text.Description:
            count = self.childCount()
            return f"{count} message{'s' if count != 1 else ''} in this conversation"
        return str(super().text(kind))


class MessageItemAccessible(QAccessibleInterface):
    """One message: who wrote it (its name) and what it says (its description and value)."""

    def __init__(self, parent: MessageListAccessible, row: int) -> None:
        super().__init__()
        self._parent, self.row = parent, row

    def _message(self) -> Message | None:
        model = self._parent.view.model()
        if model is None or not 0 <= self.row < model.rowCount():
            return None
        return model.message(self.row)

    def isValid(self) -> bool:
        """False once the row is gone (another conversation, a deleted message)."""
        model = self._parent.view.model()
        return model is not None and 0 <= self.row < model.rowCount()

    def object(self) -> Any:
        """No QObject of its own: it is part of the view."""
        return None

    def window(self) -> Any:
        """The view's window."""
        return self._parent.window()

    def parent(self) -> QAccessibleInterface:
        """The list."""
        return self._parent

    def child(self, _index: int) -> None:  # type: ignore[override]
        """A message has no children."""
        return None

    def childCount(self) -> int:
        """None."""
        return 0

    def indexOfChild(self, _child: QAccessibleInterface) -> int:
        """Never one of its children."""
        return -1

    def childAt(self, _x: int, _y: int) -> None:  # type: ignore[override]
        """None."""
        return None

    def focusChild(self) -> None:  # type: ignore[override]
        """None."""
        return None

    def text(self, kind: QAccessible.Text) -> str:
        """Name: who wrote it; description and value: what it says."""
        message = self._message()
        if message is None:
            return ""
        if kind == QAccessible.Text.Name:
            return AUTHORS.get(message.role, str(message.role))
        if kind in (QAccessible.Text.Description, QAccessible.Text.Value):
            return spoken(message)
        return ""

    def setText(self, _kind: QAccessible.Text, _text: str) -> None:
        """Messages are read-only here (Edit puts one back in the composer)."""

    def rect(self) -> QRect:
        """Where its bubble is, in screen coordinates."""
        if not self.isValid():
            return QRect()
        view = self._parent.view
        bubble = view.bubble_rect(self.row)
        return QRect(view.viewport().mapToGlobal(bubble.topLeft()), bubble.size())

    def role(self) -> QAccessible.Role:
        """A list item."""
        return QAccessible.Role.ListItem

    def state(self) -> QAccessible.State:
        """Read-only, and off screen when scrolled away."""
        state = QAccessible.State()
        state.readOnly = True
        state.selectable = True
        state.focusable = True
        if self.isValid():
            view = self._parent.view
            state.invisible = not view.viewport().rect().intersects(view.bubble_rect(self.row))
            state.focused = view.hasFocus() and view.current_row == self.row
        return state


def announce(view: QWidget, text: str) -> None:
    """Have a screen reader say `text` when it is done speaking (a reply finished, say)."""
    event = QAccessibleAnnouncementEvent(view, text)
    event.setPoliteness(QAccessible.AnnouncementPoliteness.Polite)
    QAccessible.updateAccessibility(event)


def focus_moved(view: QWidget, row: int) -> None:
    """The keyboard cursor is on message `row` now: a screen reader reads it."""
    event = QAccessibleEvent(view, QAccessible.Event.Focus)
    event.setChild(row)
    QAccessible.updateAccessibility(event)


def rows_changed(view: QWidget) -> None:
    """Tell assistive technology the list's children changed (rows added, removed or reset)."""
    QAccessible.updateAccessibility(QAccessibleEvent(view, QAccessible.Event.ObjectReorder))
