"""A second, smaller model of the same vocabulary that guesses the loaded model's next tokens
(speculative decoding with a draft model; speculation.py says how a guess is checked).

It keeps a context of its own with as many sequences as the loaded model's, each holding the same
conversation as the loaded model's sequence of the same id: before a guess only what is new since
the last one is read (the tokens the loaded model did not keep are dropped first), then the draft
model writes greedily, one token per decode for every reply at once, while it is confident (the
likeliest token at least P_MIN probable, as llama.cpp's server does). Only the inference thread
uses it.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.core.inference.abort_flag import AbortFlag
from app.core.inference.batch import Batch
from app.core.inference.errors import EngineError
from app.core.inference.llama_params import N_BATCH, context_params, last_error, open_model
from app.core.inference.options import LoadOptions
from app.core.inference.slots import common_prefix
from app.core.models.gguf_file import inspect_model

#: The draft's likeliest token must be at least this probable to be guessed (llama.cpp's p_min).
P_MIN = 0.75
#: Vocabularies may differ in size by this many tokens (added special tokens), as llama.cpp allows.
VOCAB_SLACK = 128
#: Token ids below this are special tokens that may differ; from it on, the texts must be equal.
FIRST_CHECKED = 5
#: How many token texts are compared (the whole vocabulary would take seconds for 150k tokens).
CHECKED = 2048


#: llama.cpp's tokenizer kinds (enum llama_vocab_type).
_KINDS = {
    0: "none",
    1: "SentencePiece",
    2: "byte-level BPE",
    3: "WordPiece",
    4: "Unigram",
    5: "RWKV",
    6: "PLaMo-2",
}


class DraftError(EngineError):
    """The draft model cannot guess for the loaded model (another vocabulary, an unreadable file)."""


@dataclass(frozen=True, slots=True)
class DraftInfo:
    """The draft model in use, as the window and the stats show it."""

    path: Path
    name: str
    file_size: int


def vocabulary_mismatch(llama_cpp: Any, target: Any, draft: Any) -> str | None:
    """Why `draft`'s vocabulary cannot stand for `target`'s (None: it can), checked as llama.cpp's
    speculative decoding does: the same kind, the same start and end tokens, nearly the same size,
    the same texts."""
    kind_t, kind_d = llama_cpp.llama_vocab_type(target), llama_cpp.llama_vocab_type(draft)
    if kind_t != kind_d:
        theirs, ours = _KINDS.get(kind_d, "of another kind"), _KINDS.get(kind_t, "another")
        return f"its tokenizer is {theirs}, the model's {ours}"
    n_t, n_d = llama_cpp.llama_vocab_n_tokens(target), llama_cpp.llama_vocab_n_tokens(draft)
    if abs(n_t - n_d) > VOCAB_SLACK:
        return f"its vocabulary has {n_d:,} tokens, the model's {n_t:,}"
    for what, get in (("start", llama_cpp.llama_vocab_bos), ("end", llama_cpp.llama_vocab_eos)):
        if get(target) != get(draft):
            return f"its {what}-of-text token is another"
    buffer = ctypes.create_string_buffer(256)

    def text(vocab: Any, token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, True)
        return buffer.raw[: max(0, n)]

    for token in range(FIRST_CHECKED, min(n_t, n_d, FIRST_CHECKED + CHECKED)):
        if text(target, token) != text(draft, token):
            return f"token {token} is {text(draft, token)!r} in it but {text(target, token)!r} in the model"
    return None


class DraftModel:
    """A draft model and its context: guesses for the replies of the loaded model."""

    def __init__(
        self,
        llama_cpp: Any,
        path: os.PathLike[str] | str,
        target_vocab: Any,
        target_name: str,
        threads: int,
        gpu: bool,
    ) -> None:
        info = inspect_model(path)  # ModelFileError with a clear message
        if info.is_adapter:
            raise DraftError(f"{info.path.name} is a LoRA adapter, not a model: it cannot draft.")
        self._llama, self._threads = llama_cpp, threads
        self._model: Any = open_model(llama_cpp, info, 999 if gpu else 0, None)
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._ctx: Any = None
        self._batch: Batch | None = None
        self._held: list[list[int]] = []
        self._abort = AbortFlag(llama_cpp)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        why = vocabulary_mismatch(llama_cpp, target_vocab, self._vocab)
        if why is not None:
            self.close()
            raise DraftError(
                f"{info.path.name} cannot draft for {target_name}: {why}. A draft model must share the "
                "model's vocabulary (a smaller model of the same family)."
            )
        self.info = DraftInfo(info.path, info.name, info.file_size)
        self._n_seq = self._n_ctx = 0

    def fit(self, n_seq: int, n_ctx: int) -> None:
        """Give it `n_seq` sequences of `n_ctx` tokens, as the loaded model's context has (a new
        context when they differ: what it held is read again at the next guess)."""
        if self._ctx is not None and (n_seq, n_ctx) == (self._n_seq, self._n_ctx):
            return
        self._free_context()
        llama_cpp = self._llama
        params = context_params(
            llama_cpp, LoadOptions(context_length=n_ctx), n_ctx, self._threads, self._abort, n_seq
        )
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not ctx:
            raise DraftError(f"The draft model's context could not be created. {last_error()}")
        self._ctx, self._n_seq, self._n_ctx = ctx, n_seq, n_ctx
        self._batch = Batch(llama_cpp, N_BATCH)
        self._held = [[] for _ in range(n_seq)]

    def guess(self, wants: Sequence[tuple[int, Sequence[int], int]]) -> list[list[int]]:
        """For each (sequence id, the sequence's tokens so far, most tokens wanted), the draft
        model's guess at what follows (maybe none). Raises DraftError when llama.cpp fails (what the
        draft context held is dropped then)."""
        if self._ctx is None or self._batch is None:
            raise DraftError("The draft model has no context.")
        guesses: list[list[int]] = [[] for _ in wants]
        rows = self._catch_up(wants)
        active = [i for i, (_seq, _history, most) in enumerate(wants) if most > 0 and rows[i] is not None]
        while active:
            going: list[int] = []
            for i in active:
                most = wants[i][2]
                token = self._confident(rows[i])
                if token is None:
                    continue
                guesses[i].append(token)
                if len(guesses[i]) < most:
                    going.append(i)
            if not going:
                break
            for i in going:  # the guessed token is read, for the one after it
                seq_id = wants[i][0]
                rows[i] = self._batch.add(guesses[i][-1], len(self._held[seq_id]), seq_id, True)
            self._decode()
            for i in going:
                self._held[wants[i][0]].append(guesses[i][-1])
            active = going
        return guesses  # a last token guessed is not read yet: the next guess reads it if it is kept

    def _catch_up(self, wants: Sequence[tuple[int, Sequence[int], int]]) -> list[int | None]:
        """Bring each sequence to its history (what differs dropped, what is new read, in shared
        batches); the row of each one's last token's logits (None when it has no history)."""
        assert self._batch is not None
        llama_cpp, memory = self._llama, self._llama.llama_get_memory(self._ctx)
        pending: list[list[int]] = []
        for seq_id, history, _most in wants:
            held = self._held[seq_id]
            keep = common_prefix(held, history)
            if keep == len(history) and keep > 0:
                keep -= 1  # the last token is read again: its logits are needed
            if keep < len(held):
                if not llama_cpp.llama_memory_seq_rm(memory, seq_id, keep, -1):
                    llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)
                    keep = 0
                del held[keep:]
            pending.append(list(history[keep:]))
        rows: list[int | None] = [None] * len(wants)
        while any(pending):
            budget = self._batch.capacity
            put: list[tuple[int, list[int]]] = []
            for i, tokens in enumerate(pending):
                if not tokens or budget <= 0:
                    continue
                take = tokens[:budget]
                seq_id = wants[i][0]
                start = len(self._held[seq_id])
                for j, token in enumerate(take):
                    last = len(take) == len(tokens) and j == len(take) - 1
                    row = self._batch.add(token, start + j, seq_id, last)
                    if last:
                        rows[i] = row
                budget -= len(take)
                del tokens[: len(take)]
                put.append((seq_id, take))
            self._decode()
            for seq_id, take in put:
                self._held[seq_id].extend(take)
        return rows

    def _confident(self, row: int | None) -> int | None:
        """The likeliest token at `row` when it is at least P_MIN probable, else None."""
        if row is None:
            return None
        logits = np.ctypeslib.as_array(
            self._llama.llama_get_logits_ith(self._ctx, row), shape=(self.n_vocab,)
        )
        best = int(logits.argmax())
        peak = float(logits[best])
        probability = 1.0 / float(np.exp(logits - peak).sum())
        if probability < P_MIN or self._llama.llama_vocab_is_eog(self._vocab, best):
            return None
        return best

    def _decode(self) -> None:
        assert self._batch is not None
        rc = self._batch.decode(self._ctx)
        if rc != 0:
            memory = self._llama.llama_get_memory(self._ctx)
            for seq_id, held in enumerate(self._held):
                self._llama.llama_memory_seq_rm(memory, seq_id, -1, -1)
                held.clear()
            raise DraftError(f"The draft model failed to read tokens (llama_decode error {rc}).")

    def _free_context(self) -> None:
        if self._batch is not None:
            self._batch.free()
            self._batch = None
        if self._ctx is not None:
            self._llama.llama_free(self._ctx)
            self._ctx = None
        self._held = []

    def close(self) -> None:
        """Free the context and the model."""
        self._free_context()
        if self._model is not None:
            self._llama.llama_model_free(self._model)
            self._model = None
