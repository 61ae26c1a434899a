"""The remote engines the user added: names and base URLs (kept in settings), API keys (kept in the
keyring), and how a remote model is named wherever a local model's path would go. No Qt here.

A remote model is identified by `<base URL>/models/<model id>`, the address of that model in the
OpenAI API itself: it is what a conversation records as its model, it can never be mistaken for a
file, and `Path(key).name` still gives the model's own name in exports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from app.core.platform import secrets
from app.core.remote.client import Endpoint, RemoteClient, RemoteError, RemoteErrorKind

#: Seconds allowed for listing an endpoint's models: enough for a cold hosted API, short enough that
#: a machine that is switched off shows as unreachable soon after launch.
LIST_TIMEOUT_S = 8.0


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """An endpoint as settings keep it: a name and a base URL. Its API key lives in the keyring."""

    name: str
    base_url: str

    @property
    def secret_name(self) -> str:
        """The keyring entry holding this endpoint's API key."""
        return secret_name(self.base_url)

    def to_dict(self) -> dict[str, str]:
        """For settings.json."""
        return {"name": self.name, "base_url": self.base_url}

    @classmethod
    def from_dict(cls, data: Any) -> EndpointConfig | None:
        """From settings.json; None for an entry that is not a usable endpoint."""
        if not isinstance(data, dict) or not isinstance(data.get("base_url"), str):
            return None
        try:
            url = normalize_base_url(data["base_url"])
        except ValueError:
            return None
        name = data.get("name")
        return cls((name.strip() if isinstance(name, str) else "") or default_name(url), url)


def secret_name(base_url: str) -> str:
    """The keyring entry for the API key of the endpoint at `base_url`."""
    return f"endpoint:{base_url}"


def normalize_base_url(text: str) -> str:
    """A base URL as Fireside keeps it: http(s), no trailing slash, "/v1" added when no path is
    given (people paste "http://host:8080"). Raises ValueError with words for the user."""
    text = text.strip()
    if not text:
        raise ValueError("Enter the server's base URL, for example http://127.0.0.1:8080/v1.")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"The base URL must start with http:// or https:// (not {parts.scheme}://).")
    try:
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError:
        raise ValueError("The port in the base URL is not a number between 1 and 65535.") from None
    if not parts.hostname or " " in parts.netloc:
        raise ValueError("The base URL has no host name, for example http://127.0.0.1:8080/v1.")
    if parts.query or parts.fragment:
        raise ValueError("The base URL cannot have a query (?…) or fragment (#…).")
    if parts.username or parts.password:
        # A key in the URL would end up in settings.json in plain text.
        raise ValueError("Put the API key in the API key field, not in the URL.")
    path = parts.path.rstrip("/") or "/v1"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{path}"


def default_name(base_url: str) -> str:
    """A name for an endpoint the user did not name: its host and port."""
    return urlsplit(base_url).netloc or base_url


def model_key(base_url: str, model: str) -> str:
    """How a remote model is recorded (see the module's docstring)."""
    return f"{base_url}/models/{model}"


def is_model_key(value: str | None) -> bool:
    """True for a remote model's key, False for a local path."""
    return bool(value) and str(value).startswith(("http://", "https://"))


def split_model_key(key: str, endpoints: list[EndpointConfig]) -> tuple[EndpointConfig, str] | None:
    """The endpoint and model id a key names, among `endpoints` (None when none of them matches).

    Matched against the known base URLs rather than split on "/models/": model ids often hold "/"
    ("meta-llama/Llama-3.1-8B-Instruct")."""
    for endpoint in sorted(endpoints, key=lambda e: len(e.base_url), reverse=True):
        prefix = endpoint.base_url + "/models/"
        if key.startswith(prefix) and len(key) > len(prefix):
            return endpoint, key[len(prefix) :]
    return None


@dataclass(frozen=True, slots=True)
class EndpointModels:
    """What listing an endpoint gave: its models, or why there are none (`kind`)."""

    endpoint: EndpointConfig
    models: tuple[str, ...] = ()
    error: str | None = None
    #: Why there are no models: the RemoteError's kind, "pending" while the list is still being
    #: asked for (the window builds that one itself), None when the listing worked.
    kind: RemoteErrorKind | Literal["pending"] | None = None


def open_endpoint(config: EndpointConfig, api_key: str | None = None) -> RemoteClient:
    """A client for `config`, with `api_key` or else the key kept in the keyring (may block: the
    keyring can ask to be unlocked; call it off the GUI thread)."""
    key = api_key if api_key else secrets.get_secret(config.secret_name)
    return RemoteClient(Endpoint(config.base_url, key or None, config.name))


def list_models(client: RemoteClient, config: EndpointConfig) -> EndpointModels:
    """The endpoint's models, or the reason it could not list them (network: call off the GUI thread)."""
    try:
        return EndpointModels(config, tuple(client.models(LIST_TIMEOUT_S)))
    except RemoteError as exc:
        return EndpointModels(config, (), exc.message, exc.kind)


def store_key(config: EndpointConfig, api_key: str | None, previous_url: str | None = None) -> bool:
    """Keep `api_key` for `config` (None: keep the key it has; ""; forget it). When the endpoint's URL
    changed from `previous_url`, its key moves with it. True when the key survives a restart (or
    there is none); False when no secure keyring exists and it is kept for this session only."""
    moved: str | None = None
    if previous_url is not None and previous_url != config.base_url:
        moved = secrets.get_secret(secret_name(previous_url))
        secrets.set_secret(secret_name(previous_url), None)
    value = moved if api_key is None else api_key
    if api_key is None and moved is None:
        return secrets.get_secret(config.secret_name) is None or secrets.has_secure_store()
    kept = secrets.set_secret(config.secret_name, value or None)
    return kept or not value


def forget_key(base_url: str) -> None:
    """Delete an endpoint's key (the endpoint was removed)."""
    secrets.set_secret(secret_name(base_url), None)
