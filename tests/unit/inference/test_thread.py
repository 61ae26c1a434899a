"""The inference thread: request ids, coalesced chunks, cancellation, failures and shutdown."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.inference.events import (
    Chunk,
    ContextTrimmed,
    Counted,
    Event,
    Loaded,
    LoadFailed,
    LoadProgress,
    ReplyDone,
    ReplyFailed,
    Started,
)
from app.core.inference.thread import InferenceThread
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingParams

PARAMS = SamplingParams(temperature=0.0, seed=1, max_tokens=64, context_length=1024)
LONG = [{"role": "user", "content": "Write a long poem about the ocean, the moon and the stars."}]


class Recorder:
    """Collects events with their arrival times and lets tests wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append((time.monotonic(), event))
            self._cond.notify_all()

    def wait_for(self, kind: type, request_id: int | None = None, timeout: float = 60) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, event in self.events:
                    if isinstance(event, kind) and (request_id is None or event.request_id == request_id):
                        return event
                left = deadline - time.monotonic()
                assert left > 0, f"no {kind.__name__} within {timeout}s: {self.events[-3:]}"
                self._cond.wait(left)

    def of(self, kind: type, request_id: int) -> list[tuple[float, Event]]:
        return [(t, e) for t, e in self.events if isinstance(e, kind) and e.request_id == request_id]


@pytest.fixture
def worker(starter_model: Path) -> Iterator[tuple[InferenceThread, Recorder]]:
    recorder = Recorder()
    thread = InferenceThread(recorder, coalesce_s=0.05)
    thread.start()
    rid = thread.load(starter_model)
    recorder.wait_for(Loaded, rid)
    yield thread, recorder
    assert thread.shutdown(5.0)


def test_load_reports_progress_then_loaded(worker: tuple[InferenceThread, Recorder]) -> None:
    _, rec = worker
    progress = [e.fraction for _, e in rec.events if isinstance(e, LoadProgress)]
    assert progress[0] == 0.0 and progress[-1] == pytest.approx(1.0)
    assert progress == sorted(progress)


def test_chunks_are_coalesced_and_carry_the_request_id(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    rid = thread.generate(LONG, PARAMS)
    done = rec.wait_for(ReplyDone, rid)
    assert isinstance(done, ReplyDone)
    chunks = rec.of(Chunk, rid)
    assert "".join(e.text for _, e in chunks) == done.text  # type: ignore[attr-defined]
    assert done.stats.completion_tokens == 64
    # Far fewer chunks than tokens, and never two within the coalescing interval (but the final flush).
    assert len(chunks) < done.stats.completion_tokens
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(chunks)][:-1]
    assert all(gap >= 0.045 for gap in gaps), gaps


def test_cancel_keeps_what_was_generated(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    rid = thread.generate(LONG, PARAMS.with_changes(max_tokens=500))
    rec.wait_for(Chunk, rid)
    thread.cancel(rid)
    done = rec.wait_for(ReplyDone, rid)
    assert done.stats.stop_reason is StopReason.USER  # type: ignore[attr-defined]
    assert done.text  # type: ignore[attr-defined]
    assert done.stats.completion_tokens < 500  # type: ignore[attr-defined]


def test_cancelled_queued_request_never_generates(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    first = thread.generate(LONG, PARAMS)
    second = thread.generate(LONG, PARAMS)
    thread.cancel(second)
    rec.wait_for(ReplyDone, first)
    done = rec.wait_for(ReplyDone, second)
    assert done.stats.stop_reason is StopReason.USER and done.stats.completion_tokens == 0  # type: ignore[attr-defined]
    assert rec.of(Chunk, second) == []


def test_invalid_params_fail_with_a_message(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    rid = thread.generate(LONG, PARAMS.with_changes(top_p=3.0))
    failed = rec.wait_for(ReplyFailed, rid)
    assert "top p must be between 0 – 1" in failed.message  # type: ignore[attr-defined]


def test_broken_sink_does_not_kill_the_thread(starter_model: Path) -> None:
    calls: list[Event] = []
    ready = threading.Event()

    def sink(event: Event) -> None:
        calls.append(event)
        if isinstance(event, Loaded):
            ready.set()
        if isinstance(event, LoadProgress):
            raise RuntimeError("front end bug")

    thread = InferenceThread(sink)
    thread.start()
    thread.load(starter_model)
    assert ready.wait(60)
    assert thread.is_alive
    assert thread.shutdown(5.0)


def test_load_failure_names_the_file(tmp_path: Path) -> None:
    rec = Recorder()
    thread = InferenceThread(rec)
    thread.start()
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    rid = thread.load(bad)
    failed = rec.wait_for(LoadFailed, rid)
    assert "broken.gguf" in failed.message and "not a GGUF" in failed.message  # type: ignore[attr-defined]
    assert thread.shutdown(5.0)


def test_shutdown_mid_reply_is_quick(starter_model: Path) -> None:
    rec = Recorder()
    thread = InferenceThread(rec)
    thread.start()
    rec.wait_for(Loaded, thread.load(starter_model))
    rid = thread.generate(LONG, PARAMS.with_changes(max_tokens=2000))
    rec.wait_for(Chunk, rid)
    started = time.monotonic()
    assert thread.shutdown(1.0)
    assert time.monotonic() - started < 1.0
    assert not thread.is_alive


def _long_chat(exchanges: int) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": "Be brief."}]
    for i in range(exchanges):
        turns.append({"role": "user", "content": f"Question {i}: " + "tell me about the sea " * 12})
        turns.append({"role": "assistant", "content": f"Answer {i}: " + "the sea is wide and deep " * 12})
    turns.append({"role": "user", "content": "Say one word."})
    return turns


def test_context_policy_leaves_out_old_turns_and_says_so(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    params = SamplingParams(context_length=512, max_tokens=16, temperature=0.0)
    rid = thread.generate(_long_chat(8), params, "drop_oldest")
    done = rec.wait_for(ReplyDone, rid)
    ((_, trimmed),) = rec.of(ContextTrimmed, rid)
    assert isinstance(trimmed, ContextTrimmed) and trimmed.dropped[:2] == (0, 1)
    assert trimmed.tokens <= 512 - 16
    assert isinstance(done, ReplyDone) and done.stats.prompt_tokens == trimmed.tokens


def test_stop_policy_refuses_with_a_message(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    params = SamplingParams(context_length=512, max_tokens=16, temperature=0.0)
    rid = thread.generate(_long_chat(8), params, "stop")
    failed = rec.wait_for(ReplyFailed, rid)
    assert isinstance(failed, ReplyFailed) and "new conversation" in failed.message
    assert rec.of(Chunk, rid) == []


def test_count_reports_tokens_and_context(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    rid = thread.count([{"role": "user", "content": "Hello there"}])
    counted = rec.wait_for(Counted, rid)
    assert isinstance(counted, Counted) and 5 < counted.tokens < 40 and counted.context_length >= 256


def test_remote_replies_use_the_same_events_and_never_hold_up_the_local_queue(
    worker: tuple[InferenceThread, Recorder],
) -> None:
    from app.core.remote.client import Endpoint, RemoteClient, RemoteTarget
    from tests.fake_openai import FakeOpenAI

    thread, rec = worker
    fake = FakeOpenAI(delay_s=0.1).start()  # 20 words at 0.1 s: a 2-second remote reply
    client = RemoteClient(Endpoint(fake.url, name="Slow server"))
    try:
        remote = thread.generate(LONG, PARAMS, remote=RemoteTarget(client, "tiny-model"))
        rec.wait_for(Chunk, remote)
        local = thread.generate(LONG, PARAMS.with_changes(max_tokens=8))
        local_done = rec.wait_for(ReplyDone, local)
        assert not rec.of(ReplyDone, remote), "the local reply finished while the remote one streamed"
        remote_done = rec.wait_for(ReplyDone, remote, timeout=10)
        assert remote_done.text == "".join(fake.words)  # type: ignore[attr-defined]
        assert local_done.stats.completion_tokens == 8  # type: ignore[attr-defined]
        assert rec.of(Started, remote) and rec.of(Started, local)
        assert thread.replies_running() == 0 and thread.replies_waiting() == 0
        stopped = thread.generate(LONG, PARAMS, remote=RemoteTarget(client, "tiny-model"))
        rec.wait_for(Chunk, stopped)
        thread.cancel(stopped)
        done = rec.wait_for(ReplyDone, stopped, timeout=5)
        assert done.stats.stop_reason is StopReason.USER  # type: ignore[attr-defined]
    finally:
        client.close()
        fake.stop()


def test_requests_with_their_own_sink_and_failure_codes(worker: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = worker
    mine = Recorder()
    rid = thread.generate(LONG, PARAMS.with_changes(max_tokens=4), sink=mine, coalesce_s=0.0)
    done = mine.wait_for(ReplyDone, rid)
    chunks = mine.of(Chunk, rid)
    assert len(chunks) == 4 and "".join(e.text for _, e in chunks) == done.text  # type: ignore[attr-defined]
    assert not [e for _, e in rec.events if e.request_id == rid], "the thread's own sink saw none of it"
    failed = thread.generate([{"role": "user", "content": "word " * 5000}], PARAMS, sink=mine)
    assert mine.wait_for(ReplyFailed, failed).code == "context_full"  # type: ignore[attr-defined]
    bad = thread.generate(LONG, PARAMS.with_changes(temperature=9.0), sink=mine)
    assert mine.wait_for(ReplyFailed, bad).code == "invalid"  # type: ignore[attr-defined]
