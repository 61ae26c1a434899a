"""Installed models: the GGUF files in the models folder (and ones the user opened elsewhere).

Reading a GGUF's metadata takes a second or more for models with large vocabularies, so the result
is cached per file (path, size, modification time) in the data folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from app.core.models.gguf_file import (
    SPLIT_PART,
    ModelFileError,
    ModelInfo,
    inspect_model,
    remember,
    split_parts,
)
from app.core.models.gguf_header import AdapterShape, HeaderError, adapter_misfit, file_source, read_adapter
from app.core.models.projector import is_projector, projector_beside
from app.core.platform import paths

log = logging.getLogger(__name__)
#: 2: model shape fields for the memory estimate; 3: K/V head widths; 4: sampling, per-layer weights;
#: 5: pooling (embedding models); 6: general.type (adapters).
CACHE_VERSION = 6


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model file: its metadata, or why it cannot be used."""

    path: Path
    info: ModelInfo | None
    error: str | None = None
    #: The vision projector found beside it (an `mmproj*.gguf` in its folder): it reads images too.
    projector: Path | None = None
    #: The projector's file size (0: none), for the memory estimate.
    projector_size: int = 0
    #: LoRA adapters beside it made for its architecture (applied to it, never loaded alone).
    adapters: tuple[Path, ...] = ()


def _cache_file() -> Path:
    return paths.data_dir() / "cache" / "model-info.json"


def _load_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_file().read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    # Written by another version, or by hand: only this version's object of entries is used.
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return {"entries": entries} if isinstance(entries, dict) else {}


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
    return ModelInfo(
        **{**data, "path": Path(data["path"]), "layer_bytes": tuple(data.get("layer_bytes", ()))}
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: What each ModelInfo field's annotation accepts as JSON (the cache is written by _info_to_dict).
_CACHED_TYPES: dict[str, Callable[[object], bool]] = {
    "Path": lambda v: isinstance(v, str),
    "str": lambda v: isinstance(v, str),
    "str | None": lambda v: v is None or isinstance(v, str),
    "int": _is_int,
    "int | None": lambda v: v is None or _is_int(v),
    "tuple[int, ...]": lambda v: isinstance(v, list) and all(_is_int(i) for i in v),
    "dict[str, float]": lambda v: (
        isinstance(v, dict)
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v.values())
    ),
}


def _cached_info(cached: object, stamp: list[int]) -> ModelInfo | None:
    """The cache's reading of a file unchanged since (`stamp`), or None: none, or a record of the
    wrong shape (another version's, or damaged), which is then read afresh rather than trusted."""
    if not isinstance(cached, dict) or cached.get("stamp") != stamp:
        return None
    data = cached.get("info")
    if not isinstance(data, dict):
        return None
    for f in fields(ModelInfo):
        check = _CACHED_TYPES.get(str(f.type))
        if f.name in data and (check is None or not check(data[f.name])):
            return None
    try:
        return _info_from_dict(data)
    except (KeyError, TypeError, ValueError):  # a field missing, or one this version does not know
        return None


def _info_to_dict(info: ModelInfo) -> dict[str, Any]:
    return {**asdict(info), "path": str(info.path)}


#: How deep below the models folder models are looked for (downloads live at <owner>/<repo>/<file>,
#: and a repository may keep files in a sub-folder per quantization).
MAX_DEPTH = 4


def _walk(folder: Path, depth: int = 0) -> Iterator[Path]:
    try:
        children = list(os.scandir(folder))
    except OSError:
        return
    for child in children:
        if child.name.startswith("."):  # .downloads holds partial files; hidden means not ours
            continue
        try:
            if child.is_dir(follow_symlinks=False) and depth < MAX_DEPTH:
                yield from _walk(Path(child.path), depth + 1)
            elif child.is_file() and child.name.lower().endswith(".gguf") and not is_projector(child.name):
                yield Path(child.path)
        except OSError:
            continue


def is_later_part(path: Path) -> bool:
    """True for parts 2..n of a split model: llama.cpp opens part 1 and finds the rest itself."""
    match = SPLIT_PART.search(path.name)
    return match is not None and int(match.group(1)) > 1


def model_files(folder: Path | None = None, extra: list[str] | None = None) -> list[Path]:
    """GGUF files in the models folder and its sub-folders (partial downloads and later parts of split
    models excluded) plus `extra` paths, sorted by name."""
    folder = folder or paths.models_dir()
    found = {p.resolve() for p in _walk(folder) if not is_later_part(p)}
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
            cached = _cached_info(cache.get(key), stamp)
            if cached is not None:
                info = cached
                remember(info, stat.st_size, stat.st_mtime_ns)  # the engine's pre-load check reuses it
            else:
                info = inspect_model(path)
            fresh[key] = {"stamp": stamp, "info": _info_to_dict(info)}
            projector = projector_beside(path)
            entries.append(ModelEntry(path, info, projector=projector, projector_size=_size(projector)))
        except ModelFileError as exc:
            entries.append(ModelEntry(path, None, str(exc)))
        except OSError as exc:
            entries.append(ModelEntry(path, None, f"{path.name}: {exc.strerror or exc}"))
    try:
        _save_cache(fresh)
    except OSError as exc:  # a read-only data folder must not hide the models
        log.warning("could not write the model cache: %s", exc)
    return _with_adapters(entries)


def _adapter_shape(path: Path) -> AdapterShape | None:
    try:
        return read_adapter(file_source(str(path)))
    except (HeaderError, OSError) as exc:
        log.info("could not read the adapter %s: %s", path.name, exc)
        return None


def _with_adapters(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The models, each with the LoRA adapters it fits (its architecture, layers and width, read from
    each adapter's header: wherever the adapter lies, a download in its own folder included); the
    adapters themselves are not listed as models."""
    adapters = [e for e in entries if e.info is not None and e.info.is_adapter]
    models = [e for e in entries if e.info is None or not e.info.is_adapter]
    if not adapters:
        return models
    shapes = [(a.path, _adapter_shape(a.path)) for a in adapters]
    out = []
    for entry in models:
        info = entry.info
        fits = tuple(
            path
            for path, shape in shapes
            if info is not None
            and shape is not None
            and adapter_misfit(shape, info.architecture, info.block_count, info.embedding_length) is None
        )
        out.append(replace(entry, adapters=fits) if fits else entry)
    return out


def is_inside(path: Path, folder: Path) -> bool:
    """True when `path` lies inside `folder` (after resolving links)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def delete_model(path: Path, folder: Path) -> list[Path]:
    """Delete a model file (all parts of a split one) from the models folder; returns what was deleted.

    Files outside the models folder are never deleted here (they belong to the user or another app):
    ValueError says so. Folders left empty up to the models folder are removed."""
    if not is_inside(path, folder):
        raise ValueError(f"{path} is not in the models folder: Fireside forgets it but does not delete it")
    deleted = []
    for part in split_parts(path):
        part.unlink()
        deleted.append(part)
    parent = path.parent
    root = folder.resolve()
    while parent.resolve() != root and is_inside(parent, root):
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
    return deleted


def import_copy(source: Path, folder: Path, cancelled: Callable[[], bool] = lambda: False) -> Path:
    """Copy a GGUF (all parts of a split one, and the vision projector beside it) into the models
    folder; returns the copy of `source`.

    The file is checked first, the copy goes through a temporary name, and free space is checked, so a
    failed copy never leaves a half file that looks like a model. A model with a projector gets a
    folder of its own, so the two stay paired (a projector is found beside its model)."""
    if is_projector(source.name):
        raise ModelFileError(
            source,
            "a vision projector (mmproj), not a model: import the model it goes with (its projector "
            "comes along), or choose it for a model under Projector in My models.",
        )
    inspect_model(source)
    parts = split_parts(source)
    projector = projector_beside(source)
    files = [*parts, *([projector] if projector is not None else [])]
    need = sum(p.stat().st_size for p in files)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise OSError(f"not enough disk space to copy {source.name}: it needs {need:,} bytes, {free:,} free")
    # A stem of dots ("...gguf" has ".."), would be no folder of its own: it would be `imported`'s parent.
    own = source.stem.strip(". ") or "model"
    target_dir = folder / "imported" / (own if projector is not None else "")
    target_dir.mkdir(parents=True, exist_ok=True)
    for part in files:
        target = target_dir / part.name
        tmp = target_dir / f".{part.name}.copying"
        try:
            with open(part, "rb") as src, open(tmp, "wb") as dst:
                while block := src.read(16 << 20):
                    if cancelled():  # the app is closing: stop, leaving no half file behind
                        raise InterruptedError(f"copying {part.name} was stopped")
                    dst.write(block)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target_dir / source.name


def _size(path: Path | None) -> int:
    """A file's size (0 for none, or one that vanished)."""
    if path is None:
        return 0
    try:
        return path.stat().st_size
    except OSError:
        return 0
