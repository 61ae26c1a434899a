"""Fuzzing what Fireside makes of the Hub's answers, through the real huggingface_hub client.

A tiny HTTP server on 127.0.0.1 answers whatever JSON an example chooses for a search
(`GET /api/models`) or a repository's details (`GET /api/models/{repo}`): the wrong shape, nulls,
wrong types per field, missing fields, 100,000 files, hostile file names. The rule: HubError with a
clear message, or a correct result; a file name that would write outside the models folder is
refused (UnsafeFileName, HubError of kind "unsafe" when a download is queued).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.core.hub import client as hub
from app.core.hub.client import HubClient, HubError, HubErrorKind, RepoDetails, RepoSummary
from app.core.hub.downloads import layout
from app.core.hub.files import FileGroup, RemoteFile, UnsafeFileName, group_files, safe_relative_path
from tests.fuzz.bounds import bounded

REPO = "owner/repo"


class Answers:
    """What the server says next (set by each example)."""

    search: bytes = b"[]"
    info: bytes = b"{}"


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: each answer closes its connection, so no thread serving a kept-alive one outlives a test.
    protocol_version = "HTTP/1.0"

    def log_message(self, *_args: Any) -> None:  # keep pytest's output clean
        pass

    def do_HEAD(self) -> None:
        self._send(b"", 200)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/models":
            self._send(Answers.search, 200)
        elif path.startswith("/api/models/"):
            self._send(Answers.info, 200)
        else:  # the model card and anything else: not there (the card is optional)
            self._send(b'{"error": "Entry not found"}', 404, {"X-Error-Code": "EntryNotFound"})

    def _send(self, body: bytes, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The answering server; HF_ENDPOINT points at it for the module's tests."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_ENDPOINT", url)
        patch.setattr(hub, "_last_reachable", {})
        # One request first: importing huggingface_hub and httpx is not part of any input's time.
        Answers.info = json.dumps({"id": REPO}).encode()
        HubClient(timeout=5).details(REPO)
        yield url
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


# ----- strategies ---------------------------------------------------------------------------------

HOSTILE_NAMES = st.sampled_from(
    ["../x.gguf", "/etc/x.gguf", "a/../../x.gguf", "..\\x.gguf", "C:\\x.gguf", "a\x00b.gguf", ".", "..",
     "./", "", "x" * 5000 + ".gguf", "\u202ex.gguf", "A.gguf", "a.gguf", "con.gguf", "sub/", "sub//x.gguf",
     "model-00001-of-00002.gguf", "mmproj-f16.gguf", "README.md"]
)  # fmt: skip
NAMES = HOSTILE_NAMES | st.text(max_size=40).map(lambda t: t + ".gguf") | st.text(max_size=40)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from([10**400, -1, 2**64, 1e400]),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the right type, sometimes anything at all."""
    return st.one_of(good, good, JSON)


SIBLING = st.fixed_dictionaries(
    {"rfilename": field(NAMES)},
    optional={
        "size": field(st.integers(0, 2**40)),
        "lfs": field(
            st.fixed_dictionaries(
                {"sha256": field(st.text("0123456789abcdef", min_size=64, max_size=64)),
                 "size": field(st.integers(0, 2**40)), "pointerSize": field(st.just(134))}
            )
        ),
    },
)  # fmt: skip
INFO = st.fixed_dictionaries(
    {"id": field(st.just(REPO))},
    optional={
        "sha": field(st.text("0123456789abcdef", min_size=40, max_size=40)),
        "siblings": field(st.lists(field(SIBLING), max_size=8)),
        "gguf": field(st.fixed_dictionaries({}, optional={"total": field(st.integers()),
                      "architecture": field(st.text(max_size=10)), "context_length": field(st.integers())})),
        "cardData": field(st.fixed_dictionaries({}, optional={"license": field(st.text(max_size=10))})),
        "tags": field(st.lists(field(st.text(max_size=20).map(lambda t: "license:" + t)), max_size=3)),
        "gated": field(st.sampled_from([False, "auto", "manual"])),
        "lastModified": field(st.just("2026-01-01T00:00:00.000Z")),
    },
)  # fmt: skip
SUMMARY = st.fixed_dictionaries(
    {"id": field(st.just(REPO)), "_id": st.just("x")},
    optional={
        "author": field(st.text(max_size=8)), "downloads": field(st.integers(0, 10**9)),
        "likes": field(st.integers(0, 10**6)), "gated": field(st.booleans()), "private": field(st.booleans()),
        "lastModified": field(st.just("2026-01-01T00:00:00.000Z")),
        "siblings": field(st.lists(field(st.fixed_dictionaries({"rfilename": field(NAMES)})), max_size=4)),
    },
)  # fmt: skip


def _check_details(details: RepoDetails) -> None:
    """A RepoDetails whose values have the types and ranges the UI relies on."""
    assert details.repo_id == REPO and isinstance(details.revision, str) and details.revision
    assert details.license is None or isinstance(details.license, str)
    assert isinstance(details.gated, bool)
    for value in (details.n_params, details.context_length):
        assert value is None or (type(value) is int and value >= 0)
    assert details.architecture is None or isinstance(details.architecture, str)
    files = [f for g in details.groups for f in g.files] + list(details.projectors)
    for f in files:
        assert (
            isinstance(f, RemoteFile) and isinstance(f.filename, str) and f.filename.lower().endswith(".gguf")
        )
        assert type(f.size) is int and f.size >= 0
        assert f.sha256 is None or isinstance(f.sha256, str)
    assert all(isinstance(name, str) for name in details.other_files)


def _check_summary(summary: RepoSummary) -> None:
    """A search result whose values have the types the results list relies on."""
    assert isinstance(summary.repo_id, str) and isinstance(summary.author, str)
    assert type(summary.downloads) is int and summary.downloads >= 0
    assert type(summary.likes) is int and summary.likes >= 0
    assert all(isinstance(v, bool) for v in (summary.gated, summary.private, summary.vision))


# ----- properties ---------------------------------------------------------------------------------


@given(answer=INFO | JSON)
@example(answer={"id": REPO, "siblings": [{"rfilename": 5}]})  # found: AttributeError on a number
@example(answer={"id": REPO, "siblings": [{"rfilename": "a.gguf", "size": 1e400}]})  # found: OverflowError
@example(answer={"id": REPO, "siblings": [{"rfilename": "a.gguf", "size": -1}]})  # found: a negative size
@example(answer={"id": REPO, "gguf": [1]})  # found: AttributeError (a list where an object goes)
@example(answer=[])  # found: TypeError from huggingface_hub, shown as "TypeError: ..."
def test_any_details_answer_gives_details_or_a_hub_error(server: str, answer: Any) -> None:
    """Whatever JSON the Hub answers for a repository: valid details, or a clear HubError."""
    Answers.info = json.dumps(answer).encode()
    outcome = bounded(lambda: HubClient(timeout=5).details(REPO), HubError)
    if isinstance(outcome, HubError):
        assert isinstance(outcome.kind, HubErrorKind) and "Error:" not in outcome.message
    else:
        _check_details(outcome)


@given(answer=st.lists(SUMMARY | JSON, max_size=6) | JSON)
@example(answer=[{"id": None, "_id": "x"}])  # found: AttributeError from id.split
@example(answer=[{"id": REPO, "_id": "x", "downloads": "many"}])  # found: ValueError from int()
@example(answer=[7])  # found: TypeError out of SearchResults.next, not a HubError
def test_any_search_answer_gives_results_or_a_hub_error(server: str, answer: Any) -> None:
    """Whatever JSON the Hub answers for a search: valid results, or a clear HubError."""
    Answers.search = json.dumps(answer).encode()

    def search() -> list[RepoSummary]:
        return HubClient(timeout=5).search("q").next(50)

    outcome = bounded(search, HubError)
    if isinstance(outcome, HubError):
        assert "Error:" not in outcome.message
    else:
        for summary in outcome:
            _check_summary(summary)


def test_a_hundred_thousand_files_read_in_bounded_time(server: str) -> None:
    """100,000 siblings (a repository of many files): read, grouped and sorted in bounded time."""
    lfs = {"sha256": "0" * 64, "pointerSize": 134}
    siblings = [
        {"rfilename": f"m-{i:06d}-Q4_K_M.gguf", "size": i, "lfs": {**lfs, "size": i}} for i in range(100_000)
    ]
    Answers.info = json.dumps({"id": REPO, "sha": "1" * 40, "siblings": siblings}).encode()
    # Timed without tracemalloc (which makes this answer's 500,000 objects five times slower); the
    # bound is loose for a slow CI machine and still catches a quadratic step (minutes at this size).
    started = time.perf_counter()
    outcome = HubClient(timeout=30).details(REPO)
    assert time.perf_counter() - started < 15
    assert len(outcome.groups) == 100_000
    _check_details(outcome)


@given(NAMES | st.text(max_size=300))
@example("a/" * 600 + "x.gguf")  # over the length limit
@example("\u202egguf.exe")  # right-to-left override: a plain character as far as paths go
def test_a_file_name_is_refused_or_stays_inside_the_repository_folder(name: str) -> None:
    """Any file name: UnsafeFileName, or a path inside the repository's folder (never outside)."""
    models = Path("/models")
    outcome = bounded(lambda: layout.final_path(models, REPO, name), UnsafeFileName)
    if isinstance(outcome, UnsafeFileName):
        assert repr(name)[1:21] in str(outcome)  # the message names the file refused
        return
    root = models / "owner" / "repo"
    assert outcome.is_relative_to(root) and outcome != root
    assert ".." not in outcome.relative_to(root).parts and "\x00" not in str(outcome)
    part = layout.part_path(models, REPO, name)
    assert part.is_relative_to(models / layout.STAGING) and part.name.endswith(".part")


@given(st.lists(NAMES, max_size=6))
def test_a_download_of_hostile_names_is_refused_before_anything_is_written(
    tmp_path_factory: Any, names: list[str]
) -> None:
    """Queuing files with hostile names: HubError (unsafe) with nothing written, or a queued job."""
    from app.core.hub.downloads.manager import DownloadManager

    folder = tmp_path_factory.mktemp("dl")
    files = [RemoteFile(n, 1, None) for n in names if n.lower().endswith(".gguf")]
    if not files:
        return
    manager = DownloadManager(folder / "models", state_file=folder / "downloads.json")
    try:
        refused = [bounded(lambda n=f.filename: safe_relative_path(n), UnsafeFileName) for f in files]
        unsafe = any(isinstance(r, UnsafeFileName) for r in refused)
        group = FileGroup(tuple(files), None)
        if unsafe:
            with pytest.raises(HubError) as raised:
                manager.enqueue(REPO, "main", group)
            assert raised.value.kind is HubErrorKind.UNSAFE
            assert not (folder / "models").exists() or not any((folder / "models").rglob("*"))
        else:  # not queued (that would start a transfer): every file's place is inside the folder
            root = (folder / "models").resolve()
            assert all(manager.final_path(REPO, f.filename).resolve().is_relative_to(root) for f in files)
    finally:
        manager.shutdown(timeout=2.0)


def test_names_differing_only_by_case_stay_two_files() -> None:
    """Two Hub files whose names differ only by case are two models (the Hub is case-sensitive)."""
    groups = group_files([RemoteFile("A.gguf", 1, None), RemoteFile("a.gguf", 2, None)])
    assert sorted(g.name for g in groups) == ["A.gguf", "a.gguf"]
    assert safe_relative_path("A.gguf") != safe_relative_path("a.gguf") == PurePosixPath("a.gguf")
