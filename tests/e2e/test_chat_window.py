"""The real window with the real model: send, stream, stop, settings, switch models, close mid-reply."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QPushButton, QSpinBox
from pytestqt.qtbot import QtBot

from app.core.chat.messages import Role
from app.core.models import starter
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingParams
from app.ui.chat.composer import Composer
from app.ui.chat.message_view import MessageView
from app.ui.models.model_picker import ModelPicker
from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import set_value, shot, type_and_send, wait_reply_done

LONG_PROMPT = "Write a very long story about a lighthouse keeper and the sea. Make it at least 500 words."


def test_required_object_names_exist(window: MainWindow) -> None:
    for name in (
        "modelPicker",
        "messageList",
        "chatInput",
        "sendButton",
        "temperatureInput",
        "topPInput",
        "topKInput",
        "minPInput",
        "repeatPenaltyInput",
        "maxTokensInput",
        "seedInput",
        "contextLengthInput",
    ):
        assert window.findChild(object, name) is not None, name  # type: ignore[arg-type]


def test_picker_lists_the_starter_model_with_gguf_metadata(window: MainWindow) -> None:
    picker = window.findChild(ModelPicker, "modelPicker")
    assert picker is not None and picker.count() == 1
    text = picker.itemText(0)
    for part in ("SmolLM2-135M-Instruct", "Q4_1", "98.4 MB", "8,192 ctx"):
        assert part in text
    assert window.findChild(QLabel, "statusModel").text().startswith("SmolLM2")  # type: ignore[union-attr]
    assert "Ready" in window.findChild(QLabel, "statusState").text()  # type: ignore[union-attr]


def test_type_send_and_watch_the_reply_stream(qtbot: QtBot, window: MainWindow) -> None:
    set_value(window, "maxTokensInput", 80)
    seen: list[str] = []
    window.bridge.chunk.connect(lambda _rid, text: seen.append(text))
    send = window.findChild(QPushButton, "sendButton")
    assert send is not None and send.text() == "Send"
    type_and_send(qtbot, window, "Tell me about cats.")
    assert window.is_generating and send.text() == "Stop"
    composer = window.findChild(Composer, "chatInput")
    assert composer is not None and composer.toPlainText() == ""
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=30_000)
    # While streaming, the reply row grows chunk by chunk.
    partial = window.messages.message(1).content
    assert partial and window.messages.message(1).incomplete
    wait_reply_done(qtbot, window)
    reply = window.messages.message(1)
    assert reply.role is Role.ASSISTANT and not reply.incomplete
    assert reply.content.startswith(partial)
    assert reply.content == "".join(seen)
    assert reply.stats is not None and reply.stats.completion_tokens > 0
    assert send.text() == "Send"
    context = window.findChild(QLabel, "statusContext")
    assert context is not None and f"/ {reply.stats.context_length:,} tokens" in context.text()
    shot(window, "chat-light")


def test_shift_enter_adds_a_line_instead_of_sending(qtbot: QtBot, window: MainWindow) -> None:
    composer = window.findChild(Composer, "chatInput")
    assert composer is not None
    qtbot.keyClicks(composer, "line one")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "line two")
    assert composer.toPlainText() == "line one\nline two"
    assert window.messages.rowCount() == 0


def _start_long_reply(qtbot: QtBot, window: MainWindow, chunks_first: int) -> list[str]:
    """Send LONG_PROMPT with room for 2000 tokens; return the chunk list once it has some."""
    set_value(window, "maxTokensInput", 2000)
    chunks: list[str] = []
    window.bridge.chunk.connect(lambda _rid, text: chunks.append(text))
    type_and_send(qtbot, window, LONG_PROMPT)
    qtbot.waitUntil(lambda: len(chunks) >= chunks_first, timeout=30_000)
    return chunks


def test_stop_mid_reply_keeps_the_text(qtbot: QtBot, window: MainWindow) -> None:
    chunks = _start_long_reply(qtbot, window, 2)
    send = window.findChild(QPushButton, "sendButton")
    assert send is not None and send.text() == "Stop"
    qtbot.mouseClick(send, Qt.MouseButton.LeftButton)
    wait_reply_done(qtbot, window, 5_000)
    reply = window.messages.message(1)
    assert reply.stats is not None
    assert reply.stats.stop_reason is StopReason.USER
    assert reply.content and reply.content == "".join(chunks)
    assert reply.stats.completion_tokens < 2000
    assert "stopped by user" in reply.stats.summary()


def test_sampling_changes_apply_to_the_next_reply(qtbot: QtBot, window: MainWindow) -> None:
    """Each change shows in what the model does: greedy is seed-independent, top-p 0.01 is greedy."""

    def reply(**values: float) -> str:
        for name, value in values.items():
            set_value(window, name, value)
        window.session.transcript.clear()  # the same one-message conversation every time
        window.composer.setPlainText("Invent a name for a new planet and describe it.")
        window.chat.send()
        wait_reply_done(qtbot, window)
        row = window.messages.rowCount() - 1
        stats = window.messages.message(row).stats
        assert stats is not None and stats.seed == int(window.sampling.params().seed)
        return window.messages.message(row).content

    set_value(window, "maxTokensInput", 24)
    greedy = reply(temperatureInput=0.0, topPInput=1.0, seedInput=1)
    assert reply(seedInput=2) == greedy  # temperature 0: the seed cannot matter
    hot_1 = reply(temperatureInput=1.5, seedInput=1)
    hot_2 = reply(seedInput=2)
    assert hot_1 != hot_2  # temperature 1.5: sampled, so the seed matters
    assert reply(topPInput=0.01, seedInput=3) == greedy  # top-p 0.01 keeps only the likeliest token
    assert window.sampling.params().top_p == 0.01 and window.sampling.params().temperature == 1.5


def test_out_of_range_input_is_clamped_with_a_hint(qtbot: QtBot, window: MainWindow) -> None:
    box = window.findChild(QDoubleSpinBox, "temperatureInput")
    assert box is not None
    box.selectAll()
    qtbot.keyClicks(box, "7")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.value() <= 2.0
    hint = window.findChild(QLabel, "temperatureInputHint")
    assert hint is not None and hint.text().startswith("0 – 2")
    context = window.findChild(QSpinBox, "contextLengthInput")
    assert context is not None and context.maximum() == 8192  # the model's trained context
    reset = window.findChild(QPushButton, "resetSamplingButton")
    assert reset is not None
    set_value(window, "topKInput", 3)
    qtbot.mouseClick(reset, Qt.MouseButton.LeftButton)
    assert window.sampling.params() == SamplingParams()


def test_switch_models(qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path) -> None:
    second = models_dir / "Second-Model.Q4_1.gguf"
    os.link(models_dir / starter.FILENAME, second)
    window = make_window()
    picker = window.findChild(ModelPicker, "modelPicker")
    assert picker is not None and picker.count() == 2
    assert window.loaded is not None and window.loaded.info.path.name == starter.FILENAME
    row = next(i for i in range(picker.count()) if "Second-Model" in picker.itemText(i))
    with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
        picker.activated.emit(row)
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=30_000)
    assert window.loaded is not None and window.loaded.info.path == second.resolve()
    assert window.settings.last_model == str(second.resolve())
    set_value(window, "maxTokensInput", 10)
    type_and_send(qtbot, window, "Hi")
    wait_reply_done(qtbot, window)
    assert window.messages.message(1).stats is not None


def test_broken_model_file_gives_a_clear_message(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    broken = tmp_path / "Broken.gguf"
    broken.write_bytes((window.loaded.info.path).read_bytes()[:20_000_000])  # type: ignore[union-attr]
    window.installed.add_and_load(str(broken))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=30_000)
    assert "Broken.gguf" in window.banner.label.text()
    assert "truncated" in window.banner.label.text()
    # The file was refused before loading, so the model in use stays loaded and usable.
    assert window.loaded is not None and window.loaded.info.path.name == starter.FILENAME
    assert "is still loaded" in window.banner.label.text()
    picker = window.findChild(ModelPicker, "modelPicker")
    assert picker is not None
    broken_row = next(i for i in range(picker.count()) if "Broken" in picker.itemText(i))
    assert not picker.model().item(broken_row).isEnabled()  # type: ignore[attr-defined]


def test_send_with_no_model_loaded(qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window(start=False)
    type_and_send(qtbot, window, "Hello?")
    assert window.messages.rowCount() == 0
    assert window.banner.isVisible() and "No model is loaded" in window.banner.label.text()
    assert window.status.context_meter.text() == "no model"  # not "0% of context"
    composer = window.findChild(Composer, "chatInput")
    assert composer is not None and composer.toPlainText() == "Hello?"  # nothing the user wrote is lost


def test_no_models_installed_says_what_to_do(empty_window: MainWindow) -> None:
    assert "No models are installed" in empty_window.banner.label.text()
    shot(empty_window, "no-models")


def test_a_message_sent_while_the_model_loads_goes_out_once_it_is_ready(
    qtbot: QtBot, window: MainWindow
) -> None:
    set_value(window, "maxTokensInput", 8)
    assert window.loaded is not None
    before = window.messages.rowCount()
    window.choice.load_model(str(window.loaded.info.path))  # loading again: chat must wait for it
    assert window.choice.loading_local()
    type_and_send(qtbot, window, "Hello while you load")
    assert window.messages.rowCount() == before
    assert "will be sent as soon as it is ready" in window.banner.label.text()
    composer = window.findChild(Composer, "chatInput")
    assert composer is not None and composer.toPlainText() == "Hello while you load"  # kept meanwhile
    qtbot.waitUntil(lambda: window.messages.rowCount() == before + 2, timeout=30_000)
    wait_reply_done(qtbot, window)
    assert window.messages.message(before).content == "Hello while you load"
    assert composer.toPlainText() == "" and not window.banner.isVisible()


def test_a_waiting_message_can_be_held_back(qtbot: QtBot, window: MainWindow) -> None:
    assert window.loaded is not None
    before = window.messages.rowCount()
    window.choice.load_model(str(window.loaded.info.path))
    type_and_send(qtbot, window, "Not yet")
    window.banner.action_button.click()  # "Don't send"
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not window.choice.loading_local(), timeout=5_000)
    assert not window.chat.send_when_loaded
    assert window.messages.rowCount() == before and window.composer.toPlainText() == "Not yet"


def test_empty_prompt_is_ignored(qtbot: QtBot, window: MainWindow) -> None:
    type_and_send(qtbot, window, "   ")
    assert window.messages.rowCount() == 0
    assert not window.is_generating


def test_send_while_streaming_is_not_allowed(qtbot: QtBot, window: MainWindow) -> None:
    set_value(window, "maxTokensInput", 400)
    type_and_send(qtbot, window, LONG_PROMPT)
    assert window.is_generating
    composer = window.findChild(Composer, "chatInput")
    assert composer is not None
    qtbot.keyClicks(composer, "second question")
    qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert window.messages.rowCount() == 2  # still only the first question and its reply
    assert composer.toPlainText() == "second question"  # kept for later
    window.chat.stop()
    wait_reply_done(qtbot, window, 5_000)


def test_close_mid_reply_stops_and_frees_the_model(qtbot: QtBot, window: MainWindow) -> None:
    _start_long_reply(qtbot, window, 1)
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 1.0
    assert not window.bridge.worker.is_alive


def test_code_block_copy_link(qtbot: QtBot, window: MainWindow) -> None:
    window.session.transcript.add(Role.USER, "code please")
    row = window.session.transcript.add(Role.ASSISTANT, "Here:\n\n```python\nprint('hi')\n```\n")
    view = window.findChild(MessageView, "messageList")
    assert view is not None
    qtbot.waitExposed(view)
    # Find the Copy link by asking the laid-out document where it is, then click there like a user.
    target = None
    for y in range(0, view.viewport().height(), 3):
        for x in range(0, view.viewport().width(), 6):
            if view.row_at(QPoint(x, y)) != row:
                continue
            pos = view._doc_pos(row, QPoint(x, y))
            doc = view._rows[row].doc
            if pos is not None and doc is not None and doc.documentLayout().anchorAt(pos) == "copy:0":
                target = QPoint(x, y)
                break
        if target:
            break
    assert target is not None, "the code block's Copy link is not on screen"
    with qtbot.waitSignal(view.codeCopied, timeout=2_000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert QGuiApplication.clipboard().text() == "print('hi')\n"


def test_reply_text_is_selectable(qtbot: QtBot, window: MainWindow) -> None:
    window.session.transcript.add(Role.USER, "select me please")
    view = window.findChild(MessageView, "messageList")
    assert view is not None
    bubble = view.bubble_rect(0)
    start = QPoint(bubble.left() + 12, bubble.center().y())
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    overlay = view._overlay
    assert overlay.isVisible()
    overlay.selectAll()
    assert view.selected_text() == "select me please"
