"""LoRA adapters on the real starter model, written with the gguf package (random low-rank weights
for q and v): a scale of 0 gives exactly the base model's text, a scale of 1 another; switching
never reloads the model, never reuses a sequence computed with other adapters, and replies with
different adapters take turns in the batch, each as it would alone. Every adapter that cannot be
used is a clear message."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from app.core.inference.adapters import AdapterError
from app.core.inference.engine import Engine
from app.core.values.sampling import SamplingParams
from tests.gguf_writer import write_model
from tests.lora_writer import write_lora

GREEDY = SamplingParams(temperature=0.0, seed=1, max_tokens=12, context_length=2048)
QUESTION = [{"role": "user", "content": "Write one sentence about the sea."}]


@pytest.fixture(scope="module")
def lora(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lora(tmp_path_factory.mktemp("lora") / "sea-lora.gguf", starter_model, strength=0.08)


def reply(engine: Engine, adapters: Any = (), messages: list[dict[str, str]] = QUESTION) -> str:
    parts: list[str] = []
    generation = engine.start(messages, GREEDY, parts.append, threading.Event(), adapters=adapters)
    while generation.stop is None:
        engine.step([generation])
    engine.finish(generation)
    return "".join(parts)


def test_scale_0_is_the_base_model_and_scale_1_is_not(engine: Engine, lora: Path) -> None:
    base = reply(engine)
    assert reply(engine, [(lora, 0.0)]) == base
    changed = reply(engine, [(lora, 1.0)])
    assert changed and changed != base
    assert reply(engine, [(lora, 1.0)]) == changed  # the same adapter and scale: the same text
    # Back to the base model: its own text, not one read on with the adapter's keys and values.
    assert reply(engine) == base


def test_replies_with_different_adapters_take_turns_each_as_alone(engine: Engine, lora: Path) -> None:
    alone = {"base": reply(engine), "lora": reply(engine, [(lora, 1.0)])}
    texts: dict[str, list[str]] = {"base": [], "lora": []}
    cancel = threading.Event()
    with_base = engine.start(QUESTION, GREEDY, texts["base"].append, cancel)
    with_lora = engine.start(QUESTION, GREEDY, texts["lora"].append, cancel, adapters=[(lora, 1.0)])
    while with_base.stop is None or with_lora.stop is None:
        engine.step([g for g in (with_base, with_lora) if g.stop is None])
    engine.finish(with_base)
    engine.finish(with_lora)
    assert "".join(texts["base"]) == alone["base"]
    assert "".join(texts["lora"]) == alone["lora"]


def test_an_adapter_that_cannot_be_used_is_refused_saying_why(
    engine: Engine, lora: Path, starter_model: Path, tmp_path: Path
) -> None:
    narrow = write_lora(tmp_path / "narrow-lora.gguf", starter_model, width=512)
    other_arch = write_lora(tmp_path / "qwen-lora.gguf", starter_model, architecture="qwen2")
    cases = [
        ([(narrow, 1.0)], "does not fit SmolLM2-135M-Instruct.Q4_1.gguf: its weights have other shapes"),
        ([(other_arch, 1.0)], "made for another architecture"),
        ([(lora, 2.5)], r"scale 2\.5 .* out of range: use 0 to 2"),
        ([(lora, -0.1)], "out of range"),
        ([(tmp_path / "gone-lora.gguf", 1.0)], "is missing"),
        ([(starter_model, 1.0)], "not a LoRA adapter|could not be loaded"),
    ]
    free = engine.free_sequences
    for adapters, said in cases:
        with pytest.raises(AdapterError, match=said):
            reply(engine, adapters)
        assert engine.free_sequences == free  # nothing was taken
    assert reply(engine, [(lora, 1.0)])  # the good adapter still works
    model = tmp_path / "tiny.gguf"
    write_model(model)
    assert model.exists()


def test_the_inference_thread_applies_a_replys_adapters_and_refuses_bad_ones(
    starter_model: Path, lora: Path
) -> None:
    from app.core.inference.events import FailureCode, Loaded, ReplyDone, ReplyFailed
    from app.core.inference.options import LoadOptions
    from app.core.inference.thread import InferenceThread
    from tests.unit.inference.test_thread import Recorder

    recorder = Recorder()
    worker = InferenceThread(recorder, coalesce_s=0.0)
    worker.start()
    try:
        recorder.wait_for(Loaded, worker.load(starter_model, LoadOptions(context_length=1024, n_parallel=2)))
        base = recorder.wait_for(ReplyDone, worker.generate(QUESTION, GREEDY))
        tuned = recorder.wait_for(ReplyDone, worker.generate(QUESTION, GREEDY, adapters=[(lora, 1.0)]))
        zero = recorder.wait_for(ReplyDone, worker.generate(QUESTION, GREEDY, adapters=[(lora, 0.0)]))
        assert base.text != tuned.text and zero.text == base.text  # type: ignore[attr-defined]
        refused = recorder.wait_for(ReplyFailed, worker.generate(QUESTION, GREEDY, adapters=[(lora, 9.0)]))
        assert refused.code is FailureCode.INVALID and "out of range" in refused.message  # type: ignore[attr-defined]
        again = recorder.wait_for(ReplyDone, worker.generate(QUESTION, GREEDY))
        assert again.text == base.text  # type: ignore[attr-defined]
    finally:
        assert worker.shutdown(10.0)
