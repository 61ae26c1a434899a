"""The conversation sidebar: new, search as you type (with the matching text), pin, rename, delete."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.store import ConversationInfo, SearchHit
from app.ui.common.accessible import set_description
from app.ui.common.icons import icon
from app.ui.common.theme import chars

IdRole = Qt.ItemDataRole.UserRole + 10
_Index = QModelIndex | QPersistentModelIndex
SEARCH_DEBOUNCE_MS = 200


class ConversationListModel(QAbstractListModel):
    """Conversations (or search hits with their snippet), one row each."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[int, str, str, bool]] = []  # id, title, snippet, pinned

    def set_conversations(self, items: list[ConversationInfo]) -> None:
        """Show the full list."""
        self.beginResetModel()
        self.rows = [(c.id, c.title or "New conversation", "", c.pinned) for c in items]
        self.endResetModel()

    def set_hits(self, hits: list[SearchHit]) -> None:
        """Show search results."""
        self.beginResetModel()
        self.rows = [(h.conversation_id, h.title or "New conversation", h.snippet, False) for h in hits]
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        cid, title, snippet, pinned = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = ("⚑ " if pinned else "") + title  # a glyph every common UI font has
            return f"{text}\n{snippet}" if snippet else text
        if role == Qt.ItemDataRole.ToolTipRole:
            return snippet or (f"{title} (pinned)" if pinned else title)
        if role == Qt.ItemDataRole.FontRole and pinned:
            font = QFont()
            font.setBold(True)
            return font
        if role == IdRole:
            return cid
        return None

    def row_of(self, conversation_id: int | None) -> int:
        """The row showing a conversation, or -1."""
        return next((i for i, r in enumerate(self.rows) if r[0] == conversation_id), -1)


class ConversationSidebar(QWidget):
    """Signals ask the window to act; the sidebar only shows."""

    chosen = Signal(int)
    newRequested = Signal()
    searchChanged = Signal(str)
    renameRequested = Signal(int)
    pinRequested = Signal(int, bool)
    deleteRequested = Signal(int)
    exportRequested = Signal(list, str)  # conversation ids, "markdown" | "json" | "jsonl"
    exportAllRequested = Signal(str)  # "json" | "jsonl"
    importRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversationSidebar")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        self.new_button = QPushButton("New conversation")
        self.new_button.setObjectName("newConversationButton")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.setIcon(icon("new_conversation"))
        self.new_button.clicked.connect(self.newRequested)
        self.search = QLineEdit()
        self.search.setObjectName("conversationSearch")
        self.search.setAccessibleName("Search conversations")
        self.search.setPlaceholderText("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        for button in self.search.findChildren(QToolButton):  # the icon's button: a name to read out
            button.setAccessibleName("Search")
            button.setAccessibleDescription("Type to search the conversations' titles and messages")
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(lambda: self.searchChanged.emit(self.search.text().strip()))
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.model = ConversationListModel(self)
        self.list = QListView()
        self.list.setObjectName("conversationList")
        set_description(
            self.list,
            "Your conversations, pinned first; Enter opens one, the "
            "context menu renames, pins, exports or deletes",
        )
        self.list.setAccessibleName("Conversations")
        self.list.setModel(self.model)
        self.list.setUniformItemSizes(False)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setStyleSheet("QListView::item { padding: 5px 4px; }")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        # Ctrl/Shift-click selects several conversations (to export them together) without opening one.
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.clicked.connect(self._on_clicked)
        # Enter on the current row opens it too (a double click emits both: opening twice is a no-op).
        self.list.activated.connect(lambda index: self.chosen.emit(int(index.data(IdRole))))
        self.more_button = QPushButton("Import / export…")
        self.more_button.setObjectName("conversationFileButton")
        set_description(self.more_button, "Import conversations from a JSON file, or export them all")
        self.more_button.setIcon(icon("folder"))
        file_menu = QMenu(self.more_button)
        file_menu.addAction("Import conversations (JSON)…", self.importRequested.emit)
        file_menu.addAction(
            "Export all as JSON (every branch)…", lambda: self.exportAllRequested.emit("json")
        )
        file_menu.addAction(
            "Export all as fine-tuning data (JSONL)…", lambda: self.exportAllRequested.emit("jsonl")
        )
        self.more_button.setMenu(file_menu)
        self.empty = QLabel()
        self.empty.setObjectName("conversationsEmpty")
        self.empty.setWordWrap(True)
        self.empty.setProperty("role", "empty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.empty.setContentsMargins(8, 16, 8, 8)
        self.model.modelReset.connect(self._show_empty)
        self.model.rowsInserted.connect(self._show_empty)
        self.model.rowsRemoved.connect(self._show_empty)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.more_button)
        self._show_empty()
        self.setMinimumWidth(max(200, chars(self.font(), 26)))
        self.setMaximumWidth(max(320, chars(self.font(), 44)))

    def _show_empty(self, *_: object) -> None:
        """In place of an empty list, say why it is empty and what to do."""
        empty = self.model.rowCount() == 0
        query = self.search.text().strip()
        if query:
            self.empty.setText(f"No conversation has “{query}”. Try other words, or clear the search.")
        else:
            self.empty.setText("No conversations yet. Type a message to start one; it is kept here.")
        self.empty.setVisible(empty)
        self.list.setVisible(not empty)

    def select(self, conversation_id: int | None) -> None:
        """Highlight the open conversation (no signal)."""
        row = self.model.row_of(conversation_id)
        self.list.blockSignals(True)
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row))
        else:
            self.list.clearSelection()
        self.list.blockSignals(False)

    def _on_clicked(self, index: QModelIndex) -> None:
        modifiers = QGuiApplication.keyboardModifiers()
        if modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
            return  # extending the selection, not opening
        self.chosen.emit(int(index.data(IdRole)))

    def selected_ids(self) -> list[int]:
        """The selected conversations, in list order."""
        rows = sorted(index.row() for index in self.list.selectionModel().selectedRows())
        return [self.model.rows[row][0] for row in rows]

    def _menu(self, point: QPoint) -> None:
        index = self.list.indexAt(point)
        if not index.isValid():
            return
        cid = int(index.data(IdRole))
        selected = self.selected_ids()
        if cid in selected and len(selected) > 1:  # act on the whole selection
            n = len(selected)
            emit = self.exportRequested.emit
            actions: tuple[tuple[str, Callable[[], None]], ...] = (
                (f"Export {n} conversations as Markdown…", lambda: emit(selected, "markdown")),
                (f"Export {n} conversations as JSON…", lambda: emit(selected, "json")),
                (f"Export {n} conversations as fine-tuning JSONL…", lambda: emit(selected, "jsonl")),
            )
        else:
            pinned = self.model.rows[index.row()][3]
            actions = (
                ("Rename…", lambda: self.renameRequested.emit(cid)),
                ("Unpin" if pinned else "Pin", lambda: self.pinRequested.emit(cid, not pinned)),
                ("Export as Markdown…", lambda: self.exportRequested.emit([cid], "markdown")),
                ("Export as JSON (every branch)…", lambda: self.exportRequested.emit([cid], "json")),
                ("Export as fine-tuning JSONL…", lambda: self.exportRequested.emit([cid], "jsonl")),
                ("Delete", lambda: self.deleteRequested.emit(cid)),
            )
        menu = QMenu(self)
        for text, handler in actions:
            action = QAction(text, menu)
            action.triggered.connect(handler)
            menu.addAction(action)
        menu.popup(self.list.viewport().mapToGlobal(point))
