"""The Local API server dialog: switch, port, network access, key, log and queue notice."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.api.config import ServerSettings
from app.core.inference.events import Event, Loaded
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.platform import secrets
from app.core.values.sampling import SamplingParams
from app.ui.api.controller import API_KEY_SECRET, ServerController, activity_text
from app.ui.api.dialog import ServerDialog
from app.ui.common.tasks import BackgroundTasks
from app.ui.shell.application import create_app
from tests.unit.api.served import MODEL

QUESTION = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def worker(starter_model: Path) -> Iterator[InferenceThread]:
    """The real model on one inference thread."""
    ready = threading.Event()

    def sink(event: Event) -> None:
        if isinstance(event, Loaded):
            ready.set()

    thread = InferenceThread(sink)
    thread.start()
    thread.load(starter_model, LoadOptions(context_length=1024))
    assert ready.wait(60)
    yield thread
    thread.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dialog(qtbot: QtBot, worker: InferenceThread) -> Iterator[ServerDialog]:
    """The dialog over a controller with a free port."""
    create_app()
    tasks = BackgroundTasks()
    port = _free_port()
    controller = ServerController(worker, tasks, ServerSettings(port=port), SamplingParams)
    view = ServerDialog(controller)
    qtbot.addWidget(view)
    view.show()
    yield view
    controller.shutdown()
    tasks.shutdown()


def _turn_on(qtbot: QtBot, view: ServerDialog) -> None:
    view.switch.setChecked(True)
    qtbot.waitUntil(lambda: view.controller.state in ("running", "error"), timeout=10_000)


def test_switching_on_serves_and_logs_requests(
    qtbot: QtBot, dialog: ServerDialog, memory_keyring: Any
) -> None:
    _turn_on(qtbot, dialog)
    address = dialog.controller.address
    assert address is not None and address in dialog.status.text()
    assert not dialog.port.isEnabled(), "settings are locked while serving"
    client = openai.OpenAI(base_url=address, api_key="none", max_retries=0)
    done = threading.Event()
    threading.Thread(
        target=lambda: (
            client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=8),
            done.set(),
        )
    ).start()
    qtbot.waitUntil(lambda: "POST /v1/chat/completions  200" in dialog.log_view.toPlainText(), timeout=30_000)
    assert "tok/s" in dialog.log_view.toPlainText()
    assert done.wait(10)
    dialog.switch.setChecked(False)
    qtbot.waitUntil(lambda: dialog.controller.state == "stopped")
    assert dialog.port.isEnabled()
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_network_access_needs_a_key(qtbot: QtBot, dialog: ServerDialog, memory_keyring: Any) -> None:
    dialog.network.setChecked(True)
    dialog.switch.setChecked(True)
    assert not dialog.switch.isChecked()
    assert "Set an API key first" in dialog.status.text()
    qtbot.mouseClick(dialog.generate, Qt.MouseButton.LeftButton)
    key = dialog.key.text()
    assert key.startswith("fs-") and len(key) > 20
    _turn_on(qtbot, dialog)
    assert dialog.controller.state == "running"
    assert "other computers on the network" in dialog.status.text()
    qtbot.waitUntil(lambda: secrets.get_secret(API_KEY_SECRET) == key)
    assert "system keyring" in dialog.key_note.text()
    port = dialog.controller.settings.port
    refused = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        refused.models.list()
    allowed = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
    assert allowed.models.list().data


def test_without_a_keyring_the_key_is_for_this_session_only(
    qtbot: QtBot, dialog: ServerDialog, no_keyring: Any
) -> None:
    dialog.key.setText("session-key-1")
    _turn_on(qtbot, dialog)
    qtbot.waitUntil(lambda: "this session only" in dialog.key_note.text())


def test_a_taken_port_is_explained(qtbot: QtBot, dialog: ServerDialog) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        dialog.port.setValue(taken.getsockname()[1])
        _turn_on(qtbot, dialog)
        assert dialog.controller.state == "error"
        assert "already in use" in dialog.status.text()
        assert not dialog.switch.isChecked() and dialog.port.isEnabled()


def test_activity_text() -> None:
    assert activity_text(0, 0) == ""
    assert activity_text(1, 2) == "API: 1 request generating, 2 waiting"


def _settled(qtbot: QtBot, controller: ServerController) -> None:
    """Wait until every start and stop asked for so far has finished and said so."""
    done: list[bool] = []
    controller.after_pending(lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=15_000)


def _answers(port: int) -> bool:
    try:
        return bool(
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0).models.list()
        )
    except openai.APIConnectionError:
        return False


def test_off_then_on_at_once_serves_and_says_so(qtbot: QtBot, dialog: ServerDialog) -> None:
    _turn_on(qtbot, dialog)
    port = dialog.controller.settings.port
    dialog.switch.setChecked(False)
    dialog.switch.setChecked(True)  # before the stop has finished: the start waits for it, not the port
    qtbot.waitUntil(lambda: dialog.controller.state in ("running", "error"), timeout=10_000)
    _settled(qtbot, dialog.controller)  # a late "stopped" from the first stop would have landed by now
    assert dialog.controller.state == "running", dialog.status.text()
    assert dialog.switch.isChecked() and dialog.controller.settings.enabled
    assert _answers(port)


def test_shutdown_while_starting_leaves_nothing_serving(qtbot: QtBot, worker: InferenceThread) -> None:
    create_app()
    tasks = BackgroundTasks()
    port = _free_port()
    controller = ServerController(worker, tasks, ServerSettings(port=port), SamplingParams)
    controller.start()
    controller.shutdown()  # the window closes while the server is still starting
    tasks.shutdown()
    assert not _answers(port), "no server outlives the window"


def test_each_request_is_logged_once(qtbot: QtBot, dialog: ServerDialog) -> None:
    _turn_on(qtbot, dialog)
    client = openai.OpenAI(base_url=dialog.controller.address or "", api_key="x", max_retries=0)
    client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=2)  # type: ignore[arg-type]
    # Reports come in order from the server's thread: once a later request's report is here, every
    # report of the first one is too.
    with pytest.raises(openai.BadRequestError):  # logged too, as one line with its 400
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=0)  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: any(" 400 " in line for line in dialog.controller.history), timeout=5_000)
    lines = [line for line in dialog.log_view.toPlainText().splitlines() if "POST" in line]
    assert len(lines) == 2 and " 200 " in lines[0] and " 400 " in lines[1], lines
    assert len(dialog.controller.history) == 2


def test_port_and_network_choices_are_kept_while_off(qtbot: QtBot, dialog: ServerDialog) -> None:
    changed: list[ServerSettings] = []
    dialog.controller.settingsChanged.connect(lambda: changed.append(dialog.controller.settings))
    dialog.port.setValue(9555)
    dialog.network.setChecked(True)
    assert changed[-1].port == 9555 and changed[-1].allow_network and not changed[-1].enabled


def test_a_key_typed_before_the_keyring_answers_is_kept(
    qtbot: QtBot, dialog: ServerDialog, memory_keyring: Any
) -> None:
    secrets.set_secret(API_KEY_SECRET, "old-key")
    controller = dialog.controller
    loaded: list[bool] = []
    controller.load_key(lambda: loaded.append(True))  # called once the keyring has answered
    dialog.key.setText("typed-key")
    dialog.key.setModified(True)
    controller.set_api_key("typed-key", lambda _kept: None)
    qtbot.waitUntil(lambda: bool(loaded), timeout=5_000)  # the keyring answered the read
    assert controller.api_key == "typed-key" and dialog.key.text() == "typed-key"
    # A read that finds the keyring's key with nothing typed shows it.
    dialog.key.setText("")
    dialog.key.setModified(False)
    controller.load_key()
    qtbot.waitUntil(lambda: dialog.key.text() == "typed-key", timeout=5_000)  # stored by set_api_key
