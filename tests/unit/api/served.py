"""A local API server for the tests: the key, the questions asked, the served server with its
request log and an openai client, and a worker with the starter model loaded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import openai

from app.core.api.request_log import RequestLog
from app.core.api.server import LocalServer
from app.core.inference.events import Event, Loaded, LoadFailed
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.models import starter

KEY = "test-key-123"
#: The starter model's name in the API (its file name without .gguf).
MODEL = Path(starter.FILENAME).stem
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
STORY = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]


class Served:
    """A running server with its worker, the log entries it reported, and a client."""

    def __init__(self, worker: InferenceThread, server: LocalServer) -> None:
        self.worker, self.server = worker, server
        self.log: list[RequestLog] = []
        self._lock = threading.Lock()
        server.add_listener(self._record)
        self.client = openai.OpenAI(base_url=server.address, api_key=KEY, max_retries=0, timeout=60)

    def _record(self, entry: RequestLog) -> None:
        with self._lock:
            # Entries are updated in place as a request moves on: keep a copy of each report.
            self.log.append(RequestLog(**{k: getattr(entry, k) for k in entry.__slots__}))

    def done(self) -> list[RequestLog]:
        """Finished requests, in the order they finished."""
        with self._lock:
            return [e for e in self.log if e.state == "done"]

    def wait_done(self, count: int, timeout: float = 60) -> list[RequestLog]:
        """Wait until `count` requests have finished."""
        deadline = time.monotonic() + timeout
        while len(self.done()) < count:
            assert time.monotonic() < deadline, f"only {len(self.done())} of {count} requests finished"
            time.sleep(0.02)
        return self.done()

    def wait_arrived(self, count: int, timeout: float = 30) -> None:
        """Wait until `count` requests have reached the queue (each is logged as it is queued)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                arrived = {e.request_id for e in self.log if e.request_id}
            if len(arrived) >= count:
                return
            assert time.monotonic() < deadline, f"only {len(arrived)} of {count} requests arrived"
            time.sleep(0.005)

    def raw(self, path: str, **kwargs: object) -> httpx.Response:
        """A request without the openai client (for bodies it would refuse to send)."""
        headers = {"Authorization": f"Bearer {KEY}", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return httpx.post(self.server.address + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def loaded_worker(model: Path, projector: Path | None = None) -> InferenceThread:
    """An inference thread with `model` loaded (and its vision projector, if given)."""
    ready = threading.Event()
    outcome: list[Event] = []

    def sink(event: Event) -> None:
        if isinstance(event, Loaded | LoadFailed):
            outcome.append(event)
            ready.set()

    worker = InferenceThread(sink)
    worker.start()
    worker.load(model, LoadOptions(context_length=2048, projector=projector))
    assert ready.wait(60) and isinstance(outcome[0], Loaded)
    return worker
