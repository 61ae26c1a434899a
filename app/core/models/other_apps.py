"""GGUF models that other local-LLM apps already downloaded, so Fireside can use them in place.

Models are several gigabytes each; a user who already has some in the Hugging Face cache, LM Studio,
GPT4All, Jan or Ollama should not have to download them again. This module only looks: it reads
folder listings, the first bytes of candidate files and Ollama's small JSON manifests. It never
hashes, copies or changes anything.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.core.models.projector import is_projector, projector_beside

log = logging.getLogger(__name__)

# Defined here rather than imported from gguf_info: that module pulls in numpy and the gguf package,
# and a folder scan needs nothing but the four magic bytes.
GGUF_MAGIC = b"GGUF"


class OtherApp(StrEnum):
    """An app whose downloaded models Fireside can use in place, by the name the library shows."""

    HF_CACHE = "Hugging Face cache"
    LM_STUDIO = "LM Studio"
    GPT4ALL = "GPT4All"
    JAN = "Jan"
    OLLAMA = "Ollama"


# Short names for the members, as this module and its callers have always written them.
HF_CACHE = OtherApp.HF_CACHE
LM_STUDIO = OtherApp.LM_STUDIO
GPT4ALL = OtherApp.GPT4ALL
JAN = OtherApp.JAN
OLLAMA = OtherApp.OLLAMA

# Deep enough for every layout above (HF snapshots with sub-folders, Jan's llamacpp/models/<id>/),
# shallow enough that a root pointing at a huge tree cannot turn the scan into a crawl of the disk.
MAX_DEPTH = 6
# Big trees that never hold models but can sit inside an app's data folder (Jan's extensions).
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages"})
# llama.cpp's split naming is "<name>-%05d-of-%05d.gguf"; it loads the rest from the first part.
SPLIT_PART = re.compile(r"-(\d+)-of-(\d+)\.gguf$", re.IGNORECASE)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
#: The layer holding a vision model's projector (llama.cpp's mmproj GGUF).
OLLAMA_PROJECTOR_LAYER = "application/vnd.ollama.image.projector"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
# Manifests are a few hundred bytes; anything far bigger is not one and is not worth reading.
MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class FoundModel:
    """A GGUF file another app downloaded."""

    path: Path
    app: OtherApp
    name: str
    size: int
    sha256: str | None
    #: The vision projector that goes with it in that app's store (None: it reads text only).
    projector: Path | None = None


@dataclass(frozen=True, slots=True)
class SearchFolder:
    """One folder where another app keeps its models."""

    app: OtherApp
    path: Path


def _platform_key(platform: str) -> str:
    """Collapse sys.platform values to the three layouts we know ("linux" covers the other Unixes)."""
    if platform.startswith("win") or platform == "cygwin":
        return "win32"
    if platform == "darwin":
        return "darwin"
    return "linux"


def _env_path(env: Mapping[str, str], key: str, home: Path) -> Path | None:
    """A folder named by an environment variable; an empty value counts as unset, as the apps do."""
    value = env.get(key, "").strip()
    if not value:
        return None
    # Expand "~" against the given home, not the real one, so tests stay inside their own tree.
    if value == "~" or value.startswith(("~/", "~\\")):
        return home / value[2:]
    return Path(value)


def search_folders(
    home: Path | None = None, env: Mapping[str, str] | None = None, platform: str | None = None
) -> list[SearchFolder]:
    """The folders find_other_apps_models looks in, in the order it looks."""
    default_home = home is None
    home = Path.home() if home is None else home
    env = os.environ if env is None else env
    system = _platform_key(sys.platform if platform is None else platform)
    folders: list[SearchFolder] = []

    # Hugging Face cache first: when another app links to the same blob, this entry knows its sha256.
    # Precedence follows huggingface_hub: HF_HUB_CACHE (and its legacy name), HF_HOME, XDG_CACHE_HOME.
    hub = _env_path(env, "HF_HUB_CACHE", home) or _env_path(env, "HUGGINGFACE_HUB_CACHE", home)
    if hub is None:
        hf_home = _env_path(env, "HF_HOME", home)
        if hf_home is None:
            hf_home = (_env_path(env, "XDG_CACHE_HOME", home) or home / ".cache") / "huggingface"
        hub = hf_home / "hub"
    folders.append(SearchFolder(HF_CACHE, hub))

    # LM Studio uses the same two places on every OS (the second is from its 0.2 releases).
    folders.append(SearchFolder(LM_STUDIO, home / ".lmstudio" / "models"))
    folders.append(SearchFolder(LM_STUDIO, home / ".cache" / "lm-studio" / "models"))

    # GPT4All and Jan keep models in the per-user application data folder of each OS.
    if system == "win32":
        local = _env_path(env, "LOCALAPPDATA", home) or home / "AppData" / "Local"
        roaming = _env_path(env, "APPDATA", home) or home / "AppData" / "Roaming"
        gpt4all, jan_data = local / "nomic.ai" / "GPT4All", roaming / "Jan" / "data"
    elif system == "darwin":
        support = home / "Library" / "Application Support"
        gpt4all, jan_data = support / "nomic.ai" / "GPT4All", support / "Jan" / "data"
    else:
        data_home = _env_path(env, "XDG_DATA_HOME", home) or home / ".local" / "share"
        gpt4all, jan_data = data_home / "nomic.ai" / "GPT4All", data_home / "Jan" / "data"
    folders.append(SearchFolder(GPT4ALL, gpt4all))
    folders.append(SearchFolder(JAN, home / "jan" / "models"))  # releases before 0.6
    folders.append(SearchFolder(JAN, jan_data))

    folders.append(SearchFolder(OLLAMA, _env_path(env, "OLLAMA_MODELS", home) or home / ".ollama" / "models"))
    # The Linux installer runs Ollama as its own "ollama" user, whose models live here. Only for the
    # real home: a caller that passes a home (the tests) must not see whatever this machine holds.
    if system == "linux" and default_home:
        folders.append(SearchFolder(OLLAMA, Path("/usr/share/ollama/.ollama/models")))
    return folders


def _gguf_file(path: Path) -> tuple[Path, int] | None:
    """The resolved path and size of `path` if it is a readable regular file starting with the magic."""
    try:
        real = path.resolve(strict=True)
        info = real.stat()
        # Only regular files: opening a FIFO or device that happens to be named *.gguf would block.
        if not stat.S_ISREG(info.st_mode):
            return None
        with real.open("rb") as handle:
            magic = handle.read(len(GGUF_MAGIC))
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on some Python versions
        log.debug("skipping %s: %s", path, exc)
        return None
    return (real, info.st_size) if magic == GGUF_MAGIC else None


def _wanted_name(name: str) -> bool:
    """Whether a file name is a model to offer: a .gguf, not a projector, and not a later split part."""
    lowered = name.lower()
    if not lowered.endswith(".gguf") or is_projector(lowered):
        return False
    split = SPLIT_PART.search(name)
    # llama.cpp opens a split model by its first part; listing the others would only confuse.
    return split is None or int(split.group(1)) == 1


def _walk_gguf(root: Path, max_depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Every wanted *.gguf below `root` (at most `max_depth` folders down), each folder visited once."""
    # Directory symlinks are followed (people link model folders to other disks), but each real
    # folder is entered once, keyed by device and inode, so a link back up the tree cannot loop.
    seen: set[tuple[int, int]] = set()
    pending: list[tuple[Path, int]] = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            info = folder.stat()
            key = (info.st_dev, info.st_ino)
            if key in seen:
                continue
            seen.add(key)
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except FileNotFoundError:
            continue  # the app is not installed: normal, not worth a log line
        except OSError as exc:
            log.debug("cannot list %s: %s", folder, exc)
            continue
        for entry in entries:
            # Hidden names are caches, locks and partial downloads (".no_exist", ".locks", ".tmp").
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError as exc:
                log.debug("skipping %s: %s", entry.path, exc)
                continue
            if is_dir:
                if depth < max_depth and entry.name not in SKIP_DIRS:
                    pending.append((Path(entry.path), depth + 1))
            elif _wanted_name(entry.name):
                yield Path(entry.path)


def _list(folder: Path, want_dirs: bool) -> list[Path]:
    """The visible sub-folders (or files) of `folder`, sorted; none when it cannot be read."""
    try:
        with os.scandir(folder) as listing:
            entries = [entry for entry in listing if not entry.name.startswith(".")]
    except FileNotFoundError:
        return []  # the app is not installed: normal, not worth a log line
    except OSError as exc:
        log.debug("cannot list %s: %s", folder, exc)
        return []
    picked = []
    for entry in entries:
        try:
            if entry.is_dir() if want_dirs else entry.is_file():
                picked.append(Path(entry.path))
        except OSError as exc:
            log.debug("skipping %s: %s", entry.path, exc)
    return sorted(picked)


def _list_dirs(folder: Path) -> list[Path]:
    """The visible sub-folders of `folder`, sorted."""
    return _list(folder, want_dirs=True)


class _Found:
    """Models found so far, one per real file: the first app to report a file keeps it."""

    def __init__(self) -> None:
        self.by_real: dict[Path, FoundModel] = {}

    def add(
        self,
        path: Path,
        app: OtherApp,
        name: str,
        sha256: str | None = None,
        hf_blob: bool = False,
        projector: Path | None = None,
    ) -> None:
        """Check `path` and record it unless it is not a GGUF or its real file is already known."""
        checked = _gguf_file(path)
        if checked is None:
            return
        real, size = checked
        if hf_blob and SHA256_HEX.fullmatch(real.name):
            # The HF cache names LFS blobs by their sha256 (small git files get a sha1, and a cache
            # made without symlinks holds plain copies), so only a 64-hex name is a known hash.
            sha256 = real.name
        if real not in self.by_real:
            found = FoundModel(path=path, app=app, name=name, size=size, sha256=sha256, projector=projector)
            self.by_real[real] = found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _scan_hf_cache(hub: Path, found: _Found) -> None:
    """Models in a Hugging Face hub cache: models--{owner}--{repo}/snapshots/{commit}/..."""
    for repo_dir in _list_dirs(hub):
        if not repo_dir.name.startswith("models--"):
            continue  # datasets-- and spaces-- hold no models
        # Hub repo names cannot contain "--", so the folder name splits back into owner and repo.
        repo_id = "/".join(repo_dir.name.removeprefix("models--").split("--"))
        # Newest snapshot first, so when several commits link the same blob the current one is named.
        snapshots = sorted(_list_dirs(repo_dir / "snapshots"), key=lambda p: (-_mtime(p), p.name))
        for snapshot in snapshots:
            for file in _walk_gguf(snapshot):
                # The snapshot entry, not the blob, is what to load: split parts are found next to it
                # by name, and the blob's own name has no extension.
                rel = file.relative_to(snapshot).as_posix()
                # Beside the snapshot entry, not the blob: blobs are named by hash, all in one folder.
                projector = projector_beside(file)
                found.add(file, HF_CACHE, f"{repo_id}/{rel}", hf_blob=True, projector=projector)


def _scan_plain(root: Path, app: OtherApp, found: _Found) -> None:
    """Models in an app folder that keeps ordinary files: named by their file name."""
    for file in _walk_gguf(root):
        found.add(file, app, file.name, projector=projector_beside(file))


def _digest(layer: dict[str, Any]) -> str | None:
    """A layer's sha256 hex, or None. Strict hex: it becomes part of a path, so nothing like "../"
    may get through."""
    digest = layer.get("digest")
    algorithm, _, hex_digest = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    return hex_digest if algorithm == "sha256" and SHA256_HEX.fullmatch(hex_digest) else None


def _ollama_layers(manifest: Path) -> tuple[str | None, str | None]:
    """The sha256 hex of the model layer a manifest names and of its projector layer (None each for
    none, or for anything that is not a manifest)."""
    try:
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            return None, None
        data: Any = json.loads(manifest.read_bytes())
    except (OSError, ValueError) as exc:
        log.debug("skipping Ollama manifest %s: %s", manifest, exc)
        return None, None
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        return None, None
    model = projector = None
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        if layer.get("mediaType") == OLLAMA_MODEL_LAYER and model is None:
            model = _digest(layer)
            if model is None:
                return None, None
        elif layer.get("mediaType") == OLLAMA_PROJECTOR_LAYER and projector is None:
            projector = _digest(layer)
    return model, projector if model is not None else None


def _ollama_name(registry: str, namespace: str, model: str, tag: str) -> str:
    """The name `ollama list` shows: "model:tag", "namespace/model:tag" or with a foreign registry."""
    if registry != OLLAMA_DEFAULT_REGISTRY:
        return f"{registry}/{namespace}/{model}:{tag}"
    if namespace == "library":
        return f"{model}:{tag}"
    return f"{namespace}/{model}:{tag}"


def _scan_ollama(models: Path, found: _Found) -> None:
    """Models in an Ollama store: manifests/{registry}/{namespace}/{model}/{tag} naming blobs/sha256-*."""
    tagged: list[tuple[str, str, str | None]] = []
    # The layout is fixed at four levels, so no general walk (and no chance of a loop) is needed.
    for registry in _list_dirs(models / "manifests"):
        for namespace in _list_dirs(registry):
            for model in _list_dirs(namespace):
                for tag in _list(model, want_dirs=False):
                    digest, projector = _ollama_layers(tag)
                    if digest is not None:
                        name = _ollama_name(registry.name, namespace.name, model.name, tag.name)
                        tagged.append((name, digest, projector))
    # Several tags often share one blob ("latest" and "1b"); sorted, the first name keeps it.
    for name, digest, projector in sorted(tagged, key=lambda t: t[:2]):
        blob = models / "blobs" / f"sha256-{projector}" if projector else None
        found.add(
            models / "blobs" / f"sha256-{digest}", OLLAMA, name, digest,
            projector=blob if blob is not None and blob.is_file() else None,
        )  # fmt: skip


def find_other_apps_models(
    home: Path | None = None, env: Mapping[str, str] | None = None, platform: str | None = None
) -> list[FoundModel]:
    """Scan the known folders of other apps (blocking; call off the GUI thread)."""
    found = _Found()
    for folder in search_folders(home, env, platform):
        if folder.app == HF_CACHE:
            _scan_hf_cache(folder.path, found)
        elif folder.app == OLLAMA:
            _scan_ollama(folder.path, found)
        else:
            _scan_plain(folder.path, folder.app, found)
    return sorted(found.by_real.values(), key=lambda m: (m.app, m.name, str(m.path)))


def sha256_index(models: Iterable[FoundModel]) -> dict[str, FoundModel]:
    """Map each known sha256 to its model (the first one, should two files share a hash)."""
    index: dict[str, FoundModel] = {}
    for model in models:
        if model.sha256 is not None:
            index.setdefault(model.sha256, model)
    return index
