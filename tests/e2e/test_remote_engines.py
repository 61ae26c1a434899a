"""Remote engines through the real window: endpoints added in the dialog (keys in the keyring), their
models in the picker, chat, stop, stats and history with a remote model, and each failure a user can
meet, shown in the window.

Two servers stand in for vLLM / a llama.cpp server: llama-cpp-python's own `llama_cpp.server` with
the starter model (real streaming, a real crash mid-reply, a restart), started once for the module,
and FakeOpenAI (tests/fake_openai.py) for the refusals a real server rarely makes on demand: a bad
key, an unknown model, a rate limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QListWidget, QMessageBox, QPushButton, QToolButton
from pytestqt.qtbot import QtBot

from app.core.chat.store import Store
from app.core.platform import paths, secrets
from app.core.remote.endpoints import model_key
from app.core.settings import Settings
from app.core.values.replies import StopReason
from app.ui.chat.message_layout import footer_text
from app.ui.remote.dialog import RemoteEnginesDialog
from app.ui.shell.main_window import MainWindow
from tests.fake_openai import FakeOpenAI
from tests.llama_server import MODEL_ID, LlamaServer, free_port
from tests.window_fixtures import shot

LONG_PROMPT = "Write a very long story about a lighthouse keeper and the sea. Make it at least 500 words."


# ----- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_server(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama_cpp.server with the starter model, once for the module (each start costs seconds)."""
    server = LlamaServer(starter_model, tmp_path_factory.mktemp("llama-server") / "server.log").start()
    yield server
    server.kill()


@pytest.fixture
def server(llama_server: LlamaServer) -> LlamaServer:
    """The module's llama_cpp.server, running (a test before may have killed it)."""
    if not llama_server.running:
        llama_server.start()
    return llama_server


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """An OpenAI look-alike whose faults a test switches on."""
    server = FakeOpenAI(delay_s=0.002).start()
    yield server
    server.stop()


def _remote_window(
    make_window: Callable[..., MainWindow], qtbot: QtBot, url: str, model: str, name: str = "Lab server"
) -> MainWindow:
    """A window whose settings already hold an endpoint and chose its `model` last time (as after a
    restart): it comes back to that remote model once the endpoint has listed it."""
    settings = Settings(
        remote_endpoints=[{"name": name, "base_url": url}], last_remote_model=model_key(url, model)
    )
    window = make_window(settings=settings)
    qtbot.waitUntil(lambda: window.remote.choice is not None, timeout=15_000)
    # Whichever came first, the local model's load or the remote list, the remote choice shows.
    assert window.picker.currentText() == f"{model} · {name} (remote)"
    assert window.status.model_label.text() == f"{model} · {name} (remote)"
    return window


def _picker_row(window: MainWindow, text: str) -> int:
    return next(i for i in range(window.picker.count()) if text in window.picker.itemText(i))


def _choose_row(window: MainWindow, row: int) -> None:
    window.picker.setCurrentIndex(row)
    window.picker.activated.emit(row)  # what a user's choice in the list emits


def _send(qtbot: QtBot, window: MainWindow, text: str, timeout: int = 60_000) -> None:
    window.composer.setPlainText(text)
    window.chat.send()
    qtbot.waitUntil(lambda: not window.is_generating, timeout=timeout)


def _set_max_tokens(window: MainWindow, value: int) -> None:
    window.sampling.set_params(window.sampling.params().with_changes(max_tokens=value, temperature=0.0))


def _dialog(qtbot: QtBot, window: MainWindow) -> RemoteEnginesDialog:
    button = window.findChild(QToolButton, "remoteEnginesButton")
    assert button is not None
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = window.findChild(RemoteEnginesDialog, "remoteEnginesDialog")
    assert dialog is not None and dialog.isVisible()
    return dialog


def _fill(qtbot: QtBot, dialog: RemoteEnginesDialog, name: str, url: str, key: str = "") -> None:
    for object_name, text in (
        ("endpointNameInput", name),
        ("endpointUrlInput", url),
        ("endpointKeyInput", key),
    ):
        box = dialog.findChild(QLineEdit, object_name)
        assert box is not None
        box.clear()
        if text:
            qtbot.keyClicks(box, text)


def _click(qtbot: QtBot, dialog: RemoteEnginesDialog, name: str) -> None:
    button = dialog.findChild(QPushButton, name)
    assert button is not None and button.isEnabled(), name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _message(dialog: RemoteEnginesDialog) -> str:
    label = dialog.findChild(QLabel, "endpointMessage")
    assert label is not None
    return label.text()


def _banner(window: MainWindow) -> str:
    return window.banner.label.text() if window.banner.isVisible() else ""


def _settings_text() -> str:
    return paths.settings_file().read_text("utf-8")


# ----- with llama_cpp.server: the real thing ---------------------------------------------------------


def test_add_an_endpoint_choose_its_model_and_chat(
    qtbot: QtBot, window: MainWindow, server: LlamaServer, memory_keyring: Any
) -> None:
    dialog = _dialog(qtbot, window)
    store_note = dialog.findChild(QLabel, "endpointKeyStore")
    assert store_note is not None
    qtbot.waitUntil(lambda: "system keyring" in store_note.text(), timeout=5_000)
    _fill(qtbot, dialog, "Lab server", server.url, "sk-lab-1234")
    _click(qtbot, dialog, "endpointTestButton")
    qtbot.waitUntil(lambda: "Connected" in _message(dialog), timeout=15_000)
    assert f"1 model — {MODEL_ID}" in _message(dialog)
    _click(qtbot, dialog, "endpointSaveButton")
    qtbot.waitUntil(lambda: window.picker.remote_keys() == [model_key(server.url, MODEL_ID)], timeout=15_000)
    endpoints = dialog.findChild(QListWidget, "endpointList")
    assert endpoints is not None and endpoints.count() == 1 and "Lab server" in endpoints.item(0).text()
    shot(dialog, "remote-dialog")
    dialog.close()

    # The key is in the keyring under the endpoint's name, and nowhere in the settings file.
    assert secrets.get_secret(f"endpoint:{server.url}") == "sk-lab-1234"
    assert memory_keyring.passwords[("Fireside", f"endpoint:{server.url}")] == "sk-lab-1234"
    saved = json.loads(_settings_text())
    assert saved["remote_endpoints"] == [{"name": "Lab server", "base_url": server.url}]
    assert "sk-lab-1234" not in _settings_text()

    # The picker lists the remote model after the local one, marked remote, the URL in its tooltip.
    row = _picker_row(window, "(remote)")
    assert window.picker.itemText(row) == f"{MODEL_ID} · Lab server (remote)"
    assert server.url in str(window.picker.itemData(row, Qt.ItemDataRole.ToolTipRole))
    assert row > 0 and window.picker.itemText(0).startswith("SmolLM2")
    local = window.loaded
    _choose_row(window, row)
    assert window.remote.choice is not None and window.remote.choice.model == MODEL_ID
    assert window.loaded is local  # the local model stays loaded
    status = window.findChild(QLabel, "statusModel")
    assert status is not None and status.text() == f"{MODEL_ID} · Lab server (remote)"
    assert server.url in status.toolTip()
    assert "unknown" in window.status.context_label.text()

    # Chat: the reply streams into the view from the server, with its stats, and is saved.
    _set_max_tokens(window, 40)
    posts = server.requests_logged()
    chunks: list[str] = []
    window.bridge.chunk.connect(lambda _rid, text: chunks.append(text))
    window.composer.setPlainText("Say hello to the lighthouse keeper.")
    window.chat.send()
    assert window.is_generating and window.send_button.text() == "Stop"
    qtbot.waitUntil(lambda: len(chunks) >= 2, timeout=30_000)
    assert window.messages.message(1).incomplete  # streaming
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    reply = window.messages.message(1)
    assert reply.content and reply.content == "".join(chunks) and reply.error is None
    assert reply.stats is not None and reply.stats.completion_tokens > 1
    assert reply.stats.ttft_s > 0 and reply.stats.tokens_per_s > 0
    assert reply.stats.stop_reason in (StopReason.MAX_TOKENS, StopReason.END_OF_TURN)
    assert footer_text(reply) == reply.stats.summary()  # the stats line under the reply
    assert "tok/s" in reply.stats.summary() and "0 prompt" not in reply.stats.summary()
    assert server.requests_logged() == posts + 1  # it came from the server, not the local model
    shot(window, "remote-chat")

    store = window.conversations.store
    assert store is not None and window.conversations.current is not None
    conversation = store.conversation(window.conversations.current)
    assert conversation.model == model_key(server.url, MODEL_ID)  # which model answered
    stored = store.branch(conversation.id)[1]
    assert stored.content == reply.content and not stored.incomplete
    assert stored.stats is not None and stored.stats["model"] == model_key(server.url, MODEL_ID)
    assert stored.stats["completion_tokens"] == reply.stats.completion_tokens

    # Back to the local model: no reload, chat goes to it again.
    _choose_row(window, 0)
    assert window.remote.choice is None and window.loaded is local
    assert status.text().startswith("SmolLM2")
    assert json.loads(_settings_text())["last_remote_model"] is None


def _stream_a_long_reply(qtbot: QtBot, window: MainWindow) -> list[str]:
    """Send a prompt with a long answer and wait for its first pieces; the list keeps filling."""
    _set_max_tokens(window, 1500)
    chunks: list[str] = []
    window.bridge.chunk.connect(lambda _rid, text: chunks.append(text))
    window.composer.setPlainText(LONG_PROMPT)
    window.chat.send()
    qtbot.waitUntil(lambda: len(chunks) >= 3, timeout=30_000)
    return chunks


def test_stop_a_remote_reply_mid_stream(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, server: LlamaServer
) -> None:
    window = _remote_window(make_window, qtbot, server.url, MODEL_ID)
    chunks = _stream_a_long_reply(qtbot, window)
    qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: not window.is_generating, timeout=10_000)
    reply = window.messages.message(1)
    assert reply.stats is not None and reply.stats.stop_reason is StopReason.USER
    assert reply.content == "".join(chunks) and reply.error is None
    assert 0 < reply.stats.completion_tokens < 1500
    assert "stopped by user" in footer_text(reply)


def test_the_server_dies_mid_reply_and_comes_back(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, server: LlamaServer
) -> None:
    window = _remote_window(make_window, qtbot, server.url, MODEL_ID)
    store = window.conversations.store
    chunks = _stream_a_long_reply(qtbot, window)
    server.kill()
    qtbot.waitUntil(lambda: not window.is_generating, timeout=15_000)

    # What arrived is kept, marked incomplete, in the view and in the store; the banner says so.
    reply = window.messages.message(1)
    assert reply.content and reply.content == "".join(chunks)
    assert reply.incomplete and reply.error is not None and reply.error.startswith("Incomplete reply")
    assert "Incomplete reply" in _banner(window) and "What arrived is kept" in _banner(window)
    assert window.banner.action_button.text() == "Retry"
    shot(window, "remote-cut")
    store = window.conversations.store
    assert store is not None and window.conversations.current is not None
    stored = store.branch(window.conversations.current)[1]
    assert stored.content == reply.content and stored.incomplete and stored.error == reply.error

    # Sending while it is down: the endpoint cannot be reached, and the banner says where to look.
    _send(qtbot, window, "Are you there?", timeout=15_000)
    assert "cannot be reached" in _banner(window)
    assert window.banner.action_button.text() == "Remote engines…"
    assert window.messages.message(3).error is not None and not window.messages.message(3).content

    # Back on the same port: chatting works again, through the same endpoint.
    server.restart()
    _set_max_tokens(window, 24)
    _send(qtbot, window, "Hello again.")
    last = window.messages.message(window.messages.rowCount() - 1)
    assert last.error is None and last.content and last.stats is not None
    assert not _banner(window)


# ----- with FakeOpenAI: refusals on demand -------------------------------------------------------------


def test_a_bad_key_is_explained_in_the_picker_and_in_chat(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    models_dir: Path,
    fake: FakeOpenAI,
    memory_keyring: Any,
) -> None:
    fake.api_key = "sk-right"
    secrets.set_secret(f"endpoint:{fake.url}", "sk-right")
    window = _remote_window(make_window, qtbot, fake.url, "tiny-model", "Hosted")
    fake.api_key = "sk-rotated"  # the key was revoked on the server
    _send(qtbot, window, "Hello")
    assert "refused the API key (401)" in _banner(window) and "Remote engines" in _banner(window)
    assert window.banner.action_button.text() == "Remote engines…"
    assert "sk-right" not in _banner(window)

    # Listed again with the old key: one disabled row, the reason in its tooltip, no dialog.
    endpoint = window.remote.endpoints[0]
    window.remote.refresh(endpoint)
    qtbot.waitUntil(
        lambda: "API key refused" in window.picker.itemText(window.picker.count() - 1), timeout=10_000
    )
    row = window.picker.count() - 1
    assert not window.picker.model().item(row).isEnabled()  # type: ignore[attr-defined]
    assert "refused the API key" in str(window.picker.itemData(row, Qt.ItemDataRole.ToolTipRole))


def test_an_unknown_model_and_a_rate_limit(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, fake: FakeOpenAI
) -> None:
    window = _remote_window(make_window, qtbot, fake.url, "tiny-model")
    fake.models = ["another-model"]  # the server was restarted with another model
    _send(qtbot, window, "Hello")
    assert "does not have the model “tiny-model” (404)" in _banner(window)
    assert "choose another one in the model picker" in _banner(window)

    fake.models = ["tiny-model"]
    fake.status, fake.retry_after = 429, "7"
    _send(qtbot, window, "Hello")
    assert "rate limiting requests (429)" in _banner(window) and "Try again in 7 s" in _banner(window)
    assert window.banner.action_button.text() == "Retry"
    fake.status = None
    failed_row = window.messages.rowCount() - 1
    qtbot.mouseClick(window.banner.action_button, Qt.MouseButton.LeftButton)  # Retry: a new version
    qtbot.waitUntil(lambda: not window.is_generating, timeout=10_000)
    retried = window.messages.message(failed_row)
    assert retried.error is None and retried.content == "".join(fake.words)


def test_an_unreachable_endpoint_is_one_disabled_row_and_a_clear_message(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, fake: FakeOpenAI
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(
        remote_endpoints=[{"name": "Fake", "base_url": fake.url}, {"name": "Gone", "base_url": nowhere}]
    )
    window = make_window(settings=settings)
    qtbot.waitUntil(
        lambda: any("Gone — unreachable" in window.picker.itemText(i) for i in range(window.picker.count())),
        timeout=10_000,
    )
    row = _picker_row(window, "Gone — unreachable")
    assert not window.picker.model().item(row).isEnabled()  # type: ignore[attr-defined]
    assert "cannot be reached" in str(window.picker.itemData(row, Qt.ItemDataRole.ToolTipRole))
    assert not window.banner.isVisible() or "Gone" not in _banner(window)  # no error for a listing

    # The chosen endpoint goes away: listed again, it shows so in the picker and the status bar, and
    # chat says it cannot be reached.
    _choose_row(window, _picker_row(window, "tiny-model · Fake (remote)"))
    fake.stop()
    window.remote.refresh(window.remote.endpoints[0])
    qtbot.waitUntil(lambda: "Fake — unreachable" in window.picker.currentText(), timeout=10_000)
    assert window.status.state_label.text() == "Fake is not answering"
    assert window.remote.choice is not None  # still chosen: it may come back
    _send(qtbot, window, "Hello")
    assert "Fake cannot be reached" in _banner(window)
    assert f"Check that the server at {fake.url} is running" in _banner(window)


def test_without_a_keyring_the_key_is_kept_for_the_session_only(
    qtbot: QtBot, window: MainWindow, fake: FakeOpenAI, no_keyring: Any
) -> None:
    fake.api_key = "sk-session"
    dialog = _dialog(qtbot, window)
    store_note = dialog.findChild(QLabel, "endpointKeyStore")
    assert store_note is not None
    qtbot.waitUntil(lambda: "for this session only" in store_note.text(), timeout=5_000)
    _fill(qtbot, dialog, "", fake.url.removesuffix("/v1"), "sk-session")  # /v1 is added for the user
    _click(qtbot, dialog, "endpointSaveButton")
    qtbot.waitUntil(lambda: "session only" in _message(dialog), timeout=5_000)
    shot(dialog, "remote-dialog-no-keyring")
    assert window.remote.endpoints[0].base_url == fake.url
    url_input = dialog.findChild(QLineEdit, "endpointUrlInput")
    assert url_input is not None and url_input.text() == fake.url  # shown as kept
    qtbot.waitUntil(
        lambda: window.picker.remote_keys() == [model_key(fake.url, "tiny-model")], timeout=10_000
    )
    assert "sk-session" not in _settings_text()
    assert secrets.get_secret(f"endpoint:{fake.url}") == "sk-session"  # in memory, for this session


def test_edit_forget_the_key_and_remove_an_endpoint(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    models_dir: Path,
    fake: FakeOpenAI,
    memory_keyring: Any,
) -> None:
    secrets.set_secret(f"endpoint:{fake.url}", "sk-old")
    window = _remote_window(make_window, qtbot, fake.url, "tiny-model", "Old name")
    dialog = _dialog(qtbot, window)
    endpoints = dialog.findChild(QListWidget, "endpointList")
    assert endpoints is not None
    endpoints.setCurrentRow(0)
    forget = dialog.findChild(QPushButton, "endpointForgetKeyButton")
    assert forget is not None
    qtbot.waitUntil(forget.isEnabled, timeout=5_000)  # a key is saved
    name = dialog.findChild(QLineEdit, "endpointNameInput")
    assert name is not None
    name.setText("New name")
    _click(qtbot, dialog, "endpointSaveButton")
    qtbot.waitUntil(
        lambda: any("New name (remote)" in window.picker.itemText(i) for i in range(window.picker.count())),
        timeout=10_000,
    )
    assert window.remote.choice is not None and window.remote.choice.endpoint.name == "New name"
    assert secrets.get_secret(f"endpoint:{fake.url}") == "sk-old"  # an empty key field keeps the key

    qtbot.waitUntil(forget.isEnabled, timeout=5_000)
    _click(qtbot, dialog, "endpointForgetKeyButton")
    qtbot.waitUntil(lambda: "forgotten" in _message(dialog), timeout=5_000)
    assert secrets.get_secret(f"endpoint:{fake.url}") is None

    _click(qtbot, dialog, "endpointRemoveButton")
    box = dialog.findChild(QMessageBox, "confirmRemoveEndpoint")
    assert box is not None
    remove = next(b for b in box.buttons() if b.text() == "Remove")
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.remote.endpoints, timeout=5_000)
    assert window.picker.remote_keys() == [] and window.remote.choice is None
    assert window.status.model_label.text().startswith("SmolLM2")  # back to the local model
    assert json.loads(_settings_text())["remote_endpoints"] == []


def test_running_local_servers_are_offered(qtbot: QtBot, window: MainWindow, fake: FakeOpenAI) -> None:
    window.remote.detect_candidates = {
        "llama.cpp server": fake.url,
        "LM Studio": f"http://127.0.0.1:{free_port()}/v1",
    }
    dialog = _dialog(qtbot, window)
    qtbot.waitUntil(lambda: dialog.findChild(QPushButton, "detectedAddButton") is not None, timeout=10_000)
    buttons = dialog.findChildren(QPushButton, "detectedAddButton")
    assert len(buttons) == 1 and buttons[0].property("base_url") == fake.url  # only the one running
    qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: window.picker.remote_keys() == [model_key(fake.url, "tiny-model")], timeout=10_000
    )
    assert window.remote.endpoints[0].name == "llama.cpp server"
    assert buttons[0].text() == "Added" and not buttons[0].isEnabled()


def test_remote_chat_uses_the_sampling_settings_and_history_remembers_the_model(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, fake: FakeOpenAI
) -> None:
    window = _remote_window(make_window, qtbot, fake.url, "tiny-model")
    window.sampling.set_params(
        window.sampling.params().with_changes(temperature=0.3, top_p=0.9, top_k=12, max_tokens=5, seed=42)
    )
    _send(qtbot, window, "Hello")
    sent = fake.requests[-1]
    assert (sent["temperature"], sent["top_p"], sent["top_k"], sent["max_tokens"], sent["seed"]) == (
        0.3, 0.9, 12, 5, 42,
    )  # fmt: skip
    reply = window.messages.message(1)
    assert reply.stats is not None and reply.stats.stop_reason is StopReason.MAX_TOKENS
    first = window.conversations.current

    # Continue is not offered for a remote reply (an OpenAI-style API starts a new one).
    assert not window.view.can_continue
    window.chat.continue_reply(1)
    assert "Continue needs a local model" in _banner(window) and not window.is_generating

    # Another conversation with the local model; opening the first again goes back to the remote one.
    window.conversations.new_conversation()
    _choose_row(window, 0)
    assert window.remote.choice is None
    window.conversations.open_conversation(first)  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: window.remote.choice is not None, timeout=5_000)
    assert window.remote.choice is not None and window.remote.choice.model == "tiny-model"


def test_a_cut_stream_is_kept_and_marked_incomplete_after_a_restart(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, fake: FakeOpenAI
) -> None:
    window = _remote_window(make_window, qtbot, fake.url, "tiny-model")
    fake.cut_after = 5
    _send(qtbot, window, "Hello")
    assert window.messages.message(1).content == "".join(fake.words[:5])
    window.close()
    store = Store(paths.data_dir() / "conversations.db")
    try:
        again = make_window(settings=Settings.load())
        qtbot.waitUntil(lambda: again.messages.rowCount() == 2, timeout=10_000)
        reply = again.messages.peek(1)
        assert reply.content == "".join(fake.words[:5]) and reply.incomplete
        assert reply.error is not None and reply.error.startswith("Incomplete reply")
        shot(again, "remote-cut-reopened")
    finally:
        store.close()
