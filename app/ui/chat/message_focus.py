"""The message list from the keyboard: with the list focused, Up and Down (Home, End, Page Up, Page
Down) move a cursor from message to message, the Menu key or Shift+F10 opens that message's actions
(copy, edit, regenerate, continue, versions, delete), Ctrl+C copies it; a screen reader follows the
cursor (a Focus event on the message)."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence, QPainter, QPalette, QPen

#: How far Page Up / Page Down move the cursor, in messages.
PAGE = 5


class FocusableRows(Protocol):
    """What the keys need of the message view."""

    current_row: int

    def row_count(self) -> int:
        """How many messages there are."""

    def set_current_row(self, row: int) -> None:
        """Move the cursor to `row` and bring it into view."""

    def open_menu_at(self, row: int) -> None:
        """Open message `row`'s actions, at its bubble."""

    def message_text(self, row: int) -> str:
        """Message `row`'s text."""

    def selected_text(self) -> str:
        """What is selected in a message, or ""."""


def handle_key(rows: FocusableRows, event: QKeyEvent) -> bool:
    """Act on `event` if it is one of the list's keys; whether it was."""
    count = rows.row_count()
    if count == 0:
        return False
    row = rows.current_row if 0 <= rows.current_row < count else count - 1
    key, mods = event.key(), event.modifiers()
    moves = {
        Qt.Key.Key_Up: row - 1,
        Qt.Key.Key_Down: row + 1,
        Qt.Key.Key_Home: 0,
        Qt.Key.Key_End: count - 1,
        Qt.Key.Key_PageUp: row - PAGE,
        Qt.Key.Key_PageDown: row + PAGE,
    }
    if key in moves and not mods & ~Qt.KeyboardModifier.KeypadModifier:
        rows.set_current_row(max(0, min(count - 1, moves[Qt.Key(key)])))
        return True
    if key == Qt.Key.Key_Menu or (key == Qt.Key.Key_F10 and mods == Qt.KeyboardModifier.ShiftModifier):
        rows.open_menu_at(row)
        return True
    if event.matches(QKeySequence.StandardKey.Copy) and not rows.selected_text():
        QGuiApplication.clipboard().setText(rows.message_text(row))
        return True
    return False


def paint_cursor(painter: QPainter, bubble: QRect, palette: QPalette) -> None:
    """A ring around the message the cursor is on (only while the list has the focus)."""
    pen = QPen(palette.color(QPalette.ColorRole.Highlight))
    pen.setWidth(2)
    painter.save()
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(bubble.adjusted(-3, -3, 3, 3), 8, 8)
    painter.restore()
