"""Embeddings of text with the loaded model: a context of its own, set up for pooled embeddings.

An embedding model (a GGUF whose `pooling_type` is set, such as nomic-embed or bge) pools its
tokens as it was trained to; any other model's token states are averaged (mean pooling), which
serves for search until an embedding model is loaded. The vectors are scaled to length 1, as
OpenAI's are. The context is made on the first request and freed with the model; generation's
context and its sequences are left as they are.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.inference.errors import EngineError
from app.core.inference.vocabulary import Vocabulary

#: The longest input, in tokens (and no longer than the model was trained on).
MAX_EMBED_TOKENS = 2048
#: llama.cpp's pooling types.
POOLING_UNSPECIFIED, POOLING_NONE, POOLING_MEAN, POOLING_RANK = -1, 0, 1, 4
POOLING_NAMES = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}


class EmbeddingInputError(EngineError):
    """An input cannot be embedded (empty, too long, a token the vocabulary lacks); `index` says which."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True, slots=True)
class Embeddings:
    """The vectors of some inputs (one row each, length 1), the tokens they took, and the pooling."""

    vectors: np.ndarray
    tokens: int
    #: "mean" for a model with no pooling of its own (its token states averaged), else its own.
    pooling: str
    #: The model pools as it was trained to (an embedding model).
    own_pooling: bool


class Embedder:
    """Embeds text with one loaded model (on the inference thread, like everything that touches it)."""

    def __init__(self, llama_cpp: Any, model: Any, vocabulary: Vocabulary, threads: int) -> None:
        self._llama, self._model, self._vocabulary, self._threads = llama_cpp, model, vocabulary, threads
        self._ctx: Any = None
        self._batch: Any = None
        self._pooling = POOLING_UNSPECIFIED
        self._own = False
        train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.max_tokens = min(MAX_EMBED_TOKENS, train) if train > 0 else MAX_EMBED_TOKENS
        self.width = int(llama_cpp.llama_model_n_embd(model))

    def close(self) -> None:
        """Free the context (the model stays)."""
        if self._batch is not None:
            self._llama.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            self._llama.llama_free(self._ctx)
            self._ctx = None

    def tokens(self, texts: Sequence[str | Sequence[int]]) -> list[list[int]]:
        """Each input as tokens (text tokenized as the model wants it, BOS and EOS included; token
        ids checked against the vocabulary). Raises EmbeddingInputError."""
        vocabulary, llama = self._vocabulary, self._llama
        n_vocab = int(llama.llama_vocab_n_tokens(vocabulary.vocab))
        add_eos = bool(llama.llama_vocab_get_add_eos(vocabulary.vocab))
        eos = int(llama.llama_vocab_sep(vocabulary.vocab))
        if eos < 0:
            eos = int(llama.llama_vocab_eos(vocabulary.vocab))
        out = []
        for index, text in enumerate(texts):
            if isinstance(text, str):
                tokens = vocabulary.tokenize(text, special=False)
                if add_eos and eos >= 0 and (not tokens or tokens[-1] != eos):
                    tokens.append(eos)  # BERT-style models end every input with [SEP]
            else:
                tokens = list(text)
                bad = next((t for t in tokens if not 0 <= t < n_vocab), None)
                if bad is not None:
                    raise EmbeddingInputError(
                        index, f"token {bad} is not in the vocabulary (0 to {n_vocab - 1})"
                    )
            if not tokens:
                raise EmbeddingInputError(index, "the input is empty")
            if len(tokens) > self.max_tokens:
                raise EmbeddingInputError(
                    index,
                    f"the input is {len(tokens):,} tokens long; at most {self.max_tokens:,} can be embedded",
                )
            out.append(tokens)
        return out

    def embed(self, texts: Sequence[str | Sequence[int]]) -> Embeddings:
        """The embeddings of `texts` (strings, or token ids). Raises EngineError."""
        inputs = self.tokens(texts)
        ctx = self._context()
        llama, batch = self._llama, self._batch
        memory = llama.llama_get_memory(ctx)
        vectors = np.empty((len(inputs), self.width), dtype=np.float32)
        encode = bool(llama.llama_model_has_encoder(self._model)) and not llama.llama_model_has_decoder(
            self._model
        )
        for row, tokens in enumerate(inputs):
            llama.llama_memory_clear(memory, True)
            for i, token in enumerate(tokens):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = True
            batch.n_tokens = len(tokens)
            status = llama.llama_encode(ctx, batch) if encode else llama.llama_decode(ctx, batch)
            if status != 0:
                raise EngineError(f"llama.cpp could not embed input {row} (error {status}).")
            pooled = llama.llama_get_embeddings_seq(ctx, 0)
            if not pooled:
                raise EngineError("llama.cpp returned no embedding.")
            vector = np.ctypeslib.as_array(
                ctypes.cast(pooled, ctypes.POINTER(ctypes.c_float)), shape=(self.width,)
            )
            norm = float(np.linalg.norm(vector))
            vectors[row] = vector / norm if norm > 0 else vector
        return Embeddings(vectors, sum(map(len, inputs)), POOLING_NAMES.get(self._pooling, "mean"), self._own)

    def _context(self) -> Any:
        if self._ctx is not None:
            return self._ctx
        ctx = self._make(POOLING_UNSPECIFIED)  # the model's own pooling, if it has one
        pooling = int(self._llama.llama_pooling_type(ctx))
        self._own = pooling not in (POOLING_NONE, POOLING_UNSPECIFIED, POOLING_RANK)
        if not self._own:  # a chat model: average its token states
            self._llama.llama_free(ctx)
            ctx, pooling = self._make(POOLING_MEAN), POOLING_MEAN
        self._ctx, self._pooling = ctx, pooling
        self._batch = self._llama.llama_batch_init(self.max_tokens, 0, 1)
        return ctx

    def _make(self, pooling: int) -> Any:
        llama = self._llama
        params = llama.llama_context_default_params()
        # Pooling needs a whole input in one micro-batch.
        params.n_ctx = params.n_batch = params.n_ubatch = self.max_tokens
        params.n_seq_max = 1
        params.embeddings = True
        params.pooling_type = pooling
        params.n_threads = params.n_threads_batch = self._threads
        params.no_perf = True
        ctx = llama.llama_init_from_model(self._model, params)
        if not ctx:
            raise EngineError("Could not create a context for embeddings (not enough memory?).")
        return ctx
