"""The installed models as a Qt model: one row per file, the columns of My models' table; the cards
draw from its first column (EntryRole carries the entry)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QWidget

from app.core.models.library import ModelEntry
from app.core.values.units import format_params, format_size

EntryRole = Qt.ItemDataRole.UserRole + 3
_Index = QModelIndex | QPersistentModelIndex


class LibraryModel(QAbstractTableModel):
    """Installed models, one row each; unusable files show why."""

    HEADERS = (
        "Model",
        "Architecture",
        "Parameters",
        "Quantization",
        "Context",
        "Chat template",
        "Size",
        "Path",
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[ModelEntry] = []
        self.names: dict[str, str] = {}

    def set_entries(self, entries: list[ModelEntry], names: dict[str, str] | None = None) -> None:
        """Replace the rows; `names` gives friendly names for files named by a hash (Ollama's blobs)."""
        self.beginResetModel()
        self.entries = list(entries)
        self.names = names or {}
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        entry = self.entries[index.row()]
        info = entry.info
        if role == EntryRole:
            return entry
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.error or str(entry.path)
        if role == Qt.ItemDataRole.ForegroundRole and info is None:
            return QBrush(QColor("#cf222e"))
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        column = index.column()
        name = self.names.get(str(entry.path))
        if info is None:
            texts = [
                name or entry.path.name,
                entry.error or "cannot be used",
                "",
                "",
                "",
                "",
                "",
                str(entry.path),
            ]
            return texts[column]
        return [
            name or entry.path.stem,
            info.architecture,
            format_params(info.parameter_count),
            info.quantization,
            f"{info.context_length:,}" if info.context_length else "unknown",
            "yes" if info.has_chat_template else "no (ChatML is used)",
            format_size(info.file_size),
            str(entry.path),
        ][column]
