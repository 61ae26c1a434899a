"""Sampling under a grammar in the engine: the reply follows it, greedy replies match llama.cpp's own
grammar-first sampling, and a grammar or a bias llama.cpp refuses leaves the sequence free."""

from __future__ import annotations

import json
import threading

import pytest

from app.core.inference.engine import Engine
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingError, SamplingParams

GREEDY = SamplingParams(temperature=0.0, seed=7, max_tokens=80, context_length=2048)
ASK = [{"role": "user", "content": "Is the sky blue? Answer yes or no, as JSON with a field answer."}]
YES_NO = 'root ::= "{\\"answer\\": \\"" ("yes" | "no") "\\"}"'


def _run(engine: Engine, grammar: str | None, params: SamplingParams = GREEDY) -> tuple[str, StopReason]:
    pieces: list[str] = []
    generation = engine.start(ASK, params, pieces.append, threading.Event(), grammar=grammar)
    while generation.stop is None:
        engine.step([generation])
    stats = engine.finish(generation)
    return "".join(pieces), stats.stop_reason


def test_a_reply_follows_its_grammar_and_ends_when_it_is_complete(engine: Engine) -> None:
    for seed in range(4):
        text, stop = _run(engine, YES_NO, GREEDY.with_changes(temperature=1.0, seed=seed))
        assert json.loads(text)["answer"] in ("yes", "no") and stop is StopReason.END_OF_TURN, text


def test_drawing_first_and_checking_gives_what_the_grammar_first_would(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Greedy: the token drawn freely and then checked is the one a grammar-first draw gives."""
    from app.core.inference import constrained

    fast, _ = _run(engine, YES_NO)
    real = constrained.GrammarSampling._allowed
    calls = [0]

    def refuse_the_free_draw(self: constrained.GrammarSampling, token: int) -> bool:
        calls[0] += 1  # each token is checked twice when redrawn: the free draw, then the redraw
        return False if calls[0] % 2 else real(self, token)

    monkeypatch.setattr(constrained.GrammarSampling, "_allowed", refuse_the_free_draw)  # always redraw
    slow, _ = _run(engine, YES_NO)
    assert fast == slow


def test_a_refused_grammar_or_bias_leaves_the_sequence_free(engine: Engine) -> None:
    free = engine.free_sequences
    with pytest.raises(SamplingError, match="grammar"):
        engine.start(ASK, GREEDY, lambda _t: None, threading.Event(), grammar="root ::= ((")
    with pytest.raises(SamplingError, match="vocabulary has tokens"):
        engine.start(ASK, GREEDY, lambda _t: None, threading.Event(), logit_bias=((10**7, 1.0),))
    assert engine.free_sequences == free
    text, _ = _run(engine, None)
    assert text  # the engine goes on


def test_a_grammar_whose_only_way_out_is_banned_ends_the_reply_instead_of_aborting(engine: Engine) -> None:
    """Once the JSON is complete the grammar allows only the end of the turn; a logit_bias of -100 on
    those tokens leaves nothing to draw. Accepting a token the grammar refuses would make llama.cpp
    abort the whole process (std::terminate), so the reply ends there."""
    from app.core.system.binding import import_llama_cpp

    llama_cpp = import_llama_cpp()
    vocab = engine.vocabulary.vocab
    ends = [t for t in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    banned = tuple((token, -100.0) for token in ends)
    for seed in range(3):
        pieces: list[str] = []
        params = GREEDY.with_changes(temperature=1.0, seed=seed)
        cancel = threading.Event()
        generation = engine.start(ASK, params, pieces.append, cancel, grammar=YES_NO, logit_bias=banned)
        while generation.stop is None:
            engine.step([generation])
        engine.finish(generation)
        assert json.loads("".join(pieces))["answer"] in ("yes", "no")


def test_a_lazy_grammar_holds_the_reply_only_from_where_its_trigger_matches(engine: Engine) -> None:
    """tool_choice "auto": free text until a call begins, the call then held (here "Paris" plays
    the call's opening marker)."""
    question = [{"role": "user", "content": "What is the capital of France?"}]
    free: list[str] = []
    generation = engine.start(question, GREEDY, free.append, threading.Event())
    while generation.stop is None:
        engine.step([generation])
    engine.finish(generation)
    free_text = "".join(free)
    assert "Paris" in free_text and not free_text.rstrip().endswith("Paris, whose grammar held it.")
    held: list[str] = []
    grammar = 'root ::= "Paris, whose grammar held it."'
    generation = engine.start(
        question, GREEDY, held.append, threading.Event(), grammar=grammar, grammar_triggers=("Paris",)
    )
    while generation.stop is None:
        engine.step([generation])
    stats = engine.finish(generation)
    text = "".join(held)
    before = free_text[: free_text.index("Paris")]
    assert text == before + "Paris, whose grammar held it.", text  # the same words until the trigger
    assert stats.stop_reason is StopReason.END_OF_TURN
