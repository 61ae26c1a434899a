"""The rule every fuzzed parser keeps: its own clear error or a result, within time and memory."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: CPU seconds one input may take on the calling thread (what a hang in a parser burns).
MAX_SECONDS = 2.0
#: Wall-clock seconds, as a multiple of the CPU bound: a parser that waits (on a lock, on the
#: network) is caught too, while a machine busy with other work does not fail a parse that is quick.
WALL_FACTOR = 10
#: Python memory one input may allocate at its peak.
MAX_BYTES = 64 << 20


def bounded(
    call: Callable[[], T],
    allowed: type[BaseException] | tuple[type[BaseException], ...],
    *,
    max_seconds: float = MAX_SECONDS,
    max_bytes: int = MAX_BYTES,
) -> T | BaseException:
    """Run `call`; return its result, or the error it raised when that error is one of `allowed`.

    Any other exception propagates (the test fails with it); so does an input that took more than
    `max_seconds` of this thread's CPU time (or ten times that on the clock) or allocated more than
    `max_bytes` at its peak. An allowed error must carry a message.
    """
    tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.thread_time()
    outcome: Any
    try:
        outcome = call()
    except allowed as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        outcome = exc
    finally:
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert cpu <= max_seconds, f"one input took {cpu:.2f} s of CPU time (bound {max_seconds} s)"
    assert elapsed <= max_seconds * WALL_FACTOR, (
        f"one input took {elapsed:.2f} s (bound {max_seconds * WALL_FACTOR} s)"
    )
    assert peak <= max_bytes, (
        f"one input allocated {peak / 2**20:.0f} MiB at its peak (bound {max_bytes >> 20})"
    )
    return outcome
