"""Installed models: the GGUF files in the models folder (and ones the user opened elsewhere).

Reading a GGUF's metadata takes a second or more for models with large vocabularies, so the result
is cached per file (path, size, modification time) in the data folder.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.gguf_info import ModelFileError, ModelInfo, inspect_model, remember

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # 2: model shape fields for the memory estimate


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model file: its metadata, or why it cannot be used."""

    path: Path
    info: ModelInfo | None
    error: str | None = None


def _cache_file() -> Path:
    return paths.data_dir() / "cache" / "model-info.json"


def _load_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_file().read_text("utf-8"))
        return data if data.get("version") == CACHE_VERSION else {}
    except (OSError, ValueError):
        return {}


def _save_cache(entries: dict[str, Any]) -> None:
    target = _cache_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: two scans (say, at launch and after "Open GGUF…") may overlap.
    fd, tmp = tempfile.mkstemp(prefix=".model-info-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"version": CACHE_VERSION, "entries": entries}, handle)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _info_from_dict(data: dict[str, Any]) -> ModelInfo:
    return ModelInfo(**{**data, "path": Path(data["path"])})


def _info_to_dict(info: ModelInfo) -> dict[str, Any]:
    return {**asdict(info), "path": str(info.path)}


def model_files(folder: Path | None = None, extra: list[str] | None = None) -> list[Path]:
    """GGUF files in the models folder (partial downloads excluded) plus `extra` paths, sorted by name."""
    folder = folder or paths.models_dir()
    found = {p.resolve() for p in folder.glob("*.gguf") if not p.name.startswith(".")}
    found.update(Path(p).expanduser().resolve() for p in extra or [])
    return sorted(found, key=lambda p: p.name.lower())


def scan(folder: Path | None = None, extra: list[str] | None = None) -> list[ModelEntry]:
    """Inspect every installed model (blocking: run it off the GUI thread)."""
    cache = _load_cache().get("entries", {})
    fresh: dict[str, Any] = {}
    entries = []
    for path in model_files(folder, extra):
        key = str(path)
        try:
            stat = path.stat()
            stamp = [stat.st_size, stat.st_mtime_ns]
            cached = cache.get(key)
            if cached and cached["stamp"] == stamp:
                info = _info_from_dict(cached["info"])
                remember(info, stat.st_size, stat.st_mtime_ns)  # the engine's pre-load check reuses it
            else:
                info = inspect_model(path)
            fresh[key] = {"stamp": stamp, "info": _info_to_dict(info)}
            entries.append(ModelEntry(path, info))
        except ModelFileError as exc:
            entries.append(ModelEntry(path, None, str(exc)))
        except OSError as exc:
            entries.append(ModelEntry(path, None, f"{path.name}: {exc.strerror or exc}"))
    try:
        _save_cache(fresh)
    except OSError as exc:  # a read-only data folder must not hide the models
        log.warning("could not write the model cache: %s", exc)
    return entries
