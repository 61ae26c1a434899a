"""Logging to rotating files in the user's log folder, and unexpected exceptions written there.

Every launch appends to `fireside.log` (rotated at 2 MB, five old files kept), so a user reporting a
problem can attach it. An exception nobody caught (on any thread) is logged with its traceback and
then handed to the listeners registered here; the window shows it in a dialog and keeps running.

No secret reaches a log: every handler set up here has a filter that replaces the secrets the app
holds (each registered with `remember_secret` as it is read or set) and anything shaped like a
Hugging Face token or a Bearer credential with "[redacted]", in messages and tracebacks alike.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from app.core.platform import paths

LOG_NAME = "fireside.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 5
_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

log = logging.getLogger("fireside")
_file_handler: logging.Handler | None = None
#: Called with (summary, full text) for every unexpected exception, on the thread that raised it.
_listeners: list[Callable[[str, str], None]] = []
_previous_hooks: tuple[object, object] | None = None

REDACTED = "[redacted]"
#: Secret values the app holds (tokens, API keys, MCP secrets), replaced wherever a log shows them.
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
#: Credentials recognised by their shape, even when nobody registered them (a token in a URL a library
#: logs, a header echoed in an error).
_SHAPES = re.compile(r"\bhf_[A-Za-z0-9]{20,}|(?i:\bbearer\s+)[^\s\"',;]+")
#: Shorter values are not treated as secrets: replacing "ab" everywhere would garble the log.
MIN_SECRET_LEN = 6


def remember_secret(value: str | None) -> None:
    """From now on, `value` is replaced by "[redacted]" in every log line (a value too short to be a
    secret, or None, is ignored)."""
    if value and len(value.strip()) >= MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value)
            _secrets.add(value.strip())


def redact(text: str) -> str:
    """`text` with every remembered secret and every credential-shaped string replaced."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)  # longest first: one may contain another
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SHAPES.sub(lambda found: _shape_redacted(found.group(0)), text)


def _shape_redacted(found: str) -> str:
    """Keep "Bearer " so the log still says what was sent; the credential goes."""
    if found[:6].lower() == "bearer":
        credential = found[6:].lstrip()
        return found[: len(found) - len(credential)] + REDACTED
    return REDACTED


class RedactingFilter(logging.Filter):
    """Replaces secrets in a record's message and traceback before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact `record` in place (the message is formatted here, once); never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let the handler report it as logging does
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_redacting = RedactingFilter()


def log_file() -> Path:
    """The current log file."""
    return paths.log_dir() / LOG_NAME


def setup(verbose: bool = False) -> Path:
    """Log to the rotating file (INFO and up; DEBUG with `verbose`) and to stderr (WARNING and up;
    DEBUG with `verbose`). Safe to call again (e.g. after the data folder changed). Returns the file."""
    global _file_handler
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    if _file_handler is not None:
        root.removeHandler(_file_handler)
        _file_handler.close()
    target = log_file()
    try:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as exc:  # a read-only or full disk must not stop the app
        print(f"fireside: cannot write the log file {target}: {exc}", file=sys.stderr)
        handler = logging.NullHandler()
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_redacting)
    root.addHandler(handler)
    _file_handler = handler
    if not any(getattr(h, "_fireside_console", False) for h in root.handlers):
        console = logging.StreamHandler()
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
        console.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        console._fireside_console = True  # type: ignore[attr-defined]
        console.addFilter(_redacting)
        root.addHandler(console)
    return target


def describe(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> tuple[str, str]:
    """A one-line summary and the full traceback text."""
    summary = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
    return summary, "".join(traceback.format_exception(exc_type, exc, tb))


def report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Log an unexpected exception with its traceback and tell the listeners."""
    summary, text = describe(exc_type, exc, tb)
    log.error("unexpected error: %s\n%s", summary, text.rstrip())
    for listener in list(_listeners):
        try:
            listener(summary, text)
        except Exception:  # a broken listener must not hide the original error
            log.exception("an error listener failed")


def add_listener(listener: Callable[[str, str], None]) -> None:
    """Be told of every unexpected exception (called on the raising thread)."""
    _listeners.append(listener)


def remove_listener(listener: Callable[[str, str], None]) -> None:
    """Stop being told."""
    if listener in _listeners:
        _listeners.remove(listener)


def install_hooks() -> None:
    """Route uncaught exceptions of the main thread and of other threads to `report`."""
    global _previous_hooks
    if _previous_hooks is not None:
        return
    _previous_hooks = (sys.excepthook, threading.excepthook)

    def main_hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        report(exc_type, exc, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and not issubclass(args.exc_type, SystemExit):  # as Python does
            report(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = main_hook
    threading.excepthook = thread_hook


def uninstall_hooks() -> None:
    """Put back the hooks install_hooks replaced (for tests)."""
    global _previous_hooks
    if _previous_hooks is None:
        return
    sys.excepthook, threading.excepthook = _previous_hooks  # type: ignore[assignment]
    _previous_hooks = None
