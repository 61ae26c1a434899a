"""Where the local API server listens and what the window remembers of it: small, so the window
can read its settings at launch without importing the HTTP stack (that waits for the switch)."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.api.aliases import Alias, read_aliases

if TYPE_CHECKING:  # types only: this module is read at launch, before the inference stack
    from app.core.inference.options import LoadOptions
    from app.core.inference.thread import InferenceThread
    from app.core.remote.endpoints import EndpointConfig

DEFAULT_HOST = "127.0.0.1"
#: Seconds a model loaded for a request stays loaded with no request using it (Ollama's keep_alive
#: default is five minutes; LM Studio's idle TTL an hour). 0: until the server stops.
DEFAULT_IDLE_UNLOAD_S = 300
#: The longest idle time the settings accept (a day).
MAX_IDLE_UNLOAD_S = 86_400
#: Not taken by the usual neighbours (Ollama 11434, LM Studio 1234, llama.cpp 8080, Jan 1337, GPT4All 4891).
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this computer."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_api_key() -> str:
    """A fresh random key for the user to copy into their client."""
    return "fs-" + secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where and how to serve. A non-loopback host needs `allow_network` and an API key."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    allow_network: bool = False
    #: Images given by web address in chat requests are fetched (off: only data: URLs are read).
    fetch_images: bool = False
    #: Bytes all loaded models together may take (the window's model included; 0: Auto, see
    #: app.core.api.pool.auto_budget).
    memory_budget: int = 0
    #: Seconds before a model loaded for requests is unloaded when unused (0: never).
    idle_unload_s: int = DEFAULT_IDLE_UNLOAD_S
    #: Names the user gave to models with adapters, a system prompt and sampling defaults.
    aliases: tuple[Alias, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The window's server choices, kept in the settings file (the API key lives in the keyring)."""

    enabled: bool = False
    port: int = DEFAULT_PORT
    allow_network: bool = False
    fetch_images: bool = False
    memory_budget: int = 0
    idle_unload_s: int = DEFAULT_IDLE_UNLOAD_S
    aliases: tuple[Alias, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """For the settings file."""
        return {
            "enabled": self.enabled,
            "port": self.port,
            "allow_network": self.allow_network,
            "fetch_images": self.fetch_images,
            "memory_budget": self.memory_budget,
            "idle_unload_s": self.idle_unload_s,
            "aliases": [alias.to_dict() for alias in self.aliases],
        }

    @classmethod
    def from_dict(cls, data: object) -> ServerSettings:
        """From the settings file; anything malformed falls back to the default."""
        if not isinstance(data, dict):
            return cls()
        port = data.get("port")
        budget = data.get("memory_budget")
        idle = data.get("idle_unload_s")
        return cls(
            enabled=data.get("enabled") is True,
            port=port if isinstance(port, int) and 1024 <= port <= 65535 else DEFAULT_PORT,
            allow_network=data.get("allow_network") is True,
            fetch_images=data.get("fetch_images") is True,
            memory_budget=budget
            if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0
            else 0,
            idle_unload_s=idle
            if isinstance(idle, int) and not isinstance(idle, bool) and 0 <= idle <= MAX_IDLE_UNLOAD_S
            else DEFAULT_IDLE_UNLOAD_S,
            aliases=read_aliases(data.get("aliases")),
        )


def _no_preparation(_worker: InferenceThread) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ServingSources:
    """Where the server finds the models it may load besides the one loaded, each read when a
    request needs it (so a setting changed in the window applies to the next request)."""

    #: How a model loads (the window's settings for it); None: Auto, with its projector if beside it.
    options: Callable[[Path], LoadOptions] | None = None
    #: Called with each new model's worker before its load (speculation settings).
    prepare: Callable[[InferenceThread], None] = _no_preparation
    #: The remote engines served as a gateway.
    endpoints: Callable[[], list[EndpointConfig]] = list
    #: Model files outside the models folder the user opened.
    extra_models: Callable[[], list[str]] = list
    #: The models folder (None: the data folder's).
    models_folder: Callable[[], Path | None] = field(default=lambda: None)
