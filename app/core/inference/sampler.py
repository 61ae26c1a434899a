"""llama.cpp's sampler chain for a reply, built from SamplingParams (sampling then runs in C)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.core.values.sampling import SamplingParams

#: Tokens of recent history the repeat penalty looks at (llama.cpp's default).
PENALTY_LAST_N = 64


def build_sampler(
    llama_cpp: Any, vocab: Any, params: SamplingParams, seed: int, history: Sequence[int]
) -> Any:
    """A new sampler chain for one reply (the caller frees it with llama_sampler_free)."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler: Any) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    penalized = (
        params.repeat_penalty != 1.0 or params.frequency_penalty != 0.0 or params.presence_penalty != 0.0
    )
    if penalized:
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        add(
            llama_cpp.llama_sampler_init_penalties(
                n_vocab,
                PENALTY_LAST_N,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            )
        )
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
    if penalized:
        # The penalty also counts repeats of the prompt's last tokens, as llama.cpp's tools do.
        for token in history[-PENALTY_LAST_N:]:
            llama_cpp.llama_sampler_accept(chain, token)
    return chain
