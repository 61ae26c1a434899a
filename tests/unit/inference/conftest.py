"""The inference tests' shared fixture: the starter model loaded in an engine, once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.inference.engine import Engine
from app.core.inference.options import LoadOptions


@pytest.fixture(scope="module")
def engine(starter_model: Path) -> Iterator[Engine]:
    """The starter model in an engine with a 2,048-token context."""
    loaded = Engine()
    loaded.load(starter_model, LoadOptions(context_length=2048))
    yield loaded
    loaded.unload()
