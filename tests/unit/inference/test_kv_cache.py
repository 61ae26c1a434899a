"""Conversations' KV caches on disk: saved when a sequence must go or the model is unloaded, restored
after a restart so only the new message is read, and never loaded when a file is damaged, truncated,
foreign or made with another model or other settings; the folder keeps within its cap."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from app.core.inference.engine import Engine
from app.core.inference.kv_disk import KvDiskCache
from app.core.inference.options import LoadOptions
from app.core.values.replies import ReplyStats
from app.core.values.sampling import SamplingParams
from tests.gguf_writer import write_model

GREEDY = SamplingParams(temperature=0.0, seed=1, max_tokens=24, context_length=1024)
FINGERPRINT = {"model": "/models/a.gguf", "size": 1, "mtime_ns": 2, "kv_type": "f16"}
HISTORY = [
    {"role": "system", "content": "You are a helpful assistant who remembers what the user says."},
    {"role": "user", "content": "My name is Ada, I live in Lyon and my favourite colour is green. " * 6},
    {"role": "assistant", "content": "Nice to meet you, Ada from Lyon, who likes green."},
]
FOLLOW_UP = [*HISTORY, {"role": "user", "content": "Where do I live?"}]


# ----- the folder ---------------------------------------------------------------------------------


def test_a_saved_state_comes_back_whole(tmp_path: Path) -> None:
    cache = KvDiskCache(tmp_path, 10_000_000)
    assert cache.save("conversation:1", FINGERPRINT, [1, 2, 3], b"state" * 100)
    entry = cache.load("conversation:1", FINGERPRINT)
    assert entry is not None and entry.tokens == [1, 2, 3] and entry.payload == b"state" * 100
    assert cache.load("conversation:2", FINGERPRINT) is None
    assert cache.size() == cache.path_for("conversation:1").stat().st_size


@pytest.mark.parametrize(
    "damage",
    ["other model", "other key", "truncated", "one byte changed", "random bytes", "empty", "longer"],
)
def test_a_file_that_is_not_exactly_what_was_saved_is_discarded(tmp_path: Path, damage: str) -> None:
    cache = KvDiskCache(tmp_path, 10_000_000)
    cache.save("conversation:1", FINGERPRINT, [5, 6, 7, 8], bytes(range(256)) * 40)
    path = cache.path_for("conversation:1")
    data = path.read_bytes()
    fingerprint, key = FINGERPRINT, "conversation:1"
    if damage == "other model":
        fingerprint = {**FINGERPRINT, "size": 999}
    elif damage == "other key":
        os.replace(path, cache.path_for("conversation:2"))
        path, key = cache.path_for("conversation:2"), "conversation:2"
    elif damage == "truncated":
        path.write_bytes(data[:-100])
    elif damage == "one byte changed":
        middle = len(data) - 2000
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])
    elif damage == "random bytes":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "longer":
        path.write_bytes(data + b"more")
    assert cache.load(key, fingerprint) is None
    assert not path.exists(), "a file that cannot be used is deleted"


def test_the_cap_evicts_the_least_recently_used(tmp_path: Path) -> None:
    payload = b"x" * 100_000
    cache = KvDiskCache(tmp_path, 250_000)
    for number in (1, 2):
        cache.save(f"conversation:{number}", FINGERPRINT, [number], payload)
    os.utime(cache.path_for("conversation:1"), (1_000, 1_000))
    os.utime(cache.path_for("conversation:2"), (2_000, 2_000))
    assert cache.load("conversation:1", FINGERPRINT) is not None  # used now: the most recent
    cache.save("conversation:3", FINGERPRINT, [3], payload)  # over the cap: the least recent goes
    assert {p.name for p in cache.files()} == {
        cache.path_for("conversation:1").name,
        cache.path_for("conversation:3").name,
    }
    assert cache.size() <= 250_000
    assert cache.clear() > 0 and cache.files() == []


def test_a_cap_of_zero_keeps_nothing(tmp_path: Path) -> None:
    cache = KvDiskCache(tmp_path, 0)
    assert not cache.save("conversation:1", FINGERPRINT, [1], b"state")
    assert cache.files() == []


# ----- with the real model ------------------------------------------------------------------------


def _reply(engine: Engine, messages: list[dict[str, str]], key: str | None) -> tuple[str, ReplyStats]:
    pieces: list[str] = []
    generation = engine.start(messages, GREEDY, pieces.append, threading.Event(), cache_key=key)
    while generation.stop is None:
        engine.step((generation,))
    return "".join(pieces), engine.finish(generation)


def _engine(model: Path, folder: Path, parallel: int = 2) -> Engine:
    engine = Engine(kv_cache=KvDiskCache(folder, 500_000_000))
    engine.load(model, LoadOptions(context_length=1024, n_parallel=parallel))
    return engine


def test_after_a_restart_the_history_comes_from_disk_and_the_reply_is_the_same(
    starter_model: Path, tmp_path: Path
) -> None:
    engine = _engine(starter_model, tmp_path)
    try:
        _reply(engine, HISTORY[:2], "conversation:7")
        warm_text, warm = _reply(engine, FOLLOW_UP, "conversation:7")
    finally:
        engine.unload()  # as when the app quits: the conversation's sequence is saved
    assert warm.prompt_tokens_evaluated < 40 and warm.history_from_cache == 0
    assert engine.kv_cache is not None and len(engine.kv_cache.files()) == 1

    again = _engine(starter_model, tmp_path)  # a new process would start just like this
    try:
        text, stats = _reply(again, FOLLOW_UP, "conversation:7")
    finally:
        again.unload()
    assert stats.history_from_cache > 100, "restored from disk"
    assert stats.prompt_tokens_evaluated < 40, "only what is new was read"
    assert text == warm_text, "the restored cache gives the very same reply"
    assert "history from cache" in stats.summary()


def test_a_sequence_given_to_another_conversation_is_kept_on_disk(
    starter_model: Path, tmp_path: Path
) -> None:
    engine = _engine(starter_model, tmp_path, parallel=1)
    try:
        _reply(engine, HISTORY[:2], "conversation:1")
        _reply(engine, [{"role": "user", "content": "Name three rivers."}], "conversation:2")  # evicts 1
        _text, stats = _reply(engine, FOLLOW_UP, "conversation:1")
    finally:
        engine.unload()
    assert stats.history_from_cache > 100 and stats.prompt_tokens_evaluated < 40


@pytest.mark.parametrize("kind", ["random bytes", "another model", "other settings"])
def test_a_foreign_or_stale_file_is_never_loaded(starter_model: Path, tmp_path: Path, kind: str) -> None:
    if kind == "random bytes":
        folder = tmp_path / "kv"
        folder.mkdir()
        KvDiskCache(folder, 1).path_for("conversation:3").write_bytes(os.urandom(200_000))
    else:
        # A real state file, saved from another model or with another KV cache type.
        folder = tmp_path / "kv"
        source = starter_model
        options = LoadOptions(context_length=1024, n_parallel=1)
        if kind == "another model":
            source = tmp_path / "other.gguf"
            write_model(source, layers=2, vocab=600, ctx=1024)
        else:
            options = LoadOptions(context_length=1024, n_parallel=1, kv_type="q8_0")
        other = Engine(kv_cache=KvDiskCache(folder, 500_000_000))
        other.load(source, options)
        try:
            _reply(other, HISTORY[:2], "conversation:3")
        finally:
            other.unload()
        assert len(list(folder.iterdir())) == 1
    engine = _engine(starter_model, folder)
    try:
        _text, stats = _reply(engine, FOLLOW_UP, "conversation:3")
    finally:
        engine.unload()
    assert stats.history_from_cache == 0 and stats.prompt_tokens_evaluated == stats.prompt_tokens
    assert engine.kv_cache is not None
    # The unusable file went; only this engine's own save of the conversation is there now.
    assert len(engine.kv_cache.files()) == 1
