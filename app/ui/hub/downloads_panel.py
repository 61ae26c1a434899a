"""The download list: one row per model with progress, speed, time left, and pause/resume/cancel."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.hub.downloads import Job, State, format_eta
from app.core.values.units import format_size
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate


def detail_text(job: Job) -> str:
    """The line under a download's name: bytes, speed and time left, or what went wrong."""
    if job.state is State.FAILED:
        return job.error or "Failed"
    if job.state is State.DONE:
        return f"{format_size(job.total)} · verified (sha256) · installed"
    if job.state is State.CANCELLED:
        return "Cancelled; the partial file was deleted"
    progress = f"{format_size(job.done_bytes)} of {format_size(job.total)}"
    if job.state is State.PAUSED:
        return f"{job.note or 'Paused'} · {progress}"
    if job.state is State.QUEUED:
        return f"Waiting for a free slot · {progress}"
    if job.note:
        return f"{job.note} · {progress}"
    speed = f"{format_size(int(job.speed))}/s" if job.speed > 0 else "starting…"
    eta = format_eta(job.eta_s)
    return " · ".join(p for p in (progress, speed, eta) if p)


class DownloadRow(QWidget):
    """The widget for one job."""

    action = Signal(str, str)  # (job id, "pause" | "resume" | "cancel" | "remove")

    def __init__(self, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_id = job.id
        self.setObjectName("downloadRow")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        text = QVBoxLayout()
        text.setSpacing(2)
        self.title = QLabel()
        self.title.setObjectName("downloadTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.bar = QProgressBar()
        self.bar.setObjectName("downloadProgress")
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(6)
        self.detail = QLabel()
        self.detail.setObjectName("downloadDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.addWidget(self.title)
        text.addWidget(self.bar)
        text.addWidget(self.detail)
        layout.addLayout(text, 1)
        self.toggle = QToolButton()
        self.toggle.setObjectName("pauseButton")
        self.toggle.setMinimumWidth(72)
        self.cancel = QToolButton()
        self.cancel.setObjectName("cancelButton")
        self.cancel.setMinimumWidth(72)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.cancel, 0, Qt.AlignmentFlag.AlignVCenter)
        self.toggle.clicked.connect(lambda: self.action.emit(self.job_id, str(self.toggle.property("verb"))))
        self.cancel.clicked.connect(lambda: self.action.emit(self.job_id, str(self.cancel.property("verb"))))
        self.update_job(job)

    def update_job(self, job: Job) -> None:
        """Show a new snapshot of the job."""
        self.title.setText(f"{job.repo_id} · {job.label}")
        self.bar.setValue(int(job.fraction * 1000))
        self.bar.setVisible(job.state not in (State.DONE, State.CANCELLED, State.FAILED))
        self.detail.setText(detail_text(job))
        self.detail.setStyleSheet("color: #cf222e;" if job.state is State.FAILED else "")
        toggle = {
            State.QUEUED: ("Pause", "pause"),
            State.DOWNLOADING: ("Pause", "pause"),
            State.VERIFYING: ("Pause", "pause"),
            State.PAUSED: ("Resume", "resume"),
            State.FAILED: ("Download again" if job.error_kind == "checksum" else "Retry", "resume"),
        }.get(job.state)
        self.toggle.setVisible(toggle is not None)
        if toggle is not None:
            self.toggle.setText(toggle[0])
            self.toggle.setProperty("verb", toggle[1])
            decorate(self.toggle, "pause" if toggle[1] == "pause" else "resume")
        finished = job.state in (State.DONE, State.CANCELLED)
        self.cancel.setText("Clear" if finished else "Cancel")
        decorate(self.cancel, "close")
        self.cancel.setProperty("verb", "remove" if finished else "cancel")
        self.setAccessibleName(f"{job.label}: {self.detail.text()}")


class DownloadList(QListWidget):
    """All downloads, newest last. Emits `action(job_id, verb)` for the row buttons."""

    action = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadList")
        set_description(self, "Downloads in progress, queued and finished")
        self.setAccessibleName("Downloads")
        self.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self._rows: dict[str, tuple[QListWidgetItem, DownloadRow]] = {}

    def paintEvent(self, event: QPaintEvent) -> None:
        """An empty list says what it is for."""
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect(),
                Qt.AlignmentFlag.AlignCenter,
                "No downloads yet. Choose a file above and press Download.",
            )

    def _fit(self, item: QListWidgetItem, widget: DownloadRow) -> None:
        # Wrapped error text needs the height for the list's actual width, not the widget's default.
        width = max(200, self.viewport().width())
        height = widget.heightForWidth(width) if widget.hasHeightForWidth() else -1
        item.setSizeHint(QSize(width, max(height, widget.sizeHint().height())))

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Re-fit rows whose text wraps differently at the new width."""
        super().resizeEvent(event)
        for item, widget in self._rows.values():
            self._fit(item, widget)

    def row(self, job_id: str) -> DownloadRow | None:  # type: ignore[override]
        """The row widget of a job (None if not listed)."""
        found = self._rows.get(job_id)
        return found[1] if found else None

    def update_job(self, job: Job) -> None:
        """Add or refresh a job's row."""
        found = self._rows.get(job.id)
        if found is None:
            item = QListWidgetItem(self)
            widget = DownloadRow(job)
            widget.action.connect(self.action)
            self.setItemWidget(item, widget)
            self._fit(item, widget)
            self._rows[job.id] = (item, widget)
            self.scrollToItem(item)
            return
        item, widget = found
        widget.update_job(job)
        self._fit(item, widget)

    def remove_job(self, job_id: str) -> None:
        """Drop a job's row."""
        found = self._rows.pop(job_id, None)
        if found is not None:
            self.takeItem(self.indexFromItem(found[0]).row())
