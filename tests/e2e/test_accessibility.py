"""A screen reader's view of the chat: the message list is a list of messages, each named for who
wrote it and holding its text, and a finished reply is announced."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QAccessibleEvent
from pytestqt.qtbot import QtBot

from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import set_value, shot, type_and_send, wait_reply_done


def _items(window: MainWindow) -> list[tuple[Any, str, str]]:
    listing = QAccessible.queryAccessibleInterface(window.view)
    assert listing is not None and listing.role() == QAccessible.Role.List
    found = []
    for i in range(listing.childCount()):
        item = listing.child(i)
        assert item is not None and item.isValid() and listing.indexOfChild(item) == i
        assert item.parent() is listing
        found.append((item.role(), item.text(QAccessible.Text.Name), item.text(QAccessible.Text.Description)))
    return found


def test_the_messages_are_read_as_a_list_of_who_said_what(
    qtbot: QtBot, window: MainWindow, monkeypatch: Any
) -> None:
    announced: list[str] = []
    update = QAccessible.updateAccessibility

    def spy(event: QAccessibleEvent) -> None:
        if isinstance(event, QAccessibleAnnouncementEvent):
            announced.append(event.message())
        update(event)

    monkeypatch.setattr(QAccessible, "updateAccessibility", spy)
    listing = QAccessible.queryAccessibleInterface(window.view)
    assert listing.text(QAccessible.Text.Name) == "Messages"
    assert _items(window) == []
    set_value(window, "maxTokensInput", 12)
    type_and_send(qtbot, window, "Name three colours.")
    wait_reply_done(qtbot, window)
    reply = window.messages.message(1).content
    assert reply
    assert _items(window) == [
        (QAccessible.Role.ListItem, "You", "Name three colours."),
        (QAccessible.Role.ListItem, "Assistant", reply),
    ]
    item = listing.child(1)
    assert item.text(QAccessible.Text.Value) == reply and item.state().readOnly
    bubble = window.view.bubble_rect(1)
    assert item.rect().size() == bubble.size() and not item.rect().isEmpty()
    assert announced == [f"Assistant replied: {reply}"]
    assert "2 messages" in listing.text(QAccessible.Text.Description)
    window.conversations.new_conversation()  # another conversation: the old items are gone
    qtbot.waitUntil(lambda: listing.childCount() == 0, timeout=10_000)
    assert not item.isValid() and item.text(QAccessible.Text.Name) == ""


def _pyatspi_python() -> str | None:
    """An interpreter that has pyatspi (Debian's python3-pyatspi), or None."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if (
            candidate
            and subprocess.run([candidate, "-c", "import pyatspi"], capture_output=True).returncode == 0
        ):
            return candidate
    return None


AT_SPI_TOOLS = "Xvfb, dbus-run-session and pyatspi (Debian: xvfb at-spi2-core dbus python3-pyatspi)"


@pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("dbus-run-session") and _pyatspi_python()),
    reason=f"the AT-SPI check needs {AT_SPI_TOOLS}; scripts/test.sh installs them as root on Debian",
)
def test_a_screen_reader_reads_the_messages_over_at_spi() -> None:
    """The same list, read by a real AT-SPI client from another process, as Orca would."""
    python = _pyatspi_python()
    assert python is not None
    done = subprocess.run(
        ["dbus-run-session", "--", sys.executable, str(Path(__file__).with_name("atspi_check.py")), python],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(("[", "{"))]
    assert lines, f"no answer: {done.stdout!r} {done.stderr[-2000:]!r}"
    tree = json.loads(lines[-1])
    assert isinstance(tree, list), tree
    rows = [(role, name, description) for _depth, role, name, description in tree]
    assert ("list", "Messages", "2 messages in this conversation") in rows
    items = [row for row in rows if row[0] == "list item"]
    assert items == [
        ("list item", "You", "What is the capital of France?"),
        ("list item", "Assistant", "Paris is the capital of France."),
    ]


def test_ctrl_plus_minus_and_zero_zoom_the_chat_and_the_level_is_kept(
    qtbot: QtBot, make_window: Any, models_dir: Path
) -> None:
    from PySide6.QtCore import Qt

    from app.core.settings import Settings

    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    base = window.view.font().pointSizeF()
    composer_base = window.composer.font().pointSizeF()
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(window.composer, Qt.Key.Key_Plus, ctrl)
    qtbot.keyClick(window.composer, Qt.Key.Key_Equal, ctrl)  # + without Shift
    assert window.zoom.percent == 125
    assert window.view.font().pointSizeF() == pytest.approx(base * 1.25)
    assert window.composer.font().pointSizeF() == pytest.approx(composer_base * 1.25)
    assert Settings.load().chat_zoom == 125
    # The composer grows to hold two lines of the larger text.
    qtbot.waitUntil(lambda: window.composer.height() >= window.composer.sizeHint().height(), timeout=5_000)
    shot(window, "chat-zoom-125")
    qtbot.keyClick(window.composer, Qt.Key.Key_Minus, ctrl)
    assert window.zoom.percent == 110
    window.close()
    again = make_window(settings=Settings.load())
    assert again.zoom.percent == 110  # remembered
    assert again.view.font().pointSizeF() == pytest.approx(base * 1.1)
    again.activateWindow()
    qtbot.waitUntil(again.isActiveWindow, timeout=5_000)
    qtbot.keyClick(again.composer, Qt.Key.Key_0, ctrl)
    assert again.zoom.percent == 100 and again.view.font().pointSizeF() == pytest.approx(base)


def test_the_keyboard_reaches_the_pages_and_f1_lists_every_shortcut(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QKeySequence, QShortcut

    from app.ui.shell.shortcuts import ShortcutsDialog, all_shortcuts

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    ctrl = Qt.KeyboardModifier.ControlModifier
    page = lambda: next(k for k, i in window._page_index.items() if i == window.pages.currentIndex())  # noqa: E731
    qtbot.keyClick(window.composer, Qt.Key.Key_2, ctrl)
    assert page() == "discover"
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_3, ctrl)
    assert page() == "library"
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_1, ctrl)
    assert page() == "chat"
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_F, ctrl)
    assert window.focusWidget() is window.conversations.sidebar.search
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_L, ctrl)
    assert window.focusWidget() is window.composer
    qtbot.keyClick(window.composer, Qt.Key.Key_F1)
    dialog = window.findChild(ShortcutsDialog, "shortcutsDialog")
    assert dialog is not None and dialog.isVisible()
    listed = {dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())}
    native = QKeySequence.SequenceFormat.NativeText
    for shortcut in all_shortcuts():
        assert (QKeySequence(shortcut.keys).toString(native) or shortcut.keys) in listed
    bound = {s.key().toString() for s in window.findChildren(QShortcut) if not s.key().isEmpty()}
    keys = {QKeySequence(s.keys).toString() for s in all_shortcuts()} | {"Ctrl+="}
    assert bound <= keys, f"bound but not listed in Help: {bound - keys}"
    shot(dialog, "shortcuts")
    dialog.close()


def _unnamed_controls(root: Any, what: str = "Name") -> list[str]:
    """Controls under `root` a screen reader would announce without a name (or, with
    `what="Description"`, without a description: the line read after the name)."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSlider,
        QAbstractSpinBox,
        QComboBox,
        QHeaderView,
        QLineEdit,
        QPlainTextEdit,
        QProgressBar,
        QScrollBar,
        QTextEdit,
        QWidget,
    )

    kinds = (
        QAbstractButton,
        QLineEdit,
        QTextEdit,
        QPlainTextEdit,
        QComboBox,
        QAbstractSpinBox,
        QAbstractSlider,
    )
    kinds += (QAbstractItemView, QProgressBar)
    missing = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, kinds) or not widget.isVisibleTo(root):
            continue
        if isinstance(widget, (QScrollBar, QHeaderView)):
            continue  # announced by their role: a scroll bar, a table's column headers
        if isinstance(widget, QLineEdit) and isinstance(widget.parent(), (QComboBox, QAbstractSpinBox)):
            continue  # the editor inside a combo or spin box: the box itself is named
        iface = QAccessible.queryAccessibleInterface(widget)
        name = iface.text(getattr(QAccessible.Text, what)) if iface is not None else ""
        if not name.strip():
            missing.append(f"{type(widget).__name__} {widget.objectName() or '(no object name)'}")
    return missing


def test_every_control_has_a_name_and_a_description_on_every_page(qtbot: QtBot, window: MainWindow) -> None:
    meter = window.status.context_meter
    assert meter.text().endswith("% of context")  # the bar at the status bar's end says what it is
    for page in ("chat", "discover", "library", "welcome"):
        window.show_page(page)
        missing = _unnamed_controls(window)
        assert not missing, f"on {page}: " + ", ".join(missing)
        undescribed = _unnamed_controls(window, "Description")  # what it is for, read after its name
        assert not undescribed, f"on {page}, no description: " + ", ".join(undescribed)


def test_every_control_of_every_dialog_has_a_name_and_a_description(qtbot: QtBot, window: MainWindow) -> None:
    for open_dialog in (
        window.dialogs.preferences,
        window.dialogs.server_panel,
        window.dialogs.remote_engines,
        window.dialogs.shortcuts,
        window.dialogs.about,
    ):
        dialog = open_dialog()
        qtbot.waitUntil(dialog.isVisible, timeout=5_000)
        missing = _unnamed_controls(dialog)
        undescribed = _unnamed_controls(dialog, "Description")
        dialog.close()
        assert not missing, f"in {dialog.objectName()}: " + ", ".join(missing)
        assert not undescribed, f"in {dialog.objectName()}, no description: " + ", ".join(undescribed)


@pytest.mark.qt_log_ignore("This plugin does not support")  # the offscreen platform's popups
def test_the_keyboard_alone_sends_regenerates_stops_switches_and_opens_every_page(
    qtbot: QtBot, window: MainWindow
) -> None:
    """Tab, arrows, Enter, Esc and the shortcuts only: no clicks."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QMenu

    set_value(window, "maxTokensInput", 400)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    ctrl = Qt.KeyboardModifier.ControlModifier

    def key(k: Qt.Key, mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        qtbot.keyClick(QApplication.focusWidget() or window, k, mods)

    key(Qt.Key.Key_L, ctrl)
    qtbot.keyClicks(window.composer, "Tell me a story about a fox.")
    key(Qt.Key.Key_Return)  # send
    qtbot.waitUntil(lambda: window.is_generating, timeout=10_000)
    key(Qt.Key.Key_Escape)  # stop
    qtbot.waitUntil(lambda: not window.is_generating, timeout=30_000)
    first = window.messages.message(1).content

    for _ in range(40):  # Tab round the page to the message list
        if QApplication.focusWidget() is window.view:
            break
        key(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is window.view, "Tab never reached the message list"
    assert window.view.current_row == 1  # the newest message
    key(Qt.Key.Key_Up)
    assert window.view.current_row == 0
    shot(window, "chat-keyboard-cursor")
    key(Qt.Key.Key_Down)

    def choose_regenerate() -> None:
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu)
        names = [a.text() for a in menu.actions() if not a.isSeparator()]
        assert "Regenerate" in names and "Copy message" in names
        for _ in range(len(menu.actions())):
            qtbot.keyClick(menu, Qt.Key.Key_Down)
            if menu.activeAction() is not None and menu.activeAction().text() == "Regenerate":
                break
        qtbot.keyClick(menu, Qt.Key.Key_Return)

    QTimer.singleShot(0, choose_regenerate)  # the menu runs its own loop: act on it from inside
    key(Qt.Key.Key_Menu)
    qtbot.waitUntil(lambda: window.is_generating, timeout=10_000)
    # The offscreen platform does not give activation back when a popup closes (a desktop does).
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    assert QApplication.focusWidget() is window.view
    key(Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.is_generating, timeout=30_000)
    assert window.messages.message(1).version == (2, 2), "Regenerate made a second version"
    del first

    conversation = window.session.conversation_id
    key(Qt.Key.Key_N, ctrl)  # a new conversation
    qtbot.waitUntil(lambda: window.session.conversation_id != conversation, timeout=10_000)
    key(Qt.Key.Key_F, ctrl)
    assert QApplication.focusWidget() is window.conversations.sidebar.search
    key(Qt.Key.Key_Tab)
    listing = window.conversations.sidebar.list
    qtbot.waitUntil(lambda: listing.model().rowCount() >= 1, timeout=10_000)
    for _ in range(10):  # Tab on to the conversation list
        if QApplication.focusWidget() is listing:
            break
        key(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is listing
    for _ in range(listing.model().rowCount()):
        listing.setFocus()
        key(Qt.Key.Key_Down)
        key(Qt.Key.Key_Return)  # open it
        if window.session.conversation_id == conversation:
            break
    qtbot.waitUntil(lambda: window.session.conversation_id == conversation, timeout=10_000)

    pages = {Qt.Key.Key_2: "discover", Qt.Key.Key_3: "library", Qt.Key.Key_1: "chat"}
    for k, name in pages.items():
        key(k, ctrl)
        assert window.pages.currentIndex() == window._page_index[name]
