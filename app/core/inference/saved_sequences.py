"""Conversations' sequences kept across evictions, model changes and restarts, for one context.

When a conversation's sequence must go (another reply needs it, the context is rebuilt, the model is
unloaded, the app quits), its state is saved to the disk cache (kv_disk.py); when the conversation
comes back and its history is not in memory, the state is restored, so only the new message is read.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from typing import Any

from app.core.inference.kv_disk import KvDiskCache
from app.core.inference.slots import Slot, Slots, common_prefix

log = logging.getLogger(__name__)


class SavedSequences:
    """Saves and restores one context's conversation sequences (only the inference thread uses it)."""

    def __init__(
        self,
        llama_cpp: Any,
        ctx: Any,
        slots: Slots,
        disk: KvDiskCache,
        fingerprint: dict[str, object],
        context_length: int,
    ) -> None:
        self._llama, self._ctx, self._slots, self.disk = llama_cpp, ctx, slots, disk
        #: What shaped the states: a state saved with anything else is never loaded.
        self.fingerprint = fingerprint
        self._context_length = context_length

    def save(self, slot: Slot) -> None:
        """Keep what a conversation's sequence holds on disk (nothing new since the last save: no-op)."""
        if slot.key is None or not slot.tokens or slot.saved == len(slot.tokens):
            return
        state = self._slots.state(slot)
        if state is not None and self.disk.save(slot.key, self.fingerprint, slot.tokens, bytes(state)):
            slot.saved = len(slot.tokens)

    def restore(self, slot: Slot, key: str, prompt: Sequence[int]) -> int:
        """Load `key`'s saved sequence into `slot` when it holds more of `prompt` than the slot does;
        how many prompt tokens it brought (0: none, or the file was not usable)."""
        in_memory = common_prefix(slot.tokens, prompt) if slot.key == key else 0
        if in_memory * 2 >= len(prompt):
            return 0  # most of it is here already
        entry = self.disk.load(key, self.fingerprint)
        if entry is None:
            return 0
        shared = common_prefix(entry.tokens, prompt)
        if shared <= in_memory or len(entry.tokens) >= self._context_length:
            return 0
        self._slots.forget(slot)
        llama_cpp = self._llama
        data = (ctypes.c_uint8 * len(entry.payload)).from_buffer_copy(entry.payload)
        loaded = int(llama_cpp.llama_state_seq_set_data(self._ctx, data, len(entry.payload), slot.seq_id))
        memory = llama_cpp.llama_get_memory(self._ctx)
        if not loaded or llama_cpp.llama_memory_seq_pos_max(memory, slot.seq_id) != len(entry.tokens) - 1:
            log.info("llama.cpp refused the saved KV cache of %s; reading the history instead", key)
            self._slots.forget(slot)
            self.disk.discard(key)
            return 0
        slot.tokens, slot.key, slot.saved = list(entry.tokens), key, len(entry.tokens)
        return shared

    def save_all(self) -> None:
        """Save every conversation's sequence (before the context goes)."""
        for slot in self._slots.all:
            try:
                self.save(slot)
            except Exception:  # a cache must never stop an unload or a quit
                log.exception("could not save the KV cache of %s", slot.key)
