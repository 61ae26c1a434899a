"""A second model kept loaded beside the chat model, only for embeddings (document search, the API's
/v1/embeddings): a small GGUF embedding model such as bge-small or nomic-embed-text. It pools as it
was trained to, is far better at finding passages than a chat model's averaged token states, and
takes tens of megabytes. Only the inference thread uses it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.inference.embedder import Embedder, Embeddings
from app.core.inference.errors import EngineError
from app.core.inference.llama_params import open_model
from app.core.inference.vocabulary import Vocabulary
from app.core.models.gguf_file import inspect_model


@dataclass(frozen=True, slots=True)
class EmbeddingModelInfo:
    """A loaded embedding model, as the window shows it."""

    path: Path
    name: str
    width: int
    pooling: str


class EmbeddingModel:
    """An embedding model and its embedding context."""

    def __init__(self, llama_cpp: Any, path: os.PathLike[str] | str, threads: int, gpu: bool) -> None:
        info = inspect_model(path)  # ModelFileError with a clear message
        if not info.is_embedding_model:
            raise EngineError(
                f"{info.path.name} is a chat model, not an embedding model (its GGUF names no pooling). "
                "Choose an embedding model such as bge-small or nomic-embed-text."
            )
        self._llama = llama_cpp
        self._embedder: Embedder | None = None
        self._model: Any = open_model(llama_cpp, info, 999 if gpu else 0, None)
        try:
            self._embedder = Embedder(
                llama_cpp, self._model, Vocabulary(llama_cpp, self._model, info), threads
            )
            probe = self._embedder.embed(["probe"])  # makes its context; fails now, not at the first search
        except Exception:
            self.close()
            raise
        self.info = EmbeddingModelInfo(info.path, info.name, self._embedder.width, probe.pooling)

    def embed(self, texts: Sequence[str | Sequence[int]]) -> Embeddings:
        """Embeddings of `texts` (see Embedder.embed)."""
        if self._embedder is None:
            raise EngineError("The embedding model was unloaded.")
        return self._embedder.embed(texts)

    def close(self) -> None:
        """Free the context and the model."""
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
        if self._model is not None:
            self._llama.llama_model_free(self._model)
            self._model = None
