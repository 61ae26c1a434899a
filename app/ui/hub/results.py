"""Search results: a list model that grows page by page, and a two-line delegate that paints each row."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.core.hub.client import RepoSummary

RepoRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


def compact(n: int) -> str:
    """1234 → 1.2K, 5_600_000 → 5.6M."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'updated 3 days ago' style text."""
    if when is None:
        return "update date unknown"
    now = now or datetime.now(UTC)
    seconds = max(0.0, (now - when).total_seconds())
    for size, unit in ((365 * 86400, "year"), (30 * 86400, "month"), (86400, "day"), (3600, "hour")):
        if seconds >= size:
            n = int(seconds // size)
            return f"updated {n} {unit}{'s' if n != 1 else ''} ago"
    return "updated just now"


def subtitle(repo: RepoSummary) -> str:
    """The second line of a result row."""
    parts = [repo.author, f"↓ {compact(repo.downloads)}", f"♥ {compact(repo.likes)}", ago(repo.last_modified)]
    if repo.vision:
        parts.append("vision")
    if repo.gated:
        parts.append("gated")
    return "  ·  ".join(parts)


class SearchResultsModel(QAbstractListModel):
    """Rows of RepoSummary; asks for the next page when the view scrolls near the end."""

    moreWanted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.repos: list[RepoSummary] = []
        self.exhausted = True
        self.loading = False

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.repos)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        repo = self.repos[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return repo.repo_id
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{repo.repo_id}\n{subtitle(repo)}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{repo.repo_id}, {subtitle(repo)}"
        if role == RepoRole:
            return repo
        return None

    def reset(self) -> None:
        """Empty the list for a new search."""
        self.beginResetModel()
        self.repos = []
        self.exhausted = False
        self.loading = True
        self.endResetModel()

    def append(self, repos: list[RepoSummary], exhausted: bool) -> None:
        """Add a page of results."""
        self.loading = False
        self.exhausted = exhausted
        if repos:
            first = len(self.repos)
            self.beginInsertRows(QModelIndex(), first, first + len(repos) - 1)
            self.repos.extend(repos)
            self.endInsertRows()

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self.exhausted and not self.loading and bool(self.repos)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent):
            self.loading = True
            self.moreWanted.emit()


class ResultDelegate(QStyledItemDelegate):
    """Paints repo id (bold) over author, downloads, likes, update date and a gated mark."""

    PAD = 8

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        metrics = QFontMetrics(option.font)
        return QSize(200, metrics.height() * 2 + self.PAD * 2 + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        repo = index.data(RepoRole)
        if not isinstance(repo, RepoSummary):
            return
        rect: QRect = option.rect
        palette: QPalette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        text_color = palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        font = QFont(option.font)
        metrics = QFontMetrics(font)
        inner = rect.adjusted(self.PAD + 4, self.PAD, -self.PAD, -self.PAD)
        bold = QFont(font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color)
        first = QRect(inner.left(), inner.top(), inner.width(), metrics.height())
        painter.drawText(
            first,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            QFontMetrics(bold).elidedText(repo.repo_id, Qt.TextElideMode.ElideMiddle, inner.width()),
        )
        painter.setFont(font)
        muted = text_color if selected else palette.color(QPalette.ColorRole.PlaceholderText)
        painter.setPen(muted)
        second = QRect(inner.left(), first.bottom() + 4, inner.width(), metrics.height())
        painter.drawText(
            second,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(subtitle(repo), Qt.TextElideMode.ElideRight, inner.width()),
        )
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawLine(rect.left() + self.PAD, rect.bottom(), rect.right() - self.PAD, rect.bottom())
        painter.restore()
