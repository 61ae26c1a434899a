"""The local OpenAI-compatible API server: the loaded model for other programs, on this computer.

Starlette routes (app.core.api.routes) run on uvicorn in a thread of their own (never on the GUI
thread); this module binds the socket, starts and stops that thread. Who may call is checked in
app.core.api.guard, and the answers' shapes are in app.core.api.wire.

Served: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings. A
request's `model` picks what answers (app.core.api.catalog: installed models, aliases, remote engines'
models); models other than the window's load just in time (app.core.api.pool). No Qt here: the
window and `fireside serve` both use `LocalServer`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from app.core.api.catalog import Catalog
from app.core.api.config import ServerConfig, ServingSources, is_loopback
from app.core.api.pool import ModelPool
from app.core.api.request_log import LogListener, RequestLog, RequestState
from app.core.api.router import Router
from app.core.api.routes import Routes
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.models import library
from app.core.models.projector import projector_beside
from app.core.platform import logs, paths
from app.core.values.sampling import SamplingParams

# What the window and `fireside serve` use of the server, importable from here as before the split.
__all__ = ["LocalServer", "LogListener", "RequestLog", "RequestState", "ServerConfig", "ServerError"]

log = logging.getLogger(__name__)

#: How long stop() lets open connections finish before uvicorn drops them.
GRACEFUL_S = 1


def _auto_options(path: Path) -> LoadOptions:
    """Auto offload, with the vision projector beside the model if there is one."""
    return LoadOptions(projector=projector_beside(path))


class ServerError(Exception):
    """The server cannot start (port taken, unsafe address); the message is for the user."""


class LocalServer:
    """Serves the installed models (the InferenceThread's loaded one first) over an
    OpenAI-compatible HTTP API.

    `sources` says where the models named by requests are and how they load."""

    def __init__(
        self,
        worker: InferenceThread,
        config: ServerConfig | None = None,
        *,
        defaults: Callable[[], SamplingParams] = SamplingParams,
        sources: ServingSources | None = None,
    ) -> None:
        self.worker = worker
        self.config = config = config or ServerConfig()
        sources = sources or ServingSources()
        options = sources.options or _auto_options

        def folder() -> Path:  # read at each use: the user may choose another one meanwhile
            return sources.models_folder() or paths.models_dir()

        self.catalog = Catalog(
            lambda: library.scan(folder(), sources.extra_models()),
            aliases=lambda: self.config.aliases,
            endpoints=sources.endpoints,
            models_dir=folder,
        )
        self.pool = ModelPool(
            worker,
            options=options,
            budget=lambda: self.config.memory_budget,
            idle_s=lambda: float(self.config.idle_unload_s),
            prepare=sources.prepare,
        )
        self._routes = Routes(Router(self.catalog, self.pool), config, defaults)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = config.port
        self.app = Starlette(routes=self._routes.routes())

    @property
    def active(self) -> dict[int, RequestLog]:
        """Requests waiting or generating now, by request id (read by the window's queue notice)."""
        return self._routes.active

    @property
    def address(self) -> str:
        """The base URL clients use, e.g. http://127.0.0.1:8765/v1."""
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/v1"

    @property
    def running(self) -> bool:
        """True while the server thread serves."""
        return self._thread is not None and self._thread.is_alive()

    def add_listener(self, listener: LogListener) -> None:
        """Call `listener` (on the server's thread) as each request is queued, starts and ends."""
        self._routes.listeners.append(listener)

    def start(self, timeout: float = 10.0) -> None:
        """Bind and serve in a background thread; raises ServerError with a message for the user."""
        config = self.config
        if not is_loopback(config.host):
            if not config.allow_network:
                raise ServerError(
                    f"{config.host} accepts connections from other computers. Choose to allow network "
                    "access explicitly, and set an API key."
                )
            if not config.api_key:
                raise ServerError(
                    f"Serving on {config.host} reaches other computers: set an API key first, so only "
                    "programs that know it can use the model."
                )
        logs.remember_secret(config.api_key)  # a request's wrong or right key never reaches the log
        if not 0 <= config.port <= 65535:
            raise ServerError(f"Port {config.port} is not a valid port (1–65535).")
        self._socket = self._bind(config.host, config.port)
        self._routes.stopping = False
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                # Replies are cancelled before the loop is asked to exit, so open streams end within
                # a token or two; this only bounds a connection that will not close.
                timeout_graceful_shutdown=GRACEFUL_S,
            )
        )
        server, sock = self._server, self._socket
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="fireside-api-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError("The API server did not start; see the log for details.")
            time.sleep(0.01)
        log.info("API server listening on %s", self.address)

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        try:
            family, kind, proto, _name, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except socket.gaierror as exc:
            raise ServerError(f"“{host}” is not an address of this computer ({exc.strerror}).") from exc
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(where)
        except OSError as exc:
            sock.close()
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise ServerError(
                    f"Port {port} is already in use by another program. Choose another port."
                ) from exc
            raise ServerError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc
        sock.listen(64)
        sock.set_inheritable(True)
        return sock

    def prepare_stop(self) -> None:
        """From now on a reply that is cancelled ends as cut by the shutdown, not as finished."""
        self._routes.stopping = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: cancel this server's replies, close connections, join the thread."""
        self.prepare_stop()
        for request_id in list(self._routes.active):
            for worker in self.pool.workers():
                worker.cancel(request_id)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("API server thread did not stop within %.0f s", timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.pool.close()  # the models loaded for requests go; the window's stays
        self.catalog.close()
