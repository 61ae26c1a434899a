"""The installed app's manners: a first run that guides, About, logs and the error dialog, one instance."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.core.platform import logs, paths
from app.core.settings import Settings
from app.ui.shell.about_dialog import AboutDialog, versions
from app.ui.shell.error_dialog import ErrorDialog
from app.ui.shell.main_window import MainWindow
from app.ui.shell.single_instance import server_name
from tests.window_fixtures import shot

ROOT = Path(__file__).resolve().parents[2]


def _page(window: MainWindow) -> str:
    return next(k for k, i in window._page_index.items() if i == window.pages.currentIndex())


def test_first_run_welcomes_then_never_again(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path
) -> None:
    assert not paths.settings_file().exists()
    window = make_window(settings=Settings.load())  # no settings file: a first launch
    assert _page(window) == "welcome"
    assert window.welcome.isVisible() and window.welcome.starter_button.isVisible()
    folders = window.welcome.findChild(object, "welcomeFolders")
    assert str(paths.data_dir()) in folders.text()  # type: ignore[union-attr]
    texts = " ".join(label.text() for label in window.welcome.findChildren(QLabel))
    assert "nothing is sent anywhere" in texts and "Where things are kept" in texts
    shot(window, "welcome")
    window.welcome.discover_button.click()
    assert _page(window) == "discover"
    assert Settings.load().welcomed
    window.close()
    again = make_window(settings=Settings.load())
    assert _page(again) == "chat"


def test_the_starter_button_opens_a_chat_with_the_starter_model(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path
) -> None:
    window = make_window(settings=Settings(welcomed=False))
    assert _page(window) == "welcome"
    # The starter model is installed, so it loads behind the welcome page, which says so.
    qtbot.waitUntil(lambda: "ready" in window.welcome.status.text(), timeout=30_000)
    assert window.welcome.starter_button.text() == "Start chatting with the starter model"
    assert window.focusWidget() is window.welcome.starter_button  # Enter presses it
    shot(window, "welcome-starter-ready")
    window.welcome.starter_button.click()
    assert _page(window) == "chat"
    assert window.loaded is not None and window.loaded.info.path.name.startswith("SmolLM2")
    assert window.focusWidget() is window.composer  # ready to type


def test_about_names_every_version_and_folder(qtbot: QtBot, window: MainWindow) -> None:
    import llama_cpp
    import PySide6
    from PySide6.QtCore import qVersion

    found = versions()
    assert found["llama.cpp (llama-cpp-python)"] == llama_cpp.__version__
    assert qVersion() in found["Qt"] and PySide6.__version__ in found["Qt"]
    assert found["Python"].startswith(".".join(map(str, sys.version_info[:3])))
    window.dialogs.about()
    dialog = window.findChild(AboutDialog, "aboutDialog")
    assert dialog is not None and dialog.isVisible()
    text = dialog.text()
    assert str(paths.data_dir()) in text and "fireside.log" in text
    shot(dialog, "about")
    dialog.close()


def test_logs_rotate_in_the_log_folder(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 20_000)
    target = logs.setup()
    try:
        assert target == data_dir / "logs" / "fireside.log"
        for i in range(2_000):
            logging.getLogger("fireside.test").info("line %d %s", i, "x" * 60)
        rotated = sorted(p.name for p in target.parent.iterdir())
        assert "fireside.log" in rotated and "fireside.log.1" in rotated
        assert len(rotated) == 1 + logs.BACKUPS  # old files beyond five are deleted
        assert all(p.stat().st_size <= 20_000 + 200 for p in target.parent.iterdir())
    finally:
        logging.getLogger().removeHandler(logs._file_handler)  # type: ignore[arg-type]
        logs._file_handler = None


@pytest.mark.qt_no_exception_capture
def test_an_unexpected_error_is_logged_shown_and_survived(qtbot: QtBot, window: MainWindow) -> None:
    logs.setup()
    logs.install_hooks()
    try:

        def broken_slot() -> None:
            raise RuntimeError("the kettle is on fire")

        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: window.findChild(ErrorDialog, "errorDialog") is not None, timeout=5_000)
        dialog = window.findChild(ErrorDialog, "errorDialog")
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible, timeout=5_000)
        assert "RuntimeError: the kettle is on fire" in dialog.message.text()
        assert str(logs.log_file()) in dialog.message.text()
        assert "broken_slot" in dialog.details.toPlainText()
        shot(dialog, "error-dialog")
        # A worker thread's error joins the same dialog instead of stacking another.
        worker = threading.Thread(target=lambda: 1 / 0, name="test-worker")
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: dialog.count == 2, timeout=5_000)
        assert "ZeroDivisionError" in dialog.details.toPlainText()
        dialog.copy()
        assert str(logs.log_file()) in QGuiApplication.clipboard().text()
        for handler in logging.getLogger().handlers:
            handler.flush()
        written = logs.log_file().read_text()
        assert (
            "the kettle is on fire" in written and "Traceback" in written and "ZeroDivisionError" in written
        )
        # The app goes on: a message still gets a reply.
        window.sampling.input("max_tokens").setValue(8)
        window.composer.setPlainText("Hello")
        window.chat.send()
        qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
        assert window.messages.rowCount() == 2 and window.messages.message(1).content
        dialog.close()
    finally:
        logs.uninstall_hooks()
        logging.getLogger().removeHandler(logs._file_handler)  # type: ignore[arg-type]
        logs._file_handler = None


def test_a_second_launch_brings_the_first_to_the_front(tmp_path: Path, starter_model: Path) -> None:
    data = tmp_path / "data"
    report = tmp_path / "shown.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FIRESIDE_STARTUP_REPORT": str(report)}
    first = subprocess.Popen(
        [sys.executable, "-m", "app", "--data-dir", str(data)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not report.exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert report.exists(), "the first copy never showed its window"
        json.loads(report.read_text())
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "app", "--data-dir", str(data)], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert time.monotonic() - started < 20  # it did not open a window of its own
        log_text = ""
        deadline = time.monotonic() + 10
        while "second launch" not in log_text and time.monotonic() < deadline:
            time.sleep(0.1)
            log_text = (data / "logs" / "fireside.log").read_text()
        assert "a second launch asked this window to come to the front" in log_text
        assert first.poll() is None  # the first copy runs on
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
    assert first.returncode == 0


def test_each_data_folder_is_its_own_instance(tmp_path: Path) -> None:
    paths.set_data_dir(tmp_path / "a")
    a = server_name()
    paths.set_data_dir(tmp_path / "b")
    b = server_name()
    paths.set_data_dir(None)
    assert a != b and a.startswith("fireside-")
