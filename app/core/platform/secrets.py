"""Secrets (the Hugging Face access token) in the operating system's keyring, never in a file.

When no secure keyring exists (a headless Linux box, a desktop without a secret service), the token
is kept in memory for this session only and `store_kind()` says so, so the UI can tell the user.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from app.core.platform import logs

log = logging.getLogger(__name__)

SERVICE = "Fireside"
HF_TOKEN = "huggingface-token"

_session: dict[str, str] = {}
_lock = threading.Lock()


def _backend() -> object | None:
    """The keyring backend, or None when only keyring's "fail" / "null" stand-ins are available."""
    try:
        import keyring
        from keyring.backends import chainer, fail

        backend = keyring.get_keyring()
    except Exception as exc:  # a broken keyring install must not stop the app
        log.warning("keyring unavailable: %s", exc)
        return None
    if isinstance(backend, fail.Keyring) or type(backend).__module__.startswith("keyring.backends.null"):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


def has_secure_store() -> bool:
    """True when secrets can be kept in the OS keyring between launches."""
    return _backend() is not None


def store_kind() -> str:
    """Where secrets go, in words for the preferences dialog."""
    backend = _backend()
    if backend is None:
        return "No secure keyring is available on this system: the token is kept for this session only."
    name = getattr(backend, "name", type(backend).__name__)
    return f"Stored in the system keyring ({name})."


def get_secret(name: str) -> str | None:
    """A stored secret, or None."""
    with _lock:
        if name in _session:
            return _session[name]
    backend = _backend()
    if backend is None:
        return None
    try:
        value: str | None = backend.get_password(SERVICE, name)  # type: ignore[attr-defined]
        logs.remember_secret(value)  # whatever may show it later, the log never does
        return value
    except Exception as exc:
        log.warning("could not read %s from the keyring: %s", name, type(exc).__name__)
        return None


def set_secret(name: str, value: str | None) -> bool:
    """Store (or with None/"" delete) a secret. Returns True when it will survive a restart."""
    logs.remember_secret(value)
    backend = _backend()
    with _lock:
        _session.pop(name, None)
        if backend is None:
            if value:
                _session[name] = value
            return False
    try:
        if value:
            backend.set_password(SERVICE, name, value)  # type: ignore[attr-defined]
        else:
            with contextlib.suppress(Exception):  # deleting what is not there is fine
                backend.delete_password(SERVICE, name)  # type: ignore[attr-defined]
        return True
    except Exception as exc:
        # The value itself is never logged; keep it for the session so the user can go on.
        log.warning("could not store %s in the keyring: %s", name, type(exc).__name__)
        with _lock:
            if value:
                _session[name] = value
        return False


def hf_token() -> str | None:
    """The Hugging Face access token the user gave Fireside, if any."""
    return get_secret(HF_TOKEN)


def looks_like_hf_token(value: str) -> bool:
    """A cheap shape check before anything is sent: Hub tokens are `hf_` and 30+ letters/digits."""
    value = value.strip()
    return (
        value.startswith("hf_") and len(value) >= 20 and value.isascii() and value.replace("_", "").isalnum()
    )
