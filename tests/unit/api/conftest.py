"""The API tests' fixtures: one loaded model per module and a fresh server in front of it per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.api.config import ServerConfig
from app.core.api.server import LocalServer
from app.core.inference.thread import InferenceThread
from tests.unit.api.served import KEY, Served, loaded_worker


@pytest.fixture(scope="module")
def shared_worker(starter_model: Path) -> Iterator[InferenceThread]:
    """One loaded model for the module (as in the app: one model, one inference thread)."""
    worker = loaded_worker(starter_model)
    yield worker
    worker.shutdown()


@pytest.fixture
def served(shared_worker: InferenceThread) -> Iterator[Served]:
    """A fresh server (port chosen by the system) in front of the shared worker."""
    server = LocalServer(shared_worker, ServerConfig(port=0, api_key=KEY))
    server.start()
    yield Served(shared_worker, server)
    server.stop()
    assert not server.running


@pytest.fixture(autouse=True)
def own_models_folder(data_dir: Path) -> Path:
    """A fresh data folder per test, so the models the server lists are the test's, never the user's."""
    return data_dir / "models"
