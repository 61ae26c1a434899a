"""The engine driving the real starter model: streaming, cancel, determinism, KV reuse, errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.core.inference.engine import Engine
from app.core.inference.errors import ContextFullError, EngineError
from app.core.inference.options import LoadOptions
from app.core.inference.slots import common_prefix
from app.core.inference.stop_event import StopEvent
from app.core.models.gguf_file import ModelFileError
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingError, SamplingParams

GREEDY = SamplingParams(temperature=0.0, seed=7, max_tokens=48, context_length=2048)


def _chat(
    engine: Engine,
    messages: list[dict[str, str]],
    params: SamplingParams = GREEDY,
    cancel: threading.Event | None = None,
) -> tuple[str, object]:
    pieces: list[str] = []
    stats = engine.stream_chat(messages, params, pieces.append, cancel or threading.Event())
    return "".join(pieces), stats


def test_load_reports_model(engine: Engine, starter_model: Path) -> None:
    loaded = engine.loaded
    assert loaded is not None
    assert loaded.info.path == starter_model
    assert loaded.context_length == 2048
    assert not loaded.template_is_default
    assert loaded.n_threads >= 1


def test_streams_a_real_reply(engine: Engine) -> None:
    pieces: list[str] = []
    stats = engine.stream_chat(
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        GREEDY.with_changes(max_tokens=150),
        pieces.append,
        threading.Event(),
    )
    text = "".join(pieces)
    assert "Paris" in text
    assert len(pieces) >= 2, "text must arrive piece by piece"
    assert stats.completion_tokens >= 1
    assert stats.stop_reason is StopReason.END_OF_TURN
    assert stats.ttft_s > 0 and stats.tokens_per_s > 0
    assert "<|im_end|>" not in text


@pytest.mark.parametrize("flash_attn", [False, True])
def test_greedy_reply_matches_bare_llama_cpp_python(starter_model: Path, flash_attn: bool) -> None:
    """Same model, prompt and attention kernel, greedy: the lean loop gives llama-cpp-python's exact text."""
    from llama_cpp import Llama

    messages = [{"role": "user", "content": "Name three colours of the rainbow."}]
    params = GREEDY.with_changes(repeat_penalty=1.0, max_tokens=40)
    ours_engine = Engine()
    ours_engine.load(starter_model, LoadOptions(context_length=2048, flash_attn=flash_attn))
    try:
        ours, _ = _chat(ours_engine, messages, params)
    finally:
        ours_engine.unload()
    llm = Llama(str(starter_model), n_ctx=2048, verbose=False, flash_attn=flash_attn)
    try:
        reference = llm.create_chat_completion(messages, temperature=0.0, max_tokens=40, repeat_penalty=1.0)
    finally:
        llm.close()
    assert ours == reference["choices"][0]["message"]["content"]


def test_max_tokens_stops_the_reply(engine: Engine) -> None:
    _, stats = _chat(
        engine,
        [{"role": "user", "content": "Write a long story about a dragon."}],
        GREEDY.with_changes(max_tokens=5),
    )
    assert stats.completion_tokens == 5
    assert stats.stop_reason is StopReason.MAX_TOKENS


def test_cancel_mid_stream_stops_within_one_token(engine: Engine) -> None:
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(text: str) -> None:
        pieces.append(text)
        if len(pieces) == 3:
            cancel.set()

    stats = engine.stream_chat(
        [{"role": "user", "content": "Count from 1 to 100."}],
        GREEDY.with_changes(max_tokens=200),
        on_text,
        cancel,
    )
    assert stats.stop_reason is StopReason.USER
    assert stats.completion_tokens == len(pieces) == 3  # no token after the one that saw the stop


def test_temperature_zero_with_seed_is_repeatable(engine: Engine) -> None:
    messages = [{"role": "user", "content": "Give me three names for a cat."}]
    first, _ = _chat(engine, messages)
    engine.ensure_context(1024)  # a fresh context: no cache to make it trivially equal
    second, _ = _chat(engine, messages, GREEDY.with_changes(context_length=1024))
    assert first and first == second


def test_same_seed_same_sampled_reply(engine: Engine) -> None:
    messages = [{"role": "user", "content": "Invent a word and define it."}]
    params = SamplingParams(temperature=1.0, top_p=0.95, seed=1234, max_tokens=30, context_length=2048)
    first, s1 = _chat(engine, messages, params)
    second, s2 = _chat(engine, messages, params)
    third, _ = _chat(engine, messages, params.with_changes(seed=99))
    assert first == second and s1.seed == s2.seed == 1234  # type: ignore[attr-defined]
    assert third != first


def test_follow_up_reuses_the_kv_cache(engine: Engine) -> None:
    messages = [{"role": "system", "content": "You are a helpful assistant. " * 20}]
    total_evaluated = 0
    for turn in range(3):
        messages.append({"role": "user", "content": f"Tell me one fact about the number {turn + 2}."})
        reply, stats = _chat(engine, messages, GREEDY.with_changes(max_tokens=24))
        messages.append({"role": "assistant", "content": reply})
        if turn == 0:
            continue
        total_evaluated += stats.prompt_tokens_evaluated  # type: ignore[attr-defined]
        # Only the new user turn (plus template glue) is evaluated, not the whole conversation.
        assert stats.prompt_tokens_evaluated < stats.prompt_tokens / 4, stats  # type: ignore[attr-defined]
    assert total_evaluated > 0


def test_context_length_off_the_256_grid_keeps_the_cache(engine: Engine) -> None:
    """llama.cpp rounds 1000 up to 1024; the engine must not rebuild the context every turn."""
    params = GREEDY.with_changes(context_length=1000, max_tokens=16)
    messages = [{"role": "user", "content": "Name a colour."}]
    reply, _ = _chat(engine, messages, params)
    assert engine.context_length == 1024
    messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": "And another?"}]
    _, stats = _chat(engine, messages, params)
    assert stats.prompt_tokens_evaluated < stats.prompt_tokens / 2, stats  # type: ignore[attr-defined]


def test_stop_during_a_long_prompt_aborts_it_and_keeps_the_cache_true(engine: Engine) -> None:
    short = [{"role": "user", "content": "What is two plus two?"}]
    params = GREEDY.with_changes(context_length=2048, max_tokens=20)
    before, _ = _chat(engine, short, params)
    cancel = StopEvent()  # as the inference thread gives every request: a stop reaches llama_decode
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    try:
        long = [{"role": "user", "content": "Summarise this: " + "the quick brown fox jumps. " * 250}]
        _, stats = _chat(engine, long, params, cancel)
    finally:
        timer.cancel()
    assert stats.stop_reason is StopReason.USER  # type: ignore[attr-defined]
    assert stats.completion_tokens == 0 and stats.prompt_tokens_evaluated == 0  # type: ignore[attr-defined]
    after, _ = _chat(engine, short, params)
    assert after == before  # a wrong idea of what is cached would change (or garble) the reply


def test_prompt_larger_than_context_is_a_clear_error(engine: Engine) -> None:
    long_text = "word " * 3000
    with pytest.raises(ContextFullError, match="no longer fits the 1,024-token context window"):
        _chat(engine, [{"role": "user", "content": long_text}], GREEDY.with_changes(context_length=1024))


def test_context_full_stops_generation(engine: Engine) -> None:
    params = GREEDY.with_changes(context_length=256, max_tokens=1000)
    filler = "Please write many words about the sea. " * 20
    _, stats = _chat(engine, [{"role": "user", "content": filler}], params)
    assert stats.stop_reason is StopReason.CONTEXT_FULL  # type: ignore[attr-defined]
    assert stats.context_used <= 256  # type: ignore[attr-defined]


def test_invalid_sampling_is_refused(engine: Engine) -> None:
    with pytest.raises(SamplingError, match="temperature"):
        _chat(engine, [{"role": "user", "content": "hi"}], GREEDY.with_changes(temperature=5.0))


def test_corrupt_file_is_refused_before_llama_cpp(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    with pytest.raises(ModelFileError, match=r"bad\.gguf"):
        Engine().load(bad)


def test_model_without_template_falls_back_to_chatml(starter_model: Path, tmp_path: Path) -> None:
    """Rewrite the starter model without tokenizer.chat_template; the engine says it uses ChatML."""
    import gguf

    reader = gguf.GGUFReader(starter_model)
    out = tmp_path / "no-template.gguf"
    writer = gguf.GGUFWriter(out, arch="llama")
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in (
            "general.architecture",
            "tokenizer.chat_template",
        ):
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    eng = Engine()
    try:
        loaded = eng.load(out, LoadOptions(context_length=512))
        assert loaded.template_is_default
        prompt = eng.render_prompt([{"role": "user", "content": "hi"}])
        assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        _text, stats = _chat(
            eng, [{"role": "user", "content": "Say hi."}], GREEDY.with_changes(context_length=512)
        )
        assert stats.completion_tokens > 0  # type: ignore[attr-defined]
    finally:
        eng.unload()


def test_generate_without_model_is_an_error() -> None:
    with pytest.raises(EngineError, match="No model is loaded"):
        _chat(Engine(), [{"role": "user", "content": "hi"}])


def test_a_prompt_is_spelled_with_the_tokens_a_sequence_holds_where_they_differ(engine: Engine) -> None:
    vocabulary = engine.vocabulary
    first = [{"role": "user", "content": "Say hello."}]
    reply = "Hello there, wonderful world!"
    # As a sampled reply may hold it: pieces the tokenizer would have merged.
    odd = vocabulary.tokenize("Hel", bos=False) + vocabulary.tokenize("lo there, wonderful world!", bos=False)
    canonical_reply = vocabulary.tokenize(reply, bos=False)
    assert odd != canonical_reply
    end = vocabulary.tokenize("<|im_end|>", bos=False)
    held = vocabulary.prompt(first) + odd + end
    follow_up = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "Again?"}]
    text = vocabulary.prompt_text(follow_up)
    fresh = vocabulary.prompt(follow_up)
    assert common_prefix(held, fresh) < len(held) - len(odd) + 2, "afresh, the reply parts from the cache"
    spliced = vocabulary.splice(held, text)
    assert spliced is not None and spliced[: len(held)] == held, "all it holds is used"
    assert vocabulary.piece_text(spliced) == vocabulary.piece_text(fresh), "and it spells the same text"
    # Nothing of it spells the text: no splice.
    assert vocabulary.splice(vocabulary.tokenize("Something else entirely"), text) is None


def test_earlier_images_reach_a_text_only_model_as_a_line_of_text(engine: Engine, tmp_path: Path) -> None:
    from app.core.inference.errors import InvalidInput
    from app.core.media.attachments import AttachmentFolder, with_images
    from app.core.media.images import UNSEEN_IMAGE, images_as_text
    from tests.unit.inference.test_vision import png

    folder = AttachmentFolder(tmp_path / "attachments")
    picture = folder.add_bytes(png((200, 10, 10)), "red.png")
    history = [
        {"role": "user", "content": with_images("What is this?", [picture], folder)},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": "Thanks. Which colour was it?"},
    ]
    params = SamplingParams(temperature=0.0, max_tokens=4)
    with pytest.raises(InvalidInput, match="reads text only"):  # the engine itself never drops an image
        engine.stream_chat(history, params, lambda _t: None, threading.Event())
    as_text = images_as_text(history)
    assert as_text[0]["content"] == f"{UNSEEN_IMAGE}\nWhat is this?" and as_text[1:] == history[1:]
    pieces: list[str] = []
    stats = engine.stream_chat(as_text, params, pieces.append, threading.Event())
    assert stats.completion_tokens == 4 and "".join(pieces)
