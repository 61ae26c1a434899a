"""The sequences of one llama.cpp context, and what each holds in the KV cache.

A context has room for a few sequences (llama.cpp's `n_seq_max`), each with its own part of the KV
cache. Every reply is generated in one of them, and what a sequence holds outlives the reply: a
follow-up in the same conversation, or an API client resending a growing chat history, is given the
sequence that already holds most of its prompt (as llama.cpp's own server does), so only the new
part is read. When none does, the reply takes an empty sequence, else the one unused longest.

A conversation the window names (a cache key) is found by its key, never by a shared start: a new
conversation then takes an empty sequence, else the one unused longest, so the conversations kept
in memory are the ones used last. When another sequence holds a long start of the new prompt (a
long system prompt, a branched conversation), that start is copied from it rather than read again.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.inference.vision import is_placeholder

#: The shortest shared start worth copying from another sequence (a copy costs a state round trip).
MIN_COPY = 64


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` share from the start."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(slots=True, eq=False)
class Slot:
    """One sequence of the context: its id, the tokens whose keys and values it holds (position i
    holds tokens[i]), and whether a reply is being generated in it."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    busy: bool = False
    last_used: float = 0.0
    #: The conversation it holds (its disk cache entry's key), or None.
    key: str | None = None
    #: How many of its tokens are on disk already (nothing to save again until it grows).
    saved: int = 0
    #: The LoRA adapters its keys and values were computed with (() : the base model alone).
    adapters: tuple[tuple[str, float], ...] = ()


class Slots:
    """The context's sequences (only the inference thread uses them)."""

    def __init__(self, llama_cpp: Any, ctx: Any, count: int, n_swa: int = 0) -> None:
        self._llama, self._ctx = llama_cpp, ctx
        #: The model's sliding attention window (0: none): such a cache keeps only the last n_swa
        #: positions, so a sequence cut back may no longer hold what its next token attends to.
        self._n_swa = n_swa
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.all = [Slot(seq_id) for seq_id in range(count)]

    def __len__(self) -> int:
        return len(self.all)

    @property
    def free(self) -> int:
        """Sequences no reply is using now."""
        return sum(1 for slot in self.all if not slot.busy)

    def choose(
        self, prompt: Sequence[int], key: str | None = None, adapters: tuple[tuple[str, float], ...] = ()
    ) -> Slot | None:
        """The free sequence a reply to `prompt` should use (None when all are busy).

        With a conversation `key`: the one holding it, else an empty one, else the one unused
        longest. Without: the one holding the longest start of the prompt when that start is most of
        what it holds and most of the prompt (the same conversation, grown, continued or
        regenerated); with no empty sequence left, when it is either (the same prompt sent again,
        say: only the old reply is dropped); otherwise an empty one, else the one unused longest.
        """
        free = [slot for slot in self.all if not slot.busy]
        if not free:
            return None
        empty = [slot for slot in free if not slot.tokens]

        def shared(slot: Slot) -> int:
            # Keys and values computed with other adapters are not this reply's: nothing is shared.
            return common_prefix(slot.tokens, prompt) if slot.adapters == adapters else 0

        if key is not None:  # a conversation's key names its adapter set too (Engine.start)
            mine = next((slot for slot in free if slot.key == key), None)
            if mine is not None:
                return mine
            return empty[0] if empty else min(free, key=lambda slot: slot.last_used)
        best = max(free, key=lambda slot: (shared(slot), slot.last_used))
        held = shared(best)
        most_held, most_prompt = 2 * held >= len(best.tokens), 2 * held >= len(prompt)
        if held and ((most_held and most_prompt) or (not empty and (most_held or most_prompt))):
            return best
        if empty:
            return empty[0]
        return min(free, key=lambda slot: slot.last_used)

    def donor(self, slot: Slot, prompt: Sequence[int]) -> Slot | None:
        """Another sequence (busy or not) holding at least MIN_COPY more tokens of the start of
        `prompt` than `slot` does, the one holding most; None when there is none."""
        own = common_prefix(slot.tokens, prompt)
        others = [other for other in self.all if other is not slot and other.adapters == slot.adapters]
        if not others:
            return None
        best = max(others, key=lambda other: common_prefix(other.tokens, prompt))
        shared = common_prefix(best.tokens, prompt)
        # The whole state is copied: not worth it for a short start of a long conversation.
        worth = shared - own >= MIN_COPY and 2 * shared >= len(best.tokens)
        return best if worth else None

    def state(self, slot: Slot) -> ctypes.Array[ctypes.c_uint8] | None:
        """What `slot`'s sequence holds, as llama.cpp serializes it (None when it gives nothing)."""
        llama_cpp, ctx = self._llama, self._ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, slot.seq_id))
        if size <= 0:
            return None
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buffer, size, slot.seq_id))
        if written <= 0:
            return None
        return buffer if written == size else (ctypes.c_uint8 * written).from_buffer_copy(buffer, 0)

    def copy_start(self, source: Slot, slot: Slot, prompt: Sequence[int]) -> int:
        """Make `slot` hold the start of `prompt` that `source` holds, copied, not computed; how many
        tokens it then holds (0 if llama.cpp refused: `slot` is empty then).

        The state goes through a buffer, not llama_memory_seq_cp: across the streams of a context
        that copy is deferred to the next decode, and a save or restore before it would see stale
        data."""
        llama_cpp = self._llama
        shared = common_prefix(source.tokens, prompt)
        self.forget(slot)
        state = self.state(source)
        if not state or not llama_cpp.llama_state_seq_set_data(self._ctx, state, len(state), slot.seq_id):
            self.forget(slot)
            return 0
        slot.tokens = list(source.tokens)
        if not llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, shared, -1):
            self.forget(slot)
            return 0
        del slot.tokens[shared:]
        slot.saved = 0
        if self._llama.llama_memory_seq_pos_max(self._memory, slot.seq_id) != shared - 1:
            self.forget(slot)  # not what was meant to be copied: read the prompt instead
            return 0
        return shared

    def reuse(self, slot: Slot, prompt: Sequence[int]) -> int:
        """Drop what `slot` holds after the start it shares with `prompt`; how many prompt tokens it
        keeps (at least the last prompt token is read again: its logits are needed)."""
        keep = common_prefix(slot.tokens, prompt)
        if keep == len(prompt) and keep > 0:
            keep -= 1
        while 0 < keep < len(prompt) and is_placeholder(prompt[keep]) and prompt[keep - 1] == prompt[keep]:
            keep -= 1  # an image is read whole or not at all
        if keep < len(slot.tokens):
            if not self._llama.llama_memory_seq_rm(self._memory, slot.seq_id, keep, -1):
                self.forget(slot)
                return 0
            del slot.tokens[keep:]
            slot.saved = 0  # what is on disk is another state now
        if keep and self._n_swa and not self._window_held(slot, keep):
            self.forget(slot)
            return 0
        return keep

    def _window_held(self, slot: Slot, keep: int) -> bool:
        """Whether a sliding-window cache still holds the positions the token at `keep` attends to
        (the same test as llama.cpp's server: else the prompt is read again)."""
        pos_min = int(self._llama.llama_memory_seq_pos_min(self._memory, slot.seq_id))
        return 0 <= pos_min <= max(0, keep - self._n_swa)

    def trim(self, slot: Slot) -> None:
        """Drop anything past the tokens `slot` records (a decode cut short may have left some)."""
        if not self._llama.llama_memory_seq_rm(self._memory, slot.seq_id, len(slot.tokens), -1):
            self.forget(slot)

    def forget(self, slot: Slot) -> None:
        """Empty `slot` entirely."""
        self._llama.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
        slot.tokens, slot.key, slot.saved, slot.adapters = [], None, 0, ()

    def take(self, slot: Slot) -> None:
        """A reply starts in `slot`."""
        slot.busy, slot.last_used = True, time.monotonic()

    def release(self, slot: Slot) -> None:
        """The reply in `slot` ended; what the slot holds stays for the next one."""
        slot.busy, slot.last_used = False, time.monotonic()
