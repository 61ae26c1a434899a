"""Where Fireside keeps its files: one data folder, overridable for tests and `--data-dir`."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Fireside"
#: Environment variable that moves every file the app writes (same effect as `--data-dir`).
DATA_DIR_ENV = "FIRESIDE_DATA_DIR"
#: Environment variable naming the folder where the verified starter model is cached between installs.
MODEL_CACHE_ENV = "FIRESIDE_MODEL_CACHE"

_override: Path | None = None


def set_data_dir(path: str | os.PathLike[str] | None) -> None:
    """Make every later path live under `path` (None restores the default)."""
    global _override
    _override = Path(path).expanduser().resolve() if path is not None else None


def data_dir() -> Path:
    """The root folder for everything the app writes; created on first use."""
    if _override is not None:
        root = _override
    elif os.environ.get(DATA_DIR_ENV):
        root = Path(os.environ[DATA_DIR_ENV]).expanduser().resolve()
    else:
        root = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    """Folder holding installed GGUF models."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_file() -> Path:
    """The JSON settings file."""
    return data_dir() / "settings.json"


def shared_model_cache_dir() -> Path:
    """The per-user cache of verified downloads (the starter model), shared by every data folder."""
    if os.environ.get(MODEL_CACHE_ENV):
        return Path(os.environ[MODEL_CACHE_ENV]).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("fireside", appauthor=False)) / "models"


def model_cache_dir() -> Path:
    """Where new verified downloads go: inside the data folder when one was chosen (--data-dir
    keeps every file the app writes under it), else the shared per-user cache."""
    if os.environ.get(MODEL_CACHE_ENV):
        return shared_model_cache_dir()
    if _override is not None or os.environ.get(DATA_DIR_ENV):
        return data_dir() / "cache" / "models"
    return shared_model_cache_dir()


def kv_cache_dir() -> Path:
    """Where conversations' KV caches are kept between sessions (not created until one is saved)."""
    return data_dir() / "cache" / "kv"


def attachments_dir() -> Path:
    """Where files attached to messages are kept (images, by their sha256)."""
    return data_dir() / "attachments"


def log_dir() -> Path:
    """Where the rotating log files go: the user log folder, or `logs` inside a chosen data folder."""
    if _override is not None or os.environ.get(DATA_DIR_ENV):
        path = data_dir() / "logs"
    else:
        path = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path
