"""A reply's stop button: a threading.Event that also tells whoever is decoding the reply.

A stop is checked before every token, which is soon while a reply is written. While a long prompt
is read one decode can take seconds, so the engine also listens: when every reply in the batch being
decoded is stopped, it trips the flag llama.cpp reads inside llama_decode (abort_flag.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class StopEvent(threading.Event):
    """An Event whose `set` also calls the listeners (from the thread that set it)."""

    def __init__(self) -> None:
        super().__init__()
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the event is set (at once if it already is)."""
        self._listeners.append(callback)
        if self.is_set():
            callback()

    def set(self) -> None:
        """Set the event, then tell the listeners."""
        super().set()
        for callback in list(self._listeners):
            callback()
