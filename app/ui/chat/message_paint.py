"""Painting of the message list's rows: header, bubble, text, footer and the "‹ n/m ›" version switch."""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QFont, QFontMetrics, QPainter, QPalette

from app.core.chat.messages import Message, Role
from app.ui.chat.message_layout import PAD, Row, footer_text, has_versions, version_text
from app.ui.common.theme import is_dark

ERROR_COLOR = "#d1242f"
EMPTY_TEXT = "Start a conversation: type a message below and press Enter."


def version_arrow_rects(bubble: QRect, version: tuple[int, int], small_font: QFont) -> tuple[QRect, QRect]:
    """Where "‹" and "›" of the "‹ n/m ›" under `bubble` are painted: each arrow's click target."""
    metrics = QFontMetrics(small_font)
    width = metrics.horizontalAdvance(version_text(version))
    top = bubble.bottom() + 3
    height = metrics.height() + 2
    arrow = metrics.horizontalAdvance("‹ ") + 4  # a comfortable click target around each arrow
    left = bubble.right() - width - 2
    return QRect(left - 4, top, arrow, height), QRect(bubble.right() - arrow + 2, top, arrow, height)


def paint_empty(painter: QPainter, rect: QRect, palette: QPalette) -> None:
    """The hint shown in place of an empty conversation."""
    painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, EMPTY_TEXT)


class RowPainter:
    """Paints rows with one painter: made once per paint event, so colours are not looked up per row."""

    def __init__(self, painter: QPainter, palette: QPalette, header_font: QFont, small_font: QFont) -> None:
        self.painter = painter
        self.palette = palette
        self.header_font = header_font
        self.small_font = small_font
        self.user_bg = QColor("#1f3a5f") if is_dark(palette) else QColor("#ddeeff")
        self.bot_bg = palette.color(QPalette.ColorRole.AlternateBase)
        self.muted = palette.color(QPalette.ColorRole.PlaceholderText)

    def paint(self, message: Message, layout: Row, bubble: QRect, header: QRect) -> None:
        """Paint one message: `bubble` and `header` (the strip above it) in viewport coordinates."""
        painter = self.painter
        painter.setFont(self.header_font)
        painter.setPen(self.muted)
        title = "You" if message.role is Role.USER else "Assistant"
        if message.left_out:
            title += " · left out of the latest prompt (context full)"
        elif message.incomplete and not message.streaming and (message.content or not message.error):
            title += " · incomplete"  # the text stopped short (its footer says why)
        align = Qt.AlignmentFlag.AlignRight if message.role is Role.USER else Qt.AlignmentFlag.AlignLeft
        painter.drawText(header, align | Qt.AlignmentFlag.AlignVCenter, title)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.user_bg if message.role is Role.USER else self.bot_bg)
        painter.setOpacity(0.45 if message.left_out else 1.0)  # faded: the model did not see it
        painter.drawRoundedRect(QRectF(bubble), 10, 10)
        if layout.doc is not None:
            painter.save()
            painter.translate(bubble.left() + PAD, bubble.top() + PAD)
            context = QAbstractTextDocumentLayout.PaintContext()
            context.palette = self.palette
            context.clip = QRectF(0, 0, bubble.width(), bubble.height())
            layout.doc.documentLayout().draw(painter, context)
            painter.restore()
        painter.setOpacity(1.0)
        self._paint_footer(message, layout, bubble)

    def _paint_footer(self, message: Message, layout: Row, bubble: QRect) -> None:
        painter = self.painter
        versions = message.version if has_versions(message) else None
        footer = footer_text(message)
        if footer:
            painter.setFont(self.small_font)
            painter.setPen(QColor(ERROR_COLOR) if message.error else self.muted)
            width = bubble.width() - 4
            metrics = painter.fontMetrics()  # the small font's, set above: none built per row
            if versions is not None:
                # Leave room for "‹ n/m ›" at the right; the stats line is elided before it.
                width -= metrics.horizontalAdvance(version_text(versions)) + 16
            footer = metrics.elidedText(footer, Qt.TextElideMode.ElideRight, width)  # never cut mid-glyph
            rect = QRect(bubble.left() + 2, bubble.bottom() + 3, width, layout.height)
            painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, footer)
        if versions is not None:
            painter.setFont(self.small_font)
            painter.setPen(self.palette.color(QPalette.ColorRole.Link))
            rect = QRect(bubble.left() + 2, bubble.bottom() + 3, bubble.width() - 4, layout.height)
            align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
            painter.drawText(rect, align, version_text(versions))
