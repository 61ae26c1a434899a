"""A draft model: the starter (Q4_1) guesses for its F16 copy, and the reply is the F16 model's own;
a draft model of another vocabulary, an adapter or a damaged file is refused with the reason, and the
choice follows the loaded model through a new context and a reload."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.inference.draft_model import DraftError
from app.core.inference.engine import Engine
from app.core.inference.options import LoadOptions
from app.core.models.gguf_file import ModelFileError
from app.core.values.replies import ReplyStats
from app.core.values.sampling import SamplingParams
from app.core.values.speculation import SpeculationMode
from tests.gguf_writer import write_model
from tests.lora_writer import write_lora

STORY = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
GREEDY = SamplingParams(temperature=0.0, max_tokens=80, context_length=1024)


@pytest.fixture(scope="module")
def engine(starter_f16: Path) -> Iterator[Engine]:
    """The F16 copy of the starter, loaded with two sequences."""
    loaded = Engine()
    loaded.load(starter_f16, LoadOptions(context_length=1024, n_parallel=2))
    yield loaded
    loaded.set_draft_model(None)
    loaded.unload()


def _reply(engine: Engine, mode: SpeculationMode, key: str) -> tuple[str, ReplyStats]:
    engine.speculation = mode
    parts: list[str] = []
    generation = engine.start(STORY, GREEDY, parts.append, threading.Event(), cache_key=key)
    while generation.stop is None:
        engine.step((generation,))
    return "".join(parts), engine.finish(generation)


def test_the_starter_drafts_for_its_f16_copy_and_the_reply_is_the_same(
    engine: Engine, starter_model: Path
) -> None:
    plain, without = _reply(engine, SpeculationMode.OFF, "plain")
    info = engine.set_draft_model(starter_model)
    assert info is not None and info.path == starter_model and engine.draft_model == info
    guessed, stats = _reply(engine, SpeculationMode.AUTO, "drafted")
    assert guessed == plain and stats.completion_tokens == without.completion_tokens
    # A story has no n-gram to find: the guesses are the draft model's, nearly all right (the same
    # weights, quantized).
    assert stats.drafted >= 20 and stats.accepted >= 0.8 * stats.drafted, (stats.drafted, stats.accepted)
    ngram_only, by_lookup = _reply(engine, SpeculationMode.NGRAM, "lookup")
    assert ngram_only == plain and by_lookup.drafted < stats.drafted, "NGRAM leaves the draft model out"


def test_a_draft_model_follows_a_new_context_and_a_reload(
    engine: Engine, starter_model: Path, starter_f16: Path
) -> None:
    engine.set_draft_model(starter_model)
    engine.ensure_context(512)
    _text, stats = _reply(engine, SpeculationMode.AUTO, "smaller")
    assert engine.draft_model is not None and stats.accepted > 0
    engine.ensure_context(1024)
    engine.unload()
    assert engine.draft_model is None
    engine.load(starter_f16, LoadOptions(context_length=1024, n_parallel=2))
    assert engine.draft_model is not None and engine.draft_note is None, "opened again with the model"
    _text, stats = _reply(engine, SpeculationMode.AUTO, "reloaded")
    assert stats.accepted > 0


def test_a_draft_model_of_another_vocabulary_an_adapter_or_a_damaged_file_is_refused(
    engine: Engine, starter_model: Path, tmp_path: Path
) -> None:
    engine.set_draft_model(starter_model)
    other = tmp_path / "other-vocab.gguf"
    write_model(other, vocab=600)
    with pytest.raises(
        DraftError, match=r"cannot draft for .*: its tokenizer is SentencePiece, the model's byte-level BPE"
    ):
        engine.set_draft_model(other)
    assert engine.draft_model is not None and engine.draft_model.path == starter_model, "the last one stays"
    lora = write_lora(tmp_path / "lora.gguf", starter_model)
    with pytest.raises(DraftError, match="LoRA adapter, not a model"):
        engine.set_draft_model(lora)
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(starter_model.read_bytes()[:1_000_000])
    with pytest.raises(ModelFileError):
        engine.set_draft_model(damaged)
    assert engine.draft_model is not None
    engine.set_draft_model(None)
    assert engine.draft_model is None
    _text, stats = _reply(engine, SpeculationMode.AUTO, "none")
    assert stats.drafted < 20, "without a draft model only n-gram lookup guesses"


def test_a_draft_model_chosen_before_a_load_that_does_not_fit_is_noted(
    tmp_path: Path, starter_model: Path
) -> None:
    other = tmp_path / "other-vocab.gguf"
    write_model(other, vocab=600)
    engine = Engine()
    try:
        engine.set_draft_model(other)
        engine.load(starter_model, LoadOptions(context_length=512, n_parallel=1))
        assert engine.draft_model is None
        assert engine.draft_note is not None and "SentencePiece" in engine.draft_note
        assert "n-gram lookup instead" in engine.draft_note
    finally:
        engine.unload()


def test_vocabularies_may_differ_by_a_few_added_tokens_only(tmp_path: Path) -> None:
    target, close, far = (tmp_path / f"{name}.gguf" for name in ("target", "close", "far"))
    write_model(target, vocab=600)
    write_model(close, vocab=640)  # the same tokens, and 40 more (llama.cpp allows 128)
    write_model(far, vocab=900)
    engine = Engine()
    try:
        engine.load(target, LoadOptions(context_length=256, n_parallel=1))
        assert engine.set_draft_model(close) is not None
        with pytest.raises(DraftError, match="its vocabulary has 900 tokens, the model's 600"):
            engine.set_draft_model(far)
    finally:
        engine.unload()


def test_the_inference_thread_sets_speculation_between_steps_and_says_why_not(
    starter_model: Path, tmp_path: Path
) -> None:
    from app.core.inference.events import Loaded, ReplyDone, SpeculationSet
    from app.core.inference.thread import InferenceThread
    from tests.unit.inference.test_thread import Recorder

    other = tmp_path / "other-vocab.gguf"
    write_model(other, vocab=600)
    recorder = Recorder()
    worker = InferenceThread(recorder, coalesce_s=0.0)
    worker.start()
    try:
        before = recorder.wait_for(SpeculationSet, worker.set_speculation("auto", starter_model))
        assert before.draft is None and before.message is None, "no model yet: opened with the next load"
        loaded = recorder.wait_for(Loaded, worker.load(starter_model, LoadOptions(context_length=512)))
        assert loaded.model.draft_model == starter_model  # type: ignore[attr-defined]
        bad = recorder.wait_for(SpeculationSet, worker.set_speculation("auto", other))
        assert bad.message is not None and "SentencePiece" in bad.message
        assert bad.draft is not None and bad.draft.path == starter_model, "the one before stays"
        off = recorder.wait_for(SpeculationSet, worker.set_speculation("off", None))
        assert off.mode == "off" and off.draft is None
        done = recorder.wait_for(ReplyDone, worker.generate(STORY, GREEDY.with_changes(max_tokens=20)))
        assert done.stats.drafted == 0  # type: ignore[attr-defined]
    finally:
        assert worker.shutdown(5.0)
