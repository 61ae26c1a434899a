"""One step of generation for every reply in progress: one llama.cpp batch, decoded once.

Replies being written go first (one token each, so they never wait behind a long prompt), then the
prompts being read, in the order they came, in chunks of what is left of the batch: a long prompt
holds the others up for at most one batch.

The tokens then go into the batch in order of sequence id. With a KV cache of one stream per
sequence, llama.cpp splits a batch into micro-batches of consecutive, increasing sequence ids
(llama_batch_allocr::split_equal), and each micro-batch is a pass over every weight of the model:
eight replies added as sequences 3, 0, 5, 1, ... took up to eight passes instead of one (measured:
a step of 8 tokens 61-88 ms instead of 43-48 ms once sequences were reused out of order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.core.inference.errors import ContextFullError, EngineError
from app.core.inference.generation import Generation
from app.core.inference.slots import Slots

#: llama_decode's return codes (llama.h).
DECODE_NO_KV_SLOT = 1
DECODE_ABORTED = 2


class Batch:
    """A llama_batch of up to `capacity` tokens, refilled every step (freed with `free`)."""

    def __init__(self, llama_cpp: Any, capacity: int) -> None:
        self._llama = llama_cpp
        self.capacity = capacity
        self._batch = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.n = 0

    def add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        """Add `token` at position `pos` of sequence `seq_id`; its index in the batch."""
        batch, n = self._batch, self.n
        batch.token[n] = token
        batch.pos[n] = pos
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq_id
        batch.logits[n] = 1 if logits else 0
        self.n = n + 1
        return n

    def decode(self, ctx: Any) -> int:
        """llama_decode the tokens added since the last decode; its return code."""
        self._batch.n_tokens = self.n
        rc = int(self._llama.llama_decode(ctx, self._batch))
        self.n = 0
        return rc

    def free(self) -> None:
        """Give the batch's memory back."""
        if self._batch is not None:
            self._llama.llama_batch_free(self._batch)
            self._batch = None


def step(ctx: Any, batch: Batch, slots: Slots, generations: Sequence[Generation]) -> list[Generation]:
    """Advance every generation by one decode; the generations that were in the batch.

    Raises ContextFullError or EngineError when llama.cpp fails the batch: then every generation in
    it is in an unknown state, and its sequence has been emptied."""
    budget = batch.capacity
    for generation in generations:
        generation.speculate()  # a guess at what follows makes a reply want more of the batch
    shares: list[tuple[Generation, int]] = []
    for writing in (True, False):  # who gets how much of the batch: replies being written first
        for generation in generations:
            if generation.reading == writing:
                continue
            share = min(generation.wanted, budget)
            if share:
                budget -= share
                shares.append((generation, share))
    taken: list[Generation] = []
    for generation, share in sorted(shares, key=lambda planned: planned[0].slot.seq_id):
        if generation.put(batch, share):
            taken.append(generation)
    if not taken:
        return []
    rc = batch.decode(ctx)
    if rc == DECODE_ABORTED:  # every generation in the batch was cancelled (Engine._abort)
        for generation in taken:
            generation.aborted()
            slots.trim(generation.slot)  # part of the batch may be in the KV cache
        return taken
    if rc != 0:
        for generation in taken:
            generation.aborted()
            slots.forget(generation.slot)
        if rc == DECODE_NO_KV_SLOT:
            raise ContextFullError(
                "The context window has no room left for this conversation. "
                "Start a new chat or raise the context length."
            )
        raise EngineError(f"llama.cpp failed to evaluate tokens (llama_decode error {rc}).")
    for generation in taken:
        generation.decoded()
        generation.take(ctx)
        if generation.overdrawn:  # guessed tokens the model did not keep leave the cache
            generation.overdrawn = False
            slots.trim(generation.slot)
    return taken
