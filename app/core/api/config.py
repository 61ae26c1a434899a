"""Where the local API server listens and what the window remembers of it: small, so the window
can read its settings at launch without importing the HTTP stack (that waits for the switch)."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

DEFAULT_HOST = "127.0.0.1"
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


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The window's server choices, kept in the settings file (the API key lives in the keyring)."""

    enabled: bool = False
    port: int = DEFAULT_PORT
    allow_network: bool = False
    fetch_images: bool = False

    def to_dict(self) -> dict[str, Any]:
        """For the settings file."""
        return {
            "enabled": self.enabled,
            "port": self.port,
            "allow_network": self.allow_network,
            "fetch_images": self.fetch_images,
        }

    @classmethod
    def from_dict(cls, data: object) -> ServerSettings:
        """From the settings file; anything malformed falls back to the default."""
        if not isinstance(data, dict):
            return cls()
        port = data.get("port")
        return cls(
            enabled=data.get("enabled") is True,
            port=port if isinstance(port, int) and 1024 <= port <= 65535 else DEFAULT_PORT,
            allow_network=data.get("allow_network") is True,
            fetch_images=data.get("fetch_images") is True,
        )
