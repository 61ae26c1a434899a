"""Fixtures and helpers for tests with Qt: the real main window on an isolated data folder with the real
starter model, and the user's actions on it (tests/ui and tests/e2e take them through their conftest)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox, QWidget
from pytestqt.qtbot import QtBot

from app.core.models import starter
from app.core.settings import Settings
from app.ui.chat.composer import Composer
from app.ui.shell.application import create_app
from app.ui.shell.main_window import MainWindow


@pytest.fixture(scope="session")
def qapp_cls() -> type:
    """pytest-qt builds the QApplication; Fireside's own set-up (theme, names) is applied to it."""
    from PySide6.QtWidgets import QApplication

    return QApplication


@pytest.fixture
def models_dir(data_dir: Path, starter_model: Path) -> Path:
    """The data folder's models folder with the starter model installed (a hard link to the cache)."""
    folder = data_dir / "models"
    starter.install(folder)
    return folder


@pytest.fixture(autouse=True)
def no_window_left() -> Iterator[None]:
    """Close the top-level widgets a test left open (a dialog, a menu): a window left visible can
    keep the next test's window from becoming the active one (its shortcuts then do nothing)."""
    yield
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    left = [w for w in app.topLevelWidgets() if w.isVisible()]
    if left and os.environ.get("FIRESIDE_WINDOWS_LEFT"):
        with open(os.environ["FIRESIDE_WINDOWS_LEFT"], "a", encoding="utf-8") as out:
            names = ", ".join(f"{type(w).__name__}({w.objectName()})" for w in left)
            out.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '?')}: {names}\n")
    for widget in left:
        widget.close()


@pytest.fixture
def make_window(qtbot: QtBot, data_dir: Path) -> Iterator[Callable[..., MainWindow]]:
    """Build main windows that are closed (model freed, threads joined) after the test."""
    windows: list[MainWindow] = []

    def make(
        start: bool = True, size: tuple[int, int] = (1000, 700), settings: Settings | None = None
    ) -> MainWindow:
        create_app()
        window = MainWindow(settings=settings or Settings())
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        windows.append(window)
        if start:
            window.start()
            qtbot.waitUntil(lambda: window.loaded is not None, timeout=60_000)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def window(make_window: Callable[..., MainWindow], models_dir: Path) -> MainWindow:
    """A main window with the starter model loaded."""
    return make_window()


@pytest.fixture
def empty_window(
    qtbot: QtBot, make_window: Callable[..., MainWindow], monkeypatch: pytest.MonkeyPatch
) -> MainWindow:
    """A started window with no model installed (not even the starter model from the cache), once it
    has said so."""
    monkeypatch.setattr(starter, "install_cached", lambda *a: None)
    window = make_window(start=False)
    window.start()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    return window


def shot(widget: object, name: str) -> None:
    """Save a screenshot under shots/ when FIRESIDE_SHOTS is set (for looking at, not asserting)."""
    folder = os.environ.get("FIRESIDE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / f"{name}.png"))  # type: ignore[attr-defined]


def set_value(window: MainWindow, name: str, value: float) -> None:
    """Set the spin box called `name` (a sampling control) as the user would."""
    box = window.findChild(QWidget, name)
    assert isinstance(box, QSpinBox | QDoubleSpinBox), name
    box.setValue(value)


def type_and_send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    """Type `text` into the composer and press Enter."""
    composer = window.findChild(Composer, "chatInput")
    assert composer is not None
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    qtbot.keyClick(composer, Qt.Key.Key_Return)


def wait_reply_done(qtbot: QtBot, window: MainWindow, timeout: int = 60_000) -> None:
    """Wait until the reply streaming now has ended."""
    qtbot.waitUntil(lambda: not window.is_generating, timeout=timeout)
