"""A server in front of a loaded starter model, for the API's feature tests (test_server.py keeps its
own, with the request log it checks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.api.config import ServerConfig
from app.core.api.server import LocalServer
from app.core.inference.thread import InferenceThread
from tests.unit.api.test_server import KEY, Served, _loaded_worker


@pytest.fixture(scope="module")
def api_worker(starter_model: Path) -> Iterator[InferenceThread]:
    """One loaded model for the module."""
    loaded = _loaded_worker(starter_model)
    yield loaded
    loaded.shutdown()


@pytest.fixture
def api(api_worker: InferenceThread) -> Iterator[Served]:
    """A fresh server in front of the module's model."""
    server = LocalServer(api_worker, ServerConfig(port=0, api_key=KEY))
    server.start()
    yield Served(api_worker, server)
    server.stop()
