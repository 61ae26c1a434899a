"""What a context's KV cache holds, kept in step with it, so a follow-up reuses the shared prefix.

Between turns the cache keeps the conversation so far: a new prompt that begins the same way only
needs its new tokens evaluated. `KvCache` evaluates tokens into the cache and drops what a new
prompt no longer shares, and always knows which token sits at each position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.core.inference.errors import ContextFullError, EngineError
from app.core.inference.llama_params import N_BATCH

#: llama_decode's return codes (llama.h).
DECODE_NO_KV_SLOT = 1
DECODE_ABORTED = 2


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class KvCache:
    """The KV cache of one llama.cpp context (which the engine owns and frees) and its tokens."""

    __slots__ = ("_ctx", "_llama", "_memory", "tokens")

    def __init__(self, llama_cpp: Any, ctx: Any) -> None:
        self._llama = llama_cpp
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        #: Tokens whose keys and values are in the KV cache, in order (position i holds tokens[i]).
        self.tokens: list[int] = []

    def decode(self, tokens: Sequence[int]) -> bool:
        """Evaluate tokens (in batches); False if a stop aborted it (the cache is then trimmed)."""
        llama_cpp = self._llama
        for start in range(0, len(tokens), N_BATCH):
            chunk = tokens[start : start + N_BATCH]
            array = (llama_cpp.llama_token * len(chunk))(*chunk)
            rc = llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(array, len(chunk)))
            if rc == DECODE_ABORTED:
                # Part of the batch may be in the KV cache: drop it so the bookkeeping stays true.
                if not llama_cpp.llama_memory_seq_rm(self._memory, -1, len(self.tokens), -1):
                    llama_cpp.llama_memory_clear(self._memory, True)
                    self.tokens = []
                return False
            if rc == DECODE_NO_KV_SLOT:
                raise ContextFullError(
                    "The context window has no room left for this conversation. "
                    "Start a new chat or raise the context length."
                )
            if rc != 0:
                raise EngineError(f"llama.cpp failed to evaluate tokens (llama_decode error {rc}).")
            self.tokens.extend(chunk)
        return True

    def reuse(self, prompt: list[int]) -> int:
        """Drop the cached tokens after the shared prefix; return how many prompt tokens are reused."""
        keep = _common_prefix(self.tokens, prompt)
        if keep == len(prompt) and keep > 0:
            keep -= 1  # the last prompt token must be evaluated again to get fresh logits
        if keep < len(self.tokens):
            if not self._llama.llama_memory_seq_rm(self._memory, -1, keep, -1):
                self._llama.llama_memory_clear(self._memory, True)
                keep = 0
            del self.tokens[keep:]
        return keep
