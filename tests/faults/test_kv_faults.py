"""Conversations' KV caches saved to disk (kv_disk.py, saved_sequences.py) when the disk fills up
and when Fireside is killed in the middle of a save, with the real llama.cpp engine and the starter
model.

The full disk is a real one (a small tmpfs filled by a real file); the kill is a real SIGKILL of a
child process halfway through writing the file, or once it is written but before it is renamed.
What must hold: a save that cannot finish says so in the log and returns False, leaves no
half-written file that a later load would take, never touches the entries saved before (still
loadable), and the engine goes on generating; after a kill the next launch loads the earlier
complete entry or nothing, deletes the half-written leftover with a log line, and the conversation
still generates (the same reply as before the kill).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from app.core.inference.engine import Engine
from app.core.inference.kv_disk import PART, KvDiskCache
from app.core.inference.options import LoadOptions
from app.core.values.replies import ReplyStats
from app.core.values.sampling import SamplingParams
from tests.faults.conftest import fill_disk, run_killed
from tests.unit.inference.test_kv_cache import FINGERPRINT, FOLLOW_UP, HISTORY  # the same conversation

GREEDY = SamplingParams(temperature=0.0, seed=1, max_tokens=12, context_length=1024)
OTHER = [{"role": "user", "content": "Name three rivers of Europe and say where they flow."}]
THIRD = [{"role": "user", "content": "Write a short poem about the sea in winter."}]
KV_LOG = "app.core.inference.kv_disk"


def reply(engine: Engine, messages: list[dict[str, str]], key: str | None) -> tuple[str, ReplyStats]:
    """Generate a whole reply (greedy, so the same history always gives the same text)."""
    pieces: list[str] = []
    generation = engine.start(messages, GREEDY, pieces.append, threading.Event(), cache_key=key)
    while generation.stop is None:
        engine.step((generation,))
    return "".join(pieces), engine.finish(generation)


def loaded(model: Path, folder: Path) -> Engine:
    """The starter model with one sequence: a second conversation evicts (and saves) the first."""
    engine = Engine(kv_cache=KvDiskCache(folder, 500_000_000))
    engine.load(model, LoadOptions(context_length=1024, n_parallel=1))
    return engine


def n_tokens(path: Path) -> int:
    """How many tokens the cache file at `path` says it holds (from its header)."""
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 8)
    return int(json.loads(data[12 : 12 + length])["n_tokens"])


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.suffix == PART]


# ----- a full disk --------------------------------------------------------------------------------


def test_a_save_on_a_full_disk_fails_cleanly_and_keeps_the_earlier_entries(
    small_disk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    where = small_disk(4 * 1024 * 1024)
    cache = KvDiskCache(where, 500_000_000)
    assert cache.save("conversation:1", FINGERPRINT, [1, 2, 3], os.urandom(1_000_000))
    first = cache.path_for("conversation:1")
    before = first.read_bytes()
    filler = fill_disk(where, leave=256 * 1024)

    with caplog.at_level(logging.WARNING, logger=KV_LOG):
        assert not cache.save("conversation:2", FINGERPRINT, [4, 5], os.urandom(1_000_000))
        # A newer state of a conversation already saved: the earlier one must survive the failure.
        assert not cache.save("conversation:1", FINGERPRINT, [1, 2, 3, 4], os.urandom(1_000_000))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("No space left on device" in m for m in messages), messages
    assert "could not save the KV cache of conversation:2" in messages[0]
    assert _leftovers(where) == [] and not cache.path_for("conversation:2").exists()
    assert first.read_bytes() == before
    entry = cache.load("conversation:1", FINGERPRINT)
    assert entry is not None and entry.tokens == [1, 2, 3]

    filler.unlink()  # room again: saving works
    assert cache.save("conversation:2", FINGERPRINT, [4, 5], b"state" * 1000)
    assert cache.load("conversation:2", FINGERPRINT) is not None


def test_the_engine_generates_on_when_a_kv_save_finds_the_disk_full(
    starter_model: Path, small_disk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    where = small_disk(64 * 1024 * 1024)
    engine = loaded(starter_model, where)
    cache = engine.kv_cache
    assert cache is not None
    try:
        reply(engine, HISTORY[:2], "conversation:1")
        reply(engine, OTHER, "conversation:2")  # the only sequence goes to 2: 1 is saved to disk
        first = cache.path_for("conversation:1")
        before, held = first.read_bytes(), n_tokens(first)
        filler = fill_disk(where, leave=64 * 1024)

        with caplog.at_level(logging.INFO, logger=KV_LOG):
            text, _stats = reply(engine, THIRD, "conversation:3")  # 2 must be saved: the disk is full
            assert text.strip(), "the reply is generated all the same"
            saved_warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any(
                "could not save the KV cache of conversation:2" in m and "No space left on device" in m
                for m in saved_warnings
            ), saved_warnings
            assert _leftovers(where) == [] and not cache.path_for("conversation:2").exists()
            assert first.read_bytes() == before, "the earlier entry is untouched"

            # The earlier entry still loads, into the engine that could not save the other one.
            text, stats = reply(engine, FOLLOW_UP, "conversation:1")
        assert text.strip() and stats.history_from_cache > 100 and stats.prompt_tokens_evaluated < 40
        filler.unlink()
    finally:
        engine.unload()  # room again: conversation 1, longer now, is saved over the earlier entry
    assert n_tokens(first) > held and _leftovers(where) == []


# ----- killed while saving ------------------------------------------------------------------------

#: A child that saves conversation 1, then restores and extends it and is SIGKILLed while saving it
#: again at unload (KILL_AT: "partly written" or "before the rename").
KILLED_WHILE_SAVING = """
import hashlib, json, os, signal
from pathlib import Path

from app.core.inference import kv_disk
from tests.faults.test_kv_faults import FOLLOW_UP, HISTORY, loaded, reply

folder, kill_at = Path(os.environ["KV_FOLDER"]), os.environ["KILL_AT"]
engine = loaded(Path(os.environ["STARTER_MODEL"]), folder)
reply(engine, HISTORY[:2], "conversation:1")
engine.unload()  # a complete entry of conversation 1
saved = engine.kv_cache.path_for("conversation:1").read_bytes()
print("SAVED", hashlib.sha256(saved).hexdigest(), flush=True)

engine = loaded(Path(os.environ["STARTER_MODEL"]), folder)
text, stats = reply(engine, FOLLOW_UP, "conversation:1")
print("REPLY", json.dumps([text, stats.history_from_cache]), flush=True)


def die(why):
    print("KILLED", why, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


class HalfWritten:
    # The file object of the save: half of the state is on the disk when the process dies.
    def __init__(self, out):
        self.out = out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.out.__exit__(*exc)

    def write(self, data):
        if len(data) > 100_000:
            self.out.write(data[: len(data) // 2])
            self.out.flush()
            os.fsync(self.out.fileno())
            die(kill_at)
        return self.out.write(data)

    def __getattr__(self, name):
        return getattr(self.out, name)


if kill_at == "partly written":
    real_open = open
    kv_disk.open = lambda *a, **k: HalfWritten(real_open(*a, **k))
else:
    kv_disk.os.replace = lambda *a, **k: die(kill_at)
engine.unload()  # saves conversation 1 again, longer: killed on the way
print("the save finished: the kill point was never reached", flush=True)
"""


@pytest.mark.parametrize("kill_at", ["partly written", "before the rename", "truncated at its name"])
def test_killed_while_saving_the_next_launch_never_loads_half_a_file(
    starter_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, kill_at: str
) -> None:
    folder = tmp_path / "kv"
    child_kill = "partly written" if kill_at == "truncated at its name" else kill_at
    env = {"KV_FOLDER": str(folder), "KILL_AT": child_kill, "STARTER_MODEL": str(starter_model)}
    done = run_killed(KILLED_WHILE_SAVING, env=env, timeout=150)
    assert done.returncode == -9, (done.stdout, done.stderr[-3000:])
    said = (line.split(" ", 1) for line in done.stdout.splitlines())
    lines = {words[0]: words[1] for words in said if words[0] in ("SAVED", "REPLY", "KILLED")}
    assert lines["KILLED"] == child_kill
    before_kill, restored = json.loads(lines["REPLY"])
    assert restored > 100, "the child's second launch restored conversation 1 from disk"

    entry = KvDiskCache(folder, 500_000_000).path_for("conversation:1")
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == lines["SAVED"], "the earlier entry is whole"
    [leftover] = _leftovers(folder)
    if kill_at == "truncated at its name":
        # As a file system that lost the end of a file after a crash would leave it: the entry
        # itself is the half-written state.
        shutil.copyfile(leftover, entry)
    held = n_tokens(entry)

    engine = loaded(starter_model, folder)  # the next launch
    try:
        with caplog.at_level(logging.INFO, logger=KV_LOG):
            text, stats = reply(engine, FOLLOW_UP, "conversation:1")
        logged = [r.getMessage() for r in caplog.records]
        if kill_at == "truncated at its name":
            assert stats.history_from_cache == 0, "a truncated entry is never loaded"
            assert any("discarded: truncated" in m for m in logged), logged
            assert not entry.exists(), "and it is deleted"
            assert text.strip()
        else:
            assert stats.history_from_cache > 100, "the earlier complete entry was loaded"
            assert stats.prompt_tokens_evaluated < 40
            assert text == before_kill, "the same reply as before the kill"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=KV_LOG):
            engine.unload()  # the next save deletes what the killed one left
    finally:
        engine.unload()
    assert any(
        leftover.name in r.getMessage() and "did not finish" in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert _leftovers(folder) == []
    assert n_tokens(entry) > (0 if kill_at == "truncated at its name" else held)
    assert len(KvDiskCache(folder, 1).files()) == 1
