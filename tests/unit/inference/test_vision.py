"""Vision on the real engine: the starter model with a test projector (random weights, the real
llama.cpp multimodal library). The replies are noise, but the whole path is real: the projector
loads, an image becomes the tokens its encoder gives, different images give different replies, a
follow-up reuses the image in the KV cache, images and text replies batch together, and every bad
input is a clear message."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.core.inference.engine import Engine
from app.core.inference.errors import InvalidInput
from app.core.inference.options import LoadOptions
from app.core.inference.vision import ProjectorError, Vision
from app.core.media.images import ImageSource, image_part
from app.core.values.sampling import SamplingParams
from tests.projector_writer import write_projector

GREEDY = SamplingParams(temperature=0.0, seed=1, max_tokens=12, context_length=2048)


def png(color: tuple[int, int, int], size: tuple[int, int] = (96, 64), stripes: bool = False) -> bytes:
    """A PNG of one colour (with stripes of its inverse, to differ in shape as well)."""
    image = Image.new("RGB", size, color)
    if stripes:
        for x in range(0, size[0], 8):
            for y in range(size[1]):
                image.putpixel((x, y), tuple(255 - c for c in color))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def ask(text: str, *images: bytes) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        image_part(ImageSource(data, f"picture{i}.png")) for i, data in enumerate(images)
    ]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def projector(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("vision") / "mmproj-test-f16.gguf"
    return path, write_projector(path)


@pytest.fixture(scope="module")
def seeing(starter_model: Path, projector: tuple[Path, int]) -> Iterator[Engine]:
    """The starter model with the test projector, two sequences."""
    engine = Engine()
    engine.load(starter_model, LoadOptions(context_length=2048, n_parallel=2, projector=projector[0]))
    yield engine
    engine.unload()


def reply(engine: Engine, messages: list[dict[str, Any]], **kwargs: Any) -> tuple[str, Any]:
    parts: list[str] = []
    stats = engine.stream_chat(messages, GREEDY, parts.append, threading.Event(), **kwargs)
    return "".join(parts), stats


def test_the_projector_loads_and_an_image_takes_the_tokens_its_encoder_gives(
    seeing: Engine, projector: tuple[Path, int]
) -> None:
    assert seeing.loaded is not None and seeing.loaded.vision and seeing.vision
    assert seeing.loaded.projector == projector[0]
    text_only = seeing.count_tokens(ask("What is in this picture?"))
    with_one = seeing.count_tokens(ask("What is in this picture?", png((200, 30, 30))))
    with_two = seeing.count_tokens(ask("What is in this picture?", png((200, 30, 30)), png((0, 0, 255))))
    n_image = projector[1]
    assert n_image == 16
    assert with_one - text_only == n_image
    assert with_two - text_only == 2 * n_image


def test_two_different_images_give_different_replies_and_the_same_image_the_same(seeing: Engine) -> None:
    red, blue = png((220, 20, 20)), png((20, 20, 220), stripes=True)
    first, stats = reply(seeing, ask("Describe the picture.", red))
    assert stats.completion_tokens > 0 and first
    assert stats.prompt_tokens == seeing.count_tokens(ask("Describe the picture.", red))
    other, _ = reply(seeing, ask("Describe the picture.", blue))
    again, _ = reply(seeing, ask("Describe the picture.", red))
    assert other != first
    assert again == first


def test_a_follow_up_reuses_the_image_already_in_the_kv_cache(seeing: Engine) -> None:
    picture = png((30, 160, 60), stripes=True)
    history = ask("What colour is this?", picture)
    answer, first = reply(seeing, history)
    follow_up = [
        *history,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Are you sure?"},
    ]
    _, second = reply(seeing, follow_up)
    assert first.prompt_tokens_evaluated > 16  # the image was read (a system prompt may be held)
    # Only the new turn is read: the first prompt, image and all, stays in the cache.
    assert second.prompt_tokens - second.prompt_tokens_evaluated >= first.prompt_tokens
    assert second.prompt_tokens_evaluated < 40


def test_an_image_reply_and_a_text_reply_are_generated_in_one_batch(seeing: Engine) -> None:
    text_question = [{"role": "user", "content": "Name three colours."}]
    alone, _ = reply(seeing, text_question)
    seen: dict[str, list[str]] = {"image": [], "text": []}
    cancel = threading.Event()
    with_image = seeing.start(ask("Describe it.", png((90, 90, 10))), GREEDY, seen["image"].append, cancel)
    with_text = seeing.start(text_question, GREEDY, seen["text"].append, cancel)
    batched = 0
    while with_image.stop is None or with_text.stop is None:
        running = [g for g in (with_image, with_text) if g.stop is None]
        batched += len(running) == 2
        seeing.step(running)
    seeing.finish(with_image)
    seeing.finish(with_text)
    assert batched > 0
    assert "".join(seen["text"]) == alone  # batching with an image changes nothing for the other
    assert "".join(seen["image"])


def test_a_model_without_a_projector_refuses_images_with_a_clear_message(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="reads text only"):
        reply(engine, ask("What is this?", png((1, 2, 3))))
    assert not engine.vision
    text, _ = reply(engine, [{"role": "user", "content": "Hello"}])  # the chat goes on
    assert text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is a text file, not a picture", "not an image"),
        (png((10, 10, 10))[:120], "damaged or cut short"),
        (b"", "empty"),
    ],
    ids=["not-an-image", "truncated-png", "empty"],
)
def test_an_image_that_cannot_be_read_is_a_clear_message_and_the_chat_goes_on(
    seeing: Engine, data: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        reply(seeing, ask("What is this?", data))
    assert seeing.free_sequences == 2  # nothing is held by the failed reply
    text, _ = reply(seeing, ask("And this?", png((5, 100, 200))))
    assert text


def test_a_projector_that_cannot_be_used_leaves_the_model_for_text_saying_why(
    starter_model: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "mmproj-other.gguf"
    write_projector(wrong, width=512)
    missing = tmp_path / "mmproj-gone.gguf"
    damaged = tmp_path / "mmproj-damaged.gguf"
    damaged.write_bytes(wrong.read_bytes()[:5000])
    engine = Engine()
    for projector, why in [
        (wrong, r"does not fit this model: it gives each image token 512 numbers and the model reads 576"),
        (missing, "is missing"),
        (damaged, "could not be loaded"),
    ]:
        loaded = engine.load(starter_model, LoadOptions(context_length=512, projector=projector))
        assert not loaded.vision and loaded.projector is None and not engine.vision
        assert loaded.vision_note is not None
        assert re.search(why, loaded.vision_note) and "reads text only" in loaded.vision_note
        assert projector.name in loaded.vision_note
        with pytest.raises(InvalidInput, match="reads text only"):
            reply(engine, ask("What is this?", png((1, 2, 3))))
        text, _ = reply(engine, [{"role": "user", "content": "Hello"}])
        assert text  # the chat goes on
    with pytest.raises(ProjectorError, match=r"not a vision projector|could not be loaded"):
        Vision.open(engine._llama, engine._model, starter_model, 1, use_gpu=False)  # a model is no projector
    engine.unload()
