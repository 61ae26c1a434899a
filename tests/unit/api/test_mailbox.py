"""The mailbox that carries the inference thread's events onto the API server's event loop: the
events of one step go over in one wake-up of the loop, posted from elsewhere they go at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.api.mailbox import Mailbox
from app.core.inference.events import Chunk, Event, Loaded, ReplyDone
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.values.sampling import SamplingParams
from tests.unit.inference.test_thread import Recorder


class Loop:
    """An event loop running on a thread of its own, counting how often a mailbox wakes it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.wakeups = 0
        wake = self.loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any) -> Any:
            if getattr(callback, "__self__", None).__class__ is Mailbox:
                self.wakeups += 1
            return wake(callback, *args)

        self.loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop")
        self._thread.start()

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        """Run `coroutine` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


async def _take(queue: asyncio.Queue[Any], count: int) -> list[Any]:
    return [await queue.get() for _ in range(count)]


def test_posts_held_until_flush_go_in_one_wake_up(loop: Loop) -> None:
    queue: asyncio.Queue[int] = loop.run(_make_queue())
    mailbox = Mailbox(loop.loop, held=lambda: True)
    mailbox.flush()  # nothing posted: nothing to wake the loop for
    assert loop.wakeups == 0
    for item in range(5):
        mailbox.post(queue, item)
    assert loop.wakeups == 0 and queue.empty()
    mailbox.flush()
    assert loop.run(_take(queue, 5)) == [0, 1, 2, 3, 4]
    assert loop.wakeups == 1


def test_a_post_not_held_wakes_the_loop_at_once(loop: Loop) -> None:
    queue: asyncio.Queue[str] = loop.run(_make_queue())
    mailbox = Mailbox(loop.loop)
    mailbox.post(queue, "now")
    assert loop.run(_take(queue, 1)) == ["now"]
    assert loop.wakeups == 1


async def _make_queue() -> asyncio.Queue[Any]:
    return asyncio.Queue()


def test_replies_streamed_together_wake_the_loop_once_per_step(starter_model: Path, loop: Loop) -> None:
    """Two replies on the real engine: every chunk arrives, in order, and the loop is woken at most
    once per step of the batch (not once per chunk)."""
    recorder = Recorder()
    worker = InferenceThread(recorder, coalesce_s=0.0)
    worker.start()
    try:
        recorder.wait_for(Loaded, worker.load(starter_model, LoadOptions(context_length=512, n_parallel=2)))
        mailbox = Mailbox(loop.loop, held=worker.on_this_thread)
        steps_with_news = [0]

        def counted_flush() -> None:
            steps_with_news[0] += 1
            mailbox.flush()

        stop_flushing = worker.after_each_step(counted_flush)
        queue: asyncio.Queue[Event] = loop.run(_make_queue())
        params = SamplingParams(temperature=0.0, seed=1, max_tokens=16, context_length=512)
        ids = [
            worker.generate(
                [{"role": "user", "content": text}],
                params,
                sink=lambda event: mailbox.post(queue, event),
                coalesce_s=0.0,
            )
            for text in ("Count from one to twenty.", "Name some colours.")
        ]

        async def until_done() -> list[Event]:
            events: list[Event] = []
            while sum(isinstance(e, ReplyDone) for e in events) < len(ids):
                events.append(await queue.get())
            return events

        events = loop.run(until_done())
        stop_flushing()
        chunks = [e for e in events if isinstance(e, Chunk)]
        assert {e.request_id for e in chunks} == set(ids)
        for rid in ids:
            done = next(e for e in events if isinstance(e, ReplyDone) and e.request_id == rid)
            assert "".join(e.text for e in chunks if e.request_id == rid) == done.text  # type: ignore[attr-defined]
        assert loop.wakeups <= steps_with_news[0]
        assert loop.wakeups < len(chunks)  # two replies' chunks of one step went in one wake-up
    finally:
        assert worker.shutdown(10.0)
