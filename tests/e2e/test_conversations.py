"""Conversations that last, through the real window, the real model and the real SQLite store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from app.core.chat.store import Store
from app.core.chat.stored import propose_title
from app.core.platform import paths
from app.core.settings import Settings
from app.ui.chat.message_layout import footer_text
from app.ui.conversations.sidebar import IdRole
from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import shot

ROOT = Path(__file__).resolve().parents[2]


def _send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    window.composer.setPlainText(text)
    window.chat.send()
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)


def _store_ready(qtbot: QtBot, window: MainWindow) -> Store:
    qtbot.waitUntil(lambda: window.conversations.store is not None, timeout=10_000)
    store = window.conversations.store
    assert store is not None
    return store


def _titles(window: MainWindow) -> list[str]:
    return [row[1] for row in window.conversations.sidebar.model.rows]


def test_object_names(window: MainWindow) -> None:
    for name in ("conversationList", "conversationSearch", "newConversationButton", "systemPromptInput"):
        assert window.findChild(QObject, name) is not None, name


def test_a_conversation_is_saved_and_reopened_as_it_was_left(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path
) -> None:
    window = make_window()
    store = _store_ready(qtbot, window)
    window.system_prompt.setPlainText("Answer in one short sentence.")
    _send(qtbot, window, "What colour is the sky on a clear day?")
    assert _titles(window) == ["What colour is the sky on a clear day?"]
    cid = window.conversations.current
    assert cid is not None
    saved = store.branch(cid)
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[1].content == window.messages.peek(1).content and not saved[1].incomplete
    assert saved[1].stats is not None and saved[1].stats["completion_tokens"] > 0
    # Saved a moment after typing pauses (not on every keystroke).
    qtbot.waitUntil(lambda: store.conversation(cid).system_prompt == "Answer in one short sentence.")
    window.close()

    again = make_window(settings=Settings.load())  # as the app starts: with what it saved
    qtbot.waitUntil(lambda: again.messages.rowCount() == 2, timeout=10_000)
    assert again.conversations.current == cid
    assert again.messages.peek(0).content == "What colour is the sky on a clear day?"
    assert again.messages.peek(1).stats is not None  # the stats line comes back too
    assert again.system_prompt.toPlainText() == "Answer in one short sentence."
    shot(again, "conversation-reopened")


def test_new_switch_search_rename_pin_delete_and_undo(qtbot: QtBot, window: MainWindow) -> None:
    store = _store_ready(qtbot, window)
    _send(qtbot, window, "Tell me about lighthouses.")
    first = window.conversations.current
    new_button = window.findChild(QPushButton, "newConversationButton")
    assert new_button is not None
    new_button.click()
    assert window.messages.rowCount() == 0 and window.conversations.current is None
    _send(qtbot, window, "Name three kinds of cheese.")
    second = window.conversations.current
    assert second != first
    assert _titles(window) == ["Name three kinds of cheese.", "Tell me about lighthouses."]

    # Switch back by clicking it in the list.
    sidebar = window.conversations.sidebar
    row = sidebar.model.row_of(first)
    rect = sidebar.list.visualRect(sidebar.model.index(row))
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.conversations.current == first, timeout=5_000)
    assert window.messages.peek(0).content == "Tell me about lighthouses."

    # Search matches message text, and shows where.
    qtbot.keyClicks(sidebar.search, "cheese")
    qtbot.waitUntil(lambda: [r[0] for r in sidebar.model.rows] == [second], timeout=5_000)
    assert "[cheese" in sidebar.model.rows[0][2].lower()  # the matched word, bracketed
    sidebar.search.clear()
    qtbot.waitUntil(lambda: len(sidebar.model.rows) == 2, timeout=5_000)

    # Rename and pin: the pinned one goes first.
    window.conversations.set_title(first, "Lighthouses")
    window.conversations.pin(first, True)
    assert sidebar.model.rows[0][:2] == (first, "Lighthouses") and sidebar.model.rows[0][3]
    shot(window, "conversations-sidebar")

    # Delete the open one: the chat empties; Undo brings it back.
    window.conversations.delete(first)
    assert [r[0] for r in sidebar.model.rows] == [second] and window.messages.rowCount() == 0
    undo = window.findChild(QPushButton, "bannerAction")
    assert undo is not None and undo.text() == "Undo"
    undo.click()
    assert {r[0] for r in sidebar.model.rows} == {first, second}
    assert store.conversation(first).deleted is False


def test_each_conversation_keeps_its_sampling(qtbot: QtBot, window: MainWindow) -> None:
    store = _store_ready(qtbot, window)
    window.sampling.input("temperature").setValue(0.2)
    _send(qtbot, window, "Hello")
    first = window.conversations.current
    window.conversations.new_conversation()
    window.sampling.input("temperature").setValue(1.1)
    _send(qtbot, window, "Hi again")
    assert first is not None
    assert store.conversation(first).sampling["temperature"] == 0.2
    window.conversations.open_conversation(first)
    qtbot.waitUntil(lambda: window.conversations.current == first, timeout=5_000)
    assert window.sampling.params().temperature == 0.2


def test_title_proposal() -> None:
    assert propose_title("  \nHow do I bake bread?\nThanks") == "How do I bake bread?"
    long = "Please explain in great detail how the tides work and why there are two of them each day"
    title = propose_title(long)
    assert title.endswith("…") and len(title) <= 61 and long.startswith(title[:-1])


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from app.core.platform import paths
    from app.core.settings import Settings
    from app.ui.shell.application import create_app
    from app.ui.shell.main_window import MainWindow

    paths.set_data_dir(sys.argv[1])
    app = create_app()
    window = MainWindow(settings=Settings())
    window.show()
    window.start()
    state = {"sent": None}
    started = time.monotonic()

    def tick():
        if state["sent"] is None and window.loaded is not None and window.conversations.store is not None:
            window.composer.setPlainText("Write a very long story about a lighthouse keeper and the sea.")
            window.chat.send()
            state["sent"] = time.monotonic()
        elif state["sent"] is not None and window.messages.rowCount() == 2:
            # Wait for some text, then for more than two once-a-second saves (a busy machine streams
            # slowly: a fixed delay after sending may see no text yet).
            if state.get("text_at") is None and len(window.messages.peek(1).content) > 80:
                state["text_at"] = time.monotonic()
            text_at = state.get("text_at")
            if text_at is not None and time.monotonic() - text_at > 2.5 and window.is_generating:
                print("STREAMING", flush=True)  # the test kills the process now, mid-reply
            elif text_at is not None and not window.is_generating:
                # The story ended before the kill point (the model may stop early): write it again.
                state["text_at"] = None
                window.chat.regenerate(1)
        if time.monotonic() - started > 85:
            print("GAVE UP", flush=True)  # never leave the test blocked on a line that cannot come
            app.quit()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(50)
    app.exec()
    """
)


def test_killed_mid_reply_the_conversation_and_partial_reply_survive(
    qtbot: QtBot, make_window: Callable[..., MainWindow], data_dir: Path, models_dir: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    process = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(data_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        line = ""
        while time.monotonic() < deadline and "STREAMING" not in line:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
        assert "STREAMING" in line, "the app did not reach a streaming reply"
        process.send_signal(signal.SIGKILL)  # no chance to save anything on the way out
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    paths.set_data_dir(data_dir)
    store = Store(data_dir / "conversations.db")
    (conversation,) = store.conversations()
    user, reply = store.branch(conversation.id)
    store.close()
    assert user.content.startswith("Write a very long story")
    assert reply.role == "assistant" and reply.incomplete and len(reply.content) > 20  # up to ~1 s ago

    window = make_window(settings=Settings.load())
    qtbot.waitUntil(lambda: window.messages.rowCount() == 2, timeout=10_000)
    cut = window.messages.peek(1)
    assert cut.incomplete and cut.content == reply.content
    # Shown as cut off, not as still being generated, and offered to be carried on.
    assert cut.cut_off and not cut.streaming
    footer = footer_text(cut)
    assert "cut off" in footer and "Generating" not in footer
    window.sampling.set_params(window.sampling.params().with_changes(max_tokens=8))
    window.chat.continue_reply(1)
    assert window.messages.peek(1).streaming and not window.messages.peek(1).cut_off
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    carried = window.messages.message(1)
    assert carried.content.startswith(reply.content) and len(carried.content) > len(reply.content)
    assert carried.stats is not None and not carried.incomplete
    assert window.conversations.sidebar.model.rows[0][0] == conversation.id
    assert window.conversations.sidebar.list.model().index(0, 0).data(IdRole) == conversation.id


def test_edit_regenerate_switch_versions_and_delete(qtbot: QtBot, window: MainWindow) -> None:
    store = _store_ready(qtbot, window)
    window.sampling.input("max_tokens").setValue(24)
    _send(qtbot, window, "Say hello.")
    first_reply = window.messages.message(1).content
    assert window.messages.peek(1).version == (1, 1)

    # Regenerate: a second version of the reply; the first is kept.
    window.chat.regenerate(1)
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    assert window.messages.rowCount() == 2 and window.messages.peek(1).version == (2, 2)
    second_reply = window.messages.message(1).content

    # Click "‹" under the reply: the first version is shown again.
    arrows = window.view.version_rects(1)
    assert arrows is not None
    shot(window, "versions")
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=arrows[0].center())
    qtbot.waitUntil(lambda: window.messages.peek(1).version == (1, 2), timeout=5_000)
    assert window.messages.message(1).content == first_reply

    # Edit the question: a new version of it, and a new reply after it.
    window.chat.edit_message(0)
    assert window.composer.toPlainText() == "Say hello."
    window.composer.setPlainText("Say goodbye.")
    window.chat.send()
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    assert window.messages.message(0).content == "Say goodbye."
    assert window.messages.peek(0).version == (2, 2)
    cid = window.conversations.current
    assert cid is not None
    assert len(store._query("SELECT id FROM messages WHERE conversation_id = ?", (cid,))) == 5  # nothing lost

    # Back to the first question: its latest reply comes with it.
    window.session.step_version(0, -1)
    qtbot.waitUntil(lambda: window.messages.peek(0).version == (1, 2), timeout=5_000)
    assert window.messages.message(0).content == "Say hello."
    assert window.messages.message(1).content == second_reply

    # Delete this version of the reply (after confirming): the other version is shown, alone now.
    window.chat.on_message_action(1, "delete")
    box = window.findChild(QMessageBox, "confirmDeleteMessage")
    assert box is not None
    next(b for b in box.buttons() if b.text() == "Delete").click()
    qtbot.waitUntil(lambda: window.messages.peek(1).version == (1, 1), timeout=5_000)
    assert window.messages.message(1).content == first_reply


def test_presets_apply_save_rename_delete(qtbot: QtBot, window: MainWindow) -> None:
    _store_ready(qtbot, window)
    bar = window.conversations.presets
    qtbot.waitUntil(lambda: len(bar.presets) >= 4, timeout=5_000)
    picker = window.findChild(QObject, "presetPicker")
    assert picker is bar.picker
    precise = next(i for i, p in enumerate(bar.presets) if p.name == "Precise")
    bar.picker.setCurrentIndex(precise + 1)
    bar.picker.activated.emit(precise + 1)  # what a user's choice in the list emits
    assert window.system_prompt.toPlainText().startswith("Answer accurately")
    assert window.sampling.params().temperature == 0.2
    assert not bar.delete_button.isEnabled()  # built-in presets stay

    window.system_prompt.setPlainText("Reply in French.")
    window.conversations.save_preset("French")
    mine = bar.selected()
    assert mine is not None and mine.name == "French" and bar.delete_button.isEnabled()
    window.conversations.rename_preset(mine.id, "Français")
    assert [p.name for p in bar.presets if not p.builtin] == ["Français"]
    window.conversations.rename_preset(mine.id, "Precise")  # taken: refused with a message
    assert "already exists" in window.banner.label.text()
    window.conversations.delete_preset(mine.id)
    assert all(p.builtin for p in bar.presets)


def test_the_models_own_sampling_defaults_are_offered(
    qtbot: QtBot, window: MainWindow, starter_with_sampling_defaults: Path
) -> None:
    _store_ready(qtbot, window)
    bar = window.conversations.presets
    assert bar.model_defaults is None  # the starter file recommends nothing: no such entry
    window.choice.load_model(str(starter_with_sampling_defaults))
    qtbot.waitUntil(lambda: bar.model_defaults is not None, timeout=30_000)
    assert bar.picker.itemText(1) == "SmolLM2-sampling defaults (from the model file)"
    assert "top k 20" in str(bar.picker.itemData(1, Qt.ItemDataRole.ToolTipRole))
    window.system_prompt.setPlainText("Be brief.")
    bar.picker.setCurrentIndex(1)
    bar.picker.activated.emit(1)
    params = window.sampling.params()
    assert (params.temperature, params.top_k, params.top_p) == (0.6, 20, 0.8)
    assert window.system_prompt.toPlainText() == "Be brief."  # sampling only: the prompt stays
    assert len([p for p in bar.presets if p.builtin]) >= 5  # the built-in presets are still there
    window.conversations.save_preset("Mine")  # saving keeps the model's entry first
    assert bar.presets[0] is bar.model_defaults and bar.selected() is not None
    assert bar.selected().name == "Mine"  # type: ignore[union-attr]


def test_export_and_import(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    import json

    store = _store_ready(qtbot, window)
    window.sampling.input("max_tokens").setValue(16)
    window.system_prompt.setPlainText("Be brief.")
    _send(qtbot, window, "Name a colour.")
    cid = window.conversations.current
    assert cid is not None
    for kind, name in (("markdown", "c.md"), ("json", "c.json"), ("jsonl", "c.jsonl")):
        window.conversations.export([cid], kind, tmp_path / name)
    window.conversations.export(None, "jsonl", tmp_path / "all.jsonl")
    names = ("c.md", "c.json", "c.jsonl", "all.jsonl")
    qtbot.waitUntil(lambda: all((tmp_path / n).exists() for n in names), timeout=5_000)  # written off-thread
    assert (tmp_path / "c.md").read_text().startswith("# Name a colour.")
    line = json.loads((tmp_path / "c.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in line["messages"]] == ["system", "user", "assistant"]
    assert not list(tmp_path.glob("*.part"))

    window.conversations.import_file(tmp_path / "c.json")
    qtbot.waitUntil(
        lambda: len(store.conversations()) == 2 and window.conversations.current != cid, timeout=5_000
    )
    qtbot.waitUntil(lambda: window.messages.rowCount() == 2, timeout=5_000)
    assert window.messages.message(0).content == "Name a colour."
    assert window.system_prompt.toPlainText() == "Be brief."

    # Two chosen conversations (Ctrl-click in the list) export together, and import back together.
    sidebar = window.conversations.sidebar
    opened = window.conversations.current
    other = 1 - sidebar.model.row_of(opened)  # the open one is selected already
    rect = sidebar.list.visualRect(sidebar.model.index(other))
    qtbot.mouseClick(
        sidebar.list.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ControlModifier,
        rect.center(),
    )
    chosen = sidebar.selected_ids()
    assert len(chosen) == 2
    assert window.conversations.current == opened  # Ctrl-click selects; it does not open
    window.conversations.export(chosen, "json", tmp_path / "two.json")
    window.conversations.export(chosen, "markdown", tmp_path / "two.md")
    qtbot.waitUntil(
        lambda: (tmp_path / "two.json").exists() and (tmp_path / "two.md").exists(), timeout=5_000
    )
    assert len(json.loads((tmp_path / "two.json").read_text())["conversations"]) == 2
    assert (tmp_path / "two.md").read_text().count("# Name a colour.") == 2
    window.conversations.import_file(tmp_path / "two.json")
    qtbot.waitUntil(lambda: len(store.conversations()) == 4, timeout=5_000)

    (tmp_path / "bad.json").write_text("{not json")
    window.conversations.import_file(tmp_path / "bad.json")
    qtbot.waitUntil(lambda: "Could not import bad.json" in window.banner.label.text(), timeout=5_000)


def test_context_meter_counts_the_draft_and_policies_apply(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtWidgets import QComboBox, QProgressBar

    meter = window.findChild(QProgressBar, "contextMeter")
    picker = window.findChild(QComboBox, "contextPolicyPicker")
    assert meter is not None and picker is not None
    qtbot.waitUntil(lambda: meter.maximum() == window.loaded.context_length, timeout=5_000)  # type: ignore[union-attr]
    window.composer.setPlainText("word " * 200)
    qtbot.waitUntil(lambda: meter.value() > 150, timeout=5_000)  # counted with the model's tokenizer
    window.composer.clear()

    # A small context: the oldest exchanges are left out, and the window says so.
    window.sampling.input("context_length").setValue(512)
    window.sampling.input("max_tokens").setValue(16)
    picker.setCurrentIndex(picker.findData("drop_oldest"))
    long = "tell me about the sea and the ships " * 20
    for i in range(3):
        _send(qtbot, window, f"Question {i}: {long}")
    assert "were not sent with this reply's prompt" in window.banner.label.text()
    assert window.messages.rowCount() == 6  # nothing is removed from the conversation itself
    left_out = [row for row in range(6) if window.messages.peek(row).left_out]
    assert left_out and left_out == list(range(len(left_out)))  # the oldest, shown as left out
    assert not window.messages.peek(4).left_out  # the new question always goes
    window.view.verticalScrollBar().setValue(0)
    shot(window, "context-left-out")

    picker.setCurrentIndex(picker.findData("keep_first_last"))
    _send(qtbot, window, f"Question 3: {long}")
    left_out = [row for row in range(8) if window.messages.peek(row).left_out]
    assert left_out and 0 not in left_out and 1 not in left_out  # the first exchange stays
    assert not window.messages.peek(6).left_out

    picker.setCurrentIndex(picker.findData("stop"))
    _send(qtbot, window, f"Question 4: {long}")
    assert not any(window.messages.peek(row).left_out for row in range(8))  # nothing was sent
    assert "Start a new conversation" in window.banner.label.text()
    store = _store_ready(qtbot, window)
    assert window.conversations.current is not None
    assert store.conversation(window.conversations.current).context_policy == "stop"


def test_continue_a_reply_that_stopped_at_max_tokens(qtbot: QtBot, window: MainWindow) -> None:
    from app.core.values.replies import StopReason

    store = _store_ready(qtbot, window)
    window.sampling.input("max_tokens").setValue(8)
    window.sampling.input("temperature").setValue(0.0)
    _send(qtbot, window, "Write a long story about a lighthouse keeper.")
    first = window.messages.message(1)
    assert first.stats is not None and first.stats.stop_reason is StopReason.MAX_TOKENS
    before = first.content
    window.chat.on_message_action(1, "continue")
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    after = window.messages.message(1).content
    assert after.startswith(before) and len(after) > len(before)
    assert window.messages.rowCount() == 2  # the same reply grew; no new one
    stored = store.message(window.session.ids[1])
    assert stored.content == after and not stored.incomplete


def test_switching_conversations_while_a_reply_streams_keeps_it_in_its_own(
    qtbot: QtBot, window: MainWindow
) -> None:
    store = _store_ready(qtbot, window)
    _send(qtbot, window, "Say hi.")
    other = window.conversations.current
    window.conversations.new_conversation()
    window.sampling.input("max_tokens").setValue(200)
    window.composer.setPlainText("Write a long story about a lighthouse keeper.")
    window.chat.send()
    first = window.conversations.current
    qtbot.waitUntil(lambda: len(window.messages.peek(1).content) > 20, timeout=30_000)
    assert first is not None and other is not None
    window.conversations.new_conversation()  # mid-reply: the reply stops and stays where it was
    qtbot.waitUntil(lambda: not window.is_generating, timeout=30_000)
    assert window.messages.rowCount() == 0  # the new, empty chat is untouched by the old reply
    kept = store.branch(first)
    assert [m.role for m in kept] == ["user", "assistant"]
    assert len(kept[1].content) > 20 and kept[1].stats is not None and not kept[1].incomplete
    # The same while opening another stored conversation.
    window.conversations.open_conversation(first)
    qtbot.waitUntil(lambda: window.messages.rowCount() == 2, timeout=10_000)
    window.chat.continue_reply(1)
    qtbot.waitUntil(lambda: window.is_generating, timeout=5_000)
    window.conversations.open_conversation(other)
    qtbot.waitUntil(
        lambda: not window.is_generating and window.conversations.current == other, timeout=30_000
    )
    qtbot.waitUntil(lambda: window.messages.rowCount() == 2, timeout=10_000)
    assert window.messages.peek(0).content == "Say hi."
    assert store.branch(first)[1].content.startswith(kept[1].content)


def test_pasted_text_with_half_a_character_is_sent_and_saved(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtCore import QByteArray, QMimeData

    store = _store_ready(qtbot, window)
    window.sampling.set_params(window.sampling.params().with_changes(max_tokens=4))
    # A clipboard offering UTF-8 with an encoded lone surrogate (as broken programs write it), and a
    # Python string holding one: neither may break sending or saving.
    pasted = QMimeData()
    pasted.setData("text/plain", QByteArray(b"Half \xed\xa0\x80 a character"))
    window.composer.insertFromMimeData(pasted)
    window.composer.insertPlainText(" and \ud800 more")
    typed = window.composer.toPlainText()
    assert typed.startswith("Half ") and typed.endswith(" more")
    window.chat.send()
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    cid = window.conversations.current
    assert cid is not None
    user, reply = store.branch(cid)
    assert user.content == typed and user.content.encode("utf-8")
    assert reply.role == "assistant" and reply.stats is not None and not reply.error


def test_a_reopened_conversation_reads_only_the_new_message_and_the_cache_is_managed(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path
) -> None:
    window = make_window()
    _store_ready(qtbot, window)
    # Greedy, so the test is the same every time (a sampled reply's odd tokens are test_engine's).
    window.sampling.input("temperature").setValue(0.0)
    _send(qtbot, window, "What colour is the sky on a clear day?")
    history = window.messages.peek(1).stats
    assert history is not None and history.history_from_cache == 0
    window.close()  # the conversation's sequence is saved to the disk cache as the app quits
    cache = paths.kv_cache_dir()
    assert [p.suffix for p in cache.iterdir()] == [".kv"]

    again = make_window(settings=Settings.load())
    qtbot.waitUntil(lambda: again.messages.rowCount() == 2, timeout=10_000)
    _send(qtbot, again, "And at night?")
    stats = again.messages.peek(3).stats
    assert stats is not None
    held = history.prompt_tokens + history.completion_tokens
    assert stats.history_from_cache >= held - 1, "the first turn came back from the disk cache"
    assert stats.prompt_tokens_evaluated < stats.prompt_tokens - stats.history_from_cache + 8
    assert "history from cache" in footer_text(again.messages.peek(3))

    # Preferences shows what the cache takes, clears it, and keeps a new cap.
    dialog = again.dialogs.preferences()
    qtbot.waitUntil(lambda: dialog.cache_size.text().endswith("used"), timeout=5_000)
    assert dialog.cache_clear.isEnabled()
    shot(dialog, "preferences-kv-cache")
    dialog.cache_clear.click()
    qtbot.waitUntil(lambda: dialog.cache_size.text() == "Empty", timeout=5_000)
    assert not list(cache.glob("*.kv")) and not dialog.cache_clear.isEnabled()
    assert again.messages.rowCount() == 4, "clearing the cache keeps every conversation"
    dialog.cache_cap.setValue(0.0)
    assert dialog.cache_cap.text() == "Off"
    assert dialog.save() is True
    assert Settings.load().kv_cache_mb == 0 and again.kv_cache.cap_bytes == 0
    again.close()
    assert not list(cache.glob("*.kv")), "with the cap Off nothing is kept"
