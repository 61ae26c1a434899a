"""Events from the inference thread handed to the server's event loop in one wake-up per step.

Every step of the batch gives each running reply a token, so with eight API streams the inference
thread has eight events at once. Waking the event loop for each (`call_soon_threadsafe`) costs a
thread switch per event on the cores llama.cpp is computing on, and each one stalls both of its
threads at their next barrier. So events posted on the inference thread wait in the mailbox until
the step that made them is over (`flush`, which the inference thread calls after each step), and
the loop wakes once and hands them all out: measured with eight streams, the loop woke about seven
times per step when it was woken at the first event of each step and the loop raced the rest.
Events posted on any other thread wake the loop at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any


class Mailbox:
    """Carries (queue, event) pairs from any thread onto one event loop, batched per wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, held: Callable[[], bool] = lambda: False) -> None:
        self._loop = loop
        #: True when a post is made where a `flush` follows soon (the inference thread's step).
        self._held = held
        self._lock = threading.Lock()
        self._items: list[tuple[asyncio.Queue[Any], Any]] = []
        self._scheduled = False

    def post(self, queue: asyncio.Queue[Any], item: Any) -> None:
        """Put `item` in `queue` on the loop (soon; in the order posted)."""
        with self._lock:
            self._items.append((queue, item))
        if not self._held():
            self.flush()

    def flush(self) -> None:
        """Wake the loop for what was posted and not delivered yet (once; nothing if nothing was)."""
        with self._lock:
            if not self._items or self._scheduled:
                return  # nothing to hand out, or the wake-up already asked for delivers it too
            self._scheduled = True
        # Once the server stopped its loop is closed: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            items, self._items, self._scheduled = self._items, [], False
        for queue, item in items:
            queue.put_nowait(item)
