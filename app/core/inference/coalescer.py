"""Streamed text gathered into a few chunks per second, however fast the model writes."""

from __future__ import annotations

import time
from collections.abc import Callable


class Coalescer:
    """Gathers text pieces and hands them on at most once per `interval` (plus a final flush)."""

    __slots__ = ("_emit", "_interval", "_last", "_parts", "parts_all")

    def __init__(self, emit: Callable[[str], None], interval: float) -> None:
        self._emit = emit
        self._interval = interval
        self._last = 0.0
        self._parts: list[str] = []
        #: Every piece added, for the reply's full text.
        self.parts_all: list[str] = []

    def add(self, text: str) -> None:
        """Take a piece; hand on what is gathered when `interval` has passed since the last time."""
        self._parts.append(text)
        self.parts_all.append(text)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Hand on what is gathered now (nothing when nothing is), and restart the interval."""
        if self._parts:
            self._emit("".join(self._parts))
            self._parts.clear()
        self._last = time.monotonic() if now is None else now
