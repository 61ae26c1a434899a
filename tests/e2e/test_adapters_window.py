"""LoRA adapters in the window: the drawer lists the adapter beside the loaded model, a conversation
switches it on with a scale (its reply then differs from the base model's, and the model is not
reloaded), the choice is saved with the conversation and comes back when it is opened again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QLabel, QSlider
from pytestqt.qtbot import QtBot

from app.ui.inference.adapters_panel import AdapterRow
from app.ui.shell.main_window import MainWindow
from tests.lora_writer import write_lora
from tests.window_fixtures import set_value, shot, type_and_send, wait_reply_done

QUESTION = "Name three colours."


def _ask(qtbot: QtBot, window: MainWindow) -> str:
    window.conversations.new_conversation()
    type_and_send(qtbot, window, QUESTION)
    wait_reply_done(qtbot, window)
    return window.messages.message(1).content


def test_a_conversation_uses_an_adapter_with_a_scale_without_a_reload(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, starter_model: Path
) -> None:
    lora = write_lora(models_dir / "support-lora.gguf", starter_model, strength=0.2)
    window = make_window(size=(1200, 800))
    panel = window.side.adapters
    qtbot.waitUntil(lambda: len(panel.rows) == 1, timeout=20_000)
    empty = window.findChild(QLabel, "adaptersEmpty")
    assert isinstance(empty, QLabel) and empty.isHidden()
    row = panel.rows[0]
    assert isinstance(row, AdapterRow) and row.toggle.text() == "support-lora" and row.path == str(lora)
    assert not row.toggle.isChecked() and not row.slider.isEnabled(), "off until chosen"
    set_value(window, "temperatureInput", 0.0)
    set_value(window, "maxTokensInput", 24)
    base = _ask(qtbot, window)
    loaded = window.loaded
    window.side.sections["adapters"].set_expanded(True)
    window.conversations.new_conversation()
    row = panel.rows[0]  # a conversation shown builds its rows anew
    toggle = row.findChild(QCheckBox, "adapterToggle")
    slider = row.findChild(QSlider, "adapterScale")
    assert toggle is row.toggle and slider is row.slider
    row.toggle.setChecked(True)
    row.slider.setValue(30)  # 1.5
    assert row.value.text() == "1.50" and window.session.adapters == ((str(lora), 1.5),)
    shot(window.side.sections["adapters"], "adapters-section")
    type_and_send(qtbot, window, QUESTION)
    wait_reply_done(qtbot, window)
    adapted = window.messages.message(1).content
    assert adapted and adapted != base, "the adapter changes the reply"
    assert window.loaded is loaded, "switching adapters never reloads the model"
    conversation = window.session.conversation_id
    assert conversation is not None
    store = window.session.store
    assert store is not None
    qtbot.waitUntil(lambda: store.conversation(conversation).adapters == ((str(lora), 1.5),), timeout=10_000)
    window.conversations.new_conversation()
    assert panel.value() == () and window.session.adapters == (), "a new chat starts without adapters"
    window.conversations.open_conversation(conversation)
    qtbot.waitUntil(lambda: window.session.adapters == ((str(lora), 1.5),), timeout=10_000)
    assert panel.value() == ((str(lora), 1.5),) and panel.rows[0].slider.value() == 30
