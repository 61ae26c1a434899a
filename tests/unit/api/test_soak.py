"""A short soak of the API server: 16 clients at once, a fifth of them misbehaving (see tests/soak_load.py;
tests/perf/soak_api.py runs thousands of requests with the window streaming meanwhile)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.api.config import ServerConfig
from app.core.api.server import LocalServer
from app.core.inference.events import Event, Loaded, LoadFailed
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from tests.soak_load import established, soak
from tests.unit.api.served import KEY, MODEL


@pytest.fixture(scope="module")
def batching_worker(starter_model: Path) -> Iterator[InferenceThread]:
    """The starter model with 8 sequences, so 16 clients keep the batch full and a queue waiting."""
    ready = threading.Event()
    outcome: list[Event] = []

    def sink(event: Event) -> None:
        if isinstance(event, Loaded | LoadFailed):
            outcome.append(event)
            ready.set()

    worker = InferenceThread(sink)
    worker.start()
    worker.load(starter_model, LoadOptions(context_length=512, n_parallel=8))
    assert ready.wait(60) and isinstance(outcome[0], Loaded)
    yield worker
    worker.shutdown()


def wait_for(condition: object, timeout: float, what: str) -> None:
    """Wait until `condition()` holds (polling), failing with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sixteen_clients_a_fifth_misbehaving_get_their_own_replies(batching_worker: InferenceThread) -> None:
    server = LocalServer(batching_worker, ServerConfig(port=0, api_key=KEY))
    server.start()
    try:
        port = server.port
        assert established(port) == 0
        report = asyncio.run(soak(server.address, KEY, MODEL, total=120, concurrency=16, max_tokens=6))
        print(report.summary())
        assert report.requests == 120
        assert report.by_kind["plain"] == 96 and min(report.by_kind.values()) == 8

        assert not report.errors, report.errors[:5]
        assert not report.mixed, report.mixed[:5]
        # Every well-behaved reply (the plain ones and the slow senders') came back for its own prompt.
        assert report.correct == report.by_kind["plain"] + report.by_kind["slow_body"]
        # Dropped and unread clients leave nothing behind: no sequence still generating, no connection open.
        wait_for(
            lambda: batching_worker.replies_running() == 0, 30, "a dropped client's reply kept generating"
        )
        wait_for(lambda: established(port) == 0, 30, f"{established(port)} connections stayed open")
        # And the server still answers.
        after = asyncio.run(soak(server.address, KEY, MODEL, total=2, concurrency=1, misbehave_every=0))
        assert after.correct == 2, after.summary()
    finally:
        server.stop()
