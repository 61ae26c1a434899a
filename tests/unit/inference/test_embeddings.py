"""Embeddings with the loaded model: mean-pooled for a chat model, of its width, unit length,
deterministic, meaningful enough to rank, and bad inputs refused by index."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.inference.embedder import EmbeddingInputError
from app.core.inference.engine import Engine
from app.core.inference.errors import EngineError


def test_a_chat_model_embeds_with_mean_pooling_at_its_width(engine: Engine) -> None:
    out = engine.embed(["The cat sat on the mat.", "Stock markets fell sharply today."])
    assert out.vectors.shape == (2, 576) and out.vectors.dtype == np.float32
    assert out.pooling == "mean" and not out.own_pooling
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.tokens == len(engine.tokenize("The cat sat on the mat.")) + len(
        engine.tokenize("Stock markets fell sharply today.")
    )


def test_embeddings_are_deterministic_and_the_same_alone_or_together(engine: Engine) -> None:
    texts = ["Paris is the capital of France.", "Bread is baked in an oven."]
    together = engine.embed(texts).vectors
    alone = np.stack([engine.embed([text]).vectors[0] for text in reversed(texts)][::-1])
    assert np.allclose(together, alone, atol=1e-5)
    assert np.allclose(engine.embed(texts).vectors, together, atol=1e-6)


def test_similar_texts_are_nearer_than_unrelated_ones(engine: Engine) -> None:
    query, near, far = engine.embed(
        [
            "How do I bake bread at home?",
            "A simple recipe for baking bread in your kitchen.",
            "The stock market fell 3% on Monday.",
        ]
    ).vectors
    assert float(query @ near) > float(query @ far)


def test_token_ids_embed_as_their_text_does(engine: Engine) -> None:
    text = "Hello world"
    tokens = engine.tokenize(text)
    assert np.allclose(engine.embed([tokens]).vectors, engine.embed([text]).vectors, atol=1e-5)


def test_generation_goes_on_after_embeddings(engine: Engine) -> None:
    """The embeddings' context is its own: a reply's sequence is untouched."""
    import threading

    from app.core.values.sampling import SamplingParams

    params = SamplingParams(temperature=0.0, seed=1, max_tokens=12, context_length=2048)
    ask = [{"role": "user", "content": "Name a colour."}]

    def reply() -> str:
        pieces: list[str] = []
        generation = engine.start(ask, params, pieces.append, threading.Event())
        while generation.stop is None:
            engine.step([generation])
        engine.finish(generation)
        return "".join(pieces)

    first = reply()
    engine.embed(["something else entirely"])
    assert reply() == first


@pytest.mark.parametrize(
    ("inputs", "index", "said"),
    [
        (["fine", ""], 1, "empty"),
        ([[1, 2, 10**9]], 0, "not in the vocabulary"),
        (["ok", "word " * 5000], 1, "at most 2,048"),
        ([[]], 0, "empty"),
    ],
)
def test_bad_inputs_are_refused_naming_which(
    engine: Engine, inputs: list[object], index: int, said: str
) -> None:
    with pytest.raises(EmbeddingInputError) as caught:
        engine.embed(inputs)  # type: ignore[arg-type]
    assert caught.value.index == index and said in str(caught.value)


def test_nothing_loaded_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="No model is loaded"):
        Engine().embed(["hi"])
