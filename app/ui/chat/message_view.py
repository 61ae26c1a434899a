"""The message list: paints only visible messages, appends streamed text in O(new text).

A QListView relays out every row when one row's height changes; a chat's last row changes height
all the time while it streams. This view keeps the rows' heights and tops itself, so growing the
last row costs O(1), and it paints only the rows in the viewport: a conversation of thousands of
messages streams as smoothly as a new one. Markdown of a streaming reply is re-rendered at most
every RENDER_INTERVAL_MS; between renders the new text is appended to the row's document as is.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QTextCursor,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import QAbstractScrollArea, QFrame, QMenu, QTextBrowser, QWidget

from app.core.chat.messages import Message, Role
from app.core.values.replies import StopReason
from app.ui.chat.message_model import LeftOutRole, MessageListModel
from app.ui.common.markdown_html import render_markdown
from app.ui.common.theme import is_dark, markdown_palette

RENDER_INTERVAL_MS = 250
#: Markdown rendering per event-loop turn stops after this long, so the GUI thread stays smooth.
FRAME_BUDGET_S = 0.012
MARGIN = 16  # left/right margin of the list
MAX_COLUMN = 880  # widest text column: long lines are hard to read on a maximised window
GAP = 14  # vertical space between messages
PAD = 10  # padding inside a bubble
USER_MAX_FRACTION = 0.78  # a user bubble takes at most this share of the width


@dataclass(slots=True)
class _Row:
    """Layout of one message at the current width."""

    doc: QTextDocument | None = None
    height: int = 0
    bubble: QRect = field(default_factory=QRect)  # relative to the row's top
    code_blocks: tuple[str, ...] = ()
    streaming_plain: bool = False  # doc holds appended raw text since the last Markdown render
    dirty: bool = True
    #: False while `height` is an estimate from the text's length (rows are measured when first seen).
    measured: bool = False


class _SelectableText(QTextBrowser):
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
        self.row = -1


class MessageView(QAbstractScrollArea):
    """Scrollable, virtualised list of chat messages backed by a MessageListModel."""

    #: Emitted when a code block's Copy link was used (its text is on the clipboard).
    codeCopied = Signal(str)
    #: (row, -1 | +1): show the previous or next version of a message.
    versionStep = Signal(int, int)
    #: (row, "edit" | "regenerate" | "delete"): a message action from the context menu.
    messageAction = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageList")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalScrollBar().setSingleStep(24)
        self.viewport().setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._model: MessageListModel | None = None
        #: False while chat goes to a remote model: its API cannot carry on a reply (no "Continue").
        self.can_continue = True
        self._rows: list[_Row] = []
        self._tops: list[int] = [0]  # _tops[i] = y of row i; _tops[-1] = total height
        self._layout_width = -1
        self._follow = True  # keep the newest text in view while at the bottom
        self._pending_render: set[int] = set()
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_streaming)
        self._overlay = _SelectableText(self.viewport())
        self._overlay_doc: QTextDocument | None = None
        self._overlay.hide()
        self._overlay.anchorClicked.connect(lambda url: self._on_anchor(self._overlay.row, url.toString()))
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        #: Time spent in the last text append, for the smoothness benchmark.
        self.last_append_s = 0.0
        self._header_font = QFont(self.font())
        self._header_font.setBold(True)
        self._small_font = QFont(self.font())
        self._small_font.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.85))

    # ----- model hookup ----------------------------------------------------------------------

    def setModel(self, model: MessageListModel) -> None:
        """Show `model`'s messages."""
        self._model = model
        model.rowsInserted.connect(self._on_rows_inserted)
        model.rowsRemoved.connect(lambda *_: self._relayout_all())
        model.modelReset.connect(self._relayout_all)
        model.dataChanged.connect(self._on_data_changed)
        model.textAppended.connect(self._on_text_appended)
        self._relayout_all()

    def model(self) -> MessageListModel | None:
        """The model shown."""
        return self._model

    # ----- layout -------------------------------------------------------------------------

    def _content_width(self) -> int:
        return max(200, min(MAX_COLUMN, self.viewport().width() - 2 * MARGIN))

    def _column_left(self) -> int:
        """x of the (centred) text column in the viewport."""
        return max(MARGIN, (self.viewport().width() - self._content_width()) // 2)

    def bubble_rect(self, row: int) -> QRect:
        """Where row `row`'s bubble is in viewport coordinates."""
        if not self._rows[row].measured:  # a row not seen yet: measure it now
            self._measure(row)
            self._restack_from(row)
        top = self._tops[row] - self.verticalScrollBar().value()
        return self._rows[row].bubble.translated(self._column_left(), top)

    def _message(self, row: int) -> Message:
        assert self._model is not None
        return self._model.message(row)

    def _build_doc(self, row: int, message: Message, plain: bool = False) -> _Row:
        layout = self._rows[row]
        # No Qt parent: the document lives exactly as long as the row references it.
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultFont(self.font())
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        doc.setDefaultTextOption(option)
        if message.role is Role.USER or plain:
            doc.setPlainText(message.content)
            layout.code_blocks = ()
            if plain and message.role is not Role.USER:
                layout.doc = doc
                layout.streaming_plain = True  # shown as text until the throttled Markdown render
                return layout
        else:
            rendered = render_markdown(message.content, markdown_palette(self.palette()))
            doc.setHtml(rendered.html)
            layout.code_blocks = rendered.code_blocks
        layout.doc = doc
        layout.streaming_plain = False
        return layout

    def _measure(self, row: int, plain: bool = False) -> None:
        """(Re)compute row `row`'s height at the current width; builds its document if needed
        (as plain text when `plain`: the Markdown render then follows on the render timer)."""
        layout = self._rows[row]
        message = self._message(row)
        if layout.doc is None or layout.dirty:
            self._build_doc(row, message, plain)
            layout.dirty = plain
        doc = layout.doc
        assert doc is not None
        width = self._content_width()
        header_h = QFontMetrics(self._header_font).height() + 4
        has_footer = bool(self._footer_text(message)) or self._has_versions(message)
        footer_h = QFontMetrics(self._small_font).height() + 6 if has_footer else 0
        if message.role is Role.USER:
            max_w = int(width * USER_MAX_FRACTION) - 2 * PAD
            doc.setTextWidth(max_w)
            text_w = min(max_w, int(doc.idealWidth()) + 1)
            bubble_w = max(text_w, 24) + 2 * PAD
            x = width - bubble_w
        else:
            bubble_w = width
            doc.setTextWidth(width - 2 * PAD)
            x = 0
        doc_h = int(doc.size().height() + 0.5)
        layout.bubble = QRect(x, header_h, bubble_w, doc_h + 2 * PAD)  # relative to the column
        layout.height = header_h + doc_h + 2 * PAD + footer_h + GAP
        layout.measured = True

    def _estimator(self) -> Callable[[Message], int]:
        """A function giving a row's height from its text's length, without building its document.

        Laying out thousands of Markdown documents takes seconds, so rows are measured only when they
        come into view (_measure_visible); until then their height is this estimate. Font metrics are
        read once here: per row they would cost more than the estimate itself."""
        width = self._content_width()
        metrics = QFontMetrics(self.font())
        char_w = max(1, metrics.averageCharWidth())
        line_h = metrics.lineSpacing()
        header_h = QFontMetrics(self._header_font).height() + 4
        footer_line = QFontMetrics(self._small_font).height() + 6
        per_line = {
            Role.USER: max(1, (int(width * USER_MAX_FRACTION) - 2 * PAD) // char_w),
            Role.ASSISTANT: max(1, (width - 2 * PAD) // char_w),
            Role.SYSTEM: max(1, (width - 2 * PAD) // char_w),
        }
        fixed = header_h + 2 * PAD + GAP

        def estimate(message: Message) -> int:
            n = per_line[message.role]
            lines = sum(len(part) // n + 1 for part in message.content.split("\n"))
            footer = (
                footer_line
                if (message.stats or message.error or message.incomplete or message.version)
                else 0
            )
            return fixed + lines * line_h + footer

        return estimate

    def _measure_visible(self) -> None:
        """Measure the rows in (and just around) the viewport that still have estimated heights,
        keeping the first visible row where it is on screen while heights above it change."""
        if not self._rows:
            return
        bar = self.verticalScrollBar()
        for _ in range(4):  # measuring changes heights, which can bring other rows into view
            rows = self._visible_rows()
            first, last = max(0, rows.start - 2), min(len(self._rows), rows.stop + 2)
            todo = [r for r in range(first, last) if not self._rows[r].measured]
            if not todo:
                return
            anchor = rows.start
            offset = bar.value() - self._tops[anchor]
            started = time.perf_counter()
            for row in todo:
                # Markdown for as many rows as fit in a frame's budget; the rest as plain text now,
                # rendered by the timer in small batches (a fast scroll must not stall the GUI).
                plain = time.perf_counter() - started > FRAME_BUDGET_S
                self._measure(row, plain)
                if plain:
                    self._pending_render.add(row)
            if self._pending_render and not self._render_timer.isActive():
                self._render_timer.start()
            self._restack_from(todo[0])
            if not self._follow:
                bar.setValue(self._tops[anchor] + offset)

    def _relayout_all(self, rebuild: bool = True) -> None:
        """Lay out every row: after a model reset or a theme change (`rebuild`), or at a new width.
        Heights are estimated; rows are measured when they come into view (see _measure_visible)."""
        count = self._model.rowCount() if self._model is not None else 0
        if rebuild or len(self._rows) != count:
            self._rows = [_Row() for _ in range(count)]
        self._layout_width = self._content_width()
        estimate = self._estimator()
        assert self._model is not None or count == 0
        tops = [0]
        total = 0
        for i in range(count):
            layout = self._rows[i]
            layout.measured = False
            layout.height = estimate(self._model.peek(i))  # type: ignore[union-attr]
            total += layout.height
            tops.append(total)
        self._tops = tops
        self._overlay.hide()
        self._update_scrollbar()
        self._measure_visible()
        self.viewport().update()

    def _restack_from(self, row: int) -> None:
        """Recompute tops after `row` changed height: O(rows after it), O(1) for the last row."""
        tops = self._tops
        for i in range(row, len(self._rows)):
            tops[i + 1] = tops[i] + self._rows[i].height
        self._update_scrollbar()

    def _update_scrollbar(self) -> None:
        bar = self.verticalScrollBar()
        at_bottom = self._follow
        bar.setRange(0, max(0, self._tops[-1] - self.viewport().height()))
        bar.setPageStep(self.viewport().height())
        if at_bottom:
            bar.setValue(bar.maximum())

    # ----- model signals ------------------------------------------------------------------

    def _on_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        if first != len(self._rows):  # not an append: lay out everything again
            self._relayout_all()
            return
        self._follow = True
        for row in range(first, last + 1):
            self._rows.append(_Row())
            self._tops.append(self._tops[-1])
            self._measure(row)
            self._restack_from(row)
        self.viewport().update()

    def _on_data_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()
    ) -> None:
        if list(roles) == [LeftOutRole]:  # a mark painted over the same layout
            self.viewport().update()
            return
        for row in range(top_left.row(), bottom_right.row() + 1):
            if row < len(self._rows):
                self._rows[row].dirty = True
                self._pending_render.discard(row)
                self._measure(row)
                self._restack_from(row)
                if self._overlay.row == row:
                    self._overlay.hide()
        self.viewport().update()

    def _on_text_appended(self, row: int, delta: str) -> None:
        started = time.perf_counter()
        layout = self._rows[row]
        if layout.doc is None:
            self._measure(row)
            self._restack_from(row)
        else:
            doc = layout.doc
            cursor = QTextCursor(doc)
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(delta)
            layout.streaming_plain = True
            old_height = layout.height
            new_doc_h = int(doc.size().height() + 0.5)
            layout.height = old_height - (layout.bubble.height() - 2 * PAD) + new_doc_h
            layout.bubble.setHeight(new_doc_h + 2 * PAD)
            if layout.height != old_height:
                self._restack_from(row)
        self._pending_render.add(row)
        if not self._render_timer.isActive():
            self._render_timer.start()
        self._update_row(row)
        self.last_append_s = time.perf_counter() - started

    def _render_streaming(self) -> None:
        """Throttled Markdown render of the replies that grew since the last tick."""
        if not self._pending_render:
            self._render_timer.stop()
            return
        started = time.perf_counter()
        for row in sorted(self._pending_render):
            if time.perf_counter() - started > FRAME_BUDGET_S:
                return  # the rest on the next tick
            self._pending_render.discard(row)
            if row < len(self._rows):
                self._rows[row].dirty = True
                self._measure(row)
                self._restack_from(row)
                self._update_row(row)

    def _update_row(self, row: int) -> None:
        top = self._tops[row] - self.verticalScrollBar().value()
        self.viewport().update(QRect(0, top, self.viewport().width(), self._rows[row].height + 1))

    # ----- painting -----------------------------------------------------------------------

    def _footer_text(self, message: Message) -> str:
        if message.error:
            return message.error
        if message.streaming:
            if message.waiting:
                plural = "s" if message.waiting > 1 else ""
                return f"Waiting for {message.waiting} API request{plural} to finish…"
            return "Generating…"
        if message.incomplete:  # cut off: Fireside stopped (a crash, a power cut) while writing it
            return (
                "Incomplete: the reply was cut off before it finished. Right-click to continue or "
                "regenerate it."
            )
        if message.stats is not None:
            return message.stats.summary()
        return ""

    @staticmethod
    def _has_versions(message: Message) -> bool:
        return message.version is not None and message.version[1] > 1

    def version_rects(self, row: int) -> tuple[QRect, QRect] | None:
        """Where "‹" and "›" of a message's "‹ 2/3 ›" are painted (viewport coordinates), or None."""
        if self._model is None or not 0 <= row < len(self._rows):
            return None
        message = self._model.peek(row)
        if not self._has_versions(message):
            return None
        assert message.version is not None
        metrics = QFontMetrics(self._small_font)
        text = self._version_text(message.version)
        width = metrics.horizontalAdvance(text)
        bubble = self.bubble_rect(row)
        top = bubble.bottom() + 3
        height = metrics.height() + 2
        arrow = metrics.horizontalAdvance("‹ ") + 4  # a comfortable click target around each arrow
        left = bubble.right() - width - 2
        return QRect(left - 4, top, arrow, height), QRect(bubble.right() - arrow + 2, top, arrow, height)

    @staticmethod
    def _version_text(version: tuple[int, int]) -> str:
        return f"‹ {version[0]}/{version[1]} ›"

    def _visible_rows(self) -> range:
        top = self.verticalScrollBar().value()
        bottom = top + self.viewport().height()
        first = max(0, bisect.bisect_right(self._tops, top) - 1)
        last = min(len(self._rows), bisect.bisect_left(self._tops, bottom))
        return range(first, last)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the rows that intersect the exposed area."""
        if self._model is None:
            return
        self._measure_visible()
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        dark = is_dark(palette)
        painter.fillRect(event.rect(), palette.color(QPalette.ColorRole.Base))
        if not self._rows:
            self._paint_empty(painter)
            return
        offset = self.verticalScrollBar().value()
        exposed = event.rect()
        user_bg = QColor("#1f3a5f") if dark else QColor("#ddeeff")
        bot_bg = palette.color(QPalette.ColorRole.AlternateBase)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        for row in self._visible_rows():
            top = self._tops[row] - offset
            layout = self._rows[row]
            if top > exposed.bottom() or top + layout.height < exposed.top():
                continue
            message = self._model.peek(row)  # role, stats, state: no need to join streamed text
            bubble = self.bubble_rect(row)
            painter.setFont(self._header_font)
            painter.setPen(muted)
            header = "You" if message.role is Role.USER else "Assistant"
            if message.left_out:
                header += " · left out of the latest prompt (context full)"
            elif message.incomplete and not message.streaming and (message.content or not message.error):
                header += " · incomplete"  # the text stopped short (its footer says why)
            align = Qt.AlignmentFlag.AlignRight if message.role is Role.USER else Qt.AlignmentFlag.AlignLeft
            painter.drawText(
                QRect(self._column_left(), top, self._content_width(), layout.bubble.top()),
                align | Qt.AlignmentFlag.AlignVCenter,
                header,
            )
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(user_bg if message.role is Role.USER else bot_bg)
            painter.setOpacity(0.45 if message.left_out else 1.0)  # faded: the model did not see it
            painter.drawRoundedRect(QRectF(bubble), 10, 10)
            if layout.doc is not None:
                painter.save()
                painter.translate(bubble.left() + PAD, bubble.top() + PAD)
                context = QAbstractTextDocumentLayout.PaintContext()
                context.palette = palette
                context.clip = QRectF(0, 0, bubble.width(), bubble.height())
                layout.doc.documentLayout().draw(painter, context)
                painter.restore()
            painter.setOpacity(1.0)
            footer = self._footer_text(message)
            if footer:
                painter.setFont(self._small_font)
                painter.setPen(QColor("#d1242f") if message.error else muted)
                width = bubble.width() - 4
                metrics = painter.fontMetrics()  # the small font's, set above: none built per row
                if self._has_versions(message) and message.version is not None:
                    # Leave room for "‹ n/m ›" at the right; the stats line is elided before it.
                    width -= metrics.horizontalAdvance(self._version_text(message.version)) + 16
                footer = metrics.elidedText(footer, Qt.TextElideMode.ElideRight, width)  # never cut mid-glyph
                rect = QRect(bubble.left() + 2, bubble.bottom() + 3, width, layout.height)
                painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, footer)
            if self._has_versions(message) and message.version is not None:
                painter.setFont(self._small_font)
                painter.setPen(palette.color(QPalette.ColorRole.Link))
                rect = QRect(bubble.left() + 2, bubble.bottom() + 3, bubble.width() - 4, layout.height)
                align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
                painter.drawText(rect, align, self._version_text(message.version))
        painter.end()

    def _paint_empty(self, painter: QPainter) -> None:
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(
            self.viewport().rect(),
            Qt.AlignmentFlag.AlignCenter,
            "Start a conversation: type a message below and press Enter.",
        )

    # ----- events -------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Re-wrap messages when the width changes."""
        super().resizeEvent(event)
        if self._content_width() != self._layout_width:
            self._relayout_all(rebuild=False)  # same documents, re-wrapped
        else:
            self._update_scrollbar()

    def changeEvent(self, event: QEvent) -> None:
        """Re-render on palette or font changes (dark mode switch)."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange):
            self._relayout_all()

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 4
        if self._overlay.isVisible():
            self._place_overlay()
        self.viewport().update()

    def row_at(self, pos: QPoint) -> int:
        """Row under a viewport position, or -1."""
        y = pos.y() + self.verticalScrollBar().value()
        row = bisect.bisect_right(self._tops, y) - 1
        return row if 0 <= row < len(self._rows) else -1

    def _doc_pos(self, row: int, pos: QPoint) -> QPointF | None:
        bubble = self.bubble_rect(row)
        if not bubble.contains(pos):
            return None
        return QPointF(pos.x() - bubble.left() - PAD, pos.y() - bubble.top() - PAD)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Pointing hand over links (the code blocks' Copy)."""
        row = self.row_at(event.position().toPoint())
        anchor = ""
        if row >= 0 and self._rows[row].doc is not None:
            doc_pos = self._doc_pos(row, event.position().toPoint())
            if doc_pos is not None:
                anchor = self._rows[row].doc.documentLayout().anchorAt(doc_pos)  # type: ignore[union-attr]
        cursor = Qt.CursorShape.PointingHandCursor if anchor else Qt.CursorShape.IBeamCursor
        self.viewport().setCursor(cursor if row >= 0 else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Copy links act at once; elsewhere on a bubble, lay a selectable copy of the text over it."""
        pos = event.position().toPoint()
        row = self.row_at(pos)
        arrows = self.version_rects(row) if row >= 0 else None
        if arrows is not None and event.button() == Qt.MouseButton.LeftButton:
            for delta, rect in ((-1, arrows[0]), (1, arrows[1])):
                if rect.contains(pos):
                    self.versionStep.emit(row, delta)
                    return
        doc_pos = self._doc_pos(row, pos) if row >= 0 else None
        if row < 0 or doc_pos is None or self._rows[row].doc is None:
            self._overlay.hide()
            super().mousePressEvent(event)
            return
        anchor = self._rows[row].doc.documentLayout().anchorAt(doc_pos)  # type: ignore[union-attr]
        if anchor and event.button() == Qt.MouseButton.LeftButton:
            self._on_anchor(row, anchor)
            return
        self._show_overlay(row)
        local = QPointF(event.position().x() - self._overlay.x(), event.position().y() - self._overlay.y())
        forwarded = QMouseEvent(
            event.type(), local, event.globalPosition(), event.button(), event.buttons(), event.modifiers()
        )
        QGuiApplication.sendEvent(self._overlay.viewport(), forwarded)

    def _show_overlay(self, row: int) -> None:
        layout = self._rows[row]
        assert layout.doc is not None
        self._overlay.row = row
        self._overlay_doc = layout.doc.clone()  # kept alive here; the previous clone is freed
        self._overlay.setDocument(self._overlay_doc)
        self._place_overlay()
        self._overlay.show()
        self._overlay.setFocus()

    def _place_overlay(self) -> None:
        row = self._overlay.row
        if not 0 <= row < len(self._rows):
            self._overlay.hide()
            return
        bubble = self.bubble_rect(row)
        self._overlay.setGeometry(bubble.adjusted(PAD, PAD, -PAD + 2, -PAD + 2))

    def _on_anchor(self, row: int, anchor: str) -> None:
        if anchor.startswith("copy:") and 0 <= row < len(self._rows):
            index = int(anchor.split(":", 1)[1])
            blocks = self._rows[row].code_blocks
            if 0 <= index < len(blocks):
                QGuiApplication.clipboard().setText(blocks[index])
                self.codeCopied.emit(blocks[index])

    def selected_text(self) -> str:
        """Text selected in the overlay, if any."""
        return (
            self._overlay.textCursor().selectedText().replace("\u2029", "\n")
            if self._overlay.isVisible()
            else ""
        )

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """Copy selection / copy message."""
        row = self.row_at(event.pos())
        if row < 0:
            return
        menu = QMenu(self)
        selection = self.selected_text()
        if selection:
            menu.addAction("Copy selection", lambda: QGuiApplication.clipboard().setText(selection))
        message = self._message(row)
        text = message.content
        menu.addAction("Copy message", lambda: QGuiApplication.clipboard().setText(text))
        menu.addSeparator()
        if message.role is Role.USER:
            menu.addAction("Edit and resend…", lambda: self.messageAction.emit(row, "edit"))
        else:
            menu.addAction("Regenerate", lambda: self.messageAction.emit(row, "regenerate"))
            stopped_early = message.stats is not None and message.stats.stop_reason is StopReason.MAX_TOKENS
            if (stopped_early or message.cut_off) and row == len(self._rows) - 1 and self.can_continue:
                menu.addAction("Continue", lambda: self.messageAction.emit(row, "continue"))
        if self._has_versions(message):
            menu.addAction("Previous version", lambda: self.versionStep.emit(row, -1))
            menu.addAction("Next version", lambda: self.versionStep.emit(row, 1))
        menu.addAction("Delete", lambda: self.messageAction.emit(row, "delete"))
        menu.exec(event.globalPos())

    def sizeHint(self) -> QSize:
        """A comfortable default size."""
        return QSize(600, 400)
