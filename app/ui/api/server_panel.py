"""The "Local API server" switch: its controller (start, stop, log, queue) and its dialog.

The server itself (app.core.api.server) runs on its own thread. Starting and stopping it run one
after another on a lifecycle thread of their own (so a start never races the stop before it for the
port), the keyring reads for its API key on background tasks: the GUI thread never waits on them.
Its request log reaches the GUI thread as queued signals.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.api.config import ServerConfig, ServerSettings, new_api_key
from app.core.inference.thread import InferenceThread
from app.core.platform import secrets
from app.core.values.sampling import SamplingParams
from app.ui.common.tasks import BackgroundTasks

if TYPE_CHECKING:  # the HTTP stack is imported when the server first starts, not at launch
    from app.core.api.server import LocalServer, RequestLog

#: Gives the sampling settings for fields a request leaves out (called on the server's thread).
SamplingParamsSource = Callable[[], SamplingParams]
#: The keyring entry holding the server's API key.
API_KEY_SECRET = "api-server-key"
#: Lines kept in the log view (older ones scroll away).
LOG_LINES = 500

log = logging.getLogger(__name__)


class ServerController(QObject):
    """Owns the LocalServer: starts and stops it off the GUI thread and relays its log."""

    #: "stopped", "starting", "running", "stopping" or "error", and a sentence for the user.
    stateChanged = Signal(str, str)
    #: A request was queued, started or finished (a RequestLog, delivered on the GUI thread).
    logged = Signal(object)
    #: API requests generating now and waiting in the queue.
    activityChanged = Signal(int, int)
    #: The API key read from the keyring at launch (for a dialog opened before it arrived).
    keyLoaded = Signal()
    #: Port or network access changed while the server is off (to be saved).
    settingsChanged = Signal()

    def __init__(
        self,
        worker: InferenceThread,
        tasks: BackgroundTasks,
        settings: ServerSettings,
        defaults: SamplingParamsSource,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker, self.tasks, self.settings = worker, tasks, settings
        self._defaults = defaults
        self.server: LocalServer | None = None
        # Starts and stops run in order on one thread; every server made is listed until it stopped,
        # so shutdown() can stop one whose start or stop was still on its way.
        self._lifecycle = BackgroundTasks(self, workers=1)
        self._made: set[LocalServer] = set()
        self._made_lock = threading.Lock()
        self._key_edits = 0  # bumped by set_api_key: a keyring read that lands later must not undo it
        self.state, self.message = "stopped", "The server is off."
        self.api_key: str | None = None
        self.key_is_kept = True
        #: The log's last lines, so a dialog opened later shows what came before it.
        self.history: deque[str] = deque(maxlen=LOG_LINES)
        #: API requests generating and waiting now (as activityChanged last said).
        self.activity = (0, 0)
        self._generation = 0  # bumped by start and stop: a start that finishes late knows it is stale
        self.logged.connect(self._on_logged)

    @property
    def address(self) -> str | None:
        """The running server's base URL."""
        return self.server.address if self.server is not None and self.state == "running" else None

    def _set_state(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self.stateChanged.emit(state, message)

    def load_key(self, then: Callable[[], None] | None = None) -> None:
        """Read the API key from the keyring (off the GUI thread), then call `then`."""

        edits = self._key_edits

        def read() -> tuple[str | None, bool]:
            return secrets.get_secret(API_KEY_SECRET), secrets.has_secure_store()

        def got(result: tuple[str | None, bool]) -> None:
            if edits == self._key_edits:  # the user did not set a key meanwhile
                self.api_key, self.key_is_kept = result
                self.keyLoaded.emit()
            if then is not None:
                then()

        def failed(error: BaseException) -> None:
            log.warning("Could not read the API server's key from the keyring: %s", error)
            if then is not None:
                then()

        self.tasks.run(read, got, failed)

    def set_api_key(self, key: str | None, then: Callable[[bool], None]) -> None:
        """Store (or with None remove) the key; `then(kept)` says whether it survives a restart."""
        self.api_key = key or None
        self._key_edits += 1

        def stored(kept: bool) -> None:
            self.key_is_kept = kept or not key
            then(self.key_is_kept)

        self.tasks.run(lambda: secrets.set_secret(API_KEY_SECRET, key or None), stored)

    def update_settings(self, settings: ServerSettings) -> None:
        """Remember a port or network choice made while the server is off."""
        if settings != self.settings:
            self.settings = settings
            self.settingsChanged.emit()

    def start(self, settings: ServerSettings | None = None) -> None:
        """Start serving with `settings` (restarting a running server); the outcome comes as stateChanged."""
        if settings is not None:
            self.settings = settings
        self.settings = replace(self.settings, enabled=True)
        old, self.server = self.server, None
        self._generation += 1
        generation = self._generation
        host = "0.0.0.0" if self.settings.allow_network else "127.0.0.1"
        config = ServerConfig(host, self.settings.port, self.api_key, self.settings.allow_network)
        self._set_state("starting", "Starting…")

        def work() -> LocalServer | None:
            # Imported here, off the GUI thread: uvicorn and Starlette cost ~0.3 s that a launch
            # without the server never pays.
            from app.core.api.server import LocalServer

            if old is not None:
                self._stop_server(old)
            if generation != self._generation:  # stopped again before this start had its turn
                return None
            server = LocalServer(self.worker, config, defaults=self._defaults)
            # From the server's thread, queued to the GUI thread. A copy: the entry changes on as the
            # request moves on, and each report must say what it was when sent.
            server.add_listener(lambda entry: self.logged.emit(replace(entry)))
            with self._made_lock:
                self._made.add(server)
            try:
                server.start()
            except BaseException:
                self._forget(server)
                raise
            if generation != self._generation:  # stopped, or the window closed, while it started
                self._stop_server(server)
            return server

        def started(running: LocalServer | None) -> None:
            if running is None:
                return
            if generation != self._generation:  # stopped (or restarted) while it started
                self._lifecycle.run(lambda: self._stop_server(running), lambda _r: None)
                return
            self.server = running
            who = (
                "other computers on the network" if config.host == "0.0.0.0" else "programs on this computer"
            )
            key = "with the API key" if config.api_key else "no API key needed"
            self._set_state("running", f"Serving at {running.address} to {who} ({key}).")

        def failed(error: BaseException) -> None:
            if generation != self._generation:
                return
            from app.core.api.server import ServerError

            self.settings = replace(self.settings, enabled=False)
            text = str(error) if isinstance(error, ServerError) else f"The server failed to start: {error}"
            self._set_state("error", text)

        self._lifecycle.run(work, started, failed)

    def stop(self) -> None:
        """Stop serving (requests in progress are cancelled)."""
        self.settings = replace(self.settings, enabled=False)
        self._generation += 1  # a start still in progress stops its server once it is up
        generation = self._generation
        server, self.server = self.server, None
        self._activity(0, 0)
        if server is None:
            self._set_state("stopped", "The server is off.")
            return
        self._set_state("stopping", "Stopping…")

        def stopped(_result: object) -> None:
            if generation == self._generation:  # not started again meanwhile
                self._set_state("stopped", "The server is off.")

        self._lifecycle.run(lambda: self._stop_server(server), stopped)

    def shutdown(self) -> None:
        """Stop at once, with every reply (the window is closing): each server made, however far along."""
        self._generation += 1
        self.server = None
        with self._made_lock:
            for server in self._made:
                server.prepare_stop()
        # Every reply ends now, the window's own too: an API request queued behind the window's reply
        # would otherwise hold the server's graceful shutdown for its whole timeout.
        self.worker.cancel_all()
        # Waits for a start or stop under way (a start gives up within seconds), drops queued ones...
        self._lifecycle.shutdown()
        # ...and stops whatever they left serving.
        with self._made_lock:
            left = list(self._made)
        for server in left:
            self._stop_server(server, timeout=3.0)

    def _stop_server(self, server: LocalServer, timeout: float = 5.0) -> None:
        server.stop(timeout=timeout)
        self._forget(server)

    def _forget(self, server: LocalServer) -> None:
        with self._made_lock:
            self._made.discard(server)

    def _on_logged(self, entry: RequestLog) -> None:
        if entry.state == "done":
            self.history.append(entry.line())
        server = self.server
        if server is None:
            return
        entries = list(server.active.values())
        generating = sum(1 for e in entries if e.state == "generating")
        self._activity(generating, len(entries) - generating)

    def _activity(self, generating: int, waiting: int) -> None:
        self.activity = (generating, waiting)
        self.activityChanged.emit(generating, waiting)


class ServerDialog(QDialog):
    """Turn the server on and off, choose its port, network access and key, and watch its log."""

    def __init__(self, controller: ServerController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("serverDialog")
        self.setWindowTitle("Local API server")
        self.setMinimumSize(760, 520)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Serve the loaded model to other programs through an OpenAI-compatible API "
            "(/v1/chat/completions, /v1/completions, /v1/models). Requests share the model with this "
            "window and wait their turn."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        self.switch = QCheckBox("Serve the loaded model")
        self.switch.setObjectName("serverSwitch")
        layout.addWidget(self.switch)
        form = QFormLayout()
        self.port = QSpinBox()
        self.port.setObjectName("serverPort")
        self.port.setRange(1024, 65535)
        self.port.setValue(controller.settings.port)
        self.port.setToolTip("The TCP port clients connect to. Change it if another program uses it.")
        form.addRow("Port", self.port)
        self.network = QCheckBox("Allow other computers on the network (requires an API key)")
        self.network.setObjectName("serverNetwork")
        self.network.setChecked(controller.settings.allow_network)
        form.addRow("", self.network)
        key_row = QHBoxLayout()
        self.key = QLineEdit()
        self.key.setObjectName("serverApiKey")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("None: any program on this computer may use the server")
        self.key.setText(controller.api_key or "")
        self.show_key = QPushButton("Show")
        self.show_key.setCheckable(True)
        self.show_key.toggled.connect(self._toggle_echo)
        self.generate = QPushButton("Generate")
        self.generate.setObjectName("serverGenerateKey")
        self.generate.setToolTip("Make a new random key (copy it into your client)")
        self.generate.clicked.connect(lambda: self._set_key(new_api_key()))
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.show_key)
        key_row.addWidget(self.generate)
        form.addRow("API key", key_row)
        layout.addLayout(form)
        self.key_note = QLabel()
        self.key_note.setObjectName("serverKeyNote")
        self.key_note.setWordWrap(True)
        self.key_note.setProperty("muted", True)
        layout.addWidget(self.key_note)

        status_row = QHBoxLayout()
        self.status = QLabel()
        self.status.setObjectName("serverStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy = QPushButton("Copy address")
        self.copy.setObjectName("serverCopyAddress")
        self.copy.clicked.connect(self._copy_address)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.copy)
        layout.addLayout(status_row)
        self.activity = QLabel()
        self.activity.setObjectName("serverActivity")
        layout.addWidget(self.activity)

        layout.addWidget(QLabel("Requests"))
        self.log_view = QPlainTextEdit()
        self.log_view.setObjectName("serverLog")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log_view.setPlaceholderText("Requests, their speed and any errors appear here.")
        self.log_view.setPlainText("\n".join(controller.history))
        layout.addWidget(self.log_view, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

        self.switch.setChecked(controller.state in ("running", "starting"))
        self.switch.toggled.connect(self._on_switch)
        self.network.toggled.connect(self._on_network)
        self.port.valueChanged.connect(self._remember)
        self.network.toggled.connect(self._remember)
        controller.keyLoaded.connect(self._show_loaded_key)
        controller.stateChanged.connect(self._show_state)
        controller.logged.connect(self._on_logged)
        controller.activityChanged.connect(self._show_activity)
        self._show_state(controller.state, controller.message)
        self._show_activity(*controller.activity)
        self._show_key_note()
        self._on_network(self.network.isChecked())

    # ----- actions ------------------------------------------------------------------------

    def _settings(self) -> ServerSettings:
        return replace(
            self.controller.settings, port=self.port.value(), allow_network=self.network.isChecked()
        )

    def _on_switch(self, on: bool) -> None:
        if not on:
            self.controller.stop()
            return
        key = self.key.text().strip()
        if self.network.isChecked() and not key:
            self.status.setText("Set an API key first: the server will be reachable from other computers.")
            self.status.setProperty("error", True)
            self.switch.blockSignals(True)
            self.switch.setChecked(False)
            self.switch.blockSignals(False)
            return
        if key != (self.controller.api_key or ""):
            self.controller.set_api_key(key or None, lambda _kept: self._show_key_note())
        self.controller.start(self._settings())

    def _remember(self) -> None:
        # Port and network choices are kept even when the server is not switched on now.
        if self.controller.state not in ("running", "starting"):
            self.controller.update_settings(self._settings())

    def _show_loaded_key(self) -> None:
        if not self.key.isModified():  # never overwrite what the user is typing
            self.key.setText(self.controller.api_key or "")
        self._show_key_note()

    def _on_network(self, on: bool) -> None:
        self.key.setPlaceholderText(
            "Required when other computers may connect"
            if on
            else "None: any program on this computer may use it"
        )

    def _set_key(self, key: str) -> None:
        self.key.setText(key)
        self.show_key.setChecked(True)

    def _toggle_echo(self, shown: bool) -> None:
        self.key.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_key.setText("Hide" if shown else "Show")

    def _copy_address(self) -> None:
        address = self.controller.address
        if address:
            QGuiApplication.clipboard().setText(address)

    # ----- display ------------------------------------------------------------------------

    def _show_key_note(self) -> None:
        if self.controller.key_is_kept:
            self.key_note.setText(
                "The key is kept in the system keyring. Clients send it as “Authorization: Bearer KEY” "
                "(the api_key of OpenAI's libraries)."
            )
        else:
            self.key_note.setText(
                "No secure keyring is available: the key is kept for this session only, never written to "
                "a file. Enter it again after restarting Fireside."
            )

    def _show_state(self, state: str, message: str) -> None:
        self.status.setText(message)
        self.status.setProperty("error", state == "error")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.copy.setEnabled(state == "running")
        running = state in ("running", "starting", "stopping")
        if self.switch.isChecked() != running and state not in ("starting", "stopping"):
            self.switch.blockSignals(True)
            self.switch.setChecked(running)
            self.switch.blockSignals(False)
        for widget in (self.port, self.network, self.key, self.generate):
            widget.setEnabled(not running)

    def _show_activity(self, generating: int, waiting: int) -> None:
        self.activity.setText(activity_text(generating, waiting))

    def _on_logged(self, entry: RequestLog) -> None:
        if entry.state == "done":
            self.log_view.appendPlainText(entry.line())


def activity_text(generating: int, waiting: int) -> str:
    """'API: 1 request generating, 2 waiting' (empty when idle)."""
    if not generating and not waiting:
        return ""
    parts = []
    if generating:
        parts.append(f"{generating} request{'s' if generating > 1 else ''} generating")
    if waiting:
        parts.append(f"{waiting} waiting")
    return "API: " + ", ".join(parts)
