"""An embedding model kept beside the chat model: a tiny random-weight BERT written with the gguf
package (llama.cpp's bert architecture, mean pooling). Its vectors are noise, but the path is real:
it loads, its vectors have its width and length 1, the same text gives the same vector, and the
engine's embeddings (the API's too) come from it until it is unloaded."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from app.core.inference.engine import Engine
from app.core.inference.errors import EngineError
from app.core.inference.events import Embedded, EmbeddingModelFailed, EmbeddingModelLoaded, Event
from app.core.inference.thread import InferenceThread
from app.core.models.gguf_file import ModelFileError, inspect_model
from tests.gguf_writer import write_bert


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bert") / "bge-test-f32.gguf"
    write_bert(path)
    return path


def test_an_embedding_model_is_known_by_its_gguf(bert: Path, starter_model: Path) -> None:
    assert inspect_model(bert).is_embedding_model
    assert not inspect_model(starter_model).is_embedding_model


def test_its_vectors_have_its_width_are_deterministic_and_replace_the_chat_models(
    engine: Engine, bert: Path
) -> None:
    assert engine.embed(["hello"]).vectors.shape == (1, 576)  # the starter model's, averaged
    info = engine.load_embedding_model(bert)
    assert (info.width, info.pooling, info.name) == (64, "mean", "test-bert-embed")
    assert engine.embedding_model == info
    first = engine.embed(["the bakery bread", "a glacier of ice", "the bakery bread"])
    assert first.vectors.shape == (3, 64) and first.own_pooling
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first.vectors[0], first.vectors[2])  # the same text, the same vector
    assert not np.allclose(first.vectors[0], first.vectors[1])
    again = engine.embed(["the bakery bread"]).vectors[0]
    assert np.array_equal(again, first.vectors[0])
    engine.unload_embedding_model()
    assert engine.embedding_model is None and engine.embed(["hello"]).vectors.shape == (1, 576)


def test_a_chat_model_or_a_damaged_file_is_refused_and_the_one_before_stays(
    engine: Engine, bert: Path, starter_model: Path, tmp_path: Path
) -> None:
    engine.load_embedding_model(bert)
    with pytest.raises(EngineError, match="is a chat model, not an embedding model"):
        engine.load_embedding_model(starter_model)
    damaged = tmp_path / "broken-embed.gguf"
    damaged.write_bytes(bert.read_bytes()[:3000])
    with pytest.raises(ModelFileError):
        engine.load_embedding_model(damaged)
    assert engine.embedding_model is not None and engine.embed(["x"]).vectors.shape == (1, 64)
    engine.unload_embedding_model()


def test_the_inference_thread_keeps_it_loaded_between_steps(bert: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    arrived = threading.Condition()

    def sink(event: Event) -> None:
        with arrived:
            events.append(event)
            arrived.notify_all()

    worker = InferenceThread(sink)
    worker.start()
    try:
        worker.load_embedding_model(bert, sink)
        worker.embed(["no chat model is loaded, and yet"], sink)
        worker.load_embedding_model(tmp_path / "missing.gguf", sink)
        with arrived:
            assert arrived.wait_for(lambda: len(events) >= 3, 60)
        loaded, embedded, failed = events[:3]
        assert (
            isinstance(loaded, EmbeddingModelLoaded) and loaded.model is not None and loaded.model.width == 64
        )
        assert isinstance(embedded, Embedded) and embedded.embeddings.vectors.shape == (1, 64)
        assert isinstance(failed, EmbeddingModelFailed) and "missing.gguf" in failed.message
    finally:
        assert worker.shutdown(10.0)
