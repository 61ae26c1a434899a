"""Events from the inference thread handed to the server's event loop in one wake-up per burst.

Every step of the batch gives each running reply a token, so with eight API streams the inference
thread has eight events at once. Waking the event loop for each (`call_soon_threadsafe`) costs eight
thread switches per step on the cores llama.cpp is computing on, and each one stalls both of its
threads at their next barrier; gathered, the loop wakes once and hands all eight out.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class Mailbox:
    """Carries (queue, event) pairs from any thread onto one event loop, batched per wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[tuple[asyncio.Queue[Any], Any]] = []
        self._scheduled = False

    def post(self, queue: asyncio.Queue[Any], item: Any) -> None:
        """Put `item` in `queue` on the loop (soon; in the order posted)."""
        with self._lock:
            self._items.append((queue, item))
            if self._scheduled:
                return  # the wake-up already asked for delivers this one too
            self._scheduled = True
        # Once the server stopped its loop is closed: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            items, self._items, self._scheduled = self._items, [], False
        for queue, item in items:
            queue.put_nowait(item)
