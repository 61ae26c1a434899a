"""A small Hugging Face Hub look-alike on 127.0.0.1, for tests and benchmarks.

It answers the requests huggingface_hub's real client makes for the parts Fireside uses:
`GET /api/models` (search, filter, sort, expand, Link-header pagination), `GET /api/models/{repo}`
(with `blobs=true` file metadata and LFS sha256), and `HEAD`/`GET /{repo}/resolve/{rev}/{file}` with
HTTP Range, gated and private repositories, 404s, and injected faults (slow or dropped transfers).
Every request is recorded so tests can check what was fetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    """One file of a repository: bytes in memory or a path on disk."""

    data: bytes | None = None
    path: Path | None = None
    lfs: bool = True
    #: Announce this sha256 instead of the real one (a corrupted upload, as far as the client can tell).
    fake_sha256: str | None = None
    _sha: str | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size  # type: ignore[union-attr]

    @property
    def sha256(self) -> str:
        if self.fake_sha256:
            return self.fake_sha256
        if self._sha is None:
            digest = hashlib.sha256()
            if self.data is not None:
                digest.update(self.data)
            else:
                with open(self.path, "rb") as handle:  # type: ignore[arg-type]
                    while block := handle.read(1 << 20):
                        digest.update(block)
            self._sha = digest.hexdigest()
        return self._sha

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end)."""
        if self.data is not None:
            return self.data[start:end]
        with open(self.path, "rb") as handle:  # type: ignore[arg-type]
            handle.seek(start)
            return handle.read(end - start)


@dataclass
class HubRepo:
    """A model repository as the Hub describes it."""

    repo_id: str
    files: dict[str, HubFile] = field(default_factory=dict)
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2026-01-01T00:00:00.000Z"
    trending: int = 0
    gated: bool | str = False
    private: bool = False
    license: str | None = "apache-2.0"
    readme: str = ""
    gguf: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=lambda: ["gguf"])

    @property
    def author(self) -> str:
        return self.repo_id.split("/")[0]

    def summary(self) -> dict[str, Any]:
        """The JSON the search endpoint returns for this repository."""
        tags = [*self.tags, *([f"license:{self.license}"] if self.license else [])]
        return {
            "_id": hashlib.md5(self.repo_id.encode()).hexdigest()[:24],
            "id": self.repo_id,
            "modelId": self.repo_id,
            "author": self.author,
            "downloads": self.downloads,
            "likes": self.likes,
            "lastModified": self.last_modified,
            "createdAt": "2025-01-01T00:00:00.000Z",
            "trendingScore": self.trending,
            "gated": self.gated,
            "private": self.private,
            "tags": tags,
            "library_name": "gguf" if "gguf" in self.tags else None,
        }


@dataclass
class Fault:
    """Misbehaviour for transfers of one file name (matched by suffix)."""

    #: Close the connection after sending this many body bytes (once per `times`).
    drop_after: int | None = None
    times: int = 1
    #: Respond with this status instead of the file (once per `times`).
    status: int | None = None
    #: Limit the transfer rate (bytes per second).
    rate: float | None = None
    #: Flip the byte at this offset of the file in the body sent (once per `times`): bytes damaged
    #: on the way, while the Hub announces the right sha256.
    corrupt_at: int | None = None
    #: Answer a ranged GET with the whole file (200), as some proxies and CDNs do.
    ignore_range: bool = False


@dataclass
class Request:
    """One request the fake hub answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0
    range_start: int | None = None
    #: True for a Range with an end ("bytes=0-1048575"): a look at part of a file, such as its header.
    bounded: bool = False
    body_bytes: int = 0


class FakeHub:
    """The server; use as a context manager or call start()/stop()."""

    def __init__(self, repos: list[HubRepo] | None = None, page_size: int = 50) -> None:
        self.repos: dict[str, HubRepo] = {r.repo_id: r for r in repos or []}
        self.page_size = page_size
        #: Tokens that may read gated/private repositories; others get 403, none gets 401.
        self.accepted_tokens: set[str] = set()
        #: Tokens the Hub knows at all; a token outside this set is "invalid credentials".
        self.valid_tokens: set[str] = set()
        self.faults: dict[str, Fault] = {}
        self.search_delay = 0.0
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Open client connections and the threads serving them (keep-alive keeps both around).
        self._connections: dict[socket.socket, threading.Thread] = {}

    # ----- life cycle ---------------------------------------------------------------------------

    def start(self) -> FakeHub:
        """Listen on a free loopback port in a background thread."""
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.02), name="fakehub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, close the connections clients keep alive, and join every server thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None
        with self._lock:
            open_ = dict(self._connections)
        for conn in open_:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in open_.values():
            thread.join(5)

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections[conn] = threading.current_thread()

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(conn, None)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, repo: HubRepo) -> HubRepo:
        """Add (or replace) a repository."""
        self.repos[repo.repo_id] = repo
        return repo

    def body_bytes(self, filename: str) -> int:
        """Total body bytes sent for GETs of `filename`."""
        with self._lock:
            return sum(
                r.body_bytes for r in self.requests if r.method == "GET" and r.path.endswith("/" + filename)
            )

    def download_bytes(self, filename: str) -> int:
        """Body bytes sent for downloads of `filename` (GETs to its end; header peeks not counted)."""
        with self._lock:
            return sum(
                r.body_bytes
                for r in self.requests
                if r.method == "GET" and r.path.endswith("/" + filename) and not r.bounded
            )

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:  # keep pytest output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.fake._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._closed(self.connection)

    # ----- plumbing -----------------------------------------------------------------------------

    def _begin(self) -> Request:
        split = urlsplit(self.path)
        request = Request(
            self.command,
            unquote(split.path),
            parse_qs(split.query),
            {k.lower(): v for k, v in self.headers.items()},
        )
        self.fake.record(request)
        return request

    def _json(
        self, request: Request, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        request.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, request: Request, status: int, code: str | None, message: str) -> None:
        self._json(request, {"error": message}, status, {"X-Error-Code": code} if code else None)

    def _token(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _access(self, request: Request, repo: HubRepo, files: bool) -> bool:
        """Apply the Hub's rules for private and gated repositories; answer and return False if refused."""
        token = self._token(request)
        if token is not None and token not in self.fake.valid_tokens:
            self._error(request, 401, None, "Invalid credentials in Authorization header")
            return False
        if repo.private and token not in self.fake.accepted_tokens:
            self._error(request, 401, "RepoNotFound", "Repository not found")
            return False
        if files and repo.gated and token not in self.fake.accepted_tokens:
            if token is None:
                self._error(
                    request,
                    401,
                    "GatedRepo",
                    "Access to this model is restricted. You must be authenticated.",
                )
            else:
                self._error(
                    request,
                    403,
                    "GatedRepo",
                    "Access to this model is restricted and you are not in the authorized list.",
                )
            return False
        return True

    # ----- routes -------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        request = self._begin()
        path = request.path
        try:
            if path == "/api/models":
                self._search(request)
            elif path.startswith("/api/models/"):
                self._info(request, path[len("/api/models/") :])
            elif "/resolve/" in path:
                self._resolve(request, path)
            else:
                self._error(request, 404, None, "Not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _search(self, request: Request) -> None:
        q = request.query
        if self.fake.search_delay:
            time.sleep(self.fake.search_delay)
        text = (q.get("search") or [""])[0].lower()
        wanted = set(q.get("filter", []))
        repos = [
            r
            for r in self.fake.repos.values()
            if not r.private and text in r.repo_id.lower() and wanted.issubset(r.tags)
        ]
        key = (q.get("sort") or ["downloads"])[0]
        field_of = {
            "downloads": "downloads",
            "likes": "likes",
            "lastModified": "last_modified",
            "trendingScore": "trending",
            "createdAt": "last_modified",
        }
        attr = field_of.get(key, "downloads")
        repos.sort(key=lambda r: (getattr(r, attr), r.repo_id), reverse=True)
        limit = int((q.get("limit") or [self.fake.page_size])[0])
        page = min(limit, self.fake.page_size)
        cursor = int((q.get("cursor") or ["0"])[0])
        chunk = repos[cursor : cursor + page]
        headers = {}
        if cursor + page < len(repos) and "limit" not in q:
            params = {k: v for k, v in q.items() if k != "cursor"}
            params["cursor"] = [str(cursor + page)]
            headers["Link"] = f'<{self.fake.url}/api/models?{urlencode(params, doseq=True)}>; rel="next"'
        expand = set(q.get("expand", []))
        items = []
        for repo in chunk:
            item = repo.summary()
            if expand:
                item = {k: v for k, v in item.items() if k in expand or k in ("_id", "id")}
                if "gguf" in expand and repo.gguf is not None:
                    item["gguf"] = repo.gguf
                if "siblings" in expand:
                    item["siblings"] = [{"rfilename": name} for name in sorted(repo.files)]
            items.append(item)
        self._json(request, items, headers=headers)

    def _info(self, request: Request, rest: str) -> None:
        repo_id, _, _revision = rest.partition("/revision/")
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._error(request, 401, "RepoNotFound", "Repository not found")
            return
        if not self._access(request, repo, files=False):
            return
        blobs = (request.query.get("blobs") or ["false"])[0].lower() == "true"
        siblings = []
        for name, hub_file in sorted(repo.files.items()):
            sibling: dict[str, Any] = {"rfilename": name}
            if blobs:
                sibling["size"] = hub_file.size
                sibling["blobId"] = hashlib.sha1(name.encode()).hexdigest()
                if hub_file.lfs:
                    sibling["lfs"] = {"sha256": hub_file.sha256, "size": hub_file.size, "pointerSize": 134}
            siblings.append(sibling)
        info = {
            **repo.summary(),
            "sha": COMMIT,
            "siblings": siblings,
            "cardData": {"license": repo.license} if repo.license else {},
        }
        if repo.gguf is not None:
            info["gguf"] = repo.gguf
        self._json(request, info)

    def _resolve(self, request: Request, path: str) -> None:
        repo_part, _, rest = path.lstrip("/").partition("/resolve/")
        _revision, _, filename = rest.partition("/")
        repo = self.fake.repos.get(repo_part)
        if repo is None:
            self._error(request, 404, "RepoNotFound", "Repository not found")
            return
        if not self._access(request, repo, files=True):
            return
        hub_file = repo.files.get(filename)
        if hub_file is None:
            self._error(request, 404, "EntryNotFound", "Entry not found")
            return
        fault = next((f for suffix, f in self.fake.faults.items() if filename.endswith(suffix)), None)
        if fault is not None and fault.status and fault.times > 0 and self.command == "GET":
            fault.times -= 1
            self._error(request, fault.status, None, "Injected failure")
            return
        size = hub_file.size
        etag = hub_file.sha256 if hub_file.lfs else hashlib.sha1(filename.encode()).hexdigest()
        start, end = 0, size
        rng = request.headers.get("range")
        if rng and rng.startswith("bytes=") and self.command == "GET":
            first, _, last = rng[6:].partition("-")
            request.range_start = int(first or 0)
            request.bounded = bool(last)
            if fault is None or not fault.ignore_range:
                start = request.range_start
                end = min(size, int(last) + 1) if last else size
        if start >= size and size:
            self._error(request, 416, None, "Range not satisfiable")
            return
        status = 206 if start or end < size else 200
        request.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Repo-Commit", COMMIT)
        if hub_file.lfs:
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(size))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        self._send_body(request, hub_file, start, end, fault)

    def _send_body(
        self, request: Request, hub_file: HubFile, start: int, size: int, fault: Fault | None
    ) -> None:
        drop_at = corrupt_at = None
        if fault is not None and fault.drop_after is not None and fault.times > 0:
            fault.times -= 1
            drop_at = start + fault.drop_after
        if fault is not None and fault.corrupt_at is not None and fault.times > 0:
            fault.times -= 1
            corrupt_at = fault.corrupt_at
        position = start
        block = 1 << 18
        began = time.monotonic()
        while position < size:
            end = min(size, position + block)
            if drop_at is not None and end >= drop_at:
                end = drop_at
            data = hub_file.read(position, end)
            if corrupt_at is not None and position <= corrupt_at < end:
                damaged = bytearray(data)
                damaged[corrupt_at - position] ^= 0xFF
                data = bytes(damaged)
            self.wfile.write(data)
            request.body_bytes += len(data)
            position = end
            if drop_at is not None and position >= drop_at:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # a dropped connection, as a flaky network does
                return
            if fault is not None and fault.rate:
                ahead = request.body_bytes / fault.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)


def gguf_repo(repo_id: str, model: Path, **kwargs: Any) -> HubRepo:
    """A repository serving the real starter GGUF under its usual name, plus a README."""
    readme = kwargs.pop(
        "readme",
        "---\nlicense: apache-2.0\n---\n\n# SmolLM2 GGUF\n\n"
        "SmolLM2 is a family of compact language models.\n\n"
        "It runs on a laptop.\n\n## Usage\n\nMore text here.\n",
    )
    files = {
        model.name: HubFile(path=model),
        "README.md": HubFile(data=readme.encode(), lfs=False),
    }
    files.update(kwargs.pop("files", {}))
    return HubRepo(repo_id, files=files, readme=readme, **kwargs)
