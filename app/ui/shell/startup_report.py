"""Startup measurement hook for benchmarks of an installed or bundled Fireside (no code is wrapped there).

With FIRESIDE_STARTUP_REPORT=FILE in the environment, the time (time.time()) at which the main window's
first paint has finished is written to FILE as JSON, and with FIRESIDE_QUIT_AFTER_SHOWN=1 the app then
quits (the window closes the normal way). Without the variable nothing is installed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget


class _FirstPaint(QObject):
    """Waits for the first Paint event of `window` or a child, then reports on the next loop turn."""

    def __init__(self, window: QWidget, target: Path, quit_after: bool) -> None:
        super().__init__(window)
        self.window, self.target, self.quit_after = window, target, quit_after
        self.done = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        painted = event.type() == QEvent.Type.Paint and isinstance(watched, QWidget)
        if not self.done and painted and watched.window() is self.window:  # type: ignore[attr-defined]
            self.done = True
            QTimer.singleShot(0, self._report)  # the paint has finished by then
        return False

    def _report(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        payload = {"shown": time.time(), "pid": os.getpid()}
        self.target.write_text(json.dumps(payload), "utf-8")
        if self.quit_after:
            self.window.close()


def install(window: QWidget) -> None:
    """Install the hook when FIRESIDE_STARTUP_REPORT is set (call before window.show())."""
    target = os.environ.get("FIRESIDE_STARTUP_REPORT")
    app = QApplication.instance()
    if not target or app is None:
        return
    probe = _FirstPaint(window, Path(target), os.environ.get("FIRESIDE_QUIT_AFTER_SHOWN") == "1")
    app.installEventFilter(probe)
