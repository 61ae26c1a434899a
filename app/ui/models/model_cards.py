"""My models as cards: each installed model's name, family and size, quantization, context, whether it
fits this machine and when it was last used, on the same model (and selection) as the table."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QScrollArea,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.core.models.estimate import Fit
from app.core.models.library import ModelEntry
from app.core.values.units import format_params, format_size
from app.ui.common.accessible import set_description
from app.ui.common.icons import icon
from app.ui.common.theme import TITLE_SCALE, chars, is_dark, scaled_font
from app.ui.hub.files import BADGE_COLORS

_Index = QModelIndex | QPersistentModelIndex
PAD = 12


def ago(seconds: float) -> str:
    """How long ago, as people say it: "just now", "5 minutes ago", "yesterday", "3 weeks ago"."""
    if seconds < 60:
        return "just now"
    # Each unit is used until the next one reads better: under an hour in minutes, and so on.
    for unit, size, until in (("minute", 60, 60), ("hour", 3600, 24), ("day", 86400, 7), ("week", 604800, 5)):
        count = int(seconds // size)
        if count < until:
            if unit == "day" and count == 1:
                return "yesterday"
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    months = int(seconds // (30 * 86400))
    return f"{months} month{'s' if months != 1 else ''} ago" if months < 12 else "over a year ago"


class CardFacts:
    """What a card shows besides the GGUF's own facts: fit, last use, the loaded model, friendly names."""

    def __init__(self) -> None:
        self.fit: Callable[[ModelEntry], Fit | None] = lambda _entry: None
        self.last_used: dict[str, float] = {}
        self.loaded = ""
        self.names: dict[str, str] = {}

    def used_line(self, entry: ModelEntry) -> str:
        """ "In use now", "Last used 2 hours ago" or "Not used yet"."""
        path = str(entry.path)
        if path == self.loaded:
            return "In use now"
        when = self.last_used.get(path)
        return f"Last used {ago(max(0.0, time.time() - when))}" if when else "Not used yet"


class ModelCardDelegate(QStyledItemDelegate):
    """Paints one card per installed model (the table's column 0 carries the entry)."""

    def __init__(self, facts: CardFacts, entry_role: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.facts = facts
        self.entry_role = entry_role

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        """Five lines of text in a card of fixed width."""
        line = QFontMetrics(option.font).lineSpacing()
        return QSize(chars(option.font, 48), 2 * PAD + int(line * 1.3) + 4 * line + 12)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        """Name, family · parameters, quantization · size · context, fit, last used."""
        entry = index.data(self.entry_role)
        if not isinstance(entry, ModelEntry):
            return
        rect: QRect = option.rect.adjusted(4, 4, -4, -4)
        palette: QPalette = option.palette
        state = option.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        hovered = bool(state & QStyle.StateFlag.State_MouseOver)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base = palette.color(QPalette.ColorRole.Base)
        fill = base.lighter(115) if is_dark(palette) and hovered else base.darker(103) if hovered else base
        accent = palette.color(QPalette.ColorRole.Highlight)
        painter.setBrush(fill)
        painter.setPen(accent if selected else palette.color(QPalette.ColorRole.Mid))
        painter.drawRoundedRect(QRectF(rect).adjusted(0.5, 0.5, -0.5, -0.5), 10, 10)
        if selected:
            painter.setPen(accent)
            painter.drawRoundedRect(QRectF(rect).adjusted(1.5, 1.5, -1.5, -1.5), 9, 9)
        inner = rect.adjusted(PAD, PAD, -PAD, -PAD)
        font: QFont = QFont(option.font)
        title_font = scaled_font(font, 1.1, bold=True)  # (a pixel-sized font has no point size)
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        info = entry.info
        name = self.facts.names.get(str(entry.path)) or (entry.path.stem if info else entry.path.name)
        y = inner.top()
        y = _line(painter, title_font, text, inner, y, name, 1.3)
        if info is None:
            painter.setFont(font)
            painter.setPen(QColor("#cf222e"))
            painter.drawText(
                QRect(inner.left(), y, inner.width(), inner.bottom() - y),
                Qt.TextFlag.TextWordWrap,
                entry.error or "This file cannot be used.",
            )
            painter.restore()
            return
        family = f"{info.architecture} · {format_params(info.parameter_count)} parameters"
        y = _line(painter, font, muted, inner, y, family)
        context = f"{info.context_length:,} context" if info.context_length else "context unknown"
        facts = f"{info.quantization} · {format_size(info.file_size)} · {context}"
        y = _line(painter, font, text, inner, y, facts)
        if entry.projector is not None:  # sees images too, through the projector beside it
            y = _line(painter, font, muted, inner, y, f"Vision · {entry.projector.name}")
        if info.is_embedding_model:  # searches documents; it does not chat
            y = _line(painter, font, muted, inner, y, "Embedding model · for document search")
        if entry.adapters:  # fine-tunes of it, applied without reloading it
            count = len(entry.adapters)
            y = _line(
                painter,
                font,
                muted,
                inner,
                y,
                f"{count} LoRA adapter{'s' if count > 1 else ''} · {entry.adapters[0].name}",
            )
        badge = self.facts.fit(entry)
        if badge is not None:
            dot = QRect(inner.left(), y + QFontMetrics(font).ascent() // 2 - 2, 8, 8)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(BADGE_COLORS[badge]))
            painter.drawEllipse(dot)
            fit_rect = inner.adjusted(14, 0, 0, 0)
            y = _line(painter, font, text, fit_rect, y, badge.label[:1].upper() + badge.label[1:])
        else:
            y = _line(painter, font, muted, inner, y, "Fit: checking this machine…")
        used = self.facts.used_line(entry)
        _line(painter, font, accent if used == "In use now" else muted, inner, y, used)
        painter.restore()


def _line(
    painter: QPainter, font: QFont, color: QColor, inner: QRect, y: int, text: str, scale: float = 1.0
) -> int:
    """Draw one elided line at `y`; returns the y of the next."""
    metrics = QFontMetrics(font)
    painter.setFont(font)
    painter.setPen(color)
    height = int(metrics.lineSpacing() * scale)
    elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, inner.width())
    painter.drawText(QRect(inner.left(), y, inner.width(), height), Qt.AlignmentFlag.AlignVCenter, elided)
    return y + height


class ModelCards(QListView):
    """The cards, wrapping to the page's width."""

    def __init__(self, facts: CardFacts, entry_role: int) -> None:
        super().__init__()
        self.setObjectName("modelCards")
        set_description(self, "The installed models, one card each; Enter or a double click chats with one")
        self.setAccessibleName("Installed models")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setSpacing(4)
        self.setMouseTracking(True)  # the hover tint
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setItemDelegate(ModelCardDelegate(facts, entry_role, self))
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)


class LibraryEmpty(QScrollArea):
    """What My models shows with nothing installed: what to do, and the buttons to do it (scrolling
    rather than clipping when the text is large)."""

    discoverRequested = Signal()
    importRequested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("libraryEmpty")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        self.setWidget(body)
        layout = QVBoxLayout(body)
        layout.addStretch(1)
        title = QLabel("No models yet")
        title.setFont(scaled_font(title.font(), TITLE_SCALE, bold=True))
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            "Find one in Discover (it shows which files fit this computer), or import a .gguf file you "
            "already have. Models that LM Studio, Ollama, GPT4All or Jan downloaded are listed below, to "
            "use in place."
        )
        text.setObjectName("libraryEmptyText")
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setProperty("role", "empty")
        # A fixed width: a word-wrapped label in a centring layout is otherwise given one line's height.
        text.setFixedWidth(56 * text.fontMetrics().averageCharWidth())
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        discover = QPushButton("Discover models")
        discover.setObjectName("libraryEmptyDiscover")
        set_description(discover, "Find a model to download on the Discover page")
        discover.setIcon(icon("discover", on_accent=True))
        discover.setProperty("primary", True)
        discover.clicked.connect(self.discoverRequested)
        imports = QPushButton("Import GGUF…")
        imports.setObjectName("libraryEmptyImport")
        set_description(imports, "Use a .gguf file you already have")
        imports.setIcon(icon("import"))
        imports.clicked.connect(self.importRequested)
        buttons.addWidget(discover)
        buttons.addWidget(imports)
        buttons.addStretch(1)
        layout.addWidget(title)
        # Centred by stretches, not by an alignment: a layout item with an alignment is given its
        # one-line size hint, and the wrapped lines would be cut off.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(text)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addSpacing(8)
        layout.addLayout(buttons)
        layout.addStretch(1)
