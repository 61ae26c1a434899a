"""A whole chat driven through the Qt-free ChatSession: the real model, the real inference thread, real
SQLite. Send, stream, stop, regenerate, edit (branch), continue, switch away mid-reply, a reply cut
off by a crash, and a reply that waits behind API requests."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.chat import session as session_module
from app.core.chat.events import Opened, ReplyEnded, ReplyStateChanged, Saved, SessionEvent, Trimmed
from app.core.chat.messages import Role
from app.core.chat.reply import ReplyTarget
from app.core.chat.session import ChatSession
from app.core.chat.store import Store
from app.core.inference.context_policy import ContextPolicy
from app.core.inference.engine import Engine
from app.core.inference.events import Event, Loaded, LoadFailed
from app.core.inference.kv_disk import KvDiskCache
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingParams

LONG = "Write a very long story about a lighthouse keeper and the sea. Make it at least 500 words."


class Chat:
    """A session on a loaded model, with the events it told and a pump for the thread's events."""

    def __init__(
        self, worker: InferenceThread, events: queue.Queue[Event], store: Store, model: Path
    ) -> None:
        self.worker, self.events, self.store = worker, events, store
        self.session = ChatSession(worker, store)
        self.session.sampling = SamplingParams(temperature=0, max_tokens=24, context_length=2048)
        self.target = ReplyTarget(str(model))
        self.told: list[SessionEvent] = []
        self.session.listen(self.told.append)
        #: Each piece of streamed text the transcript took (row, text), as a view would be told.
        self.appended: list[tuple[int, str]] = []
        self.on_append: Callable[[int, str], None] | None = None
        self.session.transcript.subscribe(_Recorder(self))

    def appended_text(self, row: int, text: str) -> None:
        """A piece of streamed text reached the transcript."""
        self.appended.append((row, text))
        if self.on_append is not None:
            self.on_append(row, text)

    def pump(self, until: Callable[[], bool], timeout: float = 90.0) -> None:
        """Hand the inference thread's events to the session (as the window's bridge does) until
        `until()` holds; a callable in the queue (a tool's result being delivered) is called."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting for the session"
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if callable(event):
                event()
                continue
            self.session.handle(event)

    def reply(self) -> ReplyEnded:
        """Wait for the reply in progress to end; the ReplyEnded it told."""
        self.pump(lambda: not self.session.is_generating)
        ended = [e for e in self.told if isinstance(e, ReplyEnded)]
        assert ended, "no reply ended"
        return ended[-1]


@pytest.fixture(scope="module")
def loaded(
    starter_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[InferenceThread, queue.Queue[Event]]]:
    events: queue.Queue[Event] = queue.Queue()
    ready = threading.Event()
    outcome: list[Event] = []

    def sink(event: Event) -> None:
        if isinstance(event, Loaded | LoadFailed) and not ready.is_set():
            outcome.append(event)
            ready.set()
        else:
            events.put(event)

    kv_cache = KvDiskCache(tmp_path_factory.mktemp("kv"), 500_000_000)
    worker = InferenceThread(sink, engine=Engine(kv_cache=kv_cache))
    worker.start()
    worker.load(starter_model, LoadOptions(context_length=2048))
    assert ready.wait(60) and isinstance(outcome[0], Loaded)
    yield worker, events
    worker.shutdown()


@pytest.fixture
def chat(
    loaded: tuple[InferenceThread, queue.Queue[Event]], tmp_path: Path, starter_model: Path
) -> Iterator[Chat]:
    worker, events = loaded
    store = Store(tmp_path / "conversations.db")
    made = Chat(worker, events, store, starter_model)
    yield made
    if made.session.is_generating:
        made.session.stop()
        made.reply()
    store.close()


class _Recorder:
    """A TranscriptListener that passes streamed text to the Chat (the other changes are not needed)."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    def appended(self, row: int, text: str) -> None:
        self.chat.appended_text(row, text)

    def inserting(self, first: int, last: int) -> None: ...
    def inserted(self) -> None: ...
    def removing(self, first: int, last: int) -> None: ...
    def removed(self) -> None: ...
    def resetting(self) -> None: ...
    def reset(self) -> None: ...
    def changed(self, first: int, last: int, paint_only: bool) -> None: ...


def test_send_streams_the_reply_into_the_transcript_and_the_store(chat: Chat) -> None:
    session = chat.session
    assert session.send("What is the capital of France? Answer in one word.", chat.target)
    assert session.is_generating and not session.send("Another one", chat.target)  # one at a time
    ended = chat.reply()
    assert ended.stats is not None and ended.stats.completion_tokens > 0
    transcript = session.transcript
    assert [transcript.peek(r).role for r in range(len(transcript))] == [Role.USER, Role.ASSISTANT]
    reply = transcript.message(1)
    assert reply.content == ended.text and "Paris" in reply.content
    assert reply.stats == ended.stats and not reply.streaming and not reply.incomplete
    assert len(chat.appended) >= 1 and "".join(text for _row, text in chat.appended) == reply.content
    # Kept as it happened: the conversation, its two messages, which model wrote the reply.
    assert session.conversation_id is not None
    info = chat.store.conversation(session.conversation_id)
    assert info.title == "What is the capital of France? Answer in one word."
    user, stored = chat.store.branch(session.conversation_id)
    assert user.content.startswith("What is the capital") and stored.content == reply.content
    assert stored.stats is not None and stored.stats["model"] == chat.target.model_key
    assert not stored.incomplete
    assert any(isinstance(e, Saved) for e in chat.told)
    states = [e for e in chat.told if isinstance(e, ReplyStateChanged)]
    assert states[0].generating and not states[-1].generating


def test_stop_keeps_what_was_written(chat: Chat) -> None:
    session = chat.session
    session.sampling = session.sampling.with_changes(max_tokens=400)
    chat.on_append = lambda _row, _text: session.stop()
    session.send(LONG, chat.target)
    ended = chat.reply()
    assert ended.stats is not None and ended.stats.stop_reason is StopReason.USER
    assert ended.stats.completion_tokens < 400
    text = session.transcript.message(1).content
    assert text and text == ended.text
    assert chat.store.branch(session.conversation_id or 0)[1].content == text


def test_regenerate_and_edit_make_versions_and_nothing_is_lost(chat: Chat) -> None:
    session = chat.session
    session.sampling = session.sampling.with_changes(temperature=1.0, seed=1)
    session.send("Name a colour.", chat.target)
    first = chat.reply().text
    session.sampling = session.sampling.with_changes(seed=2)
    assert session.regenerate(1, chat.target)
    second = chat.reply().text
    assert session.transcript.peek(1).version == (2, 2)
    cid = session.conversation_id
    assert cid is not None
    [user] = [m for m in chat.store.branch(cid) if m.role == "user"]
    assert len(chat.store.siblings(chat.store.branch(cid)[1].id)) == 2

    # Edit and resend: the new question is a second version of the first, with its own reply.
    assert session.edit(0) == "Name a colour."
    assert session.send("Name a fruit.", chat.target)
    chat.reply()
    assert session.transcript.peek(0).version == (2, 2)
    assert session.transcript.message(0).content == "Name a fruit."

    # Back to the first version: its branch comes back with the second reply it ended on.
    session.step_version(0, -1)
    assert session.transcript.message(0).content == "Name a colour."
    assert session.transcript.message(1).content == second
    session.step_version(1, -1)
    assert session.transcript.message(1).content == first
    assert chat.store.message(user.id).content == "Name a colour."


def test_continue_carries_on_a_reply_that_reached_max_tokens(chat: Chat) -> None:
    session = chat.session
    session.sampling = session.sampling.with_changes(max_tokens=8)
    session.send(LONG, chat.target)
    ended = chat.reply()
    assert ended.stats is not None and ended.stats.stop_reason is StopReason.MAX_TOKENS
    before = ended.text
    assert session.continue_reply(1, chat.target)
    more = chat.reply()
    assert more.text.startswith(before) and len(more.text) > len(before)
    assert session.transcript.message(1).content == more.text and len(session.transcript) == 2
    stored = chat.store.branch(session.conversation_id or 0)[1]
    assert stored.content == more.text and not stored.incomplete


def test_a_streaming_reply_is_saved_while_it_streams(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "SAVE_INTERVAL_S", 0.0)  # every piece, so the test sees it
    session = chat.session
    session.sampling = session.sampling.with_changes(max_tokens=60)
    seen: list[tuple[str, bool]] = []

    def saved(_row: int, _text: str) -> None:
        reply = session.reply
        if reply is not None and reply.message_id is not None and len(chat.appended) > 2:
            stored = chat.store.message(reply.message_id)
            seen.append((stored.content, stored.incomplete))

    chat.on_append = saved
    session.send(LONG, chat.target)
    final = chat.reply().text
    assert seen, "nothing was saved while the reply streamed"
    assert all(incomplete for _text, incomplete in seen)  # marked unfinished until it ends
    assert all(final.startswith(text) for text, _ in seen) and any(text for text, _ in seen)


def test_switching_away_mid_reply_finishes_it_in_the_store(chat: Chat) -> None:
    session = chat.session
    session.sampling = session.sampling.with_changes(max_tokens=400)
    chat.on_append = lambda _row, _text: session.new() if session.conversation_id is not None else None
    session.send(LONG, chat.target)
    first = session.conversation_id
    ended = chat.reply()
    assert ended.row == -1 and ended.conversation_id == first  # detached: not in the view
    assert len(session.transcript) == 0 and session.conversation_id is None
    assert ended.stats is not None and ended.stats.stop_reason is StopReason.USER
    stored = chat.store.branch(first or 0)[1]
    assert stored.content == ended.text and stored.content and not stored.incomplete
    session.open(first or 0)
    assert session.transcript.message(1).content == ended.text


def test_a_reply_cut_off_by_a_crash_shows_as_such_and_can_be_continued(chat: Chat) -> None:
    store = chat.store
    cid = store.create_conversation(title="Before the crash", context_policy="stop")
    question = store.add_message(cid, "user", LONG, None)
    store.add_message(cid, "assistant", "The lighthouse stood", question, incomplete=True)  # never finished
    session = chat.session
    session.open(cid)
    assert isinstance(chat.told[-1], Opened) and chat.told[-1].conversation_id == cid
    cut = session.transcript.peek(1)
    assert cut.cut_off and not cut.streaming and cut.error is None
    assert session.policy is ContextPolicy.STOP
    session.sampling = session.sampling.with_changes(max_tokens=8)
    assert session.continue_reply(1, chat.target)
    assert not session.transcript.peek(1).cut_off  # it is being written again
    more = chat.reply()
    assert more.text.startswith("The lighthouse stood") and len(more.text) > len("The lighthouse stood")
    assert not session.transcript.peek(1).cut_off and not store.branch(cid)[1].incomplete


def _api_requests(chat: Chat, count: int, max_tokens: int) -> tuple[list[int], threading.Event]:
    """`count` API-style requests on the same inference thread; the event is set when all have ended."""
    ended: list[int] = []
    all_done = threading.Event()

    def sink(event: object) -> None:
        if type(event).__name__ in ("ReplyDone", "ReplyFailed"):
            ended.append(1)
            if len(ended) == count:
                all_done.set()

    params = SamplingParams(temperature=0, max_tokens=max_tokens, context_length=2048)
    ids = [chat.worker.generate([{"role": "user", "content": LONG}], params, sink=sink) for _ in range(count)]
    return ids, all_done


def test_a_reply_never_waits_behind_api_requests_while_a_sequence_is_free(chat: Chat) -> None:
    _ids, all_done = _api_requests(chat, chat.worker.parallel - 1, 60)
    session = chat.session
    session.send("Hello!", chat.target)
    reply = session.transcript.peek(1)
    assert reply.streaming and reply.waiting == 0
    assert not any(isinstance(e, ReplyStateChanged) and e.waiting for e in chat.told)
    chat.reply()
    assert all_done.wait(60)


def test_a_reply_behind_api_requests_says_it_waits(chat: Chat) -> None:
    ids, all_done = _api_requests(chat, chat.worker.parallel, 60)  # every sequence busy
    session = chat.session
    session.send("Hello!", chat.target)
    waiting = session.transcript.peek(1)
    assert waiting.streaming and waiting.waiting == 1, "one of them must end first"
    assert any(isinstance(e, ReplyStateChanged) and e.waiting == 1 for e in chat.told)
    chat.pump(lambda: session.transcript.peek(1).waiting == 0 or not session.is_generating)
    assert chat.worker.replies_waiting() == 0  # it left the queue: a sequence was free
    chat.reply()
    assert session.transcript.peek(1).waiting == 0
    assert all_done.wait(60) and all(chat.worker.ahead(rid) == 0 for rid in ids)


def test_the_context_policy_marks_what_it_left_out(chat: Chat) -> None:
    session = chat.session
    session.policy = ContextPolicy.DROP_OLDEST
    session.sampling = session.sampling.with_changes(context_length=512, max_tokens=16)
    filler = "The quick brown fox jumps over the lazy dog. " * 12
    for i in range(6):
        session.transcript.add(Role.USER, f"Question {i}: {filler}")
        session.transcript.add(Role.ASSISTANT, f"Answer {i}: {filler}")
    session.send("And now?", chat.target)
    chat.reply()
    [trimmed] = [e for e in chat.told if isinstance(e, Trimmed)]
    assert trimmed.dropped >= 2 and trimmed.policy is ContextPolicy.DROP_OLDEST
    marked = [r for r in range(len(session.transcript)) if session.transcript.peek(r).left_out]
    assert marked and marked[0] == 0 and len(marked) == trimmed.dropped
    assert not session.transcript.peek(len(session.transcript) - 2).left_out  # the new question


def test_a_conversation_switched_away_and_back_reads_only_the_new_message(chat: Chat) -> None:
    session = chat.session
    session.send("My name is Ada and my favourite colour is green. Please remember it.", chat.target)
    chat.reply()
    first = session.conversation_id
    assert first is not None
    # Other conversations meanwhile, more of them than there are sequences.
    for n in range(chat.worker.parallel + 1):
        session.new()
        session.send(f"Count to {n + 3}.", chat.target)
        chat.reply()
    session.open(first)
    session.send("What is my favourite colour?", chat.target)
    stats = chat.reply().stats
    assert stats is not None and stats.prompt_tokens > 40
    # Its sequence was given to others meanwhile (there were more of them than sequences): the history
    # came back from the disk cache, not read again.
    assert stats.prompt_tokens_evaluated < 25 and stats.history_from_cache > 20


def test_switching_to_another_conversation_and_back_keeps_the_history_in_memory(chat: Chat) -> None:
    session = chat.session
    session.send("My name is Ada and my favourite colour is green. Please remember it.", chat.target)
    chat.reply()
    first = session.conversation_id
    session.new()
    session.send("Name a river.", chat.target)
    chat.reply()
    session.open(first or 0)
    session.send("What is my favourite colour?", chat.target)
    stats = chat.reply().stats
    assert stats is not None and stats.prompt_tokens > 40
    assert stats.prompt_tokens_evaluated < 25 and stats.history_from_cache == 0  # still in its sequence
