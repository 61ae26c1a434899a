"""Unexpected errors, shown: what happened, where the log is, and the details to copy. The app goes on."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.platform import logs
from app.ui.common.accessible import describe_buttons


def shiboken_valid(widget: QWidget) -> bool:
    """False once Qt has deleted the C++ object (a closed dialog with WA_DeleteOnClose)."""
    from shiboken6 import isValid

    return bool(isValid(widget))


class ErrorDialog(QDialog):
    """One dialog for unexpected errors; more errors while it is open are added to it, not stacked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorDialog")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # a new error after closing gets a new one
        self.setWindowTitle("Something went wrong")
        self.setMinimumWidth(560)
        self.count = 0
        layout = QVBoxLayout(self)
        self.message = QLabel()
        self.message.setObjectName("errorMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QPlainTextEdit()
        self.details.setObjectName("errorDetails")
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setMinimumHeight(160)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(buttons)
        self.copy_button = buttons.addButton("Copy details", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setObjectName("errorCopyButton")
        self.copy_button.clicked.connect(self.copy)
        folder = buttons.addButton("Open log folder", QDialogButtonBox.ButtonRole.ActionRole)
        folder.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(logs.log_file().parent)))
        )
        buttons.rejected.connect(self.reject)
        layout.addWidget(self.message)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)

    def add(self, summary: str, text: str) -> None:
        """Show one more error."""
        self.count += 1
        more = f" ({self.count} errors so far)" if self.count > 1 else ""
        self.message.setText(
            f"Fireside hit an unexpected error{more}: {summary}\n\n"
            "It keeps running; your conversations and downloads are safe. The details are written to "
            f"the log file:\n{logs.log_file()}\n\nIf it happens again, please include that file (or the "
            "copied details) when you report it."
        )
        self.details.appendPlainText(text.rstrip() + "\n")

    def copy(self) -> None:
        """Put the details and the log path on the clipboard."""
        QGuiApplication.clipboard().setText(f"Log file: {logs.log_file()}\n\n{self.details.toPlainText()}")


class ErrorReporter(QObject):
    """Receives unexpected errors from any thread and shows them on the GUI thread."""

    raised = Signal(str, str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.dialog: ErrorDialog | None = None
        # Queued: the error may come from a worker thread; the dialog lives on the GUI thread.
        self.raised.connect(self._show, Qt.ConnectionType.QueuedConnection)
        logs.add_listener(self._listener)

    def _listener(self, summary: str, text: str) -> None:
        self.raised.emit(summary, text)

    def _show(self, summary: str, text: str) -> None:
        if self.dialog is None or not shiboken_valid(self.dialog) or not self.dialog.isVisible():
            self.dialog = ErrorDialog(self._parent)
        self.dialog.add(summary, text)
        self.dialog.show()
        self.dialog.raise_()

    def close(self) -> None:
        """Stop listening (the window is closing)."""
        logs.remove_listener(self._listener)
