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
from app.core.values.replies import StopReason
from app.ui.chat.message_layout import footer_text
from app.ui.shell.main_window import MainWindow
from tests.unit.api.served import MODEL
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
                    model=MODEL, messages=STORY, max_tokens=max_tokens, stream=True
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
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    again.dialogs.server_panel().switch.setChecked(False)
    qtbot.waitUntil(lambda: again.server.state == "stopped")
    assert not Settings.load().api_server.enabled


def test_the_window_and_api_clients_are_answered_at_the_same_time(
    qtbot: QtBot, window: MainWindow, memory_keyring: Any, streams: Callable[[str], Streams]
) -> None:
    assert window.loaded is not None and window.loaded.n_parallel >= 3
    api = streams(_switch_on(qtbot, window, _free_port()))
    api.start(max_tokens=200)
    api.start(max_tokens=200)
    qtbot.waitUntil(lambda: window.server.activity == (2, 0), timeout=20_000)
    assert window.status.server_indicator.text() == "API: 2 requests generating"
    set_value(window, "maxTokensInput", 300)
    type_and_send(qtbot, window, "Write a long story about a lighthouse keeper and the sea.")
    assert window.status.state_label.text() == "Generating…", "a sequence was free: nothing to wait for"
    assert footer_text(window.messages.peek(1)) == "Generating…"
    # The window's reply streams while both API streams do.
    qtbot.waitUntil(lambda: len(window.messages.message(1).content) > 20, timeout=30_000)
    assert not api.finish and all(api.texts), "the API streams go on meanwhile"
    api.start(max_tokens=8)  # a third client, while the window generates: it does not wait either
    api.join()
    assert not api.errors and len(api.finish) == 3 and all(api.texts)
    assert window.is_generating, "the API clients were not held up behind the window's long reply"
    window.chat.stop()
    wait_reply_done(qtbot, window)
    qtbot.waitUntil(lambda: window.status.server_indicator.text().startswith("API server: on"))


def test_with_every_sequence_busy_the_window_reply_waits_and_says_so(
    qtbot: QtBot, window: MainWindow, memory_keyring: Any, streams: Callable[[str], Streams]
) -> None:
    assert window.loaded is not None
    parallel = window.loaded.n_parallel
    api = streams(_switch_on(qtbot, window, _free_port()))
    for _ in range(parallel):
        api.start(max_tokens=120)
    qtbot.waitUntil(lambda: window.server.activity == (parallel, 0), timeout=20_000)
    waited: list[float] = []
    window.bridge.started.connect(lambda _rid, seconds: waited.append(seconds))
    set_value(window, "maxTokensInput", 16)
    type_and_send(qtbot, window, "Name a colour.")
    state = window.status.state_label.text()
    assert state == "Waiting for 1 API request to finish…", state
    waiting = window.messages.peek(1)  # the reply's own footer says so too, not "Generating…"
    assert waiting.waiting == 1 and footer_text(waiting) == "Waiting for 1 API request to finish…"
    shot(window, "window-waits-behind-api")
    qtbot.waitUntil(lambda: bool(waited) and not window.messages.peek(1).waiting, timeout=60_000)
    assert window.status.state_label.text() == "Generating…"
    assert footer_text(window.messages.peek(1)) == "Generating…"
    assert waited[0] > 0.5, "the window's reply started only once a sequence was free"
    wait_reply_done(qtbot, window)
    assert window.messages.message(1).content
    api.join()
    assert not api.errors and len(api.finish) == parallel, "every API stream was served to the end"
    qtbot.waitUntil(lambda: window.status.server_indicator.text().startswith("API server: on"))


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


def test_closing_with_an_api_request_waiting_for_a_sequence_tells_it_why(
    qtbot: QtBot, window: MainWindow, memory_keyring: Any, streams: Callable[[str], Streams]
) -> None:
    assert window.loaded is not None
    parallel = window.loaded.n_parallel
    api = streams(_switch_on(qtbot, window, _free_port()))
    set_value(window, "maxTokensInput", 2000)
    type_and_send(qtbot, window, "Write a long story about a lighthouse keeper and the sea.")
    for _ in range(parallel - 1):  # the window's reply and these take every sequence
        api.start(max_tokens=2000)
    qtbot.waitUntil(lambda: window.server.activity == (parallel - 1, 0), timeout=20_000)
    api.start(max_tokens=50)
    qtbot.waitUntil(lambda: window.server.activity == (parallel - 1, 1), timeout=10_000)
    window.close()
    api.join(10)
    assert len(api.errors) == parallel and all(isinstance(e, openai.APIError) for e in api.errors)
    assert all("shutting down" in str(e) for e in api.errors), "answers, not dropped connections"
    assert not api.texts[-1] and not api.finish, "the waiting request never started, the others were cut"


def test_parallel_replies_is_chosen_in_the_server_panel_and_kept(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, memory_keyring: Any
) -> None:
    window = make_window()
    assert window.loaded is not None
    auto = window.loaded.n_parallel
    dialog = window.dialogs.server_panel()
    assert dialog.parallel.value() == 0 and dialog.parallel.text() == "Auto"
    assert dialog.parallel_note.text() == f"Now: {auto} at once"
    reloaded: list[int] = []
    window.bridge.loaded.connect(lambda _rid, model: reloaded.append(model.n_parallel))
    dialog.parallel.setValue(2)
    dialog.parallel.editingFinished.emit()
    qtbot.waitUntil(lambda: reloaded == [2], timeout=60_000)
    assert window.loaded is not None and window.loaded.n_parallel == 2
    assert dialog.parallel_note.text() == "Now: 2 at once"
    assert Settings.load().parallel == 2
    shot(dialog, "server-panel-parallel")
    dialog.close()

    # Two API clients are served at once; a third waits for a free sequence.
    api = Streams(_switch_on(qtbot, window, _free_port()))
    for _ in range(3):
        api.start(max_tokens=60)
    qtbot.waitUntil(lambda: window.server.activity == (2, 1), timeout=20_000)
    api.join()
    assert not api.errors and len(api.finish) == 3

    # Changed while the window's reply streams: the reply is not cut; the reload follows it.
    set_value(window, "maxTokensInput", 120)
    type_and_send(qtbot, window, "Write a long story about a lighthouse keeper and the sea.")
    panel = window.dialogs.server_panel()
    panel.parallel.setValue(3)
    panel.parallel.editingFinished.emit()
    assert window.is_generating and window.loaded is not None and window.loaded.n_parallel == 2
    wait_reply_done(qtbot, window)
    stats = window.messages.peek(1).stats
    assert stats is not None and stats.stop_reason is not StopReason.USER
    qtbot.waitUntil(lambda: reloaded == [2, 3], timeout=60_000)
    assert panel.parallel_note.text() == "Now: 3 at once"
    window.close()

    # The next launch loads the model with the same choice.
    again = make_window(settings=Settings.load())
    assert again.loaded is not None and again.loaded.n_parallel == 3
    assert again.dialogs.server_panel().parallel.value() == 3
