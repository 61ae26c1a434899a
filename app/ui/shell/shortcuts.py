"""Every keyboard shortcut of the window, in one table: the window binds the ones it owns from here,
and Help → Keyboard shortcuts (F1) shows them all, so the list cannot drift from what the keys do."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.common.accessible import describe_buttons, set_description


@dataclass(frozen=True, slots=True)
class Shortcut:
    """Keys (in Qt's portable text, e.g. "Ctrl+N"), what they do, and the window action they run
    (empty: a widget handles them itself, like Enter in the message box)."""

    keys: str
    what: str
    action: str = ""


#: The shortcuts, by section, in the order Help shows them.
SECTIONS: tuple[tuple[str, tuple[Shortcut, ...]], ...] = (
    (
        "Chat",
        (
            Shortcut("Enter", "Send the message (while the model loads: send it once it is ready)"),
            Shortcut("Shift+Enter", "A new line in the message"),
            Shortcut("Esc", "Stop the reply", "stop"),
            Shortcut("Ctrl+L", "Go to the message box", "composer"),
            Shortcut("Ctrl+Shift+A", "Attach images to the message (or paste or drop them)", "attach"),
            Shortcut("Ctrl+N", "New conversation", "new_conversation"),
            Shortcut("Ctrl+F", "Search the conversations", "search"),
            Shortcut("Enter", "In the conversation list: open the conversation"),
        ),
    ),
    (
        "Messages (with the message list focused)",
        (
            Shortcut("Up, Down", "The previous or next message (Home, End, Page Up, Page Down too)"),
            Shortcut("Menu, Shift+F10", "The message's actions: copy, edit, regenerate, versions, delete"),
            Shortcut("Ctrl+C", "Copy the message (or what is selected in it)"),
        ),
    ),
    (
        "Text size",
        (
            Shortcut("Ctrl++", "Larger text in the chat (also Ctrl+=)"),
            Shortcut("Ctrl+-", "Smaller text in the chat"),
            Shortcut("Ctrl+0", "The system's text size"),
        ),
    ),
    (
        "Window",
        (
            Shortcut("Ctrl+1", "The Chat page", "page_chat"),
            Shortcut("Ctrl+2", "The Discover page", "page_discover"),
            Shortcut("Ctrl+3", "The My models page", "page_library"),
            Shortcut("Ctrl+O", "Open a GGUF file…", "open_model"),
            Shortcut("Ctrl+Shift+S", "Show or hide the conversation's settings", "settings_drawer"),
            Shortcut("Ctrl+,", "Preferences…", "preferences"),
            Shortcut("F1", "This list of shortcuts", "shortcuts"),
            Shortcut("Tab, Shift+Tab", "Move between the controls of a page"),
        ),
    ),
)


def all_shortcuts() -> list[Shortcut]:
    """Every shortcut, in order."""
    return [shortcut for _section, shortcuts in SECTIONS for shortcut in shortcuts]


def bind(window: QWidget, actions: Mapping[str, Callable[[], object]]) -> list[QShortcut]:
    """A window-wide QShortcut for every shortcut whose action `actions` names (all of them must be
    there: a listed shortcut that does nothing is a bug)."""
    bound = []
    for shortcut in all_shortcuts():
        if not shortcut.action:
            continue
        action = actions[shortcut.action]  # KeyError: the table names an action the window lacks
        bound.append(QShortcut(QKeySequence(shortcut.keys), window, action))
    return bound


class ShortcutsDialog(QDialog):
    """Help → Keyboard shortcuts: a table of keys and what they do, by section."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("shortcutsTable")
        set_description(self.table, "Every keyboard shortcut: the keys and what they do")
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Keys", "What they do"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        for section, shortcuts in SECTIONS:
            row = self.table.rowCount()
            self.table.insertRow(row)
            heading = QTableWidgetItem(section)
            font = heading.font()
            font.setBold(True)
            heading.setFont(font)
            heading.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.table.setItem(row, 0, heading)
            self.table.setSpan(row, 0, 1, 2)
            for shortcut in shortcuts:
                row = self.table.rowCount()
                self.table.insertRow(row)
                keys = QKeySequence(shortcut.keys).toString(QKeySequence.SequenceFormat.NativeText)
                self.table.setItem(row, 0, QTableWidgetItem(keys or shortcut.keys))
                self.table.setItem(row, 1, QTableWidgetItem(shortcut.what))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.resizeRowsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(buttons)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 520)
