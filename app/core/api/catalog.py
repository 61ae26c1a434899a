"""What each model name the API accepts stands for: an installed model (by its name, file name or
path), an alias the user defined, or a model of a remote engine the user added (Fireside as one
gateway in front of its own models and those engines).

Resolving a name reads the models folder (through the library's cache) and, for remote engines, their
model lists (cached for a while, asked with a short time limit so a switched-off engine never holds up
a request for long): blocking, so the routes call it off the event loop. No Qt here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from app.core.api.aliases import Alias
from app.core.models.library import ModelEntry
from app.core.remote.client import RemoteClient, RemoteError
from app.core.remote.endpoints import EndpointConfig, model_key, open_endpoint

log = logging.getLogger(__name__)

#: Seconds a listing of the installed models is reused (a request per second would otherwise stat
#: every file each time).
INSTALLED_TTL_S = 3.0
#: Seconds a remote engine's model list (or its failure) is reused.
REMOTE_TTL_S = 30.0
#: Seconds allowed for a remote engine to list its models while a client waits.
REMOTE_LIST_TIMEOUT_S = 3.0


class Kind(StrEnum):
    """What a name stands for."""

    INSTALLED = "installed"
    ALIAS = "alias"
    REMOTE = "remote"
    #: The embedding model kept beside the window's chat model (POST /v1/embeddings only).
    EMBEDDING = "embedding"


@dataclass(frozen=True, slots=True)
class Target:
    """What answers a request naming `name`."""

    name: str
    kind: Kind
    #: The local model file (installed models and aliases).
    path: Path | None = None
    alias: Alias | None = None
    endpoint: EndpointConfig | None = None
    #: The model's id on the remote engine.
    remote_model: str | None = None


class UnknownModel(Exception):
    """No model answers to a name (or an alias points at a model that is gone); the message says so."""


def _key(path: Path) -> str:
    return str(path).casefold()


class Catalog:
    """Every name the API answers to, and what each stands for."""

    def __init__(
        self,
        installed: Callable[[], Sequence[ModelEntry]],
        *,
        aliases: Callable[[], Sequence[Alias]] = tuple,
        endpoints: Callable[[], Sequence[EndpointConfig]] = tuple,
        models_dir: Callable[[], Path | None] = lambda: None,
        open_client: Callable[[EndpointConfig], RemoteClient] = open_endpoint,
    ) -> None:
        self._installed = installed
        self._aliases = aliases
        self._endpoints = endpoints
        self._models_dir = models_dir
        self._open_client = open_client
        self._lock = threading.Lock()
        self._entries: tuple[float, list[ModelEntry]] | None = None
        #: Per endpoint base URL: when listed, its models (None: it could not list them).
        self._remote: dict[str, tuple[float, tuple[str, ...] | None]] = {}
        self._clients: dict[str, RemoteClient] = {}

    # ----- what is there -----------------------------------------------------------------

    def refresh(self) -> None:
        """Forget the cached listings (a model was installed or deleted)."""
        with self._lock:
            self._entries = None
            self._remote.clear()

    def _models(self) -> list[ModelEntry]:
        with self._lock:
            cached = self._entries
        if cached is not None and time.monotonic() - cached[0] < INSTALLED_TTL_S:
            return cached[1]
        entries = [e for e in self._installed() if e.info is not None]
        with self._lock:
            self._entries = (time.monotonic(), entries)
        return entries

    def client(self, endpoint: EndpointConfig) -> RemoteClient:
        """The (kept) client of a remote engine (opening it may read the keyring: blocking)."""
        with self._lock:
            client = self._clients.get(endpoint.base_url)
        if client is None:
            client = self._open_client(endpoint)
            with self._lock:
                client = self._clients.setdefault(endpoint.base_url, client)
        return client

    def close(self) -> None:
        """Close the remote engines' connections (the server stops)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            self._remote.clear()
        for client in clients:
            client.close()

    def _remote_models(self, endpoint: EndpointConfig) -> tuple[str, ...]:
        with self._lock:
            cached = self._remote.get(endpoint.base_url)
        if cached is None or time.monotonic() - cached[0] >= REMOTE_TTL_S:
            try:
                models: tuple[str, ...] | None = tuple(self.client(endpoint).models(REMOTE_LIST_TIMEOUT_S))
            except RemoteError as exc:
                log.info("%s did not list its models: %s", endpoint.name, exc.message)
                models = None
            except Exception:  # a broken engine must not break the local names
                log.exception("listing the models of %s failed", endpoint.name)
                models = None
            cached = (time.monotonic(), models)
            with self._lock:
                self._remote[endpoint.base_url] = cached
        return cached[1] or ()

    def _installed_name(self, path: Path, stems: dict[str, int]) -> str:
        """A model's name: its file name without .gguf, or where two share it, its path."""
        if stems.get(path.stem.casefold(), 0) < 2:
            return path.stem
        folder = self._models_dir()
        if folder is not None:
            try:
                return path.relative_to(folder).with_suffix("").as_posix()
            except ValueError:
                pass
        return str(path.with_suffix(""))

    def targets(self, also: Sequence[Path] = (), remote: bool = True) -> list[Target]:
        """Every name, once: aliases, installed models (and the models in `also`: those loaded from
        elsewhere), then the remote engines' models (unless `remote` is False). Blocking."""
        out: list[Target] = [Target(a.name, Kind.ALIAS, a.model, alias=a) for a in self._aliases()]
        taken = {t.name.casefold() for t in out}
        paths: list[Path] = []
        seen: set[str] = set()
        for path in [*(p for p in also), *(e.path for e in self._models())]:
            if _key(path) not in seen:
                seen.add(_key(path))
                paths.append(path)
        stems: dict[str, int] = {}
        for path in paths:
            stems[path.stem.casefold()] = stems.get(path.stem.casefold(), 0) + 1
        for path in sorted(paths, key=lambda p: p.name.casefold()):
            name = self._installed_name(path, stems)
            if name.casefold() not in taken:  # an alias of that name wins
                taken.add(name.casefold())
                out.append(Target(name, Kind.INSTALLED, path))
        offered: list[tuple[EndpointConfig, str]] = []
        for endpoint in self._endpoints() if remote else ():
            offered.extend((endpoint, model) for model in self._remote_models(endpoint))
        counts: dict[str, int] = {}
        for _endpoint, model in offered:
            counts[model.casefold()] = counts.get(model.casefold(), 0) + 1
        for endpoint, model in offered:
            unique = counts[model.casefold()] == 1 and model.casefold() not in taken
            name = model if unique else f"{endpoint.name}/{model}"
            if name.casefold() not in taken:
                taken.add(name.casefold())
                out.append(Target(name, Kind.REMOTE, endpoint=endpoint, remote_model=model))
        return out

    # ----- one name ----------------------------------------------------------------------

    def resolve(self, name: str, also: Sequence[Path] = ()) -> Target:
        """What answers `name` (see `targets` for `also`). Raises UnknownModel. Blocking: the remote
        engines are asked only when no local name matches."""
        wanted = name.strip()
        found = self._find(self.targets(also, remote=False), wanted)
        targets: list[Target] = []
        if found is None:
            targets = self.targets(also)
            found = self._find(targets, wanted)
        if found is None:
            known = ", ".join(t.name for t in targets[:8]) + (" …" if len(targets) > 8 else "")
            raise UnknownModel(
                f"There is no model named “{name}” here. GET /v1/models lists the names this server "
                f"answers to{': ' + known if known else ''}."
            )
        if found.kind is not Kind.REMOTE and found.path is not None and not found.path.is_file():
            if found.alias is not None:
                raise UnknownModel(
                    f"The alias “{found.name}” names {found.path.name}, which is no longer installed "
                    f"({found.path}). Choose another model for it in the server panel."
                )
            raise UnknownModel(f"{found.path.name} is no longer installed ({found.path}).")
        return found

    def _find(self, targets: list[Target], wanted: str) -> Target | None:
        """The target `wanted` names: its name exactly, then in any case, then another of its names
        (file name, path, a remote model's id or key). Raises UnknownModel for an id two remote
        engines offer, naming the choices."""
        folded = wanted.casefold()
        for matches in (
            [t for t in targets if t.name == wanted],
            [t for t in targets if t.name.casefold() == folded],
            [t for t in targets if self._other_names(t, folded)],
        ):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                if all(t.kind is Kind.INSTALLED for t in matches):
                    return matches[0]  # one file by two names (its path, say): the same model
                raise UnknownModel(
                    f"“{wanted}” names several models: {', '.join(t.name for t in matches)}. Use one of "
                    "those names."
                )
        return None

    def _other_names(self, target: Target, folded: str) -> bool:
        """True when `folded` names `target` another way: its file name, its path (with or without
        .gguf, absolute or inside the models folder), or a remote model's id or key."""
        if target.kind is Kind.REMOTE:
            assert target.endpoint is not None and target.remote_model is not None
            return folded in {
                target.remote_model.casefold(),
                f"{target.endpoint.name}/{target.remote_model}".casefold(),
                model_key(target.endpoint.base_url, target.remote_model).casefold(),
            }
        if target.kind is not Kind.INSTALLED or target.path is None:
            return False
        path = target.path
        names = {path.name, str(path), str(path.with_suffix(""))}
        folder = self._models_dir()
        if folder is not None:
            try:
                inside = path.relative_to(folder)
            except ValueError:
                pass
            else:
                names.update({inside.as_posix(), inside.with_suffix("").as_posix()})
        return folded in {n.casefold() for n in names}
