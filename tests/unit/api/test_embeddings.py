"""POST /v1/embeddings through the openai SDK with the starter model (mean pooling): shapes, order,
determinism, both encodings, usage, and bad inputs refused by name."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import openai
import pytest

from app.core.inference.events import EmbeddingModelLoaded, Event
from tests.gguf_writer import write_bert
from tests.unit.api.served import MODEL, Served

TEXTS = ["The cat sat on the mat.", "Stock markets fell sharply today.", "A recipe for sourdough bread."]


def test_each_input_has_a_unit_vector_of_the_models_width_in_order(served: Served) -> None:
    reply = served.client.embeddings.create(model=MODEL, input=TEXTS)  # the SDK asks for base64
    assert [item.index for item in reply.data] == [0, 1, 2]
    assert all(len(item.embedding) == 576 for item in reply.data)
    assert all(math.isclose(math.hypot(*item.embedding), 1.0, abs_tol=1e-4) for item in reply.data)
    assert reply.model == "SmolLM2-135M-Instruct.Q4_1 (mean pooling)"
    assert reply.usage.prompt_tokens == reply.usage.total_tokens > len(TEXTS)
    one = served.client.embeddings.create(model=MODEL, input=TEXTS[1], encoding_format="float")
    assert len(one.data) == 1
    assert one.data[0].embedding == pytest.approx(reply.data[1].embedding, abs=1e-5)


def test_embeddings_are_deterministic(served: Served) -> None:
    first = served.client.embeddings.create(model=MODEL, input=TEXTS[:2], encoding_format="float")
    again = served.client.embeddings.create(model=MODEL, input=TEXTS[:2], encoding_format="float")
    assert [d.embedding for d in first.data] == [d.embedding for d in again.data]


def test_more_inputs_than_one_turn_holds_keep_their_order(served: Served) -> None:
    texts = [f"Sentence number {i} is about topic {i % 3}." for i in range(19)]
    many = served.client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.index for d in many.data] == list(range(19))
    last = served.client.embeddings.create(model=MODEL, input=texts[-1], encoding_format="float")
    assert many.data[-1].embedding == pytest.approx(last.data[0].embedding, abs=1e-5)


def test_token_ids_are_accepted(served: Served) -> None:
    reply = served.client.embeddings.create(model=MODEL, input=[[504, 2362, 1118]], encoding_format="float")
    flat = served.client.embeddings.create(model=MODEL, input=[504, 2362, 1118], encoding_format="float")
    assert reply.data[0].embedding == pytest.approx(flat.data[0].embedding)


@pytest.mark.parametrize(
    ("body", "param", "said"),
    [
        ({"input": ""}, "input", "empty"),
        ({"input": ["ok", ""]}, "input[1]", "empty"),
        ({"input": []}, "input", "an empty list"),
        ({"input": [[1, 2, 10**9]]}, "input[0]", "not in the vocabulary"),
        ({"input": "word " * 5000}, "input", "at most 2,048"),
        ({"input": "hi", "dimensions": 64}, "dimensions", "not supported"),
        ({"input": "hi", "encoding_format": "int8"}, "encoding_format", ""),
        ({"input": "hi", "pooling": "cls"}, "pooling", "Unrecognized"),
        ({"input": {"text": "hi"}}, "input", ""),
    ],
)
def test_bad_inputs_are_refused_by_name(served: Served, body: dict[str, Any], param: str, said: str) -> None:
    answer = served.raw("/embeddings", json={"model": MODEL, **body})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and said in error["message"], error


def test_an_embedding_model_kept_beside_the_chat_model_answers_by_its_name(
    served: Served, tmp_path: Path
) -> None:
    bert = tmp_path / "bge-test-f32.gguf"
    write_bert(bert)
    answered: list[Event] = []
    done = threading.Event()

    def sink(event: Event) -> None:
        answered.append(event)
        done.set()

    served.worker.load_embedding_model(bert, sink)
    assert done.wait(60) and isinstance(answered[0], EmbeddingModelLoaded)
    try:
        listed = {m.id: m.model_dump() for m in served.client.models.list().data}
        assert listed[bert.stem]["kind"] == "embedding" and listed[bert.stem]["state"] == "loaded"
        reply = served.client.embeddings.create(model=bert.stem, input=TEXTS[:2])
        assert reply.model == bert.stem and [len(d.embedding) for d in reply.data] == [64, 64]
        again = served.client.embeddings.create(model=bert.stem, input=TEXTS[0])
        assert again.data[0].embedding == reply.data[0].embedding
        with pytest.raises(openai.BadRequestError, match="answers POST /v1/embeddings only"):
            served.client.chat.completions.create(
                model=bert.stem, messages=[{"role": "user", "content": "Hi"}]
            )
    finally:
        done.clear()
        served.worker.load_embedding_model(None, sink)
        assert done.wait(30)
    assert len(served.client.embeddings.create(model=MODEL, input="x").data[0].embedding) == 576
