"""MCP tools in the real window: a server added in Preferences → Tools (MCP servers) with a secret in
the keyring, tested and saved; its tool chosen for the conversation with the Tools button; the
model's call shown as a card with the approval bar; Allow once runs it on the test server, the
result is folded under the card and the model goes on; Deny; JSON mode from the drawer; the whole
conversation stored and exported with its calls."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QPushButton
from pytestqt.qtbot import QtBot

from app.core.chat.tool_uses import ToolStatus
from app.core.platform import secrets
from app.core.values.sampling import SamplingParams
from app.ui.shell.main_window import MainWindow
from app.ui.tools.servers_dialog import McpServersDialog
from tests.window_fixtures import shot, type_and_send, wait_reply_done

LEFT = Qt.MouseButton.LeftButton
SERVER = str(Path(__file__).resolve().parents[1] / "mcp_server.py")


def _add_server(qtbot: QtBot, window: MainWindow) -> McpServersDialog:
    """Preferences → Tools (MCP servers)…, fill in the test server, Test, then Add."""
    preferences = window.dialogs.preferences()
    button = preferences.findChild(QPushButton, "preferencesToolsButton")
    assert button is not None
    qtbot.mouseClick(button, LEFT)
    qtbot.waitUntil(lambda: window.findChild(McpServersDialog, "mcpServersDialog") is not None)
    dialog = window.findChild(McpServersDialog, "mcpServersDialog")
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.name_input, "test")
    qtbot.keyClicks(dialog.command_input, sys.executable)
    qtbot.keyClicks(dialog.args_input, SERVER)
    dialog.secrets_input.setPlainText("SECRET_WORD=open sesame")
    dialog.timeout_input.setValue(20)
    qtbot.mouseClick(dialog.test_button, LEFT)
    qtbot.waitUntil(lambda: dialog.tool_list.count() > 0, timeout=60_000)
    assert "It works" in dialog.message.text()
    names = {dialog.tool_list.item(i).text().split(":")[0] for i in range(dialog.tool_list.count())}
    assert {"add", "fail", "sleep", "secret_word"} <= names
    qtbot.mouseClick(dialog.save_button, LEFT)
    qtbot.waitUntil(lambda: "is saved" in dialog.message.text(), timeout=10_000)
    return dialog


def test_an_mcp_tool_called_in_the_chat_waits_for_yes_then_its_result_goes_back(
    qtbot: QtBot, window: MainWindow, data_dir: Path
) -> None:
    window.sampling.set_params(SamplingParams(temperature=0, max_tokens=40, context_length=2048))
    dialog = _add_server(qtbot, window)
    # Saved: the server in the settings, its secret in the keyring and nowhere in the file.
    assert [s["name"] for s in window.settings.mcp_servers] == ["test"]
    assert secrets.get_secret("mcp:test:SECRET_WORD") == "open sesame"
    assert "open sesame" not in (data_dir / "settings.json").read_text()
    shot(dialog, "mcp-servers")
    dialog.name_input.setText("renamed")  # its tools are named after it: refused, with the reason
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert "name cannot change" in dialog.message.text()
    assert [s["name"] for s in window.settings.mcp_servers] == ["test"]
    dialog.accept()
    qtbot.waitUntil(lambda: "test" in window.tools.listings, timeout=60_000)

    # The Tools button: the server's tools, one chosen, and "Must use a tool".
    button = window.tools_button
    assert button.objectName() == "toolsButton" and button.text() == "Tools"
    button.menu_.aboutToShow.emit()
    actions = {a.data(): a for a in button.menu_.actions() if a.data()}
    assert "test__add" in actions and "test__secret_word" in actions
    actions["test__add"].setChecked(True)
    require = next(a for a in button.menu_.actions() if a.objectName() == "toolsRequireAction")
    require.setChecked(True)
    assert button.text() == "Tools · 1" and [t.name for t in window.session.tools] == ["test__add"]

    type_and_send(qtbot, window, "What is 2 plus 3?")
    bar = window.page.approval
    qtbot.waitUntil(lambda: bar.isVisible(), timeout=60_000)
    assert "test__add" in bar.text.text()
    call = window.session.transcript.message(1).tool_uses[0]
    assert call.status is ToolStatus.PENDING and set(json.loads(call.arguments)) == {"a", "b"}
    shot(window, "tool-call-waiting")
    allow = bar.findChild(QPushButton, "toolAllowOnceButton")
    assert allow is not None
    qtbot.mouseClick(allow, LEFT)
    qtbot.waitUntil(lambda: len(window.session.transcript) == 3, timeout=60_000)
    wait_reply_done(qtbot, window)
    assert not bar.isVisible()
    values = json.loads(call.arguments)
    assert call.status is ToolStatus.DONE and call.result == str(values["a"] + values["b"])
    assert window.session.transcript.message(2).content  # the model went on with the result
    # Folded under the card; its link unfolds it (the view's anchor, as a click on it sends).
    window.view.toolAction.emit(1, 0, "fold")
    assert window.session.transcript.peek(1).tool_uses[0].unfolded
    shot(window, "tool-call-done")

    # Deny, with the bar's button: nothing runs, the model is told.
    type_and_send(qtbot, window, "And 10 plus 20?")
    qtbot.waitUntil(lambda: bar.isVisible(), timeout=60_000)
    deny = bar.findChild(QPushButton, "toolDenyButton")
    assert deny is not None
    qtbot.mouseClick(deny, LEFT)
    qtbot.waitUntil(lambda: len(window.session.transcript) == 6, timeout=60_000)
    wait_reply_done(qtbot, window)
    assert window.session.transcript.message(4).tool_uses[0].status is ToolStatus.DENIED

    # Stored with the conversation, exported in OpenAI's tool-call format.
    store = window.session.store
    conversation = window.session.conversation_id
    assert store is not None and conversation is not None
    qtbot.waitUntil(lambda: store.conversation(conversation).tools == ("test__add",), timeout=5_000)
    line = json.loads(store.export_finetune_jsonl([conversation]))
    assert [m["role"] for m in line["messages"]][:4] == ["user", "assistant", "tool", "assistant"]


def test_json_mode_from_the_drawer_holds_the_reply_and_a_bad_schema_is_explained(
    qtbot: QtBot, window: MainWindow
) -> None:
    window.sampling.set_params(SamplingParams(temperature=0, max_tokens=60, context_length=2048))
    panel = window.side.reply_format
    picker = panel.findChild(QComboBox, "replyFormatPicker")
    assert picker is not None
    picker.setCurrentIndex(2)  # JSON of a schema
    panel.schema.setPlainText('{"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"')
    qtbot.waitUntil(lambda: "not JSON" in panel.message.text(), timeout=5_000)
    assert window.session.output_schema is None  # nothing half-typed reaches the conversation
    panel.schema.setPlainText('{"type": "object", "not": {}}')
    qtbot.waitUntil(lambda: "not supported" in panel.message.text(), timeout=5_000)
    panel.schema.setPlainText(
        '{"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}'
    )
    qtbot.waitUntil(lambda: window.session.output_schema is not None, timeout=5_000)
    type_and_send(qtbot, window, "Give me a number.")
    qtbot.waitUntil(lambda: len(window.session.transcript) == 2, timeout=10_000)
    wait_reply_done(qtbot, window)
    reply = json.loads(window.session.transcript.message(1).content)
    assert isinstance(reply["x"], int)
    # Saved as a preset, JSON mode comes back with it.
    store = window.session.store
    assert store is not None
    window.conversations.save_preset("JSON numbers")
    preset = next(p for p in store.presets() if p.name == "JSON numbers")
    assert preset.output_schema == window.session.output_schema
    picker.setCurrentIndex(0)
    assert window.session.output_schema is None
    window.conversations.apply_preset(preset)
    assert window.session.output_schema == preset.output_schema and picker.currentIndex() == 2
