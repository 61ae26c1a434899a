"""MCP servers as the user added them: how to start or reach each one (kept in settings), and the
secret values of its environment variables (kept in the keyring, never in settings.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from app.core.platform import secrets

#: Seconds a tool call may take before it is given up (a setting per server).
DEFAULT_TIMEOUT_S = 60.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class McpConfigError(ValueError):
    """A server's settings cannot be used; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """One MCP server: a command run with its arguments (stdio), or a URL (streamable HTTP)."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    url: str = ""
    #: Environment variables given to a command, with their values.
    env: tuple[tuple[str, str], ...] = ()
    #: Environment variables whose values are secrets: kept in the keyring (see secret_name).
    secret_env: tuple[str, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    enabled: bool = True
    #: Tools the user allows to run without asking each time ("Always allow this tool").
    always_allowed: frozenset[str] = field(default_factory=frozenset)

    @property
    def kind(self) -> str:
        """ "http" for a URL, "stdio" for a command."""
        return "http" if self.url else "stdio"

    def secret_name(self, variable: str) -> str:
        """The keyring entry holding `variable`'s value."""
        return f"mcp:{self.name}:{variable}"

    def validated(self) -> McpServerConfig:
        """Itself, checked. Raises McpConfigError with words for the user."""
        if not _SERVER_NAME.match(self.name):
            raise McpConfigError(
                "A server's name is 1 to 32 letters, digits, “_” or “-” (it prefixes its tools' names)."
            )
        if bool(self.command.strip()) == bool(self.url.strip()):
            raise McpConfigError("Give either a command to run (stdio) or a URL (streamable HTTP), not both.")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise McpConfigError(f"“{self.url}” is not an http:// or https:// URL.")
        for name in [n for n, _ in self.env] + list(self.secret_env):
            if not _ENV_NAME.match(name):
                raise McpConfigError(f"“{name}” is not an environment variable's name.")
        if not 1 <= self.timeout_s <= 3600:
            raise McpConfigError("The time limit of a tool call is 1 second to 1 hour.")
        return self

    def environment(self) -> dict[str, str]:
        """The variables a command runs with, secrets read from the keyring. Raises McpConfigError
        naming a secret the keyring does not hold."""
        values = dict(self.env)
        for variable in self.secret_env:
            value = secrets.get_secret(self.secret_name(variable))
            if value is None:
                raise McpConfigError(
                    f"The value of {variable} for {self.name} is not in the keyring: enter it again in "
                    "Preferences → Tools (MCP servers)."
                )
            values[variable] = value
        return values

    def to_dict(self) -> dict[str, Any]:
        """For settings.json (secret values are not in it)."""
        return {
            "name": self.name,
            "command": self.command,
            "args": list(self.args),
            "url": self.url,
            "env": dict(self.env),
            "secret_env": list(self.secret_env),
            "timeout_s": self.timeout_s,
            "enabled": self.enabled,
            "always_allowed": sorted(self.always_allowed),
        }

    @classmethod
    def from_dict(cls, data: Any) -> McpServerConfig | None:
        """From settings.json; None for an entry that is not a usable server."""
        if not isinstance(data, dict):
            return None
        try:
            env = data.get("env") or {}
            timeout = data.get("timeout_s", DEFAULT_TIMEOUT_S)
            config = cls(
                name=str(data.get("name", "")),
                command=str(data.get("command") or ""),
                args=tuple(str(a) for a in data.get("args") or ()),
                url=str(data.get("url") or ""),
                env=tuple((str(k), str(v)) for k, v in env.items()),
                secret_env=tuple(str(v) for v in data.get("secret_env") or ()),
                timeout_s=float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT_S,
                enabled=data.get("enabled", True) is not False,
                always_allowed=frozenset(str(t) for t in data.get("always_allowed") or ()),
            )
            return config.validated()
        except (McpConfigError, AttributeError, TypeError, ValueError):
            return None
