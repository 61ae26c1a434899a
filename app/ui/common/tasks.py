"""Run blocking work (file scans, hashing) on a worker thread and get the result on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal


class _Relay(QObject):
    done = Signal(object, object)  # (result, exception)


class BackgroundTasks(QObject):
    """A small thread pool whose results come back as queued calls on the GUI thread."""

    def __init__(self, parent: QObject | None = None, workers: int = 2) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fireside-task")
        self._relays: set[_Relay] = set()
        self._closed = False

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[Any] | None:
        """Call `fn()` off the GUI thread; then `on_done(result)` or `on_error(exc)` on the GUI thread.

        After shutdown() (the window is closing) nothing runs and None is returned: late signals, such as
        a download finishing as the window closes, must not restart work."""
        if self._closed:
            return None
        relay = _Relay()
        self._relays.add(relay)

        def finished(result: Any, error: Any) -> None:
            self._relays.discard(relay)
            if error is not None:
                if on_error is not None:
                    on_error(error)
            else:
                on_done(result)

        relay.done.connect(finished)

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:
                relay.done.emit(None, exc)
            else:
                relay.done.emit(result, None)

        return self._pool.submit(work)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the pool: queued tasks are dropped; running ones are waited for when `wait`."""
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
