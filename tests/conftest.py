"""Shared fixtures: the real starter model, an isolated data folder, and a thread-leak check."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Before anything imports Qt: no display on CI machines.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FIRESIDE_THEME", "light")

import tests.hypothesis_profiles  # noqa: F401 - registers and loads the Hypothesis profiles
from app.core.models import starter
from app.core.platform import paths

STARTER_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
#: What the Hub's API reports for the starter repository's GGUF metadata.
STARTER_GGUF = {"total": 134515008, "architecture": "llama", "context_length": 8192}


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The verified starter model from the cache (fetched once if missing; .ci/run fetches it first)."""
    return starter.fetch_to_cache()


@pytest.fixture(scope="session")
def starter_f16(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An F16 copy of the starter (its weights dequantized, 271 MB): a bigger model the starter can
    draft for (written once per session, in about 10 s)."""
    from tests.f16_writer import write_f16_copy

    return write_f16_copy(tmp_path_factory.mktemp("f16") / "SmolLM2-135M-Instruct.F16.gguf", starter_model)


#: The recommended sampling settings written into `starter_with_sampling_defaults`.
MODEL_SAMPLING = {"general.sampling.temp": 0.6, "general.sampling.top_k": 20, "general.sampling.top_p": 0.8}


@pytest.fixture(scope="session")
def starter_with_sampling_defaults(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the starter model whose GGUF carries general.sampling.* recommendations, as newer
    conversions do (written with gguf's own metadata copier, so llama.cpp loads it like the original)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    out = tmp_path_factory.mktemp("sampling") / "SmolLM2-sampling.gguf"
    reader = gguf.GGUFReader(starter_model, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch is not None
    writer = gguf.GGUFWriter(out, arch=str(arch.contents()), endianess=reader.endianess)
    types = {int: gguf.GGUFValueType.INT32, float: gguf.GGUFValueType.FLOAT32}
    new = {key: MetadataDetails(types[type(value)], value) for key, value in MODEL_SAMPLING.items()}
    copy_with_new_metadata(reader, writer, new, [])
    return out


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh data folder for one test."""
    folder = tmp_path / "data"
    paths.set_data_dir(folder)
    yield folder
    paths.set_data_dir(None)


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail a test that leaves a thread of its own running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"test left threads running: {[t.name for t in extra]}"


def _swap_keyring(backend: Any) -> Iterator[Any]:
    """Make `backend` keyring's backend for one test, then put back whatever was there (even nothing,
    so a backend keyring would pick lazily is never initialised, let alone touched)."""
    import keyring.core

    from app.core.platform import secrets

    previous = keyring.core._keyring_backend
    keyring.core.set_keyring(backend)
    secrets._session.clear()
    try:
        yield backend
    finally:
        keyring.core._keyring_backend = previous
        secrets._session.clear()


@pytest.fixture(autouse=True)
def isolated_keyring() -> Iterator[Any]:
    """Every test gets a fresh in-memory keyring: nothing ever reads or writes the real one."""
    from tests.memory_keyring import InMemoryKeyring

    yield from _swap_keyring(InMemoryKeyring())


@pytest.fixture
def memory_keyring(isolated_keyring: Any) -> Iterator[Any]:
    """An in-memory keyring (a secure store that works), fresh for the test; the backend is yielded."""
    from tests.memory_keyring import InMemoryKeyring

    yield from _swap_keyring(InMemoryKeyring())


@pytest.fixture
def no_keyring(isolated_keyring: Any) -> Iterator[Any]:
    """No secure store at all: keyring's "fail" backend, as on a headless Linux box."""
    from keyring.backends import fail

    yield from _swap_keyring(fail.Keyring())


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Hugging Face cache folder (huggingface_hub reads its constants once, at import)."""
    import huggingface_hub.constants as hf_constants
    import tqdm.std

    home = tmp_path / "hf-home"
    cache = home / "hub"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HOME", str(home))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    # tqdm (huggingface_hub's progress bars) would start a monitor thread that outlives the test.
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    return cache


@pytest.fixture
def fake_hub(starter_model: Path, hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Hub look-alike on 127.0.0.1 serving the starter repository; HF_ENDPOINT points at it."""
    from tests.fakehub import FakeHub, gguf_repo

    hub = FakeHub([gguf_repo(STARTER_REPO, starter_model, downloads=1200, likes=80, gguf=dict(STARTER_GGUF))])
    hub.start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        yield hub
    finally:
        hub.stop()
