"""app.core must never import Qt: it runs on GPU servers without PySide6 (fireside --selftest)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import app.core

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'qasync'):
            raise ImportError('Qt is not allowed in app.core: ' + name)
        return None
sys.meta_path.insert(0, Block())
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
assert not any(m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync') for m in sys.modules)
print('ok', len(sys.argv) - 1)
"""


def test_every_core_module_imports_without_qt() -> None:
    modules = [m.name for m in pkgutil.walk_packages(app.core.__path__, "app.core.")]
    assert "app.core.inference.engine" in modules and "app.core.inference.thread" in modules
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, "app.cli", *modules], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(modules) + 1}"


def test_blocker_really_blocks_qt() -> None:
    """The check above would catch an import: prove it on a module that does import Qt."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, "app.ui.inference.bridge"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Qt is not allowed" in result.stderr
