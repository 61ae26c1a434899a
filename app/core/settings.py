"""The app's settings: a small JSON file in the data folder, written atomically."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.api.config import ServerSettings, ServingSources
from app.core.inference.options import AUTO_LAYERS, LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.models.offload import OffloadSettings
from app.core.models.projector import projector_beside
from app.core.platform import paths
from app.core.remote.endpoints import EndpointConfig
from app.core.values.sampling import SamplingParams
from app.core.values.speculation import SpeculationMode

log = logging.getLogger(__name__)

#: The disk cache of conversations' KV caches may take this much by default (4 GB).
DEFAULT_KV_CACHE_MB = 4000
#: "Parallel replies" may be set up to this many.
MAX_PARALLEL = 32
#: My models remembers when this many models were last used (the newest).
MAX_LAST_USED = 200


class SettingsError(OSError):
    """The settings could not be written; `strerror` says why in words. The file on disk is unchanged
    (an OSError, so callers that catch OSError go on working)."""


@dataclass(slots=True)
class Settings:
    """What the app remembers between launches."""

    sampling: SamplingParams = field(default_factory=SamplingParams)
    last_model: str | None = None
    extra_models: list[str] = field(default_factory=list)
    #: A models folder the user chose (None: the one in the data folder).
    models_dir: str | None = None
    #: The conversation open when the app was last closed.
    last_conversation: int | None = None
    #: False until the first-run welcome has been answered (a new install starts without a settings file).
    welcomed: bool = True
    #: GPU layers, flash attention, KV cache type and threads per model file (absent: all Auto).
    model_options: dict[str, OffloadSettings] = field(default_factory=dict)
    #: Remote engines ({"name", "base_url"} each; their API keys are in the keyring, never here).
    remote_endpoints: list[dict[str, str]] = field(default_factory=list)
    #: The remote model chat last went to (see app.core.endpoints.model_key), or None for local.
    last_remote_model: str | None = None
    #: The local API server: on at launch or not, its port, network access (its key is in the keyring).
    api_server: ServerSettings = field(default_factory=ServerSettings)
    #: Replies generated at once ("Parallel replies"; 0 = Auto: as many as the KV cache's memory allows).
    parallel: int = 0
    #: The most the conversations' saved KV caches may take on disk (MB; 0 = keep none).
    kv_cache_mb: int = DEFAULT_KV_CACHE_MB
    #: The chat's text size, in percent of the system's (Ctrl+plus / Ctrl+minus / Ctrl+0).
    chat_zoom: int = 100
    #: Whether the chat's settings drawer (system prompt, sampling, GPU) is shown.
    settings_drawer: bool = True
    #: How My models shows the installed models: "cards" or "table".
    library_layout: str = "cards"
    #: When each model (by path) was last loaded, in seconds since the epoch: My models shows it.
    model_last_used: dict[str, float] = field(default_factory=dict)
    #: MCP servers (McpServerConfig.to_dict each; secret values are in the keyring, never here).
    mcp_servers: list[dict[str, Any]] = field(default_factory=list)
    #: The vision projector chosen by hand for a model (by path; "" = none: it reads text only).
    #: A model absent here uses the projector found beside it, if any.
    projectors: dict[str, str] = field(default_factory=dict)
    #: The embedding model kept loaded for document search and the API's embeddings (a path), or
    #: None: the chat model embeds.
    embedding_model: str | None = None
    #: Speculative decoding (a SpeculationMode's value) and the draft model chosen (a path), or None.
    speculative: str = "auto"
    draft_model: str | None = None

    def projector_for(self, model: str) -> Path | None:
        """The projector `model` loads with: the one chosen for it, else the one beside it."""
        chosen = self.projectors.get(model)
        if chosen is not None:
            return Path(chosen) if chosen else None
        return projector_beside(Path(model))

    def note_model_used(self, model: str, when: float) -> None:
        """Remember that `model` was loaded at `when` (the newest MAX_LAST_USED models are kept)."""
        self.model_last_used[model] = when
        if len(self.model_last_used) > MAX_LAST_USED:
            newest = sorted(self.model_last_used.items(), key=lambda item: item[1])[-MAX_LAST_USED:]
            self.model_last_used = dict(newest)

    def options_for(self, model: str) -> OffloadSettings:
        """A model's GPU and CPU options (Auto for one never set)."""
        return self.model_options.get(model, OffloadSettings())

    def load_options(self, model: str, context_length: int | None = None) -> LoadOptions:
        """How `model` loads with these settings (its GPU and CPU options, Parallel replies, its
        projector), at `context_length` (None: the sampling settings' context length)."""
        chosen = self.options_for(model)
        return LoadOptions(
            context_length=context_length or self.sampling.context_length,
            n_threads=chosen.n_threads,
            n_gpu_layers=AUTO_LAYERS if chosen.n_gpu_layers is None else chosen.n_gpu_layers,
            flash_attn=chosen.flash_attn,
            kv_type=chosen.kv_type,
            n_parallel=self.parallel,
            projector=self.projector_for(model),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Read settings; a missing or damaged file gives the defaults (a damaged one is kept aside)."""
        path = path or paths.settings_file()
        try:
            data: Any = json.loads(path.read_text("utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"it holds a JSON {type(data).__name__}, not an object of settings")
        except FileNotFoundError:
            return cls(welcomed=False)  # the first launch
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nesting too deep for json
            log.warning("settings file %s unreadable (%s); using defaults", path, exc)
            # Kept aside, never overwritten by the defaults saved next: the user's file is not lost.
            with contextlib.suppress(OSError):
                os.replace(path, path.with_suffix(".damaged.json"))
            return cls()
        extra = data.get("extra_models")
        options = data.get("model_options")
        remote = data.get("remote_endpoints")
        last_remote = data.get("last_remote_model")
        return cls(
            sampling=SamplingParams.from_dict(data.get("sampling")),
            last_model=data.get("last_model") if isinstance(data.get("last_model"), str) else None,
            extra_models=[p for p in extra if isinstance(p, str)] if isinstance(extra, list) else [],
            models_dir=data.get("models_dir") if isinstance(data.get("models_dir"), str) else None,
            last_conversation=data.get("last_conversation")
            if isinstance(data.get("last_conversation"), int)
            and not isinstance(data.get("last_conversation"), bool)
            else None,
            welcomed=data.get("welcomed") is not False,
            model_options={
                str(path): OffloadSettings.from_dict(value)
                for path, value in (options.items() if isinstance(options, dict) else ())
            },
            remote_endpoints=[
                {"name": str(e.get("name") or ""), "base_url": e["base_url"]}
                for e in (remote if isinstance(remote, list) else ())
                if isinstance(e, dict) and isinstance(e.get("base_url"), str)
            ],
            last_remote_model=last_remote if isinstance(last_remote, str) else None,
            api_server=ServerSettings.from_dict(data.get("api_server")),
            parallel=_bounded_int(data.get("parallel"), 0, MAX_PARALLEL, 0),
            kv_cache_mb=_bounded_int(data.get("kv_cache_mb"), 0, 1 << 20, DEFAULT_KV_CACHE_MB),
            chat_zoom=_bounded_int(data.get("chat_zoom"), 50, 300, 100),
            settings_drawer=data.get("settings_drawer") is not False,
            library_layout="table" if data.get("library_layout") == "table" else "cards",
            model_last_used=_times(data.get("model_last_used")),
            mcp_servers=[dict(s) for s in data.get("mcp_servers") or () if isinstance(s, dict)]
            if isinstance(data.get("mcp_servers"), list)
            else [],
            projectors={
                model: chosen
                for model, chosen in (data.get("projectors") or {}).items()
                if isinstance(model, str) and isinstance(chosen, str)
            }
            if isinstance(data.get("projectors"), dict)
            else {},
            embedding_model=data.get("embedding_model")
            if isinstance(data.get("embedding_model"), str)
            else None,
            # A list or object here is unhashable: compared with each mode's value, never looked up in a set.
            speculative=next((str(m) for m in SpeculationMode if m == data.get("speculative")), "auto"),
            draft_model=data.get("draft_model") if isinstance(data.get("draft_model"), str) else None,
        )

    def save(self, path: Path | None = None) -> None:
        """Write atomically: a crash mid-write leaves the previous file intact (SettingsError if the
        write fails: a read-only or full disk)."""
        path = path or paths.settings_file()
        tmp = path.with_suffix(".tmp")
        payload = {
            "sampling": self.sampling.to_dict(),
            "last_model": self.last_model,
            "extra_models": self.extra_models,
            "models_dir": self.models_dir,
            "last_conversation": self.last_conversation,
            "welcomed": self.welcomed,
            "model_options": {path: o.to_dict() for path, o in self.model_options.items()},
            "remote_endpoints": self.remote_endpoints,
            "last_remote_model": self.last_remote_model,
            "api_server": self.api_server.to_dict(),
            "parallel": self.parallel,
            "projectors": self.projectors,
            "embedding_model": self.embedding_model,
            "speculative": self.speculative,
            "draft_model": self.draft_model,
            "kv_cache_mb": self.kv_cache_mb,
            "chat_zoom": self.chat_zoom,
            "settings_drawer": self.settings_drawer,
            "library_layout": self.library_layout,
            "model_last_used": self.model_last_used,
            "mcp_servers": self.mcp_servers,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # No secrets here: tokens live in the keyring.
            with tmp.open("w", encoding="utf-8") as out:
                out.write(json.dumps(payload, indent=2))
                out.flush()
                # On the disk before the rename: a power cut never leaves an empty file.
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a half-written copy (disk full) is of no use
                tmp.unlink(missing_ok=True)
            raise _save_failure(exc, path) from exc


def _save_failure(exc: OSError, path: Path) -> SettingsError:
    """Why `path` could not be written, for the message the window shows."""
    folder = path.parent
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        why = f"the disk is full (no space left in {folder})"
    elif exc.errno == errno.EROFS:
        why = f"the data folder {folder} is read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = f"Fireside may not write in the data folder {folder}"
    else:
        why = f"{exc.strerror or exc} ({path})"
    text = f"{why}. The settings saved before are kept; the changes apply until Fireside closes"
    return SettingsError(exc.errno, text, str(path))


def _times(value: object) -> dict[str, float]:
    """A {path: seconds} map from a file that may hold anything: the well-formed entries only."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, float] = {}
    for k, v in list(value.items())[-MAX_LAST_USED:]:
        # An int too large for a float (10**400) would overflow math.isfinite: compared first.
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1e300 and math.isfinite(v):
            out[str(k)] = float(v)
    return out


def _bounded_int(value: object, low: int, high: int, default: int) -> int:
    """`value` when it is an integer in low..high (a file from another version may hold anything)."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return default


# ----- the API server's model sources, as these settings give them ---------------------------


def settings_folder(settings: Settings) -> Path | None:
    """The models folder the user chose, while it exists (None: the data folder's)."""
    chosen = settings.models_dir
    return Path(chosen) if chosen and Path(chosen).is_dir() else None


def sources_from_settings(
    settings: Callable[[], Settings],
    *,
    options: Callable[[Path], LoadOptions] | None = None,
    speculation: Callable[[], tuple[str, str | None]] | None = None,
    models_folder: Callable[[], Path | None] | None = None,
) -> ServingSources:
    """Sources read from `settings()` at each use; `options`, `speculation` (mode, draft model) and
    `models_folder` override what the settings say (the command line's choices)."""

    def prepare(worker: InferenceThread) -> None:
        # The speculation mode, without the draft model: it was chosen for the window's model (a
        # model loaded for a request mostly has another vocabulary, and a copy per model would take
        # memory the budget does not count). n-gram lookup needs no second model.
        mode = speculation()[0] if speculation is not None else settings().speculative
        worker.set_speculation(mode, None)

    return ServingSources(
        options=options or (lambda path: settings().load_options(str(path))),
        prepare=prepare,
        endpoints=lambda: [e for d in settings().remote_endpoints if (e := EndpointConfig.from_dict(d))],
        extra_models=lambda: list(settings().extra_models),
        models_folder=models_folder or (lambda: settings_folder(settings())),
    )
