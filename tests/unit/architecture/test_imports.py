"""Imports run one way: no module imports another that (directly or not) imports it back, and no layer
imports one above it. Counted with every import, also inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.architecture.import_rules import LAYERS, build, cycles, upward_imports


def test_app_has_no_import_cycle() -> None:
    assert cycles(build("app")) == []


def test_no_layer_imports_one_above_it() -> None:
    assert upward_imports(build("app")) == []


def test_every_package_is_in_a_layer() -> None:
    """A new package must be placed in the layers, or the rules above would not look at it."""
    graph = build("app")
    for container, entries in LAYERS.items():
        named = set()
        for entry in entries:
            named |= {entry} if isinstance(entry, str) else set(entry)
        children = {child.rpartition(".")[2] for child in graph.find_children(container)}
        assert children <= named, f"{container}: {sorted(children - named)} are in no layer"


@pytest.fixture
def tangled(tmp_path: Path) -> Iterator[str]:
    """A throwaway package with a cycle hidden the two ways cycles hid in app: an import inside a
    function, and one under TYPE_CHECKING; and an import up its layers."""
    root = tmp_path / "tangled"
    (root / "low").mkdir(parents=True)
    (root / "high").mkdir()
    files = {
        "__init__.py": "",
        "low/__init__.py": "",
        "high/__init__.py": "",
        "low/engine.py": """
            def detect():
                from tangled.low.hardware import probe  # hidden in a function
                return probe()
        """,
        "low/hardware.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from tangled.low.engine import detect  # hidden under TYPE_CHECKING
            def probe():
                return 1
        """,
        "low/values.py": """
            from tangled.high.window import Window  # a lower layer reaching up
        """,
        "high/window.py": """
            from tangled.low.values import *
            class Window: ...
        """,
    }
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    sys.path.insert(0, str(tmp_path))
    try:
        yield "tangled"
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m == "tangled" or m.startswith("tangled.")]:
            del sys.modules[module]


def test_the_checks_fail_on_a_deliberate_cycle_and_an_upward_import(tangled: str) -> None:
    graph = build(tangled)
    assert cycles(graph) == [
        ["tangled.high.window", "tangled.low.values"],
        ["tangled.low.engine", "tangled.low.hardware"],
    ]
    upward = upward_imports(graph, {"tangled": ("high", "low")})
    assert len(upward) == 1 and upward[0].startswith(
        "tangled.low.values imports tangled.high.window (line 2)"
    )
