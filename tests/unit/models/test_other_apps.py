"""Finding models other apps downloaded, on real fake trees in tmp_path (one per app and OS)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from app.core.models.other_apps import (
    GPT4ALL,
    HF_CACHE,
    JAN,
    LM_STUDIO,
    OLLAMA,
    FoundModel,
    find_other_apps_models,
    search_folders,
    sha256_index,
)


def _gguf(path: Path, payload: bytes = b"model") -> Path:
    """A small file that passes the magic check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + payload)
    return path


def _not_gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"<html>not a model</html>")
    return path


def _scan(home: Path, env: dict[str, str] | None = None, platform: str = "linux") -> list[FoundModel]:
    # Always an explicit env: the real HF_HOME or OLLAMA_MODELS of the test machine must not leak in.
    return find_other_apps_models(home=home, env=env or {}, platform=platform)


def _summary(models: list[FoundModel]) -> list[tuple[str, str]]:
    return [(m.app, m.name) for m in models]


def _hf_blob(hub: Path, repo: str, content: bytes, sha1: bool = False) -> Path:
    """Store content as a blob named like huggingface_hub does (sha256 for LFS, sha1 for git files)."""
    digest = hashlib.sha1(content).hexdigest() if sha1 else hashlib.sha256(content).hexdigest()
    blob = hub / f"models--{repo.replace('/', '--')}" / "blobs" / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    return blob


def _hf_link(hub: Path, repo: str, commit: str, rel: str, blob: Path) -> Path:
    """A snapshot entry: a relative symlink to the blob, as huggingface_hub makes it."""
    link = hub / f"models--{repo.replace('/', '--')}" / "snapshots" / commit / rel
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


def test_nothing_installed_finds_nothing(tmp_path: Path) -> None:
    for platform in ("linux", "darwin", "win32"):
        assert _scan(tmp_path, platform=platform) == []


def test_hf_cache_snapshot_links_to_blobs(tmp_path: Path) -> None:
    hub = tmp_path / ".cache" / "huggingface" / "hub"
    repo = "TheOwner/Tiny-GGUF"
    content = b"GGUF" + b"q4 weights"
    blob = _hf_blob(hub, repo, content)
    old = _hf_link(hub, repo, "a" * 40, "tiny-Q4_K_M.gguf", blob)
    new = _hf_link(hub, repo, "b" * 40, "tiny-Q4_K_M.gguf", blob)
    os.utime(old.parent, (1_000_000, 1_000_000))
    os.utime(new.parent, (2_000_000, 2_000_000))
    # A file in a sub-folder of the snapshot, its blob named by sha1 (as for a non-LFS file).
    small = _hf_blob(hub, repo, b"GGUF" + b"small", sha1=True)
    in_sub = _hf_link(hub, repo, "b" * 40, "sub/tiny-f16.gguf", small)
    # A snapshot entry whose blob was never fully downloaded: a dangling link.
    _hf_link(hub, repo, "b" * 40, "missing.gguf", hub / "models--TheOwner--Tiny-GGUF" / "blobs" / ("f" * 64))
    # Neither the hidden ".no_exist" folder nor datasets count.
    _gguf(hub / "models--TheOwner--Tiny-GGUF" / ".no_exist" / ("c" * 40) / "x.gguf")
    _gguf(hub / "datasets--someone--data" / "snapshots" / ("c" * 40) / "data.gguf")
    # A repo with no owner (models--gpt2-style ids).
    lone_blob = _hf_blob(hub, "solo", b"GGUF" + b"solo")
    _hf_link(hub, "solo", "d" * 40, "solo.gguf", lone_blob)

    found = _scan(tmp_path)

    by_name = {m.name: m for m in found}
    assert sorted(by_name) == [
        "TheOwner/Tiny-GGUF/sub/tiny-f16.gguf",
        "TheOwner/Tiny-GGUF/tiny-Q4_K_M.gguf",
        "solo/solo.gguf",
    ]
    q4 = by_name["TheOwner/Tiny-GGUF/tiny-Q4_K_M.gguf"]
    # Reported once, from the newest snapshot, as the snapshot path (a link), with the blob's hash.
    assert q4 == FoundModel(
        path=new, app=HF_CACHE, name=q4.name, size=len(content), sha256=hashlib.sha256(content).hexdigest()
    )
    assert q4.path.is_symlink() and q4.path.resolve() == blob
    sub = by_name["TheOwner/Tiny-GGUF/sub/tiny-f16.gguf"]
    assert sub.path == in_sub and sub.sha256 is None and sub.size == len(b"GGUF" + b"small")
    assert by_name["solo/solo.gguf"].sha256 == lone_blob.name


def test_hf_cache_newest_snapshot_wins_whatever_the_names(tmp_path: Path) -> None:
    hub = tmp_path / ".cache" / "huggingface" / "hub"
    blob = _hf_blob(hub, "o/r", b"GGUF" + b"x")
    newest = _hf_link(hub, "o/r", "0" * 40, "m.gguf", blob)
    older = _hf_link(hub, "o/r", "f" * 40, "m.gguf", blob)
    os.utime(older.parent, (1_000_000, 1_000_000))
    os.utime(newest.parent, (3_000_000, 3_000_000))
    assert [m.path for m in _scan(tmp_path)] == [newest]


def test_a_vision_model_in_the_hf_cache_names_the_projector_of_its_snapshot(tmp_path: Path) -> None:
    hub = tmp_path / ".cache" / "huggingface" / "hub"
    repo = "ggml-org/Seeing-GGUF"
    model = _hf_link(hub, repo, "a" * 40, "Seeing-Q4_K_M.gguf", _hf_blob(hub, repo, b"GGUF" + b"model"))
    projector = _hf_link(
        hub, repo, "a" * 40, "mmproj-Seeing-f16.gguf", _hf_blob(hub, repo, b"GGUF" + b"proj")
    )
    found = _scan(tmp_path)
    assert [m.name for m in found] == [f"{repo}/Seeing-Q4_K_M.gguf"], (
        "a projector is never offered as a model"
    )
    # The blobs folder holds files named by hash, so the snapshot entry is what pairs them.
    assert found[0].path == model and found[0].projector == projector


def test_hf_cache_env_overrides(tmp_path: Path) -> None:
    home = tmp_path / "home"
    default_hub = home / ".cache" / "huggingface" / "hub"
    _hf_link(default_hub, "o/default", "a" * 40, "d.gguf", _hf_blob(default_hub, "o/default", b"GGUF1"))
    hub_cache = tmp_path / "hub-cache"
    _hf_link(hub_cache, "o/hubcache", "a" * 40, "h.gguf", _hf_blob(hub_cache, "o/hubcache", b"GGUF2"))
    hf_home = tmp_path / "hf-home"
    _hf_link(hf_home / "hub", "o/hfhome", "a" * 40, "f.gguf", _hf_blob(hf_home / "hub", "o/hfhome", b"GGUF3"))
    xdg = tmp_path / "xdg-cache"
    xdg_hub = xdg / "huggingface" / "hub"
    _hf_link(xdg_hub, "o/xdg", "a" * 40, "x.gguf", _hf_blob(xdg_hub, "o/xdg", b"GGUF4"))

    assert _summary(_scan(home)) == [(HF_CACHE, "o/default/d.gguf")]
    both = {"HF_HUB_CACHE": str(hub_cache), "HF_HOME": str(hf_home), "XDG_CACHE_HOME": str(xdg)}
    assert _summary(_scan(home, both)) == [(HF_CACHE, "o/hubcache/h.gguf")]
    assert _summary(_scan(home, {"HF_HOME": str(hf_home), "XDG_CACHE_HOME": str(xdg)})) == [
        (HF_CACHE, "o/hfhome/f.gguf")
    ]
    assert _summary(_scan(home, {"XDG_CACHE_HOME": str(xdg)})) == [(HF_CACHE, "o/xdg/x.gguf")]
    # An empty variable counts as unset, and "~" means the given home.
    assert _summary(_scan(home, {"HF_HUB_CACHE": ""})) == [(HF_CACHE, "o/default/d.gguf")]
    assert _summary(_scan(home, {"HF_HUB_CACHE": "~/.cache/huggingface/hub"})) == [
        (HF_CACHE, "o/default/d.gguf")
    ]


def test_lm_studio_both_folders_and_file_filters(tmp_path: Path) -> None:
    new_root = tmp_path / ".lmstudio" / "models"
    old_root = tmp_path / ".cache" / "lm-studio" / "models"
    a = _gguf(new_root / "lmstudio-community" / "Qwen-GGUF" / "qwen-Q4_K_M.gguf", b"abc")
    b = _gguf(old_root / "TheBloke" / "Old-GGUF" / "old.Q5_0.GGUF")  # the extension in capitals
    _not_gguf(new_root / "pub" / "repo" / "error-page.gguf")  # a failed download saved as .gguf
    _gguf(new_root / "pub" / "repo" / "weights.bin")  # GGUF bytes but not a .gguf name
    _gguf(new_root / "pub" / "vision" / "mmproj-model-f16.gguf")  # a projector, not a model
    _gguf(new_root / "pub" / "vision" / "Model-MMPROJ-Q8.gguf")
    first = _gguf(new_root / "pub" / "big" / "big-Q8_0-00001-of-00003.gguf")
    _gguf(new_root / "pub" / "big" / "big-Q8_0-00002-of-00003.gguf")
    _gguf(new_root / "pub" / "big" / "big-Q8_0-00003-of-00003.gguf")
    _gguf(new_root / "pub" / "repo" / ".partial.gguf")  # hidden: an unfinished download
    _gguf(new_root / ".tmp" / "x" / "hidden.gguf")  # inside a hidden folder
    (new_root / "pub" / "dir.gguf").mkdir(parents=True)  # a folder with a model's name
    if hasattr(os, "mkfifo"):
        os.mkfifo(new_root / "pub" / "pipe.gguf")  # must not block the scan

    found = _scan(tmp_path)

    assert found == [
        FoundModel(path=first, app=LM_STUDIO, name=first.name, size=len(b"GGUFmodel"), sha256=None),
        FoundModel(path=b, app=LM_STUDIO, name="old.Q5_0.GGUF", size=len(b"GGUFmodel"), sha256=None),
        FoundModel(path=a, app=LM_STUDIO, name="qwen-Q4_K_M.gguf", size=len(b"GGUFabc"), sha256=None),
    ]


def test_gpt4all_and_jan_on_linux(tmp_path: Path) -> None:
    g = _gguf(tmp_path / ".local" / "share" / "nomic.ai" / "GPT4All" / "Llama-3.2-1B-Instruct-Q4_0.gguf")
    j_old = _gguf(tmp_path / "jan" / "models" / "tinyllama" / "tinyllama.gguf")
    j_new = _gguf(
        tmp_path / ".local" / "share" / "Jan" / "data" / "llamacpp" / "models" / "qwen3" / "model.gguf"
    )
    # Jan's data folder also holds extensions; their node_modules are never searched.
    _gguf(tmp_path / ".local" / "share" / "Jan" / "data" / "extensions" / "node_modules" / "x" / "n.gguf")

    assert _scan(tmp_path) == [
        FoundModel(path=g, app=GPT4ALL, name=g.name, size=9, sha256=None),
        FoundModel(path=j_new, app=JAN, name="model.gguf", size=9, sha256=None),
        FoundModel(path=j_old, app=JAN, name="tinyllama.gguf", size=9, sha256=None),
    ]
    # XDG_DATA_HOME moves both.
    data_home = tmp_path / "xdg-data"
    g2 = _gguf(data_home / "nomic.ai" / "GPT4All" / "moved.gguf")
    j2 = _gguf(data_home / "Jan" / "data" / "models" / "moved-jan.gguf")
    assert _summary(_scan(tmp_path, {"XDG_DATA_HOME": str(data_home)})) == [
        (GPT4ALL, g2.name),
        (JAN, j2.name),
        (JAN, j_old.name),
    ]


def test_gpt4all_and_jan_on_macos(tmp_path: Path) -> None:
    support = tmp_path / "Library" / "Application Support"
    _gguf(support / "nomic.ai" / "GPT4All" / "mac-gpt4all.gguf")
    _gguf(support / "Jan" / "data" / "llamacpp" / "models" / "m" / "mac-jan.gguf")
    # The Linux folders mean nothing on a Mac.
    _gguf(tmp_path / ".local" / "share" / "nomic.ai" / "GPT4All" / "linux-only.gguf")
    _gguf(tmp_path / ".lmstudio" / "models" / "p" / "r" / "everywhere.gguf")

    assert _summary(_scan(tmp_path, platform="darwin")) == [
        (GPT4ALL, "mac-gpt4all.gguf"),
        (JAN, "mac-jan.gguf"),
        (LM_STUDIO, "everywhere.gguf"),
    ]


def test_gpt4all_and_jan_on_windows(tmp_path: Path) -> None:
    home = tmp_path / "Users" / "me"
    _gguf(home / "AppData" / "Local" / "nomic.ai" / "GPT4All" / "default-local.gguf")
    _gguf(home / "AppData" / "Roaming" / "Jan" / "data" / "models" / "default-roaming.gguf")
    _gguf(home / ".ollama" / "models" / "blobs" / ("sha256-" + "0" * 64))  # no manifest: not a model
    assert _summary(_scan(home, platform="win32")) == [
        (GPT4ALL, "default-local.gguf"),
        (JAN, "default-roaming.gguf"),
    ]
    # %LOCALAPPDATA% and %APPDATA% point elsewhere.
    local, roaming = tmp_path / "L", tmp_path / "R"
    _gguf(local / "nomic.ai" / "GPT4All" / "env-local.gguf")
    _gguf(roaming / "Jan" / "data" / "llamacpp" / "models" / "x" / "env-roaming.gguf")
    env = {"LOCALAPPDATA": str(local), "APPDATA": str(roaming)}
    assert _summary(_scan(home, env, platform="win32")) == [
        (GPT4ALL, "env-local.gguf"),
        (JAN, "env-roaming.gguf"),
    ]


def _ollama_blob(models: Path, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    blob = models / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    return digest


def _ollama_manifest(models: Path, name: str, body: object, registry: str = "registry.ollama.ai") -> None:
    """Write manifests/{registry}/{namespace}/{model}/{tag} for name "[namespace/]model:tag"."""
    repo, tag = name.split(":")
    namespace, model = repo.split("/") if "/" in repo else ("library", repo)
    path = models / "manifests" / registry / namespace / model / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body if isinstance(body, str) else json.dumps(body))


def _manifest_body(digest: str, size: int, projector: str | None = None) -> dict[str, object]:
    layers: list[dict[str, object]] = [
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": size},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "1" * 64, "size": 10},
    ]
    if projector:
        layers.insert(0, {"mediaType": "application/vnd.ollama.image.projector", "digest": projector})
    return {"schemaVersion": 2, "config": {"digest": "sha256:" + "2" * 64}, "layers": layers}


def test_ollama_manifests_and_blobs(tmp_path: Path) -> None:
    models = tmp_path / ".ollama" / "models"
    llama = b"GGUF" + b"llama 1b"
    llama_digest = _ollama_blob(models, llama)
    _ollama_manifest(models, "llama3.2:latest", _manifest_body(llama_digest, len(llama)))
    _ollama_manifest(models, "llama3.2:1b", _manifest_body(llama_digest, len(llama)))
    tiny = b"GGUF" + b"tiny"
    tiny_digest = _ollama_blob(models, tiny)
    projector = _ollama_blob(models, b"GGUF" + b"projector")
    _ollama_manifest(models, "someone/tiny:q4", _manifest_body(tiny_digest, len(tiny), f"sha256:{projector}"))
    hf = b"GGUF" + b"from hf"
    hf_digest = _ollama_blob(models, hf)
    _ollama_manifest(models, "bartowski/Qwen3-GGUF:Q4_K_M", _manifest_body(hf_digest, len(hf)), "hf.co")
    # Broken or useless manifests are skipped, not raised.
    _ollama_manifest(models, "broken:latest", "{not json")
    _ollama_manifest(models, "listy:latest", "[1, 2]")
    _ollama_manifest(
        models, "nolayer:latest", {"layers": [{"mediaType": "application/vnd.ollama.image.license"}]}
    )
    _ollama_manifest(models, "gone:latest", _manifest_body("9" * 64, 5))  # blob missing
    evil = {"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:../../x"}]}
    _ollama_manifest(models, "evil:latest", evil)
    not_gguf = _ollama_blob(models, b"safetensors?")
    _ollama_manifest(models, "weird:latest", _manifest_body(not_gguf, 12))

    found = _scan(tmp_path)

    blobs = models / "blobs"
    assert found == [
        FoundModel(
            blobs / f"sha256-{hf_digest}", OLLAMA, "hf.co/bartowski/Qwen3-GGUF:Q4_K_M", len(hf), hf_digest
        ),
        FoundModel(blobs / f"sha256-{llama_digest}", OLLAMA, "llama3.2:1b", len(llama), llama_digest),
        FoundModel(
            blobs / f"sha256-{tiny_digest}", OLLAMA, "someone/tiny:q4", len(tiny), tiny_digest,
            projector=blobs / f"sha256-{projector}",  # a vision model: its projector layer goes with it
        ),
    ]  # fmt: skip


def test_ollama_models_env_override(tmp_path: Path) -> None:
    default = tmp_path / ".ollama" / "models"
    _ollama_manifest(default, "default:1b", _manifest_body(_ollama_blob(default, b"GGUFd"), 5))
    moved = tmp_path / "elsewhere"
    _ollama_manifest(moved, "moved:7b", _manifest_body(_ollama_blob(moved, b"GGUFm"), 5))

    assert _summary(_scan(tmp_path)) == [(OLLAMA, "default:1b")]
    assert _summary(_scan(tmp_path, {"OLLAMA_MODELS": str(moved)})) == [(OLLAMA, "moved:7b")]


def test_system_ollama_only_for_the_real_home(tmp_path: Path) -> None:
    system = Path("/usr/share/ollama/.ollama/models")
    assert all(f.path != system for f in search_folders(tmp_path, {}, "linux"))
    assert any(f.path == system for f in search_folders(None, {}, "linux"))
    assert all(f.path != system for f in search_folders(None, {}, "darwin"))


def test_directory_symlink_loops_terminate(tmp_path: Path) -> None:
    root = tmp_path / ".lmstudio" / "models"
    model = _gguf(root / "pub" / "repo" / "m.gguf")
    (root / "pub" / "repo" / "self").symlink_to(".")
    (root / "pub" / "repo" / "up").symlink_to("../..")
    (root / "pub" / "back").symlink_to(root)
    # A linked folder elsewhere (a second disk, say) is followed.
    other = _gguf(tmp_path / "other-disk" / "linked.gguf", b"other")
    (tmp_path / "other-disk" / "loop").symlink_to(root)
    (root / "linked").symlink_to(tmp_path / "other-disk")

    assert _scan(tmp_path) == [
        FoundModel(
            path=root / "linked" / "linked.gguf", app=LM_STUDIO, name="linked.gguf", size=9, sha256=None
        ),
        FoundModel(path=model, app=LM_STUDIO, name="m.gguf", size=9, sha256=None),
    ]
    assert other.exists()


def test_walk_depth_is_bounded(tmp_path: Path) -> None:
    root = tmp_path / "jan" / "models"
    deep = root.joinpath(*"abcdef")  # six folders below the root
    _gguf(deep / "deep-enough.gguf")
    _gguf(deep / "g" / "too-deep.gguf")
    assert _summary(_scan(tmp_path)) == [(JAN, "deep-enough.gguf")]


def test_unreadable_folder_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "nomic-root"
    readable = _gguf(root / "nomic.ai" / "GPT4All" / "ok.gguf")
    locked = root / "nomic.ai" / "GPT4All" / "locked"
    _gguf(locked / "secret.gguf")
    locked_file = _gguf(root / "nomic.ai" / "GPT4All" / "unreadable.gguf")
    locked.chmod(0)
    locked_file.chmod(0)
    try:
        found = _scan(tmp_path, {"XDG_DATA_HOME": str(root)})
        enforced = not os.access(locked, os.R_OK) and not os.access(locked_file, os.R_OK)
    finally:
        locked.chmod(0o755)
        locked_file.chmod(0o644)
    assert readable in [m.path for m in found]
    if not enforced:
        pytest.skip("permissions are not enforced for this user (root)")
    assert _summary(found) == [(GPT4ALL, "ok.gguf")]


def test_same_file_seen_by_two_apps_is_listed_once(tmp_path: Path) -> None:
    hub = tmp_path / ".cache" / "huggingface" / "hub"
    content = b"GGUF" + b"shared"
    blob = _hf_blob(hub, "o/r", content)
    link = _hf_link(hub, "o/r", "a" * 40, "shared.gguf", blob)
    # LM Studio and Jan were pointed at the same file (a file link and a linked folder).
    lms = tmp_path / ".lmstudio" / "models" / "o" / "r" / "shared.gguf"
    lms.parent.mkdir(parents=True)
    lms.symlink_to(blob)
    (tmp_path / "jan").mkdir()
    (tmp_path / "jan" / "models").symlink_to(link.parent)

    found = _scan(tmp_path)

    # The HF cache is searched first, so its entry (which knows the hash) is the one kept.
    assert found == [FoundModel(link, HF_CACHE, "o/r/shared.gguf", len(content), blob.name)]


def test_results_sorted_and_indexed_by_sha256(tmp_path: Path) -> None:
    hub = tmp_path / ".cache" / "huggingface" / "hub"
    hf_content = b"GGUF" + b"hf"
    blob = _hf_blob(hub, "o/r", hf_content)
    _hf_link(hub, "o/r", "a" * 40, "z.gguf", blob)
    models = tmp_path / ".ollama" / "models"
    digest = _ollama_blob(models, b"GGUF" + b"ollama")
    _ollama_manifest(models, "phi:mini", _manifest_body(digest, 10))
    _gguf(tmp_path / ".lmstudio" / "models" / "p" / "r" / "b.gguf")
    _gguf(tmp_path / ".lmstudio" / "models" / "p" / "r" / "a.gguf")
    _gguf(tmp_path / "jan" / "models" / "j.gguf")

    found = _scan(tmp_path)

    assert _summary(found) == [
        (HF_CACHE, "o/r/z.gguf"),
        (JAN, "j.gguf"),
        (LM_STUDIO, "a.gguf"),
        (LM_STUDIO, "b.gguf"),
        (OLLAMA, "phi:mini"),
    ]
    index = sha256_index(found)
    assert set(index) == {hashlib.sha256(hf_content).hexdigest(), digest}
    assert index[digest].name == "phi:mini" and index[blob.name].app == HF_CACHE
    assert sha256_index([]) == {}


def test_defaults_scan_the_real_machine_without_error() -> None:
    found = find_other_apps_models()
    assert isinstance(found, list)
    assert all(isinstance(m, FoundModel) and m.size >= 4 for m in found)
    assert [(m.app, m.name) for m in found] == sorted((m.app, m.name) for m in found)
    assert search_folders()[0].app == HF_CACHE
    assert sys.platform != "linux" or any(f.app == OLLAMA for f in search_folders())
