"""llama.cpp's sampler chain for a reply, built from SamplingParams (sampling then runs in C)."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from typing import Any

from app.core.values.sampling import SamplingError, SamplingParams

#: Tokens of recent history the repeat penalty looks at (llama.cpp's default).
PENALTY_LAST_N = 64
#: A logit bias this low bans its token (OpenAI: "-100 should result in a ban").
BAN = -100.0


def build_sampler(
    llama_cpp: Any,
    vocab: Any,
    params: SamplingParams,
    seed: int,
    history: Sequence[int],
    logit_bias: Sequence[tuple[int, float]] = (),
) -> Any:
    """A new sampler chain for one reply (the caller frees it with llama_sampler_free). `logit_bias`
    adds (token, bias) to those tokens' logits first; a bias of -100 or less bans the token (as
    OpenAI's API means it). Raises SamplingError for a token the vocabulary does not have."""
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    for token, _bias in logit_bias:
        if not 0 <= token < n_vocab:
            raise SamplingError(
                f"logit_bias names token {token}, but this model's vocabulary has tokens 0 to {n_vocab - 1}."
            )
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler: Any) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    if logit_bias:
        biases = (llama_cpp.llama_logit_bias * len(logit_bias))()
        for entry, (token, bias) in zip(biases, logit_bias, strict=True):
            entry.token, entry.bias = token, -math.inf if bias <= BAN else bias
        add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(logit_bias), biases))

    penalized = (
        params.repeat_penalty != 1.0 or params.frequency_penalty != 0.0 or params.presence_penalty != 0.0
    )
    penalties = None
    if penalized:
        penalties = llama_cpp.llama_sampler_init_penalties(
            n_vocab,
            PENALTY_LAST_N,
            params.repeat_penalty,
            params.frequency_penalty,
            params.presence_penalty,
        )
        add(penalties)
    if params.temperature <= 0:
        add(llama_cpp.llama_sampler_init_greedy())
    else:
        if params.top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0:
            add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        add(llama_cpp.llama_sampler_init_dist(seed))
    if penalties is not None:
        # The penalty also counts repeats of the prompt's last tokens, as llama.cpp's tools do. Only
        # the penalty sees them: a grammar fed the prompt would be out of step (llama.cpp aborts).
        for token in history[-PENALTY_LAST_N:]:
            llama_cpp.llama_sampler_accept(penalties, token)
    return chain


def build_grammar(llama_cpp: Any, vocab: Any, grammar: str, triggers: Sequence[str] = ()) -> Any:
    """llama.cpp's sampler for a GBNF grammar (rule "root"), kept apart from the chain: see
    constrained.py. With `triggers` (regular expressions) it is lazy: it holds the reply only from
    where one first matches (the start of a tool call). Raises SamplingError when llama.cpp cannot
    parse it."""
    if triggers:
        patterns = (ctypes.c_char_p * len(triggers))(*(t.encode("utf-8") for t in triggers))
        sampler = llama_cpp.llama_sampler_init_grammar_lazy_patterns(
            vocab, grammar.encode("utf-8"), b"root", patterns, len(triggers), None, 0
        )
    else:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        raise SamplingError("The output format could not be turned into a grammar llama.cpp reads.")
    return sampler
