"""Start the Qt application on qasync's event loop and show the main window."""

from __future__ import annotations

import asyncio
import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app import __version__
from app.ui.common.theme import apply_theme


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication with Fireside's name, icon and theme (reuses an existing one)."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Fireside")
    app.setApplicationDisplayName("Fireside")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("fireside")
    from importlib.resources import files

    icon = files("app").joinpath("resources/fireside.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    apply_theme(app)
    if not getattr(app, "_fireside_theme_hooked", False):
        # Follow the system when the user switches between light and dark while Fireside runs.
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
        app._fireside_theme_hooked = True  # type: ignore[attr-defined]
    return app


def run(model: str | None = None) -> int:
    """Open the window, then (once it is on screen) find and load a model. Returns the exit code."""
    import qasync

    from app.core.platform import logs
    from app.ui.common import math_html
    from app.ui.shell import single_instance, startup_report
    from app.ui.shell.main_window import MainWindow

    app = create_app()
    if single_instance.notify_running(model):
        print("Fireside is already running with this data folder; its window was brought to the front.")
        return 0
    instance = single_instance.InstanceServer(app)
    if not instance.listen() and single_instance.notify_running(model):
        print("Fireside is already running with this data folder; its window was brought to the front.")
        return 0
    app.aboutToQuit.connect(instance.close)  # a launch during shutdown starts anew instead of waiting
    logs.install_hooks()  # an unexpected error is logged and shown, and the app goes on
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = MainWindow()
    instance.activated.connect(window.bring_to_front)
    startup_report.install(window)  # only with FIRESIDE_STARTUP_REPORT set (benchmarks)
    window.show()
    # llama_cpp is imported and the model loaded only after the window is painted.
    QTimer.singleShot(0, lambda: window.start(model))
    QTimer.singleShot(0, math_html.preload)  # the formula typesetter, off the GUI thread
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    app.lastWindowClosed.connect(app.quit)
    # Ctrl+C in the terminal or a SIGTERM closes the window the normal way (stop, free, save).
    # Python runs signal handlers only between bytecodes, so a timer wakes it up now and then.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: window.close())
    wake = QTimer()
    wake.start(250)
    wake.timeout.connect(lambda: None)
    with loop:
        loop.run_until_complete(closed.wait())
    window.shutdown()
    instance.close()
    return 0
