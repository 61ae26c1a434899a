"""The message list: paints only visible messages, appends streamed text in O(new text).

A QListView relays out every row when one row's height changes; a chat's last row changes height
all the time while it streams. This view keeps the rows' heights and tops itself, so growing the
last row costs O(1), and it paints only the rows in the viewport: a conversation of thousands of
messages streams as smoothly as a new one. Markdown of a streaming reply is re-rendered at most
every RENDER_INTERVAL_MS; between renders the new text is appended to the row's document as is.

Each row's size comes from message_layout, its pixels from message_paint, and what the mouse does
(selection, Copy links, context menu) from message_interaction; this class keeps the rows in step
with the model and the viewport.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QPointF, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFocusEvent,
    QGuiApplication,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
)
from PySide6.QtWidgets import QAbstractScrollArea, QFrame, QWidget

from app.core.chat.messages import Message
from app.ui.chat import message_accessibility, message_focus
from app.ui.chat.composer import dropped_files
from app.ui.chat.message_actions import MessageActionBar
from app.ui.chat.message_interaction import SelectableText, copied_code, message_menu, text_point
from app.ui.chat.message_layout import (
    Row,
    build_document,
    column_left,
    column_width,
    estimate_all,
    has_versions,
    header_and_footer_fonts,
    height_estimator,
    image_index,
    measure,
    restack,
    row_at_y,
    rows_between,
    source_number,
)
from app.ui.chat.message_model import LeftOutRole, MessageListModel
from app.ui.chat.message_paint import RowPainter, paint_empty, version_arrow_rects
from app.ui.chat.tool_cards import parse_anchor

RENDER_INTERVAL_MS = 250
#: Markdown rendering per event-loop turn stops after this long, so the GUI thread stays smooth.
FRAME_BUDGET_S = 0.012


class MessageView(QAbstractScrollArea):
    """Scrollable, virtualised list of chat messages backed by a MessageListModel."""

    #: Emitted when a code block's Copy link was used (its text is on the clipboard).
    codeCopied = Signal(str)
    #: (row, -1 | +1): show the previous or next version of a message.
    versionStep = Signal(int, int)
    #: (row, "edit" | "regenerate" | "continue" | "delete"): from the context menu or the hover bar.
    messageAction = Signal(int, str)
    #: A message's Copy button put its text on the clipboard.
    messageCopied = Signal()
    #: A tool card's link was clicked: (row, call index, "once" / "always" / "deny" / "fold").
    toolAction = Signal(int, int, str)
    #: A sent image was clicked: (row, attachment index): show it larger.
    imageOpened = Signal(int, int)
    #: A reply's source was clicked: (row, source number): show its passage.
    sourceOpened = Signal(int, int)
    #: Local files were dropped on the messages (paths): they are attached to the next message.
    filesDropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageList")
        # A screen reader reads the messages (message_accessibility).
        message_accessibility.install(MessageView)
        self.setAccessibleName("Messages")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalScrollBar().setSingleStep(24)
        self.viewport().setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)  # files dropped on the messages are attached
        self.viewport().setAcceptDrops(True)
        self._model: MessageListModel | None = None
        #: False while chat goes to a remote model: its API cannot carry on a reply (no "Continue").
        self.can_continue = True
        self._rows: list[Row] = []
        self._tops: list[int] = [0]  # _tops[i] = y of row i; _tops[-1] = total height
        self._layout_width = -1
        self._follow = True  # keep the newest text in view while at the bottom
        self._pending_render: set[int] = set()
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_streaming)
        self._overlay = SelectableText(self.viewport())
        self._overlay.hide()
        self._overlay.anchorClicked.connect(lambda url: self._on_anchor(self._overlay.row, url.toString()))
        self._actions = MessageActionBar(self.viewport(), self.messageAction.emit, self.messageCopied.emit)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        #: Time spent in the last text append, for the smoothness benchmark.
        self.last_append_s = 0.0
        self._header_font, self._small_font = header_and_footer_fonts(self.font())
        #: The message the keyboard cursor is on (message_focus), -1 before the list had the focus.
        self.current_row = -1

    # ----- model hookup ----------------------------------------------------------------------

    def setModel(self, model: MessageListModel) -> None:
        """Show `model`'s messages."""
        self._model = model
        model.rowsInserted.connect(self._on_rows_inserted)
        model.rowsRemoved.connect(lambda *_: self._relayout_all())
        model.modelReset.connect(self._relayout_all)
        for changed in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            changed.connect(lambda *_: message_accessibility.rows_changed(self))
        model.dataChanged.connect(self._on_data_changed)
        model.textAppended.connect(self._on_text_appended)
        self._relayout_all()

    def model(self) -> MessageListModel | None:
        """The model shown."""
        return self._model

    # ----- layout -------------------------------------------------------------------------

    def _content_width(self) -> int:
        return column_width(self.viewport().width())

    def _column_left(self) -> int:
        """x of the (centred) text column in the viewport."""
        return column_left(self.viewport().width())

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

    def _measure(self, row: int, plain: bool = False) -> None:
        """(Re)compute row `row`'s height at the current width; builds its document if needed
        (as plain text when `plain`: the Markdown render then follows on the render timer)."""
        layout = self._rows[row]
        message = self._message(row)
        if layout.doc is None or layout.dirty:
            build_document(layout, message, self.font(), self.palette(), plain)
            layout.dirty = plain
        measure(layout, message, self._content_width(), self._header_font, self._small_font)

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
            self._rows = [Row() for _ in range(count)]
        self._layout_width = self._content_width()
        estimate = height_estimator(self._content_width(), self.font(), self._header_font, self._small_font)
        assert self._model is not None or count == 0
        self._tops = estimate_all(self._rows, self._model.peek, estimate)  # type: ignore[union-attr]
        self._overlay.hide()
        self._actions.hide_bar()
        self._update_scrollbar()
        self._measure_visible()
        self.viewport().update()

    def _restack_from(self, row: int) -> None:
        """Recompute tops after `row` changed height: O(rows after it), O(1) for the last row."""
        restack(self._rows, self._tops, row)
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
            self._rows.append(Row())
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
        elif layout.append_plain(delta):
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

    def version_rects(self, row: int) -> tuple[QRect, QRect] | None:
        """Where "‹" and "›" of a message's "‹ 2/3 ›" are painted (viewport coordinates), or None."""
        if self._model is None or not 0 <= row < len(self._rows):
            return None
        message = self._model.peek(row)
        if not has_versions(message):
            return None
        assert message.version is not None
        return version_arrow_rects(self.bubble_rect(row), message.version, self._small_font)

    def _visible_rows(self) -> range:
        top = self.verticalScrollBar().value()
        return rows_between(self._tops, top, top + self.viewport().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the rows that intersect the exposed area."""
        if self._model is None:
            return
        self._measure_visible()
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(event.rect(), palette.color(QPalette.ColorRole.Base))
        if not self._rows:
            paint_empty(painter, self.viewport().rect(), palette)
            return
        offset = self.verticalScrollBar().value()
        exposed = event.rect()
        rows = RowPainter(painter, palette, self._header_font, self._small_font)
        for row in self._visible_rows():
            top = self._tops[row] - offset
            layout = self._rows[row]
            if top > exposed.bottom() or top + layout.height < exposed.top():
                continue
            message = self._model.peek(row)  # role, stats, state: no need to join streamed text
            bubble = self.bubble_rect(row)
            rows.paint(message, layout, bubble, self._header_rect(row))
            if row == self.current_row and self.hasFocus():
                message_focus.paint_cursor(painter, bubble, palette)
        painter.end()
        if self._actions.row >= 0:  # keep the hover bar on its message (scrolls, re-wraps, new rows)
            self.show_actions(self._actions.row)

    def _header_rect(self, row: int) -> QRect:
        """The strip above row `row`'s bubble (its title), in viewport coordinates."""
        top = self._tops[row] - self.verticalScrollBar().value()
        return QRect(self._column_left(), top, self._content_width(), self._rows[row].bubble.top())

    def show_actions(self, row: int) -> None:
        """Show the action buttons over message `row` (-1 or a row gone: hide them)."""
        if self._model is None or not 0 <= row < len(self._rows):
            self._actions.hide_bar()
            return
        last = row == len(self._rows) - 1
        message = self._model.peek(row)
        # Decided once, in show_for: a button shown then hidden again here would damage the bar,
        # repaint the view and come back here, for ever.
        self._actions.show_for(row, message, self.bubble_rect(row), last, self.can_continue)

    def viewportEvent(self, event: QEvent) -> bool:
        """The mouse left the messages: the hover bar goes (or back to the keyboard's message)."""
        if event.type() == QEvent.Type.Leave:
            self.show_actions(self.current_row if self.hasFocus() else -1)
        return super().viewportEvent(event)

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
            if event.type() == QEvent.Type.FontChange:  # zoom: the headers and footers follow
                self._header_font, self._small_font = header_and_footer_fonts(self.font())
            self._relayout_all()

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 4
        if self._overlay.isVisible():  # follow its bubble; hide it if its row is gone
            row = self._overlay.row
            if 0 <= row < len(self._rows):
                self._overlay.place(self.bubble_rect(row))
            else:
                self._overlay.hide()
        self.viewport().update()

    def row_at(self, pos: QPoint) -> int:
        """Row under a viewport position, or -1."""
        return row_at_y(self._tops, pos.y() + self.verticalScrollBar().value())

    def _doc_pos(self, row: int, pos: QPoint) -> QPointF | None:
        return text_point(self.bubble_rect(row), pos)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Pointing hand over links (the code blocks' Copy)."""
        pos = event.position().toPoint()
        row = self.row_at(pos)
        doc = self._rows[row].doc if row >= 0 else None
        doc_pos = self._doc_pos(row, pos) if doc is not None else None
        anchor = doc.documentLayout().anchorAt(doc_pos) if doc is not None and doc_pos is not None else ""
        cursor = Qt.CursorShape.PointingHandCursor if anchor else Qt.CursorShape.IBeamCursor
        self.viewport().setCursor(cursor if row >= 0 else Qt.CursorShape.ArrowCursor)
        if row != self._actions.row:
            self.show_actions(row)
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
        doc_pos = self._doc_pos(row, pos) if row >= 0 else None  # measures the row if not yet seen
        doc = self._rows[row].doc if doc_pos is not None else None
        if doc is None or doc_pos is None:
            self._overlay.hide()
            super().mousePressEvent(event)
            return
        anchor = doc.documentLayout().anchorAt(doc_pos)
        if anchor and event.button() == Qt.MouseButton.LeftButton:
            self._on_anchor(row, anchor)
            return
        self._overlay.show_copy(row, doc, self.bubble_rect(row))
        self._overlay.press(event)

    def _on_anchor(self, row: int, anchor: str) -> None:
        image = image_index(anchor)
        if image is not None:
            self.imageOpened.emit(row, image)
            return
        source = source_number(anchor)
        if source is not None:
            self.sourceOpened.emit(row, source)
            return
        tool = parse_anchor(anchor)
        if tool is not None:
            self.toolAction.emit(row, tool[1], tool[0])
            return
        code = copied_code(anchor, self._rows[row].code_blocks) if 0 <= row < len(self._rows) else None
        if code is not None:
            QGuiApplication.clipboard().setText(code)
            self.codeCopied.emit(code)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Files may be dropped here (they are attached to the next message)."""
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        """Keep accepting the files while they move over the list."""
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Attach the dropped files."""
        files = dropped_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.filesDropped.emit(files)

    def selected_text(self) -> str:
        """Text selected in the overlay, if any."""
        return self._overlay.selected()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """Copy selection / copy message, and the message's actions (from the keyboard: the
        message the cursor is on)."""
        if event.reason() == QContextMenuEvent.Reason.Keyboard and 0 <= self.current_row < len(self._rows):
            self.open_menu_at(self.current_row)
            return
        row = self.row_at(event.pos())
        if row >= 0:
            self._open_menu(row, event.globalPos())

    def open_menu_at(self, row: int) -> None:
        """Message `row`'s actions, opened at its bubble."""
        self._open_menu(row, self.viewport().mapToGlobal(self.bubble_rect(row).topLeft()))

    def _open_menu(self, row: int, where: QPoint) -> None:
        last = row == len(self._rows) - 1
        menu = message_menu(
            self,
            row,
            self._message(row),
            self.selected_text(),
            can_continue=last and self.can_continue,
            action=self.messageAction.emit,
            step=self.versionStep.emit,
        )
        menu.exec(where)

    # ----- the keyboard cursor (message_focus) ---------------------------------------------

    def row_count(self) -> int:
        """How many messages there are."""
        return len(self._rows)

    def message_text(self, row: int) -> str:
        """Message `row`'s text."""
        return self._message(row).content

    def set_current_row(self, row: int) -> None:
        """Put the keyboard cursor on message `row`, scrolled into view, and tell a screen reader."""
        self.current_row = row
        bubble, height = self.bubble_rect(row), self.viewport().height()
        bar = self.verticalScrollBar()
        if bubble.top() < 0 or bubble.height() > height:
            bar.setValue(bar.value() + bubble.top() - 8)
        elif bubble.bottom() > height:
            bar.setValue(bar.value() + bubble.bottom() - height + 8)
        self.viewport().update()
        self.show_actions(row)
        message_accessibility.focus_moved(self, row)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Up, Down, Home, End, Page Up/Down, Menu, Shift+F10, Ctrl+C: see message_focus."""
        if not message_focus.handle_key(self, event):
            super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        """Tabbing in puts the cursor on the newest message (or where it was)."""
        super().focusInEvent(event)
        if self._rows:
            self.set_current_row(
                self.current_row if 0 <= self.current_row < len(self._rows) else len(self._rows) - 1
            )

    def focusOutEvent(self, event: QFocusEvent) -> None:
        """The cursor's ring shows only while the list has the focus."""
        super().focusOutEvent(event)
        self.viewport().update()

    def sizeHint(self) -> QSize:
        """A comfortable default size."""
        return QSize(600, 400)
