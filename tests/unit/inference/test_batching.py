"""Several replies at once on the real model: one batch per step, each with its own sampling; a stop
ends one while the others go on; a follow-up finds the sequence that holds its history; more replies
than sequences wait their turn; loads wait for the replies before them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.inference.events import Chunk, Loaded, ReplyDone, Started
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingParams
from tests.unit.inference.test_thread import Recorder

CONTEXT = 1024
GREEDY = SamplingParams(temperature=0.0, seed=1, max_tokens=48, context_length=CONTEXT)
PROMPTS = [
    "Write a long poem about the ocean, the moon and the stars.",
    "List ten kinds of fruit, one per line.",
    "Explain in detail how a bicycle works.",
    "Tell a long story about a dragon who bakes bread.",
]


def _ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def served(starter_model: Path) -> Iterator[tuple[InferenceThread, Recorder]]:
    """One thread with four sequences of CONTEXT tokens (the events of every test in one recorder)."""
    recorder = Recorder()
    thread = InferenceThread(recorder, coalesce_s=0.0)
    thread.start()
    rid = thread.load(starter_model, LoadOptions(context_length=CONTEXT, n_parallel=4))
    loaded = recorder.wait_for(Loaded, rid)
    assert loaded.model.n_parallel == 4  # type: ignore[attr-defined]
    yield thread, recorder
    assert thread.shutdown(5.0)


def _first(rec: Recorder, kind: type, rid: int) -> float:
    return rec.of(kind, rid)[0][0]


def test_four_replies_with_their_own_sampling_are_generated_together(
    served: tuple[InferenceThread, Recorder],
) -> None:
    thread, rec = served
    settings = [
        GREEDY,
        GREEDY.with_changes(temperature=0.9, seed=7, max_tokens=40),
        GREEDY.with_changes(temperature=1.2, top_k=10, seed=3, max_tokens=32),
        GREEDY.with_changes(max_tokens=24, repeat_penalty=1.3),
    ]
    ids = [thread.generate(_ask(text), params) for text, params in zip(PROMPTS, settings, strict=True)]
    assert all(thread.ahead(rid) == 0 for rid in ids), "four sequences: nobody waits"
    done = [rec.wait_for(ReplyDone, rid) for rid in ids]
    for reply, params in zip(done, settings, strict=True):
        stats = reply.stats  # type: ignore[attr-defined]
        assert stats.stop_reason is StopReason.MAX_TOKENS and stats.completion_tokens == params.max_tokens
    # Together, not one after another: every reply had begun before the first one ended.
    first_end = min(_first(rec, ReplyDone, rid) for rid in ids)
    assert all(_first(rec, Chunk, rid) < first_end for rid in ids)
    # Each its own sampler: the same seed repeats itself, another temperature writes something else.
    again = thread.generate(_ask(PROMPTS[1]), settings[1])
    assert rec.wait_for(ReplyDone, again).text == done[1].text  # type: ignore[attr-defined]


def test_greedy_text_is_the_same_alone_and_in_a_full_batch(served: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = served
    alone = []
    for text in PROMPTS:
        rid = thread.generate(_ask(text), GREEDY)
        alone.append(rec.wait_for(ReplyDone, rid).text)  # type: ignore[attr-defined]
    together = [thread.generate(_ask(text), GREEDY) for text in PROMPTS]
    batched = [rec.wait_for(ReplyDone, rid).text for rid in together]  # type: ignore[attr-defined]
    assert batched == alone


def test_a_stop_ends_one_reply_and_the_others_go_on(served: tuple[InferenceThread, Recorder]) -> None:
    thread, rec = served
    long = GREEDY.with_changes(max_tokens=120)
    ids = [thread.generate(_ask(text), long) for text in PROMPTS[:3]]
    rec.wait_for(Chunk, ids[1])
    thread.cancel(ids[1])
    stopped = rec.wait_for(ReplyDone, ids[1])
    others = [rec.wait_for(ReplyDone, rid) for rid in (ids[0], ids[2])]
    assert stopped.stats.stop_reason is StopReason.USER  # type: ignore[attr-defined]
    assert stopped.stats.completion_tokens < 120  # type: ignore[attr-defined]
    # The others ran to their own end (the length limit, or the model's end of turn: which one
    # depends on the machine's arithmetic), well past where the stopped one was cut.
    for other in others:
        assert other.stats.stop_reason is not StopReason.USER  # type: ignore[attr-defined]
        assert other.stats.completion_tokens > stopped.stats.completion_tokens  # type: ignore[attr-defined]
    assert _first(rec, ReplyDone, ids[1]) < min(_first(rec, ReplyDone, r) for r in (ids[0], ids[2]))


def test_a_follow_up_reads_only_what_is_new_though_others_ran_between(
    served: tuple[InferenceThread, Recorder],
) -> None:
    thread, rec = served
    history = _ask("My name is Ada and I like red. Say hello to me.")
    first = rec.wait_for(ReplyDone, thread.generate(history, GREEDY))
    # Other conversations take sequences meanwhile (as other API clients would).
    for rid in [thread.generate(_ask(text), GREEDY.with_changes(max_tokens=8)) for text in PROMPTS[:2]]:
        rec.wait_for(ReplyDone, rid)
    follow_up = [*history, {"role": "assistant", "content": first.text}]  # type: ignore[attr-defined]
    follow_up.append({"role": "user", "content": "What colour do I like?"})
    done = rec.wait_for(ReplyDone, thread.generate(follow_up, GREEDY))
    stats = done.stats  # type: ignore[attr-defined]
    assert stats.prompt_tokens > 40
    assert stats.prompt_tokens_evaluated < 20, "the history was found in its sequence, not read again"


def test_the_same_prompt_sent_again_is_found_though_every_sequence_holds_something(
    served: tuple[InferenceThread, Recorder],
) -> None:
    thread, rec = served
    for rid in [thread.generate(_ask(text), GREEDY) for text in PROMPTS]:  # no empty sequence left
        rec.wait_for(ReplyDone, rid)
    again = rec.wait_for(ReplyDone, thread.generate(_ask(PROMPTS[2]), GREEDY))
    stats = again.stats  # type: ignore[attr-defined]
    assert stats.prompt_tokens_evaluated == 1, "only the last prompt token is read again (its logits)"


SYSTEM = (
    "You are Juniper, a patient assistant in a bakery. You answer questions about bread, cakes, flour, "
    "ovens and opening hours. The bakery opens at seven in the morning and closes at six in the "
    "evening, every day except Monday. You always answer in one short, friendly paragraph, you never "
    "invent prices, and when you do not know something you say so and suggest asking at the counter."
)


def _with_system(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, *_ask(question)]


def test_a_new_conversation_copies_a_long_shared_start_instead_of_reading_it(
    served: tuple[InferenceThread, Recorder],
) -> None:
    thread, rec = served
    question = _with_system("When do you open on Sunday?")
    fresh = rec.wait_for(ReplyDone, thread.generate(question, GREEDY, cache_key="bakery:1"))
    assert fresh.stats.prompt_tokens > 100  # type: ignore[attr-defined]
    # Another conversation with the same system prompt: the start is copied from the first's sequence.
    other = rec.wait_for(
        ReplyDone, thread.generate(_with_system("Do you sell rye bread?"), GREEDY, cache_key="bakery:2")
    )
    stats = other.stats  # type: ignore[attr-defined]
    assert stats.prompt_tokens > 90 and stats.prompt_tokens_evaluated < 20
    # The same question in a third conversation: all of its prompt is copied (the first reply is cut
    # off the copy). Greedy decoding then writes what the first conversation writes when the question
    # is sent to it again: the same keys and values, the same last token read on top of them.
    resent = rec.wait_for(ReplyDone, thread.generate(question, GREEDY, cache_key="bakery:1"))
    again = rec.wait_for(ReplyDone, thread.generate(question, GREEDY, cache_key="bakery:3"))
    assert resent.stats.prompt_tokens_evaluated == 1  # type: ignore[attr-defined]
    assert again.stats.prompt_tokens_evaluated == 1  # type: ignore[attr-defined]
    assert again.text == resent.text  # type: ignore[attr-defined]
    # The sequence copied from is intact: its conversation goes on where it was.
    follow_up = [*question, {"role": "assistant", "content": resent.text}]  # type: ignore[attr-defined]
    follow_up.append({"role": "user", "content": "And on Monday?"})
    done = rec.wait_for(ReplyDone, thread.generate(follow_up, GREEDY, cache_key="bakery:1"))
    assert done.stats.prompt_tokens_evaluated < 20  # type: ignore[attr-defined]


def test_more_replies_than_sequences_wait_their_turn_in_order(
    served: tuple[InferenceThread, Recorder],
) -> None:
    thread, rec = served
    long = GREEDY.with_changes(max_tokens=60)
    busy = [thread.generate(_ask(text), long) for text in PROMPTS]
    fifth = thread.generate(_ask("Name a colour."), GREEDY.with_changes(max_tokens=4))
    sixth = thread.generate(_ask("Name a fruit."), GREEDY.with_changes(max_tokens=4))
    assert thread.ahead(fifth) == 1 and thread.ahead(sixth) == 2
    assert thread.replies_waiting(before=sixth) >= 1
    rec.wait_for(ReplyDone, sixth)
    first_free = min(_first(rec, ReplyDone, rid) for rid in busy)
    assert _first(rec, Started, fifth) >= first_free, "it waited for a sequence"
    assert _first(rec, Started, fifth) <= _first(rec, Started, sixth), "in the order they came"


def test_a_load_waits_for_the_replies_before_it(
    served: tuple[InferenceThread, Recorder], starter_model: Path
) -> None:
    thread, rec = served
    reply = thread.generate(_ask(PROMPTS[0]), GREEDY)
    load = thread.load(starter_model, LoadOptions(context_length=CONTEXT, n_parallel=4))
    after = thread.generate(_ask(PROMPTS[1]), GREEDY.with_changes(max_tokens=4))
    done = rec.wait_for(ReplyDone, reply)
    rec.wait_for(Loaded, load)
    rec.wait_for(ReplyDone, after)
    assert done.stats.stop_reason is StopReason.MAX_TOKENS  # type: ignore[attr-defined]
    assert _first(rec, ReplyDone, reply) < _first(rec, Loaded, load) < _first(rec, Started, after)


def _micro_batches(lines: list[str]) -> list[list[int]]:
    """The streams of each micro-batch llama.cpp decoded, from its KV-cache debug log: find_slot
    (once per micro-batch) logs a "stream[i], n = ..." line for each of its streams, in increasing
    order, so a stream not above the one before begins the next micro-batch."""
    found: list[list[int]] = []
    for line in lines:
        if "find_slot: stream[" in line and ", n =" in line:
            stream = int(line.split("stream[", 1)[1].split("]", 1)[0])
            if not found or stream <= found[-1][-1]:
                found.append([])
            found[-1].append(stream)
    return found


def test_replies_started_in_any_order_are_decoded_in_one_pass(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With one KV stream per sequence llama.cpp decodes only runs of consecutive sequence ids
    together: the batch is filled in sequence order, so four replies take one pass per step."""
    import threading

    from app.core.inference.engine import Engine

    monkeypatch.setenv("LLAMA_KV_CACHE_DEBUG", "1")  # read when the context is created
    engine = Engine()
    engine.load(starter_model, LoadOptions(context_length=256, n_parallel=4))
    try:
        generations = [
            engine.start(_ask(text), GREEDY, lambda _text: None, threading.Event()) for text in PROMPTS
        ]
        assert sorted(g.slot.seq_id for g in generations) == [0, 1, 2, 3]
        shuffled = [generations[i] for i in (3, 1, 0, 2)]  # the order replies came in, say
        while any(g.reading for g in generations):
            engine.step(shuffled)
        caplog.set_level(logging.DEBUG, logger="fireside.llama_cpp")
        caplog.clear()
        engine.step(shuffled)
        assert all(g.completion >= 2 for g in generations)
        assert _micro_batches([r.getMessage() for r in caplog.records]) == [[0, 1, 2, 3]]
    finally:
        engine.unload()
