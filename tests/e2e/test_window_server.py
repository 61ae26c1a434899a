"""The local API server inside the real window: its switch, the status bar, the shared queue, closing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from app.core.settings import Settings
from app.ui.chat.message_layout import footer_text
from app.ui.shell.main_window import MainWindow
from tests.window_fixtures import set_value, shot, type_and_send, wait_reply_done

STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _switch_on(qtbot: QtBot, window: MainWindow, port: int) -> str:
    dialog = window.dialogs.server_panel()
    dialog.port.setValue(port)
    dialog.switch.setChecked(True)
    qtbot.waitUntil(lambda: window.server.state == "running", timeout=15_000)
    dialog.close()
    address = window.server.address
    assert address == f"http://127.0.0.1:{port}/v1"
    return address


class Streams:
    """API streams run on threads of their own, as other programs would; each keeps what it got."""

    def __init__(self, address: str) -> None:
        self.client = openai.OpenAI(base_url=address, api_key="none", max_retries=0, timeout=60)
        self.threads: list[threading.Thread] = []
        self.texts: list[list[str]] = []
        self.finish: list[str | None] = []
        self.errors: list[BaseException] = []

    def start(self, max_tokens: int) -> None:
        """One streamed chat request on its own thread."""
        pieces: list[str] = []
        self.texts.append(pieces)

        def run() -> None:
            try:
                stream = self.client.chat.completions.create(
                    model="local", messages=STORY, max_tokens=max_tokens, stream=True
                )
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                    if chunk.choices and chunk.choices[0].finish_reason:
                        self.finish.append(chunk.choices[0].finish_reason)
            except BaseException as exc:  # kept for the test to look at
                self.errors.append(exc)

        thread = threading.Thread(target=run, name="api-client")
        thread.start()
        self.threads.append(thread)

    def join(self, timeout: float = 60.0) -> None:
        """Wait for every stream to end."""
        for thread in self.threads:
            thread.join(timeout)
            assert not thread.is_alive(), "an API stream did not end"


@pytest.fixture
def streams() -> Iterator[Callable[[str], Streams]]:
    """Make Streams; all are joined after the test (no client thread outlives it)."""
    made: list[Streams] = []

    def make(address: str) -> Streams:
        made.append(Streams(address))
        return made[-1]

    yield make
    for each in made:
        each.join()


def test_switch_serves_the_loaded_model_and_is_remembered(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    models_dir: Path,
    memory_keyring: Any,
) -> None:
    window = make_window()
    indicator = window.findChild(QPushButton, "serverIndicator")
    assert indicator is not None and indicator.text() == "API server: off"
    port = _free_port()
    address = _switch_on(qtbot, window, port)
    assert indicator.text() == f"API server: on · :{port}"
    client = openai.OpenAI(base_url=address, api_key="none", max_retries=0)
    assert client.models.list().data[0].id == window.loaded.info.path.stem  # type: ignore[union-attr]
    saved = Settings.load()
    assert saved.api_server.enabled and saved.api_server.port == port
    shot(window, "window-server-on")
    window.close()
    with pytest.raises(openai.APIConnectionError):
        client.models.list()

    # The next launch serves again without being asked.
    again = make_window(settings=Settings.load())
    qtbot.waitUntil(lambda: again.server.state == "running", timeout=15_000)
    reply = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    again.dialogs.server_panel().switch.setChecked(False)
    qtbot.waitUntil(lambda: again.server.state == "stopped")
    assert not Settings.load().api_server.enabled


def test_window_reply_waits_behind_api_requests_and_says_so(
    qtbot: QtBot, window: MainWindow, memory_keyring: Any, streams: Callable[[str], Streams]
) -> None:
    api = streams(_switch_on(qtbot, window, _free_port()))
    api.start(max_tokens=300)
    api.start(max_tokens=300)
    qtbot.waitUntil(lambda: window.server.activity == (1, 1), timeout=20_000)
    assert window.status.server_indicator.text() == "API: 1 request generating, 1 waiting"
    waited: list[float] = []
    window.bridge.started.connect(lambda _rid, seconds: waited.append(seconds))
    set_value(window, "maxTokensInput", 16)
    type_and_send(qtbot, window, "Name a colour.")
    state = window.status.state_label.text()
    assert state == "Waiting for 2 API requests to finish…", state
    waiting = window.messages.peek(1)  # the reply's own footer says so too, not "Generating…"
    assert waiting.waiting == 2 and footer_text(waiting) == "Waiting for 2 API requests to finish…"
    shot(window, "window-waits-behind-api")
    qtbot.waitUntil(lambda: bool(waited), timeout=60_000)
    assert window.status.state_label.text() == "Generating…"
    assert footer_text(window.messages.peek(1)) == "Generating…"
    assert waited[0] > 0.5, "the window's reply started only after the API requests"
    wait_reply_done(qtbot, window)
    assert window.messages.message(1).content
    api.join()
    assert not api.errors and len(api.finish) == 2, "both API streams were served to the end"
    assert all(api.texts)
    qtbot.waitUntil(lambda: window.status.server_indicator.text().startswith("API server: on"))


def test_api_request_waits_while_the_window_generates(
    qtbot: QtBot, window: MainWindow, memory_keyring: Any, streams: Callable[[str], Streams]
) -> None:
    api = streams(_switch_on(qtbot, window, _free_port()))
    set_value(window, "maxTokensInput", 300)
    type_and_send(qtbot, window, "Write a long story about a lighthouse keeper and the sea.")
    assert window.status.state_label.text() == "Generating…", "nothing was ahead of the window's reply"
    api.start(max_tokens=8)
    qtbot.waitUntil(lambda: window.server.activity == (0, 1), timeout=10_000)
    assert window.status.server_indicator.text() == "API: 1 waiting"
    assert not api.texts[0], "the API request waits for the window's reply"
    wait_reply_done(qtbot, window)
    api.join()
    assert api.texts[0] and not api.errors
    assert window.messages.message(1).content


def test_closing_the_window_mid_api_stream_ends_it_cleanly(
    qtbot: QtBot, window: MainWindow, memory_keyring: Any, streams: Callable[[str], Streams]
) -> None:
    api = streams(_switch_on(qtbot, window, _free_port()))
    api.start(max_tokens=2000)
    qtbot.waitUntil(lambda: len(api.texts[0]) >= 3, timeout=20_000)
    window.close()
    api.join(10)  # the client sees its stream end (cut) instead of hanging
    assert not window.bridge.worker.is_alive
    assert not api.finish, "the stream was cut, not finished"
    assert len(api.errors) == 1 and isinstance(api.errors[0], openai.APIError), api.errors
    assert "shutting down" in str(api.errors[0]), "the client is told why its reply stopped"
    assert api.texts[0], "what arrived before the cut reached the client"


def test_a_taken_port_is_reported(qtbot: QtBot, window: MainWindow, memory_keyring: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dialog = window.dialogs.server_panel()
        dialog.port.setValue(port)
        dialog.switch.setChecked(True)
        qtbot.waitUntil(lambda: window.server.state == "error", timeout=15_000)
    assert f"Port {port} is already in use" in dialog.status.text()
    assert not dialog.switch.isChecked()
    assert window.status.server_indicator.text() == "API server: failed"
    assert not Settings.load().api_server.enabled


def test_closing_with_an_api_request_waiting_behind_the_window_tells_it_why(
    qtbot: QtBot, window: MainWindow, memory_keyring: Any, streams: Callable[[str], Streams]
) -> None:
    api = streams(_switch_on(qtbot, window, _free_port()))
    set_value(window, "maxTokensInput", 2000)
    type_and_send(qtbot, window, "Write a long story about a lighthouse keeper and the sea.")
    api.start(max_tokens=50)
    qtbot.waitUntil(lambda: window.server.activity == (0, 1), timeout=10_000)
    window.close()
    api.join(10)
    assert len(api.errors) == 1 and isinstance(api.errors[0], openai.APIError), api.errors
    assert "shutting down" in str(api.errors[0]), "an answer, not a dropped connection"
    assert not api.texts[0] and not api.finish
