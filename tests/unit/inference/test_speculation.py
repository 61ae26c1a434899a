"""Speculative decoding: n-gram guesses checked by the real model in one decode give the same reply
(greedy and seeded sampling, with max tokens, stop strings, a grammar and log probabilities; where a
CPU's batch kernels round differently, a greedy reply may part only at a near tie), the
sequence's cache holds only the tokens kept, and a reply of new words is hardly guessed at all."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.inference.engine import Engine
from app.core.inference.options import LoadOptions
from app.core.inference.speculation import KV_PAD, MAX_DRAFT, NgramDraft
from app.core.values.logprobs import TokenLogprob
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import SamplingParams
from app.core.values.speculation import SpeculationMode
from tests.edit_prompts import RECORD

#: A reply that repeats its prompt with one change: most of it can be guessed from the prompt.
EDIT = [
    {
        "role": "user",
        "content": 'Print this JSON again with "died" set to 1853:\n```json\n'
        + json.dumps(RECORD, indent=2)
        + "\n```",
    }
]
FREE = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
GREEDY = SamplingParams(temperature=0.0, max_tokens=90, context_length=1024)
#: On some CPUs (AVX-512 here) ggml multiplies a batch of tokens with other kernels than one token,
#: so a guess checked in a batch gets log probabilities a little off those of one-by-one decoding
#: (up to 0.1 measured on this machine's EDIT reply): two near-equal tokens may then swap places.
#: Log probabilities closer than TIE always count as a tie; NOISE_MAX bounds what counts as noise.
TIE = 0.05
NOISE_MAX = 0.5
_runs = itertools.count()


@pytest.fixture(scope="module")
def engine(starter_model: Path) -> Iterator[Engine]:
    """The starter model with two sequences (a reply never finds the one before it in its own)."""
    loaded = Engine()
    loaded.load(starter_model, LoadOptions(context_length=1024, n_parallel=2))
    yield loaded
    loaded.unload()


def _reply(
    engine: Engine,
    mode: SpeculationMode,
    messages: list[dict[str, str]],
    params: SamplingParams,
    **options: Any,
) -> tuple[str, ReplyStats]:
    """One reply read from an empty sequence (a new conversation key each time), with `mode`."""
    engine.speculation = mode
    parts: list[str] = []
    generation = engine.start(
        messages, params, parts.append, threading.Event(), cache_key=f"run-{next(_runs)}", **options
    )
    while generation.stop is None:
        engine.step((generation,))
    stats = engine.finish(generation)
    # Beyond KV_PAD cells llama.cpp's CPU attention sums one token in another order than a batch
    # (ggml's split-KV path): the comparisons below stay within it.
    assert stats.context_used <= KV_PAD, "the test's reply left the cells where decoding is batch-exact"
    return "".join(parts), stats


def _greedy_tokens(
    engine: Engine, mode: SpeculationMode, messages: list[dict[str, str]]
) -> tuple[list[TokenLogprob], ReplyStats]:
    """A greedy reply's tokens with the two likeliest at each place, read from an empty sequence."""
    engine.speculation = mode
    generation = engine.start(
        messages,
        GREEDY,
        lambda _text: None,
        threading.Event(),
        cache_key=f"run-{next(_runs)}",
        top_logprobs=2,
    )
    while generation.stop is None:
        engine.step((generation,))
    return list(generation.logprobs), engine.finish(generation)


def _assert_same_but_for_a_tie(plain: list[TokenLogprob], guessed: list[TokenLogprob]) -> bool:
    """The greedy replies are the same token for token, or they part where the plain reply's two
    likeliest tokens are within the batch noise the two runs showed for the tokens before, and the
    other took the runner-up. True when they are the same throughout."""
    noise = 0.0  # the largest difference in log probability of the same token, up to here
    for place, (one, other) in enumerate(zip(plain, guessed, strict=False)):
        if one.chosen.raw == other.chosen.raw:
            noise = max(noise, abs(one.chosen.logprob - other.chosen.logprob))
            assert noise < NOISE_MAX, f"token {place}: the two runs differ by {noise:.3f}, more than noise"
            continue
        first, second = one.top[:2]
        assert other.chosen.raw == second.raw, f"token {place}: {other.chosen.text!r} was not the runner-up"
        # Each of the two log probabilities may move by `noise`, so their gap by twice that.
        assert first.logprob - second.logprob < max(TIE, 2 * noise), (
            f"token {place}: the replies part where {first.text!r} beats {second.text!r} by "
            f"{first.logprob - second.logprob:.3f}, more than the batch noise ({noise:.3f}) explains"
        )
        return False
    assert len(plain) == len(guessed)
    return True


def test_guesses_repeat_what_followed_the_last_tokens_before() -> None:
    draft = NgramDraft([1, 2, 3, 4, 5, 6, 9, 1, 2, 3])
    assert draft.draft(3) == [4, 5], "the first guess is short (FIRST_DRAFT)"
    draft.accepted(2, 2)
    assert draft.draft(8) == [4, 5, 6, 9], "a guess taken whole doubles the next one"
    assert NgramDraft([1, 2, 3, 4]).draft(4) == [], "an end never seen before is not guessed"
    draft.extend([4, 5, 7])
    assert draft.draft(8) == [], "the run 4 5 7 was never seen"
    draft.extend([1, 2, 3])
    assert draft.draft(8)[:1] == [4], "the latest occurrence of 1 2 3 (followed by 4 5 7) counts"
    assert draft.draft(8)[:3] == [4, 5, 7]


def test_an_image_is_never_guessed_and_misses_make_the_drafter_wait() -> None:
    draft = NgramDraft([7, 8, 9, -5, -5, 10, 7, 8, 9])
    draft.accepted(2, 2)
    assert draft.draft(8) == [], "what followed 7 8 9 was an image's positions"
    draft = NgramDraft([7, 8, 9, 10, 11, 7, 8, 9])
    assert draft.draft(8)
    draft.accepted(2, 0)
    assert draft.draft(8) == [] and draft.draft(8) == [], "a failed guess rests the drafter two steps"
    assert draft.draft(8) == [10]
    draft.truncate(3)
    assert draft.tokens == [7, 8, 9] and draft.draft(8) == []


def test_a_greedy_reply_is_the_same_with_guesses_and_most_of_an_edit_is_guessed(engine: Engine) -> None:
    plain, without = _greedy_tokens(engine, SpeculationMode.OFF, EDIT)
    guessed, stats = _greedy_tokens(engine, SpeculationMode.NGRAM, EDIT)
    if _assert_same_but_for_a_tie(plain, guessed):
        assert stats.completion_tokens == without.completion_tokens
        assert stats.context_used == without.context_used
    assert without.drafted == 0 and stats.context_used <= KV_PAD
    assert stats.drafted >= 30 and stats.accepted >= stats.drafted / 2, (stats.drafted, stats.accepted)
    assert f"drafted {stats.drafted}, accepted {stats.accepted}" in stats.summary()


def test_the_cache_holds_only_the_tokens_kept(engine: Engine) -> None:
    engine.speculation = SpeculationMode.NGRAM
    generation = engine.start(EDIT, GREEDY, lambda _text: None, threading.Event(), cache_key="kept")
    llama_cpp, memory = engine._llama, engine._llama.llama_get_memory(engine._ctx)
    while generation.stop is None:
        engine.step((generation,))
        held = llama_cpp.llama_memory_seq_pos_max(memory, generation.slot.seq_id)
        assert held == len(generation.slot.tokens) - 1, "a guessed token not kept stayed in the cache"
    stats = engine.finish(generation)
    assert stats.drafted > stats.accepted > 0, "some guesses were taken and some refused"


def test_sampling_with_a_seed_gives_the_same_reply_with_guesses(engine: Engine) -> None:
    params = GREEDY.with_changes(temperature=0.8, top_p=0.9, seed=11)
    plain, _ = _reply(engine, SpeculationMode.OFF, EDIT, params)
    guessed, stats = _reply(engine, SpeculationMode.NGRAM, EDIT, params)
    assert guessed == plain and stats.drafted > 0


@pytest.mark.parametrize("max_tokens", [1, 2, 17, 41])
def test_max_tokens_ends_a_reply_inside_a_guess(engine: Engine, max_tokens: int) -> None:
    params = GREEDY.with_changes(max_tokens=max_tokens)
    plain, without = _reply(engine, SpeculationMode.OFF, EDIT, params)
    guessed, stats = _reply(engine, SpeculationMode.NGRAM, EDIT, params)
    assert guessed == plain and stats.completion_tokens == without.completion_tokens == max_tokens
    assert stats.stop_reason is StopReason.MAX_TOKENS


def test_a_stop_string_inside_a_guess_ends_the_reply_there(engine: Engine) -> None:
    plain, _ = _reply(engine, SpeculationMode.OFF, EDIT, GREEDY, stop_strings=["computing"])
    guessed, stats = _reply(engine, SpeculationMode.NGRAM, EDIT, GREEDY, stop_strings=["computing"])
    assert guessed == plain and "mathematics" in guessed and "computing" not in guessed
    assert stats.stop_reason is StopReason.END_OF_TURN and stats.drafted > 0


def test_log_probabilities_come_for_every_token_kept(engine: Engine) -> None:
    engine.speculation = SpeculationMode.NGRAM
    generation = engine.start(EDIT, GREEDY, lambda _text: None, threading.Event(), top_logprobs=2)
    while generation.stop is None:
        engine.step((generation,))
    stats = engine.finish(generation)
    assert stats.accepted > 0 and len(generation.logprobs) == stats.completion_tokens
    engine.speculation = SpeculationMode.OFF
    alone = engine.start(EDIT, GREEDY, lambda _text: None, threading.Event(), top_logprobs=2)
    while alone.stop is None:
        engine.step((alone,))
    engine.finish(alone)
    assert [t.chosen.raw for t in alone.logprobs] == [t.chosen.raw for t in generation.logprobs]


def test_a_reply_held_to_a_grammar_is_the_same_with_guesses(engine: Engine) -> None:
    grammar = 'root ::= "{" [^}]* "}"'
    params = GREEDY.with_changes(max_tokens=60)
    plain, _ = _reply(engine, SpeculationMode.OFF, EDIT, params, grammar=grammar)
    guessed, stats = _reply(engine, SpeculationMode.NGRAM, EDIT, params, grammar=grammar)
    assert guessed == plain and guessed.startswith("{") and stats.drafted > 0


def test_two_replies_at_once_are_each_the_same_as_alone(engine: Engine) -> None:
    alone = [_greedy_tokens(engine, SpeculationMode.OFF, messages)[0] for messages in (EDIT, FREE)]
    engine.speculation = SpeculationMode.NGRAM
    generations = [
        engine.start(
            messages, GREEDY, lambda _text: None, threading.Event(), cache_key=f"pair-{i}", top_logprobs=2
        )
        for i, messages in enumerate((EDIT, FREE))
    ]
    while any(g.stop is None for g in generations):
        engine.step(generations)
    stats = [engine.finish(g) for g in generations]
    for one, together in zip(alone, generations, strict=True):
        _assert_same_but_for_a_tie(one, list(together.logprobs))
    assert stats[0].accepted > 0


def test_a_reply_of_new_words_is_hardly_guessed_at(engine: Engine) -> None:
    text, stats = _reply(engine, SpeculationMode.NGRAM, FREE, GREEDY.with_changes(max_tokens=120))
    assert len(text) > 200
    assert stats.drafted <= stats.completion_tokens // 4, "failed guesses cost a decode each"


def test_off_drafts_nothing_and_the_guess_never_runs_past_the_batch(engine: Engine) -> None:
    _text, stats = _reply(engine, SpeculationMode.OFF, EDIT, GREEDY)
    assert stats.drafted == 0 and stats.accepted == 0 and "drafted" not in stats.summary()
    assert MAX_DRAFT < KV_PAD
    engine.speculation = SpeculationMode.OFF
    assert not engine.drafts
    engine.speculation = SpeculationMode.AUTO
    assert engine.drafts


def test_nothing_is_guessed_with_flash_attention_off(starter_model: Path) -> None:
    """Without flash attention a batch's attention is summed otherwise than one token's: guesses
    would change the text, so none are made."""
    engine = Engine()
    engine.load(starter_model, LoadOptions(context_length=512, n_parallel=1, flash_attn=False))
    try:
        engine.speculation = SpeculationMode.NGRAM
        assert not engine.drafts
    finally:
        engine.unload()
