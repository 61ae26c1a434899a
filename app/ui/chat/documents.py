"""The conversation's documents in the window: their passages embedded in the background (with
progress in the status bar; the window never waits), and a reply's sources, one passage at a time."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.document_context import DocumentContext
from app.core.chat.indexing import IndexingStopped
from app.core.values.sources import Source
from app.ui.common.accessible import describe_buttons
from app.ui.common.tasks import BackgroundTasks


class DocumentIndexer(QObject):
    """Embeds the passages of a conversation's documents, one conversation at a time, off the GUI
    thread; says how far it got."""

    #: (what, done, total): "Indexing" 40 of 120 passages (emitted from the worker: Qt queues it).
    progress = Signal(str, int, int)
    #: Every passage of the conversation has its vector (how many were embedded now).
    finished = Signal(int)
    #: The passages could not be embedded (the message says why); they are still found by their words.
    failed = Signal(str)

    def __init__(self, documents: DocumentContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.documents = documents
        self.tasks = BackgroundTasks(self, workers=1)  # one at a time: the inference thread is one
        self._stop = threading.Event()
        #: Set when the window closes: a wait for the inference thread gives up at once.
        self.stopped = False
        self.busy = False
        self._again: int | None = None

    def index(self, conversation_id: int) -> None:
        """Embed what `conversation_id`'s documents still lack (after the current job, if one runs)."""
        if self.documents.embedder is None:
            return
        if self.busy:
            self._again = conversation_id
            return
        self.busy = True
        self._stop.clear()

        def report(what: str, done: int, total: int) -> None:
            self.progress.emit(what, done, total)

        self.tasks.run(
            lambda: self.documents.embed_pending(conversation_id, report, self._stop),
            self._done,
            self._failed,
        )

    def stop(self) -> None:
        """Stop at the next batch of passages (the window closes)."""
        self._stop.set()
        self.stopped = True
        self._again = None
        self.tasks.shutdown(wait=False)

    def _done(self, count: int) -> None:
        self.busy = False
        self.finished.emit(count)
        self._next()

    def _failed(self, error: BaseException) -> None:
        self.busy = False
        if not isinstance(error, IndexingStopped):
            self.failed.emit(str(error))
        self._next()

    def _next(self) -> None:
        again, self._again = self._again, None
        if again is not None:
            self.index(again)


class SourcesDialog(QDialog):
    """A reply's sources: the list on the left, the chosen passage in full on the right."""

    def __init__(self, sources: list[Source], chosen: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageSources")
        self.setWindowTitle("Sources of the reply")
        self.sources = sources
        self.list = QListWidget()
        self.list.setObjectName("sourceList")
        self.list.setAccessibleName("Sources")
        self.list.setWordWrap(True)
        self.list.setSpacing(4)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for source in sources:
            item = QListWidgetItem(f"[{source.number}] {source.name} · page {source.page}\n{source.snippet}")
            item.setToolTip(f"{source.name}, page {source.page}")
            self.list.addItem(item)
        self.passage = QPlainTextEdit()
        self.passage.setObjectName("sourcePassage")
        self.passage.setReadOnly(True)
        self.passage.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.passage.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.passage.setAccessibleName("The passage")
        self.where = QLabel()
        self.where.setObjectName("sourceWhere")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.where)
        right_layout.addWidget(self.passage, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.list)
        split.addWidget(right)
        split.setSizes([260, 420])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(buttons)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(buttons)
        self.list.currentRowChanged.connect(self._show)
        self.resize(760, 460)
        index = next((i for i, s in enumerate(sources) if s.number == chosen), 0)
        self.list.setCurrentRow(index)
        self._show(index)

    def _show(self, index: int) -> None:
        if not 0 <= index < len(self.sources):
            return
        source = self.sources[index]
        self.where.setText(f"[{source.number}] {source.name}, page {source.page}")
        self.passage.setPlainText(source.text)
