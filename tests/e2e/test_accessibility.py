"""A screen reader's view of the chat: the message list is a list of messages, each named for who
wrote it and holding its text, and a finished reply is announced."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QAccessibleEvent
from pytestqt.qtbot import QtBot

from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import set_value, type_and_send, wait_reply_done


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
