"""A repository's GGUF files as a table: quantization, file, size, fit badge, and the recommended one."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QWidget

from app.core.hub.plan import FileFit
from app.core.models.estimate import Fit, describe
from app.core.values.units import format_size

FitRole = Qt.ItemDataRole.UserRole + 2
_Index = QModelIndex | QPersistentModelIndex

#: Badge colours (text on a light or dark background alike).
BADGE_COLORS = {
    Fit.GPU: "#1a7f37",
    Fit.RAM: "#1a7f37",
    Fit.SLOW: "#bf8700",
    Fit.TOO_LARGE: "#cf222e",
}


class FilesModel(QAbstractTableModel):
    """Rows of FileFit; `status` maps a group's first file name to a note such as "Installed"."""

    HEADERS = ("Quantization", "File", "Size", "Fit")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[FileFit] = []
        self.status: dict[str, str] = {}

    def set_rows(self, rows: list[FileFit], status: dict[str, str] | None = None) -> None:
        """Replace the table."""
        self.beginResetModel()
        self.rows = rows
        self.status = status or {}
        self.endResetModel()

    def set_status(self, status: dict[str, str]) -> None:
        """Update the notes (installed, downloading…) without rebuilding the rows."""
        self.status = status
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(self.HEADERS) - 1))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

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
        row = self.rows[index.row()]
        column = index.column()
        if role == FitRole:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                quant = row.group.quant or "unknown"
                return f"★ {quant}" if row.recommended else quant
            if column == 1:
                return row.group.label
            if column == 2:
                return format_size(row.group.size)
            note = self.status.get(row.group.name)
            badge = row.fit.label + (" · recommended" if row.recommended else "")
            if not row.group.complete:
                badge = "incomplete: parts missing on the Hub"
            return f"{badge} · {note}" if note else badge
        if role == Qt.ItemDataRole.ToolTipRole:
            note = self.status.get(row.group.name)
            extra = f"\n{note[0].upper()}{note[1:]}." if note else ""
            return f"{row.group.label}: needs {describe(row.estimate)}.{extra}"
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            return QBrush(QColor(BADGE_COLORS[row.fit]))
        if role == Qt.ItemDataRole.FontRole and row.recommended:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
