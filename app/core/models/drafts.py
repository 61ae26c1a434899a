"""Which installed models could draft for a model (speculative decoding): smaller models with the
same vocabulary, usually the small members of its family (SmolLM2-135M for SmolLM2-1.7B, Qwen2.5-0.5B
for Qwen2.5-7B). The engine checks the vocabularies token by token when one is chosen."""

from __future__ import annotations

from collections.abc import Iterable

from app.core.models.gguf_file import ModelInfo

#: Vocabularies of one family may differ by a few added special tokens (llama.cpp allows 128).
VOCAB_SLACK = 128


def draft_candidates(target: ModelInfo, models: Iterable[ModelInfo]) -> list[ModelInfo]:
    """The models in `models` that may draft for `target`, smallest first (the one to offer)."""
    found = [
        info
        for info in models
        if info.path != target.path
        and not info.is_adapter
        and not info.is_embedding_model
        and info.file_size < target.file_size
        and info.vocab_size is not None
        and target.vocab_size is not None
        and abs(info.vocab_size - target.vocab_size) <= VOCAB_SLACK
    ]
    return sorted(found, key=lambda info: (info.file_size, info.path.name))
