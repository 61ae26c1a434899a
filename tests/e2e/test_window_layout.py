"""The redesigned window: the navigation rail, the settings drawer and its sections, the columns of a
narrow window, the buttons over each message, My models as cards or a table, and the empty states."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from app.core.chat.messages import Role
from app.core.settings import Settings
from app.core.values.replies import ReplyStats, StopReason
from app.ui.api.dialog import ServerDialog
from app.ui.chat.message_view import MessageView
from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import shot, type_and_send, wait_reply_done


def _button(window: MainWindow, name: str) -> QToolButton:
    button = window.findChild(QToolButton, name)
    assert button is not None, name
    return button


def test_the_rail_opens_each_page_and_the_server_panel(qtbot: QtBot, window: MainWindow) -> None:
    for name, page in (("navDiscover", "discover"), ("navLibrary", "library"), ("navChat", "chat")):
        qtbot.mouseClick(_button(window, name), Qt.MouseButton.LeftButton)
        assert window.pages.currentIndex() == window._page_index[page]
        assert _button(window, name).isChecked()
    assert not _button(window, "navServer").isCheckable()  # a dialog, not a page
    qtbot.mouseClick(_button(window, "navServer"), Qt.MouseButton.LeftButton)
    dialog = window.findChild(ServerDialog, "serverDialog")
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=5_000)
    dialog.close()
    for button in window.rail.findChildren(QToolButton):
        assert not button.icon().isNull(), f"{button.objectName()} has no icon"
        assert button.text() and button.accessibleDescription(), button.objectName()
    window.resize(1400, 800)
    qtbot.waitUntil(lambda: window.width() == 1400, timeout=5_000)
    for label in (window.status.state_label, window.status.context_label):  # room: nothing shortened
        assert label.shown_text() == label.text()


def test_tab_reads_the_window_in_order(qtbot: QtBot, window: MainWindow) -> None:
    """The rail, the model bar, the conversations, the messages, the message box and Send, the drawer."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    _button(window, "navChat").setFocus()
    seen: list[str] = []
    for _ in range(60):
        focus = QApplication.focusWidget()
        assert focus is not None
        if focus.objectName() in seen:
            break
        seen.append(focus.objectName())
        qtbot.keyClick(focus, Qt.Key.Key_Tab)
    expected = [
        "navChat",
        "helpButton",
        "modelPicker",
        "settingsDrawerButton",
        "newConversationButton",
        "conversationSearch",  # (the list is empty here: its place says so, see below)
        "messageList",
        "chatInput",
        "sendButton",
        "promptSectionHeader",
        "systemPromptInput",
        "temperatureInput",
        "gpuSectionHeader",
    ]
    positions = [seen.index(name) for name in expected]
    assert positions == sorted(positions), seen


def test_the_drawer_folds_in_sections_hides_and_is_remembered(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path
) -> None:
    window = make_window()
    side, offload = window.side, window.offload
    assert side.isVisible() and window.system_prompt.isVisible() and window.sampling.isVisible()
    assert not offload.isVisible(), "GPU and CPU start folded"
    assert not window.findChild(QWidget, "topPInput").isVisible()  # type: ignore[union-attr]
    qtbot.mouseClick(side.sections["gpu"].header, Qt.MouseButton.LeftButton)
    assert offload.isVisible()
    qtbot.mouseClick(window.sampling.more.header, Qt.MouseButton.LeftButton)
    assert window.findChild(QWidget, "topPInput").isVisible()  # type: ignore[union-attr]
    shot(window, "drawer-unfolded")

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window.composer, Qt.Key.Key_S, ctrl_shift)
    assert side.isHidden() and not window.top.drawer_button.isChecked()
    assert window.settings.settings_drawer is False
    assert Settings.load().settings_drawer is False  # saved
    again = make_window(settings=Settings.load())
    assert again.side.isHidden() and not again.top.drawer_button.isChecked()
    qtbot.mouseClick(again.top.drawer_button, Qt.MouseButton.LeftButton)
    assert again.side.isVisible() and again.settings.settings_drawer is True
    window.show_page("discover")
    assert window.top.drawer_button.isHidden(), "the drawer's button belongs to the chat page"


def test_a_narrow_window_shows_one_side_column_at_a_time(qtbot: QtBot, window: MainWindow) -> None:
    page, side, sidebar = window.page, window.side, window.conversations.sidebar
    window.setMinimumSize(0, 0)
    window.resize(700, 650)  # as small as 1400 px with the text at 200%
    qtbot.waitUntil(lambda: window.width() == 700, timeout=5_000)
    assert page.width() < 700, "the page shrinks with the window (it was clipped at three columns)"
    qtbot.waitUntil(lambda: side.isHidden(), timeout=5_000)
    assert page.narrow() and sidebar.isVisible() and not window.top.drawer_button.isChecked()
    shot(window, "narrow-chat")
    qtbot.mouseClick(window.top.drawer_button, Qt.MouseButton.LeftButton)
    assert side.isVisible() and sidebar.isHidden(), "the drawer takes the conversations' place"
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    qtbot.keyClick(window.composer, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert sidebar.isVisible() and side.isHidden()
    assert QApplication.focusWidget() is sidebar.search
    assert window.settings.settings_drawer is True, "a narrow window's choice is not remembered"
    window.resize(1200, 700)
    qtbot.waitUntil(lambda: side.isVisible(), timeout=5_000)
    assert sidebar.isVisible() and window.top.drawer_button.isChecked() and not page.narrow()


def _hover(view: MessageView, pos: QPoint) -> None:
    """Move the mouse over the message list (sent to the viewport as the platform would)."""
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(pos),
        QPointF(view.viewport().mapToGlobal(pos)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view.viewport(), event)


class _Shows(QObject):
    """Counts a widget's show events."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Count, and let the event through."""
        self.count += event.type() == QEvent.Type.Show
        return False


def test_hovering_a_message_shows_its_actions(qtbot: QtBot, window: MainWindow) -> None:
    transcript = window.session.transcript
    transcript.add(Role.USER, "What is a fox?")
    transcript.add(Role.ASSISTANT, "A small wild dog with a bushy tail.")
    view = window.view
    qtbot.waitUntil(lambda: view.row_count() == 2, timeout=5_000)
    bar = view._actions
    visible = lambda: {n for n, b in bar.buttons.items() if b.isVisibleTo(bar)}  # noqa: E731

    _hover(view, view.bubble_rect(1).center())
    assert bar.isVisible() and bar.row == 1
    assert visible() == {"copy", "regenerate", "delete"}
    assert bar.geometry().bottom() <= view.bubble_rect(1).top(), "over the header, not the text"
    shot(window, "message-actions")
    with qtbot.waitSignal(view.messageCopied, timeout=2_000):
        qtbot.mouseClick(bar.buttons["copy"], Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "A small wild dog with a bushy tail."

    _hover(view, view.bubble_rect(0).center())
    assert bar.row == 0 and visible() == {"copy", "edit", "delete"}
    with qtbot.waitSignal(view.messageAction, timeout=2_000) as action:
        qtbot.mouseClick(bar.buttons["delete"], Qt.MouseButton.LeftButton)
    assert action.args == [0, "delete"]
    box = window.findChild(QMessageBox, "confirmDeleteMessage")  # the controller asks first
    assert box is not None and box.isVisible()
    box.reject()
    assert view.row_count() == 2

    window.composer.setFocus()  # (with the list focused, its keyboard cursor's message keeps them)
    _hover(view, view.bubble_rect(1).center())
    assert bar.isVisible()
    QApplication.sendEvent(view.viewport(), QEvent(QEvent.Type.Leave))
    assert bar.isHidden(), "the buttons go when the mouse leaves the messages"
    for button in bar.buttons.values():
        assert button.focusPolicy() == Qt.FocusPolicy.NoFocus and button.accessibleName()

    # A reply cut at its limit can be continued, but not on a remote engine: the button never shows
    # (shown and hidden again on each paint, it repainted the view for ever).
    stats = ReplyStats(0.1, 50.0, 10, 10, 40, StopReason.MAX_TOKENS, 1, 50, 4096)
    row = transcript.add(Role.ASSISTANT, "Once upon a time")
    transcript.finish(row, "Once upon a time", stats)
    qtbot.waitUntil(lambda: view.row_count() == 3, timeout=5_000)
    _hover(view, view.bubble_rect(2).center())
    assert visible() == {"copy", "regenerate", "continue", "delete"}
    shown = _Shows()
    bar.buttons["continue"].installEventFilter(shown)
    view.can_continue = False
    _hover(view, view.bubble_rect(1).center())
    _hover(view, view.bubble_rect(2).center())
    for _ in range(3):
        view.viewport().repaint()
    assert "continue" not in visible() and shown.count == 0


def test_my_models_shows_cards_or_a_table_and_remembers(qtbot: QtBot, window: MainWindow) -> None:
    library = window.models.library
    window.show_page("library")
    qtbot.waitUntil(lambda: library.model.rowCount() >= 1, timeout=10_000)
    assert library.views.currentWidget() is library.cards
    entry = library.model.entries[0]
    assert library.facts.used_line(entry) == "In use now"
    assert library.facts.fit(entry) is not None
    assert window.settings.model_last_used.get(str(entry.path), 0) > 0
    shot(window, "library-cards")
    card = library.cards.visualRect(library.model.index(0, 0)).center()
    qtbot.mouseClick(library.cards.viewport(), Qt.MouseButton.LeftButton, pos=card)
    assert library.selected_entry() == entry and library.use_button.isEnabled()
    qtbot.mouseClick(_button(window, "libraryTableButton"), Qt.MouseButton.LeftButton)
    assert library.views.currentWidget() is library.list
    assert library.selected_entry() == entry, "one selection for both views"
    assert window.settings.library_layout == "table" and Settings.load().library_layout == "table"
    qtbot.mouseClick(_button(window, "libraryCardsButton"), Qt.MouseButton.LeftButton)
    assert library.views.currentWidget() is library.cards


def test_my_models_with_nothing_installed_says_what_to_do(qtbot: QtBot, empty_window: MainWindow) -> None:
    window = empty_window
    library = window.models.library
    window.show_page("library")
    assert library.views.currentWidget() is library.empty
    assert library.use_button.isHidden() and not _button(window, "libraryCardsButton").isEnabled()
    text = library.empty.findChild(QLabel, "libraryEmptyText")
    assert text is not None and text.height() >= text.heightForWidth(text.width()), "its lines are cut off"
    shot(window, "library-empty")
    discover = library.empty.findChild(QWidget, "libraryEmptyDiscover")
    assert discover is not None
    qtbot.mouseClick(discover, Qt.MouseButton.LeftButton)  # type: ignore[arg-type]
    assert window.pages.currentIndex() == window._page_index["discover"]


def test_an_empty_conversation_list_says_what_to_do(qtbot: QtBot, window: MainWindow) -> None:
    sidebar = window.conversations.sidebar
    qtbot.waitUntil(lambda: sidebar.empty.isVisible(), timeout=5_000)
    assert "No conversations yet" in sidebar.empty.text() and sidebar.list.isHidden()
    qtbot.keyClicks(sidebar.search, "zebra")
    qtbot.waitUntil(lambda: "zebra" in sidebar.empty.text(), timeout=5_000)
    assert sidebar.empty.text().startswith("No conversation has “zebra”")
    sidebar.search.clear()
    type_and_send(qtbot, window, "Say hi.")
    qtbot.waitUntil(lambda: sidebar.model.rowCount() >= 1, timeout=30_000)
    assert sidebar.list.isVisible() and sidebar.empty.isHidden()
    wait_reply_done(qtbot, window)
