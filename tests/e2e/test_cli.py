"""The command line: --version, --data-dir, and --selftest without Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app import __version__
from app.core.platform import paths

ROOT = Path(__file__).resolve().parents[2]
NO_QT = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'qasync'):
            raise ImportError('no Qt on this machine: ' + name)
sys.meta_path.insert(0, Block())
sys.argv = ['fireside'] + sys.argv[1:]
runpy.run_module('app', run_name='__main__')
"""


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_QT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fireside {__version__}"


def test_selftest_streams_through_the_inference_thread_without_qt(
    starter_model: Path, tmp_path: Path
) -> None:
    result = _run("--selftest", "--json", "--model", str(starter_model), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in (
        "ok",
        "model",
        "llama_cpp_version",
        "gpu_offload_supported",
        "ttft_s",
        "tokens_per_s",
        "completion_tokens",
        "stop_reason",
    ):
        assert key in report, key
    assert report["ok"] is True
    assert report["completion_tokens"] > 0 and report["tokens_per_s"] > 0
    assert report["chunks"] >= 1
    assert report["stop_reason"] in ("end_of_turn", "max_tokens")


def test_selftest_failure_is_one_line_and_non_zero(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    result = _run("--selftest", "--json", "--model", str(missing), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False
    assert result.stderr.strip().count("\n") == 0
    assert "nope.gguf" in result.stderr


def test_data_dir_keeps_every_written_file_there(tmp_path: Path, starter_model: Path) -> None:
    data = tmp_path / "data"
    home = tmp_path / "home"
    shared = home / "cache" / "fireside" / "models"
    shared.mkdir(parents=True)
    os.link(starter_model, shared / starter_model.name)  # the per-user cache, read but not written
    before = sorted(p for p in home.rglob("*"))
    env = {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "share"),
        "XDG_CONFIG_HOME": str(home / "cfg"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "FIRESIDE_MODEL_CACHE": "",
    }
    result = _run("--selftest", "--json", "--data-dir", str(data), env=env)
    assert result.returncode == 0, result.stderr
    assert (data / "models" / starter_model.name).is_file()
    assert sorted(p for p in home.rglob("*")) == before  # nothing written outside the data folder


def test_data_dir_override_resolves(tmp_path: Path) -> None:
    paths.set_data_dir(tmp_path / "x")
    try:
        assert paths.data_dir() == (tmp_path / "x").resolve()
        assert paths.models_dir().parent == (tmp_path / "x").resolve()
    finally:
        paths.set_data_dir(None)


def test_fireside_command_is_installed() -> None:
    """The `fireside` entry point (a gui-script) is installed beside the interpreter and runs."""
    command = Path(sys.executable).parent / "fireside"
    assert command.is_file(), "pip install should have created the fireside command"
    result = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"fireside {__version__}"


def test_the_help_lists_serve_and_every_option_of_both() -> None:
    from app.cli import build_parser, build_serve_parser

    text = build_parser().format_help()
    assert "fireside serve" in text
    for parser in (build_parser(), build_serve_parser()):
        for action in parser._actions:
            for option in action.option_strings:
                assert option in text, f"{option} is not in fireside --help"
