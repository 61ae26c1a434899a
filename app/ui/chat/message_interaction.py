"""What the message list does for the mouse: text selection over a bubble, Copy links, context menu.

The list paints its rows itself, so nothing painted can be selected. A click on a bubble lays a
transparent text browser holding a copy of that bubble's document exactly over it, and the press is
forwarded there: from then on Qt's own selection, keyboard and copy handling apply.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent, QTextDocument
from PySide6.QtWidgets import QFrame, QMenu, QTextBrowser, QWidget

from app.core.chat.messages import Message, Role
from app.ui.chat.message_actions import can_continue_reply
from app.ui.chat.message_layout import PAD, has_versions


class SelectableText(QTextBrowser):
    """A transparent read-only text browser laid over one bubble so its text can be selected."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.viewport().setAutoFillBackground(False)
        self.setStyleSheet("background: transparent;")
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        #: The row whose bubble it covers (-1: none yet).
        self.row = -1
        self._doc: QTextDocument | None = None

    def show_copy(self, row: int, doc: QTextDocument, bubble: QRect) -> None:
        """Cover `bubble` (row `row`'s, viewport coordinates) with a selectable copy of `doc`."""
        self.row = row
        # A clone: selecting must not touch the painted document. Kept alive here (the browser does
        # not own a document without a parent); the previous clone is freed.
        self._doc = doc.clone()
        self.setDocument(self._doc)
        self.place(bubble)
        self.show()
        self.setFocus()

    def place(self, bubble: QRect) -> None:
        """Line the text up with the painted text of `bubble` (after a scroll or a re-wrap)."""
        self.setGeometry(bubble.adjusted(PAD, PAD, -PAD + 2, -PAD + 2))

    def press(self, event: QMouseEvent) -> None:
        """Forward a press on the view's viewport, so the selection starts where the user pressed."""
        local = QPointF(event.position().x() - self.x(), event.position().y() - self.y())
        forwarded = QMouseEvent(
            event.type(), local, event.globalPosition(), event.button(), event.buttons(), event.modifiers()
        )
        QGuiApplication.sendEvent(self.viewport(), forwarded)

    def selected(self) -> str:
        """The selected text with line breaks as "\\n" (empty while hidden)."""
        return self.textCursor().selectedText().replace("\u2029", "\n") if self.isVisible() else ""


def text_point(bubble: QRect, pos: QPoint) -> QPointF | None:
    """Where viewport position `pos` falls in the text painted in `bubble`, or None off the bubble."""
    if not bubble.contains(pos):
        return None
    return QPointF(pos.x() - bubble.left() - PAD, pos.y() - bubble.top() - PAD)


def copied_code(anchor: str, code_blocks: tuple[str, ...]) -> str | None:
    """The code block a "copy:N" link stands for, or None for any other link."""
    if not anchor.startswith("copy:"):
        return None
    number = anchor.split(":", 1)[1]
    if not number.isascii() or not number.isdigit():  # not a link the window made
        return None
    index = int(number)
    return code_blocks[index] if 0 <= index < len(code_blocks) else None


def message_menu(
    parent: QWidget,
    row: int,
    message: Message,
    selection: str,
    can_continue: bool,
    action: Callable[[int, str], None],
    step: Callable[[int, int], None],
) -> QMenu:
    """The context menu of message `row`: copy, then edit or regenerate (and continue, where
    `can_continue` allows it for a reply cut at its token limit), versions and delete.
    `action(row, name)` and `step(row, ±1)` are called for the chosen entry."""
    menu = QMenu(parent)
    if selection:
        menu.addAction("Copy selection", lambda: QGuiApplication.clipboard().setText(selection))
    text = message.content
    menu.addAction("Copy message", lambda: QGuiApplication.clipboard().setText(text))
    menu.addSeparator()
    if message.role is Role.USER:
        menu.addAction("Edit and resend…", lambda: action(row, "edit"))
    else:
        menu.addAction("Regenerate", lambda: action(row, "regenerate"))
        if can_continue and can_continue_reply(message):
            menu.addAction("Continue", lambda: action(row, "continue"))
    if has_versions(message):
        menu.addAction("Previous version", lambda: step(row, -1))
        menu.addAction("Next version", lambda: step(row, 1))
    menu.addAction("Delete", lambda: action(row, "delete"))
    return menu
