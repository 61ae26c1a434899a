"""Fuzzing the files the app reads at start that another version (or a hand) may have written.

settings.json (with the entries read from it: sampling, GPU options, the API server and its aliases,
remote endpoints, MCP servers), the model library's disk cache and the download queue. The rule:
loading never raises; it falls back to defaults, the result is valid (types right, values in range),
and a settings file that cannot be used is kept aside, never lost.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.core.api.aliases import Alias, read_aliases
from app.core.api.config import ServerSettings
from app.core.hub.downloads.manager import DownloadManager
from app.core.models import gguf_file, library
from app.core.models.offload import OffloadSettings
from app.core.remote.endpoints import EndpointConfig
from app.core.settings import MAX_LAST_USED, MAX_PARALLEL, Settings
from app.core.tools.mcp_config import McpServerConfig
from app.core.values.sampling import SamplingParams
from tests.fuzz.bounds import bounded

# ----- strategies -------------------------------------------------------------------------------

#: Numbers JSON can hold that Python floats cannot (1e400 reads as inf; 10**400 stays an int).
HUGE = st.sampled_from([10**400, -(10**400), 2**200, 2**63, -(2**63) - 1, 1e308, -0.0, 5e-324])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE,
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
SAMPLING_KEYS = [f.name for f in fields(SamplingParams)]
SETTINGS_KEYS = [f.name for f in fields(Settings)]


def keyed(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with some of `keys` (and maybe an unknown one), each holding any of `values`."""
    return st.dictionaries(st.sampled_from([*keys, "from_a_newer_version"]), values, max_size=len(keys) + 1)


NESTED = {
    "sampling": keyed(SAMPLING_KEYS, JSON),
    "model_options": st.dictionaries(
        st.text(max_size=20), keyed(["n_gpu_layers", "flash_attn", "kv_type", "n_threads"], JSON), max_size=3
    ),
    "api_server": keyed(
        ["enabled", "port", "allow_network", "fetch_images", "memory_budget", "idle_unload_s", "aliases"],
        JSON
        | st.lists(
            keyed(["name", "model", "adapters", "system_prompt", "sampling"], JSON)
            | st.fixed_dictionaries(
                {"name": st.text(max_size=10), "model": st.text(max_size=10)},
                optional={
                    "sampling": keyed(SAMPLING_KEYS, JSON),
                    "adapters": st.lists(keyed(["path", "scale"], JSON)),
                },
            ),
            max_size=3,
        ),
    ),
    "remote_endpoints": st.lists(keyed(["name", "base_url"], JSON), max_size=3),
    "mcp_servers": st.lists(
        keyed(
            ["name", "command", "args", "url", "env", "secret_env", "timeout_s", "enabled", "always_allowed"],
            JSON,
        ),
        max_size=3,
    ),
}
SETTINGS_VALUES = {key: JSON | NESTED[key] if key in NESTED else JSON for key in SETTINGS_KEYS}


@st.composite
def settings_documents(draw: st.DrawFn) -> Any:
    """A settings document: mostly a dict of the real keys with values of any shape, sometimes not."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)  # a list, a number, a string: valid JSON, the wrong shape
    keys = draw(st.lists(st.sampled_from([*SETTINGS_KEYS, "from_a_newer_version"]), unique=True))
    return {key: draw(SETTINGS_VALUES.get(key, JSON)) for key in keys}


def _dumps(document: Any) -> str:
    # allow_nan: Python's json writes (and reads) Infinity and NaN, so a file may hold them.
    return json.dumps(document, allow_nan=True)


# ----- what a valid result is --------------------------------------------------------------------


def _check_valid(loaded: Settings) -> None:
    """Every value has its declared type and is in range (what the rest of the app relies on)."""
    assert not loaded.sampling.problems(), loaded.sampling.problems()
    for key, chosen in loaded.model_options.items():
        assert isinstance(key, str) and isinstance(chosen, OffloadSettings)
        assert not chosen.problems(), chosen.problems()
    assert all(isinstance(p, str) for p in loaded.extra_models)
    for name in ("last_model", "models_dir", "last_remote_model", "embedding_model", "draft_model"):
        assert getattr(loaded, name) is None or isinstance(getattr(loaded, name), str), name
    assert loaded.last_conversation is None or (
        isinstance(loaded.last_conversation, int) and not isinstance(loaded.last_conversation, bool)
    )
    assert 0 <= loaded.parallel <= MAX_PARALLEL
    assert 50 <= loaded.chat_zoom <= 300 and loaded.kv_cache_mb >= 0
    assert loaded.library_layout in ("cards", "table")
    assert isinstance(loaded.welcomed, bool) and isinstance(loaded.settings_drawer, bool)
    assert len(loaded.model_last_used) <= MAX_LAST_USED
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in loaded.model_last_used.values())
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.projectors.items())
    assert all(isinstance(e["name"], str) and isinstance(e["base_url"], str) for e in loaded.remote_endpoints)
    assert all(isinstance(s, dict) for s in loaded.mcp_servers)
    server = loaded.api_server
    assert isinstance(server, ServerSettings) and 1024 <= server.port <= 65535
    assert all(isinstance(a, Alias) and not a.problems() for a in server.aliases)
    # The entries read from the settings at use: each is usable or skipped, never an exception.
    for entry in loaded.remote_endpoints:
        assert EndpointConfig.from_dict(entry) is None or isinstance(
            EndpointConfig.from_dict(entry), EndpointConfig
        )
    for server_entry in loaded.mcp_servers:
        config = McpServerConfig.from_dict(server_entry)
        assert config is None or isinstance(config, McpServerConfig)


# ----- settings.json -----------------------------------------------------------------------------


@given(settings_documents())
@example({"sampling": [1]})  # found: a list where the sampling dict goes raised AttributeError
@example({"sampling": {"temperature": 10**400}})  # found: an int too big for a float raised OverflowError
@example([])  # found: valid JSON that is not an object raised AttributeError
@example({"model_last_used": {"m": 10**400}})  # found by the long run: OverflowError in math.isfinite
@example({"last_conversation": False})  # found by the long run: a bool was kept as conversation 0
@example({"speculative": []})  # found: a list here raised TypeError (unhashable, looked up in a set)
@example({"api_server": {"aliases": [{"name": "a", "model": "m", "sampling": {"temperature": 10**400}}]}})
def test_any_settings_document_loads_valid_settings(tmp_path_factory: Any, document: Any) -> None:
    """Whatever JSON the file holds, loading gives valid settings, which save and load back unchanged."""
    folder = tmp_path_factory.mktemp("settings")
    path = folder / "settings.json"
    path.write_text(_dumps(document), "utf-8")
    loaded = bounded(lambda: Settings.load(path), ())
    assert isinstance(loaded, Settings)
    _check_valid(loaded)
    if not isinstance(document, dict):  # not settings at all: the user's file is kept aside
        assert (folder / "settings.damaged.json").read_text("utf-8") == _dumps(document)
    loaded.save(path)
    assert Settings.load(path) == loaded  # what was kept is a fixed point: nothing drifts per launch


@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
@example(b"[" * 100_000)  # found: deep nesting raised RecursionError
@example(b'{"sampling": {"temperature": 0.5}')  # truncated mid-write
@example(b"\xff\xfe{}")  # not UTF-8
def test_unreadable_settings_bytes_give_defaults_and_keep_the_file(
    tmp_path_factory: Any, data: bytes
) -> None:
    """Bytes that are not a settings document give defaults, and the user's file is kept aside."""
    folder = tmp_path_factory.mktemp("settings")
    path = folder / "settings.json"
    path.write_bytes(data)
    loaded = bounded(lambda: Settings.load(path), ())
    assert isinstance(loaded, Settings)
    _check_valid(loaded)
    try:
        usable = isinstance(json.loads(data.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        usable = False
    if not usable:
        assert loaded == Settings()
        assert (folder / "settings.damaged.json").read_bytes() == data  # never lost


def test_a_huge_settings_file_loads_in_bounded_time(tmp_path: Path) -> None:
    """100,000 recently used models and extra models: read in bounded time, trimmed to the limit."""
    path = tmp_path / "settings.json"
    many = {f"/models/m{i}.gguf": float(i + 1) for i in range(100_000)}
    path.write_text(json.dumps({"model_last_used": many, "extra_models": list(many)}), "utf-8")
    loaded = bounded(lambda: Settings.load(path), (), max_bytes=256 << 20)
    assert isinstance(loaded, Settings)
    assert len(loaded.model_last_used) == MAX_LAST_USED
    assert max(loaded.model_last_used.values()) == 100_000.0


@given(keyed(SAMPLING_KEYS, JSON))
def test_sampling_from_any_dict_is_valid(data: dict[str, Any]) -> None:
    """SamplingParams.from_dict keeps the good values and defaults the rest, never raising."""
    params = bounded(lambda: SamplingParams.from_dict(data), ())
    assert isinstance(params, SamplingParams) and not params.problems()
    for key, value in data.items():
        if key in SAMPLING_KEYS and not SamplingParams(**{key: value}).problems():
            assert getattr(params, key) == value  # a good value survives its bad neighbours


@given(JSON)
def test_aliases_from_any_entry_are_usable(data: Any) -> None:
    """The API's aliases from any settings entry: the usable ones, never an exception."""
    aliases = bounded(lambda: read_aliases(data), ())
    assert isinstance(aliases, tuple) and all(isinstance(a, Alias) and not a.problems() for a in aliases)
    assert len({a.name for a in aliases}) == len(aliases)


# ----- the model library's disk cache ------------------------------------------------------------

MODEL_INFO = st.fixed_dictionaries(
    {f.name: JSON for f in fields(gguf_file.ModelInfo) if f.name != "path"}, optional={"path": JSON}
)


@st.composite
def cache_documents(draw: st.DrawFn, key: str, stamp: list[int]) -> Any:
    """A cache file as another version may have left it: shapes right or wrong at each level."""
    info = draw(MODEL_INFO | JSON)
    entry = draw(st.fixed_dictionaries({"stamp": st.just(stamp) | JSON, "info": st.just(info)}) | JSON)
    entries = draw(st.just({key: entry}) | JSON)
    return draw(st.just({"version": library.CACHE_VERSION, "entries": entries}) | JSON)


def _check_info(info: gguf_file.ModelInfo) -> None:
    """A ModelInfo whose fields have the types its readers expect."""
    assert isinstance(info.path, Path)
    for name in ("name", "architecture", "quantization"):
        assert isinstance(getattr(info, name), str), name
    for name in ("file_size", "parameter_count", "gguf_version", "tensor_count", "input_bytes"):
        assert type(getattr(info, name)) is int, name
    for name in ("context_length", "block_count", "embedding_length", "head_count", "vocab_size", "pooling"):
        assert getattr(info, name) is None or type(getattr(info, name)) is int, name
    assert all(type(b) is int for b in info.layer_bytes)
    assert all(isinstance(v, float | int) for v in info.sampling_defaults.values())


@settings(max_examples=40)
@given(data=st.data())
@example(data=None)  # see the regression test below for the shapes found
def test_any_model_cache_file_scans_without_raising(tmp_path_factory: Any, data: Any) -> None:
    """A damaged or foreign model cache never breaks the scan: a bad record is read afresh."""
    folder = tmp_path_factory.mktemp("models")
    from app.core.platform import paths

    paths.set_data_dir(folder / "data")
    try:
        model = folder / "m.gguf"
        model.write_bytes(b"not a gguf file")  # so a fresh read gives a clear error, not a model
        stat = model.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        document = (
            {"version": library.CACHE_VERSION, "entries": {str(model): {"stamp": stamp, "info": {"name": 1}}}}
            if data is None
            else data.draw(cache_documents(str(model), stamp))
        )
        cache = folder / "data" / "cache" / "model-info.json"
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(_dumps(document), "utf-8")
        entries = bounded(lambda: library.scan(folder), ())
        assert isinstance(entries, list) and len(entries) == 1
        entry = entries[0]
        if entry.info is None:
            assert entry.error  # the junk file's own clear reason
        else:
            _check_info(entry.info)  # a well-formed record was trusted: fine, it is the cache's job
        json.loads(cache.read_text("utf-8"))  # the cache was rewritten whole
    finally:
        paths.set_data_dir(None)
        gguf_file._memo.clear()  # a trusted fuzzed record must not leak into other tests


def test_model_cache_that_is_not_an_object_is_ignored(tmp_path: Path) -> None:
    """Regression: a cache holding a list, or entries that are not objects, raised AttributeError."""
    from app.core.platform import paths

    paths.set_data_dir(tmp_path / "data")
    try:
        cache = tmp_path / "data" / "cache" / "model-info.json"
        cache.parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "m.gguf").write_bytes(b"junk")
        for document in ([], {"version": library.CACHE_VERSION, "entries": []}, 7):
            cache.write_text(json.dumps(document), "utf-8")
            entries = library.scan(tmp_path / "models")
            assert len(entries) == 1 and entries[0].info is None and entries[0].error
    finally:
        paths.set_data_dir(None)


# ----- the download queue -------------------------------------------------------------------------

JOB_KEYS = ["id", "repo_id", "revision", "label", "quant", "files", "state", "error", "error_kind", "path"]


@given(
    JSON
    | st.fixed_dictionaries(
        {
            "jobs": st.lists(
                keyed(JOB_KEYS, JSON)
                | keyed(
                    JOB_KEYS, st.lists(keyed(["filename", "size", "sha256"], JSON | st.just("../../x.gguf")))
                ),
                max_size=3,
            )
            | JSON
        }
    )
)
@example({"jobs": 5})  # found: a number where the list goes raised TypeError
def test_any_download_queue_file_restores_without_raising(tmp_path_factory: Any, document: Any) -> None:
    """A damaged download list restores the usable records, all inside the models folder."""
    folder = tmp_path_factory.mktemp("queue")
    state = folder / "downloads.json"
    state.write_text(_dumps(document), "utf-8")
    manager = DownloadManager(folder / "models", state_file=state)
    try:
        restored = bounded(manager.restore, ())
        assert isinstance(restored, list)
        root = (folder / "models").resolve()
        for job in restored:
            for f in job.files:
                assert manager.final_path(job.repo_id, f.filename).resolve().is_relative_to(root)
    finally:
        manager.shutdown(timeout=1.0)
