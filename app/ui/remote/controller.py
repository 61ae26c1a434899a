"""The window's remote engines: the endpoints from settings, a client for each (with its API key from
the keyring), their model lists, and which remote model chat goes to.

Everything that can wait on the network or the keyring (listing models, testing a connection,
detecting local servers, storing a key) runs on this controller's own small pool, so a server that
does not answer never holds up the window's file work, let alone the GUI thread. Results come back to
the GUI thread; a result overtaken by a newer request for the same endpoint is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from app.core.platform import secrets
from app.core.remote.client import Endpoint, RemoteClient, RemoteTarget, detect_local_engines
from app.core.remote.endpoints import (
    EndpointConfig,
    EndpointModels,
    forget_key,
    list_models,
    model_key,
    open_endpoint,
    secret_name,
    split_model_key,
    store_key,
)
from app.core.settings import Settings
from app.ui.common.tasks import BackgroundTasks

log = logging.getLogger(__name__)

#: What a failed remote reply's code (ReplyFailed.code) adds to the server's own words in the banner.
ADVICE = {
    "unreachable": "Check that the server at {url} is running and that the address is right "
    "(Remote engines…).",
    "auth": "Enter the right API key for this endpoint in Remote engines….",
    "not_found": "The server no longer offers this model: choose another one in the model picker.",
    "rate_limited": "The server asks Fireside to wait before sending again.",
    "server": "The server had a problem of its own; try again, or look at its log.",
    "bad_response": "The server refused the request.",
}


@dataclass(frozen=True, slots=True)
class RemoteChoice:
    """The remote model chat goes to: its key, endpoint and model id."""

    key: str
    endpoint: EndpointConfig
    model: str

    @property
    def label(self) -> str:
        """'model · Endpoint (remote)', for the status bar."""
        return f"{self.model} · {self.endpoint.name} (remote)"


def failure_message(code: str, message: str, partial: bool, url: str = "") -> str:
    """The banner's words for a remote reply to the endpoint at `url` that failed with `code` (a
    RemoteError kind)."""
    if code == "cut":
        kept = " What arrived is kept, marked incomplete." if partial else ""
        return f"Incomplete reply: {message}{kept}"
    advice = ADVICE.get(code)
    return f"{message} {advice.format(url=url or 'that address')}" if advice else message


class RemoteEngines(QObject):
    """Endpoints, their clients and model lists, and the remote choice, for one window."""

    #: The model lists changed (an endpoint was listed, added or removed).
    listsChanged = Signal()
    #: The endpoints themselves changed (added, edited, removed).
    endpointsChanged = Signal()

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        #: Network and keyring work only; four workers so one slow endpoint does not queue the others.
        self.tasks = BackgroundTasks(self, workers=4)
        self.endpoints: list[EndpointConfig] = []
        for data in settings.remote_endpoints:
            config = EndpointConfig.from_dict(data)
            if config is not None and all(e.base_url != config.base_url for e in self.endpoints):
                self.endpoints.append(config)
        self.clients: dict[str, RemoteClient] = {}
        self.lists: dict[str, EndpointModels] = {}
        self.choice: RemoteChoice | None = None
        #: The client a reply is streaming through now: it must not be closed under it.
        self.in_use: RemoteClient | None = None
        #: The local servers the dialog looks for (None: Ollama, LM Studio, llama.cpp server).
        self.detect_candidates: dict[str, str] | None = None
        self._generation: dict[str, int] = {}
        self._retired: list[RemoteClient] = []
        self._closed = False

    # ----- endpoints and their model lists --------------------------------------------------

    def start(self) -> None:
        """List every endpoint's models (off the GUI thread)."""
        for endpoint in self.endpoints:
            self.refresh(endpoint)

    def refresh(self, endpoint: EndpointConfig) -> None:
        """(Re)connect to one endpoint: read its key, make a client, list its models."""
        url = endpoint.base_url
        generation = self._generation.get(url, 0) + 1
        self._generation[url] = generation
        self.lists[url] = EndpointModels(endpoint, (), None, "pending")

        def connect() -> tuple[RemoteClient, EndpointModels]:
            client = open_endpoint(endpoint)
            return client, list_models(client, endpoint)

        self.tasks.run(connect, lambda result: self._on_listed(endpoint, generation, *result), self._on_error)
        self.listsChanged.emit()

    def _on_listed(
        self, endpoint: EndpointConfig, generation: int, client: RemoteClient, listed: EndpointModels
    ) -> None:
        url = endpoint.base_url
        if self._closed or self._generation.get(url) != generation or endpoint not in self.endpoints:
            self._retire(client)  # overtaken by a newer listing, or the endpoint is gone
            return
        old = self.clients.get(url)
        self.clients[url] = client
        if old is not None:
            self._retire(old)
        self.lists[url] = listed
        log.info(
            "remote engine %s: %s",
            url,
            f"{len(listed.models)} models" if listed.error is None else f"{listed.kind}",
        )
        self.listsChanged.emit()

    def _on_error(self, error: BaseException) -> None:
        log.warning("remote engine task failed: %s: %s", type(error).__name__, error)

    def model_lists(self) -> list[EndpointModels]:
        """Each endpoint's models (or its problem), in the order the user added them."""
        return [self.lists.get(e.base_url, EndpointModels(e, (), None, "pending")) for e in self.endpoints]

    def find(self, base_url: str) -> EndpointConfig | None:
        """The endpoint at `base_url`."""
        return next((e for e in self.endpoints if e.base_url == base_url), None)

    # ----- the remote choice ----------------------------------------------------------------

    def resolve(self, key: str) -> RemoteChoice | None:
        """The endpoint and model a key names, if that endpoint is still configured."""
        found = split_model_key(key, self.endpoints)
        return RemoteChoice(key, found[0], found[1]) if found else None

    def is_listed(self, key: str) -> bool:
        """True when the key's model is in its endpoint's latest list."""
        choice = self.resolve(key)
        listed = self.lists.get(choice.endpoint.base_url) if choice else None
        return bool(choice and listed and choice.model in listed.models)

    def target(self) -> RemoteTarget | None:
        """What the inference thread needs for the chosen model (None until its client exists)."""
        if self.choice is None:
            return None
        client = self.clients.get(self.choice.endpoint.base_url)
        return RemoteTarget(client, self.choice.model) if client is not None else None

    # ----- editing (the dialog) ----------------------------------------------------------------

    def save_endpoint(
        self,
        config: EndpointConfig,
        api_key: str | None,
        previous_url: str | None,
        on_done: Callable[[bool], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Add or change an endpoint; its key (None: unchanged, "": removed) goes to the keyring off the
        GUI thread. `on_done(kept)`: kept is False when the key lives for this session only."""

        def saved(kept: bool) -> None:
            if self._closed:
                return
            index = next((i for i, e in enumerate(self.endpoints) if e.base_url == previous_url), None)
            if index is None:
                self.endpoints.append(config)
            else:
                self.endpoints[index] = config
            if previous_url and previous_url != config.base_url:
                self._drop(previous_url)
            if self.choice is not None and self.choice.endpoint.base_url in (previous_url, config.base_url):
                # Same server, maybe a new name or URL: keep chatting with the same model there.
                self.choice = RemoteChoice(
                    model_key(config.base_url, self.choice.model), config, self.choice.model
                )
            self._persist()
            self.refresh(config)
            self.endpointsChanged.emit()
            on_done(kept)

        self.tasks.run(lambda: store_key(config, api_key, previous_url), saved, on_error)

    def remove_endpoint(self, base_url: str, on_done: Callable[[], None] | None = None) -> None:
        """Forget an endpoint and its key."""
        self.endpoints = [e for e in self.endpoints if e.base_url != base_url]
        self._drop(base_url)
        if self.choice is not None and self.choice.endpoint.base_url == base_url:
            self.choice = None
        self._persist()
        self.listsChanged.emit()
        self.endpointsChanged.emit()
        self.tasks.run(
            lambda: forget_key(base_url), lambda _r: on_done() if on_done else None, self._on_error
        )

    def _drop(self, base_url: str) -> None:
        self._generation[base_url] = self._generation.get(base_url, 0) + 1  # a listing in flight is moot
        self.lists.pop(base_url, None)
        client = self.clients.pop(base_url, None)
        if client is not None:
            self._retire(client)

    def _persist(self) -> None:
        self.settings.remote_endpoints = [e.to_dict() for e in self.endpoints]
        self.settings.last_remote_model = self.choice.key if self.choice else None
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("settings could not be saved: %s", exc)

    def remember_choice(self, choice: RemoteChoice | None) -> None:
        """Make `choice` the model chat goes to (None: the local model), remembered across launches."""
        self.choice = choice
        self._persist()

    def test(
        self,
        config: EndpointConfig,
        api_key: str | None,
        saved_url: str | None,
        on_done: Callable[[EndpointModels], None],
    ) -> None:
        """List the models of an endpoint as typed, with the typed key, else the key saved for
        `saved_url` (the endpoint being edited, whose URL may have just been changed)."""

        def probe() -> EndpointModels:
            key = api_key or (secrets.get_secret(secret_name(saved_url)) if saved_url else None)
            client = RemoteClient(Endpoint(config.base_url, key or None, config.name))
            try:
                return list_models(client, config)
            finally:
                client.close()

        self.tasks.run(probe, lambda r: None if self._closed else on_done(r), self._on_error)

    def key_state(self, base_url: str | None, on_done: Callable[[bool, bool], None]) -> None:
        """(a key is saved for `base_url`, the keyring is secure), read off the GUI thread."""

        def read() -> tuple[bool, bool]:
            has = bool(base_url) and secrets.get_secret(secret_name(base_url or "")) is not None
            return has, secrets.has_secure_store()

        self.tasks.run(read, lambda r: None if self._closed else on_done(*r), self._on_error)

    def detect(self, on_done: Callable[[list[tuple[Endpoint, list[str]]]], None]) -> None:
        """Look for Ollama, LM Studio and a llama.cpp server running on this computer."""
        candidates = self.detect_candidates
        self.tasks.run(
            lambda: detect_local_engines(candidates),
            lambda r: None if self._closed else on_done(r),
            self._on_error,
        )

    # ----- clients' lifetime ---------------------------------------------------------------------

    def _retire(self, client: RemoteClient) -> None:
        if client is self.in_use:
            self._retired.append(client)  # closed once its reply ends (collect)
        else:
            client.close()

    def collect(self) -> None:
        """Close clients replaced while a reply streamed through them (the reply has ended)."""
        keep = [c for c in self._retired if c is self.in_use]
        for client in self._retired:
            if client is not self.in_use:
                client.close()
        self._retired = keep

    def shutdown(self) -> None:
        """Close every client; running network tasks finish on their own (their results are dropped)."""
        self._closed = True
        self.tasks.shutdown(wait=False)
        for client in [*self.clients.values(), *self._retired]:
            client.close()
        self.clients.clear()
        self._retired.clear()
