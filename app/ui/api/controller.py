"""The local API server's controller: starts and stops it, keeps its API key, relays its log and queue.

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
from enum import StrEnum
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.core.api.config import ServerConfig, ServerSettings, ServingSources
from app.core.inference.thread import InferenceThread
from app.core.models.library import ModelEntry
from app.core.platform import secrets
from app.core.values.sampling import SamplingParams
from app.ui.common.tasks import BackgroundTasks

if TYPE_CHECKING:  # the HTTP stack is imported when the server first starts, not at launch
    from app.core.api.pool import PoolEntry
    from app.core.api.request_log import RequestLog
    from app.core.api.server import LocalServer

#: Gives the sampling settings for fields a request leaves out (called on the server's thread).
SamplingParamsSource = Callable[[], SamplingParams]
#: The keyring entry holding the server's API key.
API_KEY_SECRET = "api-server-key"
#: Lines of the request log kept (older ones scroll away), here and in the dialog's log view.
LOG_LINES = 500

log = logging.getLogger(__name__)


class ServerState(StrEnum):
    """Where the server is in its life (each member equals its string, as the signals carry it)."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    ERROR = "error"


class ServerController(QObject):
    """Owns the LocalServer: starts and stops it off the GUI thread and relays its log."""

    #: A ServerState, and a sentence for the user.
    stateChanged = Signal(str, str)
    #: A request was queued, started or finished (a RequestLog, delivered on the GUI thread).
    logged = Signal(object)
    #: API requests generating now and waiting in the queue.
    activityChanged = Signal(int, int)
    #: The API key read from the keyring at launch (for a dialog opened before it arrived).
    keyLoaded = Signal()
    #: Port or network access changed while the server is off (to be saved).
    settingsChanged = Signal()
    #: The user chose how many replies to generate at once (0: Auto); the model is reloaded with it.
    parallelRequested = Signal(int)
    #: The choice, or how many the loaded model generates at once, changed.
    parallelChanged = Signal()
    #: A model was loaded or unloaded for requests (from the server's threads, queued here).
    poolChanged = Signal()

    def __init__(
        self,
        worker: InferenceThread,
        tasks: BackgroundTasks,
        settings: ServerSettings,
        defaults: SamplingParamsSource,
        parent: QObject | None = None,
        *,
        sources: ServingSources | None = None,
        installed: Callable[[], list[ModelEntry]] = list,
    ) -> None:
        super().__init__(parent)
        self.worker, self.tasks, self.settings = worker, tasks, settings
        self._defaults = defaults
        #: Where requests' models are and how they load; the installed models (for aliases).
        self.sources = sources or ServingSources()
        self.installed = installed
        self.server: LocalServer | None = None
        # Starts and stops run in order on one thread; every server made is listed until it stopped,
        # so shutdown() can stop one whose start or stop was still on its way.
        self._lifecycle = BackgroundTasks(self, workers=1)
        self._made: set[LocalServer] = set()
        self._made_lock = threading.Lock()
        self._key_edits = 0  # bumped by set_api_key: a keyring read that lands later must not undo it
        self.state, self.message = ServerState.STOPPED, "The server is off."
        self.api_key: str | None = None
        self.key_is_kept = True
        #: The log's last lines, so a dialog opened later shows what came before it.
        self.history: deque[str] = deque(maxlen=LOG_LINES)
        #: API requests generating and waiting now (as activityChanged last said).
        self.activity = (0, 0)
        self._generation = 0  # bumped by start and stop: a start that finishes late knows it is stale
        #: "Parallel replies" as chosen (0: Auto), and as the loaded model runs (0: no model).
        self.parallel_choice = 0
        self.parallel_now = 0
        self.logged.connect(self._on_logged)

    @property
    def address(self) -> str | None:
        """The running server's base URL."""
        return self.server.address if self.server is not None and self.state is ServerState.RUNNING else None

    def show_parallel(self, choice: int, now: int) -> None:
        """What "Parallel replies" is set to (0: Auto), and how many the loaded model runs at once."""
        if (choice, now) != (self.parallel_choice, self.parallel_now):
            self.parallel_choice, self.parallel_now = choice, now
            self.parallelChanged.emit()

    def choose_parallel(self, choice: int) -> None:
        """The user set "Parallel replies" (0: Auto)."""
        if choice != self.parallel_choice:
            self.parallel_choice = choice
            self.parallelRequested.emit(choice)
            self.parallelChanged.emit()

    def _set_state(self, state: ServerState, message: str) -> None:
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

    def pool_entries(self) -> list[PoolEntry]:
        """The models loaded now for requests (the window's first), or none while the server is off."""
        server = self.server
        return server.pool.entries() if server is not None and self.state is ServerState.RUNNING else []

    def update_models(self, settings: ServerSettings) -> None:
        """New memory budget, idle time or aliases: kept, and used by a running server from the next
        request on."""
        self.settings = replace(
            self.settings,
            memory_budget=settings.memory_budget,
            idle_unload_s=settings.idle_unload_s,
            aliases=settings.aliases,
        )
        self.settingsChanged.emit()
        server = self.server
        if server is not None:
            server.config = replace(
                server.config,
                memory_budget=settings.memory_budget,
                idle_unload_s=settings.idle_unload_s,
                aliases=settings.aliases,
            )
            server.pool.poke()

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
        config = ServerConfig(
            host,
            self.settings.port,
            self.api_key,
            self.settings.allow_network,
            self.settings.fetch_images,
            self.settings.memory_budget,
            self.settings.idle_unload_s,
            self.settings.aliases,
        )
        self._set_state(ServerState.STARTING, "Starting…")

        def work() -> LocalServer | None:
            # Imported here, off the GUI thread: uvicorn and Starlette cost ~0.3 s that a launch
            # without the server never pays.
            from app.core.api.server import LocalServer

            if old is not None:
                self._stop_server(old)
            if generation != self._generation:  # stopped again before this start had its turn
                return None
            server = LocalServer(self.worker, config, defaults=self._defaults, sources=self.sources)
            server.pool.add_listener(self.poolChanged.emit)
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
            self._set_state(ServerState.RUNNING, f"Serving at {running.address} to {who} ({key}).")

        def failed(error: BaseException) -> None:
            if generation != self._generation:
                return
            from app.core.api.server import ServerError

            self.settings = replace(self.settings, enabled=False)
            text = str(error) if isinstance(error, ServerError) else f"The server failed to start: {error}"
            self._set_state(ServerState.ERROR, text)

        self._lifecycle.run(work, started, failed)

    def stop(self) -> None:
        """Stop serving (requests in progress are cancelled)."""
        self.settings = replace(self.settings, enabled=False)
        self._generation += 1  # a start still in progress stops its server once it is up
        generation = self._generation
        server, self.server = self.server, None
        self._activity(0, 0)
        if server is None:
            self._set_state(ServerState.STOPPED, "The server is off.")
            return
        self._set_state(ServerState.STOPPING, "Stopping…")

        def stopped(_result: object) -> None:
            if generation == self._generation:  # not started again meanwhile
                self._set_state(ServerState.STOPPED, "The server is off.")

        self._lifecycle.run(lambda: self._stop_server(server), stopped)

    def after_pending(self, callback: Callable[[], None]) -> None:
        """Call `callback` on the GUI thread once every start and stop asked for so far has finished and
        said so (they run one after another on the lifecycle thread)."""
        self._lifecycle.run(lambda: None, lambda _r: callback())

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
        # One entry per request, though a request for n choices is n replies (n ids).
        entries = list({id(e): e for e in server.active.values()}.values())
        generating = sum(1 for e in entries if e.state == "generating")
        self._activity(generating, len(entries) - generating)

    def _activity(self, generating: int, waiting: int) -> None:
        self.activity = (generating, waiting)
        self.activityChanged.emit(generating, waiting)


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
