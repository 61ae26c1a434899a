"""Sampling under a grammar (structured output) at nearly the speed of free sampling.

Applying a grammar to every token of the vocabulary costs more than the rest of the step for a small
model (49,152 candidates, each checked against the grammar's stacks). As llama.cpp's own tools do,
the token is first drawn without the grammar and only checked against it; in the rare case the
grammar refuses it, the draw is made again over the candidates the grammar allows. The reply is the
same either way: a token the grammar allows is drawn from the same distribution.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np

#: llama_token_data as numpy sees it: (id int32, logit float32, p float32).
TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


class GrammarSampling:
    """Draws one reply's tokens with its sampler chain, held to its grammar sampler."""

    def __init__(self, llama_cpp: Any, vocab: Any, chain: Any, grammar: Any) -> None:
        self._llama, self.chain, self.grammar = llama_cpp, chain, grammar
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        # One buffer of candidates for the whole reply, filled from the logits with numpy.
        self._data = (llama_cpp.llama_token_data * self.n_vocab)()
        self._view = np.frombuffer(self._data, dtype=TOKEN_DATA)
        self._ids = np.arange(self.n_vocab, dtype=np.int32)
        self._one = (llama_cpp.llama_token_data * 1)()
        # The buffers as llama_token_data pointers, cast once: sample() runs for every token.
        self._data_ptr = ctypes.cast(self._data, ctypes.POINTER(llama_cpp.llama_token_data))
        self._one_ptr = ctypes.cast(self._one, ctypes.POINTER(llama_cpp.llama_token_data))
        #: How often the grammar refused the freely drawn token (the draw was made again).
        self.redrawn = 0

    def _candidates(self, ctx: Any, row: int) -> Any:
        logits = self._llama.llama_get_logits_ith(ctx, row)
        self._view["id"] = self._ids
        self._view["logit"] = np.ctypeslib.as_array(logits, shape=(self.n_vocab,))
        self._view["p"] = 0.0
        # A fresh array header each time: the chain's samplers shrink, sort and select in it.
        return self._llama.llama_token_data_array(self._data_ptr, self.n_vocab, -1, False)

    def _allowed(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 1.0, 0.0
        single = self._llama.llama_token_data_array(self._one_ptr, 1, -1, False)
        self._llama.llama_sampler_apply(self.grammar, ctypes.byref(single))
        return not math.isinf(self._one[0].logit)

    def sample(self, ctx: Any, row: int) -> int | None:
        """The next token from row `row` of the logits; both samplers have taken it. None when no
        token is left: the grammar allows none that the chain has not ruled out (a logit_bias that
        bans the end of the turn once the JSON is complete). Accepting a token the grammar refuses
        would make llama.cpp abort the process, so it is never done."""
        llama = self._llama
        candidates = self._candidates(ctx, row)
        llama.llama_sampler_apply(self.chain, ctypes.byref(candidates))
        chosen = candidates.data[candidates.selected]
        token = int(chosen.id)
        if math.isinf(chosen.logit) or not self._allowed(token):
            self.redrawn += 1
            candidates = self._candidates(ctx, row)
            llama.llama_sampler_apply(self.grammar, ctypes.byref(candidates))
            llama.llama_sampler_apply(self.chain, ctypes.byref(candidates))
            chosen = candidates.data[candidates.selected]
            token = int(chosen.id)
            if math.isinf(chosen.logit) or not self._allowed(token):
                return None  # every candidate was ruled out
        llama.llama_sampler_accept(self.grammar, token)
        llama.llama_sampler_accept(self.chain, token)
        return token

    def free(self) -> None:
        """Free the grammar sampler (the chain is freed by its owner)."""
        if self.grammar is not None:
            self._llama.llama_sampler_free(self.grammar)
            self.grammar = None
