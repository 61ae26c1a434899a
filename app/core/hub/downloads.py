"""Model downloads that never lose a byte: queued, resumable across restarts, verified before use.

Each file is fetched with huggingface_hub's `http_get` (HTTP Range resume, its own retries inside one
transfer) into `<models>/.downloads/<owner>--<repo>/<file>.part`. The sha256 is computed while the
bytes are written (the bytes already on disk are hashed once when a download resumes), compared with
the Hub's LFS sha256, and only then is the file moved to `<models>/<owner>/<repo>/<file>`, where the
library finds it. The queue is saved in the data folder, so a download interrupted by a crash or a quit
is offered for resume on the next launch and continues from the bytes on disk.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.core.hub import client as hub
from app.core.hub.client import HubError
from app.core.hub.files import FileGroup, RemoteFile, UnsafeFileName, safe_relative_path
from app.core.values.units import format_size

log = logging.getLogger(__name__)

STAGING = ".downloads"
#: Free space kept beyond the download itself: a full disk breaks far more than this download.
DISK_MARGIN = 256 * 1024 * 1024
PROGRESS_INTERVAL = 0.25
RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 32.0)
_HASH_BLOCK = 4 << 20
#: huggingface_hub reads the response in pieces of this size (its default is 10 MB). Pause, cancel and
#: progress act between pieces, so 1 MiB keeps them prompt on slow connections (a second at 1 MB/s).
TRANSFER_CHUNK = 1 << 20


class State(StrEnum):
    """Where a download is in its life."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Waiting for or using a worker."""
        return self in (State.QUEUED, State.DOWNLOADING, State.VERIFYING)


@dataclass(slots=True)
class Job:
    """One model to download (all parts of a split model)."""

    id: str
    repo_id: str
    revision: str
    label: str
    quant: str | None
    files: list[RemoteFile]
    state: State = State.QUEUED
    done_bytes: int = 0
    speed: float = 0.0
    note: str = ""
    error: str | None = None
    error_kind: str | None = None
    path: str | None = None
    #: Bytes fetched over the network by this session (a resumed download does not count what was on disk).
    fetched_bytes: int = 0

    @property
    def total(self) -> int:
        """Bytes of all files."""
        return sum(f.size for f in self.files)

    @property
    def fraction(self) -> float:
        """Progress 0..1."""
        return min(1.0, self.done_bytes / self.total) if self.total else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current speed (None when unknown)."""
        if self.state is not State.DOWNLOADING or self.speed <= 0:
            return None
        return max(0.0, (self.total - self.done_bytes) / self.speed)

    def to_dict(self) -> dict[str, Any]:
        """What is saved between launches (progress is re-read from the files on disk)."""
        data = asdict(self)
        data["state"] = self.state.value
        data["files"] = [asdict(f) for f in self.files]
        for transient in ("done_bytes", "speed", "note", "fetched_bytes"):
            data.pop(transient)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """The inverse of to_dict (raises KeyError/TypeError/ValueError on a damaged record)."""
        files = [RemoteFile(str(f["filename"]), int(f["size"]), f.get("sha256")) for f in data["files"]]
        for f in files:
            safe_relative_path(f.filename)
        _repo_folder(str(data["repo_id"]))  # a damaged or hand-edited record must not point outside
        return cls(
            id=str(data["id"]), repo_id=str(data["repo_id"]), revision=str(data["revision"]),
            label=str(data["label"]), quant=data.get("quant"), files=files, state=State(data["state"]),
            error=data.get("error"), error_kind=data.get("error_kind"), path=data.get("path"),
        )  # fmt: skip


class _Stop(Exception):
    """Raised inside a transfer when the user paused or cancelled it, or the app is closing."""


class _Failure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def format_eta(seconds: float | None) -> str:
    """ "3 min 20 s left" style text."""
    if seconds is None:
        return ""
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min left"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s left"
    return f"{seconds} s left"


def _repo_folder(repo_id: str) -> Path:
    owner, _, name = repo_id.partition("/")
    return Path(*safe_relative_path(owner).parts) / Path(*safe_relative_path(name or "_").parts)


_RESET = b""


class _HashingWriter:
    """A file wrapper that hashes what is written, for http_get (which writes, tells, seeks, truncates).

    The hashing runs on a helper thread (hashlib releases the GIL on large blocks), so it overlaps
    the network instead of following it."""

    def __init__(self, handle: Any, digest: Any, on_truncate: Callable[[int], None]) -> None:
        self._handle = handle
        self.digest = digest
        self.restarted = False
        #: Told how many bytes a truncate threw away, so the progress can take them back.
        self._on_truncate = on_truncate
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._hash, name="fireside-hash", daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        while (block := self._queue.get()) is not None:
            if block is _RESET:
                self.digest = hashlib.sha256()
            else:
                self.digest.update(block)

    def write(self, data: bytes) -> int:
        written = int(self._handle.write(data))
        self._queue.put(bytes(data))
        return written

    def close(self) -> str:
        """Wait for the hashing to catch up; the sha256 of everything written."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        return str(self.digest.hexdigest())

    def tell(self) -> int:
        return int(self._handle.tell())

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._handle.seek(offset, whence))

    def truncate(self, size: int | None = None) -> int:
        # http_get truncates only when a server ignored our Range and sent the whole file again.
        self._handle.flush()
        before = os.fstat(self._handle.fileno()).st_size
        result = int(self._handle.truncate(size))
        self._queue.put(_RESET)  # in order: blocks written before the truncate are hashed, then dropped
        self.restarted = True
        self._on_truncate(max(0, before - result))
        return result

    def flush(self) -> None:
        self._handle.flush()


class DownloadManager:
    """The download queue: at most `parallel` transfers at once, each on its own worker thread.

    `on_change(job)` is called with a snapshot of a job whenever its state changes, and at most every
    PROGRESS_INTERVAL seconds while it transfers; it is called from worker threads.
    """

    def __init__(
        self,
        models_dir: Path,
        state_file: Path,
        on_change: Callable[[Job], None] = lambda _job: None,
        token: Callable[[], str | None] = lambda: None,
        parallel: int = 2,
    ) -> None:
        self.models_dir = models_dir
        self.state_file = state_file
        self.on_change = on_change
        self.token = token
        self.parallel = parallel
        self._jobs: dict[str, Job] = {}
        self._stops: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        #: Jobs whose worker is alive, even if the user already removed them from the list.
        self._running: dict[str, Job] = {}
        #: (job, file) -> (bytes hashed, sha256 state): a retry continues the hash instead of re-reading.
        self._digests: dict[tuple[str, str], tuple[int, Any]] = {}
        self._lock = threading.RLock()
        self._closed = False

    # ----- queries ------------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """Snapshots of every job, oldest first."""
        with self._lock:
            return [replace(j) for j in self._jobs.values()]

    def job(self, job_id: str) -> Job:
        """A snapshot of one job."""
        with self._lock:
            return replace(self._jobs[job_id])

    def staging_dir(self, repo_id: str) -> Path:
        """Where a repository's partial files live."""
        owner, _, name = repo_id.partition("/")
        return self.models_dir / STAGING / f"{owner}--{name}"

    def final_path(self, repo_id: str, filename: str) -> Path:
        """Where a verified file is installed."""
        return self.models_dir / _repo_folder(repo_id) / Path(*safe_relative_path(filename).parts)

    def part_path(self, repo_id: str, filename: str) -> Path:
        """The partial file of a download in progress."""
        rel = Path(*safe_relative_path(filename).parts)
        return self.staging_dir(repo_id) / rel.with_name(rel.name + ".part")

    # ----- commands -----------------------------------------------------------------------------

    def enqueue(self, repo_id: str, revision: str, group: FileGroup) -> Job:
        """Queue a model for download (the same file already queued or running is not queued twice).

        Raises HubError("unsafe") for a file name that could escape the models folder."""
        try:
            for f in group.files:
                safe_relative_path(f.filename)
            _repo_folder(repo_id)
        except UnsafeFileName as exc:
            raise HubError("unsafe", f"{repo_id}: {exc}") from exc
        with self._lock:
            for job in self._jobs.values():
                if (
                    job.repo_id == repo_id
                    and job.files[0].filename == group.name
                    and job.state is not State.CANCELLED
                    and not (job.state is State.DONE and not self._installed(job))  # deleted since
                ):
                    if job.state in (State.PAUSED, State.FAILED):
                        self.resume(job.id)
                    return replace(job)
            job = Job(uuid.uuid4().hex[:12], repo_id, revision, group.label, group.quant, list(group.files))
            job.done_bytes = self._bytes_on_disk(job)
            self._jobs[job.id] = job
            self._save()
            self._changed(job)
            self._schedule()
            return replace(job)

    def pause(self, job_id: str) -> None:
        """Stop transferring and keep the partial file for a later resume."""
        with self._lock:
            job = self._jobs[job_id]
            if not job.state.active:
                return
            self._stop_worker(job_id)
            self._set(job, State.PAUSED, note="Paused")

    def resume(self, job_id: str) -> None:
        """Queue a paused or failed download again; it continues from the bytes on disk."""
        with self._lock:
            job = self._jobs[job_id]
            if job.state not in (State.PAUSED, State.FAILED):
                return
            job.error = job.error_kind = None
            job.done_bytes = self._bytes_on_disk(job)
            self._set(job, State.QUEUED, note="")
            self._schedule()

    def cancel(self, job_id: str) -> None:
        """Stop and delete the partial files; verified files stay."""
        with self._lock:
            job = self._jobs[job_id]
            if job.state is State.DONE:
                return
            running = self._stop_worker(job_id)
            self._set(job, State.CANCELLED, note="Cancelled")
            if running is None:
                self._delete_parts(job)
            # else: the worker deletes them once it has let go of the file.
            self._schedule()

    def remove(self, job_id: str) -> None:
        """Forget a finished, failed or cancelled job (an active one is cancelled first)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            if job.state.active or job.state is State.PAUSED:
                self.cancel(job_id)
            self._jobs.pop(job_id, None)
            self._save()

    def restore(self) -> list[Job]:
        """Load the saved queue; unfinished downloads come back paused, ready to resume. Returns them."""
        try:
            records = json.loads(self.state_file.read_text("utf-8")).get("jobs", [])
        except FileNotFoundError:
            return []
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("download list %s unreadable (%s); starting empty", self.state_file, exc)
            return []
        unfinished = []
        with self._lock:
            for record in records:
                try:
                    job = Job.from_dict(record)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("skipping a damaged download record: %s", exc)
                    continue
                if job.state in (State.DONE, State.CANCELLED) or job.id in self._jobs:
                    continue
                if job.state.active:
                    job.state = State.PAUSED
                job.done_bytes = self._bytes_on_disk(job)
                job.note = f"Interrupted at {format_size(job.done_bytes)}: resume to continue"
                self._jobs[job.id] = job
                unfinished.append(replace(job))
            self._save()
        return unfinished

    def busy(self) -> bool:
        """True while any worker is alive (also one still stopping after a cancel)."""
        with self._lock:
            return any(t.is_alive() for t in self._threads.values())

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every transfer, keeping partial files (they resume next launch), and join the workers."""
        with self._lock:
            self._closed = True
            threads = list(self._threads.values())
            for event in self._stops.values():
                event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._save()

    # ----- scheduling ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            if self._closed:
                return
            running = sum(1 for t in self._threads.values() if t.is_alive())
            for job in self._jobs.values():
                if running >= self.parallel:
                    break
                holder = next(
                    (o for o in self._running.values() if self._same_files(o, job)),
                    None,
                )
                if holder is not None:
                    continue  # a stopping worker still holds this file; it schedules again when it ends
                if job.state is State.QUEUED and job.id not in self._threads:
                    stop = threading.Event()
                    self._stops[job.id] = stop
                    thread = threading.Thread(
                        target=self._work,
                        args=(job.id, stop),
                        name=f"fireside-download-{job.id}",
                        daemon=True,
                    )
                    self._threads[job.id] = thread
                    self._running[job.id] = job
                    job.state = State.DOWNLOADING
                    self._changed(job)
                    thread.start()
                    running += 1

    def _stop_worker(self, job_id: str) -> threading.Thread | None:
        stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()
        return self._threads.get(job_id)

    def _set(self, job: Job, state: State, note: str | None = None) -> None:
        job.state = state
        if note is not None:
            job.note = note
        if state is not State.DOWNLOADING:
            job.speed = 0.0
        self._save()
        self._changed(job)

    def _changed(self, job: Job) -> None:
        try:
            self.on_change(replace(job))
        except Exception:
            log.exception("download listener failed")

    def _save(self) -> None:
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_name(self.state_file.name + ".tmp")
            tmp.write_text(
                json.dumps({"jobs": [j.to_dict() for j in self._jobs.values()]}, indent=1), "utf-8"
            )
            os.replace(tmp, self.state_file)
        except OSError as exc:
            log.warning("could not save the download list: %s", exc)

    def _bytes_on_disk(self, job: Job) -> int:
        done = 0
        for f in job.files:
            final = self.final_path(job.repo_id, f.filename)
            part = self.part_path(job.repo_id, f.filename)
            if final.is_file() and final.stat().st_size == f.size:
                done += f.size
            elif part.is_file():
                done += min(part.stat().st_size, f.size)
        return done

    def _installed(self, job: Job) -> bool:
        return all(self.final_path(job.repo_id, f.filename).is_file() for f in job.files)

    def _same_files(self, a: Job, b: Job) -> bool:
        return a.repo_id == b.repo_id and a.files[0].filename == b.files[0].filename

    def _delete_parts(self, job: Job) -> None:
        if any(
            other is not job
            and self._same_files(job, other)
            and (
                other.state.active or other.state in (State.PAUSED, State.FAILED) or other.id in self._running
            )
            for other in self._jobs.values()
        ):
            return  # a newer job for the same file owns these partial files now
        for f in job.files:
            self.part_path(job.repo_id, f.filename).unlink(missing_ok=True)
        folder = self.staging_dir(job.repo_id)
        # Remove now-empty folders, deepest first; anything still holding a file stays.
        for sub in sorted(
            (p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            folder.rmdir()

    # ----- the worker ---------------------------------------------------------------------------

    def _work(self, job_id: str, stop: threading.Event) -> None:
        with self._lock:
            job = self._jobs[job_id]
        try:
            for f in job.files:
                self._fetch_with_retries(job, f, stop)
            with self._lock:
                job.path = str(self.final_path(job.repo_id, job.files[0].filename))
                job.done_bytes = job.total
                self._set(job, State.DONE, note="Verified")
        except _Stop:
            pass
        except _Failure as exc:
            with self._lock:
                # A pause or cancel the user chose stays what it is, unless the file is gone anyway.
                if job.state.active or (job.state is State.PAUSED and exc.kind == "checksum"):
                    job.error, job.error_kind = exc.message, exc.kind
                    if exc.kind == "checksum":
                        job.done_bytes = self._bytes_on_disk(job)
                    self._set(job, State.FAILED, note="")
        except Exception as exc:  # a bug must not kill the queue silently
            log.exception("download %s failed", job.label)
            with self._lock:
                if job.state.active:
                    job.error = hub.explain(exc, job.repo_id, self.token()).message
                    job.error_kind = "other"
                    self._set(job, State.FAILED, note="")
        finally:
            with self._lock:
                self._threads.pop(job_id, None)
                self._running.pop(job_id, None)
                self._stops.pop(job_id, None)
                if job.state is State.CANCELLED:
                    self._delete_parts(job)
                self._schedule()

    def _fetch_with_retries(self, job: Job, f: RemoteFile, stop: threading.Event) -> None:
        import httpx2
        from huggingface_hub.errors import HfHubHTTPError

        final = self.final_path(job.repo_id, f.filename)
        if final.is_file() and final.stat().st_size == f.size:
            return  # verified by an earlier run (only verified files are ever moved there)
        attempt = 0
        while True:
            if stop.is_set():
                raise _Stop
            try:
                self._fetch(job, f, stop)
                return
            except (_Stop, _Failure):
                raise
            except Exception as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                transient = (
                    isinstance(exc, httpx2.TransportError)
                    or (
                        isinstance(exc, HfHubHTTPError)
                        and status is not None
                        and (status >= 500 or status in (408, 429))
                    )
                    or (isinstance(exc, OSError) and "Consistency check failed" in str(exc))
                )
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise _Failure(
                        "disk",
                        f"The disk is full ({self.models_dir}). Free some space, then resume: "
                        "the bytes downloaded so far are kept.",
                    ) from exc
                if not transient or attempt >= len(RETRY_DELAYS):
                    explained = hub.explain(exc, job.repo_id, self.token())
                    raise _Failure(explained.kind, explained.message) from exc
                delay = RETRY_DELAYS[attempt]
                attempt += 1
                log.info(
                    "download %s: %s; retry %d in %.0f s", f.filename, type(exc).__name__, attempt, delay
                )
                with self._lock:
                    tries = len(RETRY_DELAYS)
                    cause = f"server error {status}" if status else "connection lost"
                    job.note = f"Interrupted ({cause}); retrying in {delay:.0f} s, try {attempt} of {tries}"
                    job.speed = 0.0
                    self._changed(job)
                if stop.wait(delay):
                    raise _Stop from exc

    def _fetch(self, job: Job, f: RemoteFile, stop: threading.Event) -> None:
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers

        constants.DOWNLOAD_CHUNK_SIZE = TRANSFER_CHUNK  # read by http_get on each call
        token = self.token() or False
        url = hf_hub_url(job.repo_id, f.filename, revision=job.revision, endpoint=hub.endpoint())
        meta = get_hf_file_metadata(url, token=token, timeout=15)
        size = meta.size if meta.size is not None else f.size
        expected_sha = f.sha256 or (meta.etag if meta.etag and len(meta.etag) == 64 else None)
        part = self.part_path(job.repo_id, f.filename)
        part.parent.mkdir(parents=True, exist_ok=True)
        on_disk = part.stat().st_size if part.exists() else 0
        if on_disk > size:
            part.unlink()
            on_disk = 0
        self._check_space(job, part.parent)

        known = self._digests.pop((job.id, f.filename), None)
        with open(part, "ab") as handle:
            if known is not None and known[0] == on_disk:
                digest = known[1]  # a retry in this session: the bytes on disk are already hashed
            else:
                digest = hashlib.sha256()
                if on_disk:
                    self._hash_prefix(job, part, on_disk, digest, stop)

            def discarded(n_bytes: int) -> None:
                with self._lock:
                    job.done_bytes = max(0, job.done_bytes - n_bytes)

            writer = _HashingWriter(handle, digest, discarded)
            with self._lock:
                job.note = f"Resuming from {format_size(on_disk)}" if on_disk else ""
                self._changed(job)
            try:
                http_get(
                    meta.location, writer, resume_size=on_disk,  # type: ignore[arg-type]
                    headers=build_hf_headers(token=token, library_name="fireside"),
                    expected_size=size, displayed_filename=f.filename,
                    tqdm_class=self._progress_class(job, stop),
                )  # fmt: skip
            finally:
                actual = writer.close()
                self._digests[(job.id, f.filename)] = (handle.tell(), writer.digest.copy())
            with self._lock:
                if job.state is State.DOWNLOADING:
                    self._set(job, State.VERIFYING, note="Verifying")
            handle.flush()
            # On disk before it is installed: a power cut must not leave a verified-looking file of
            # zeros. It costs about 2 s per GB on a slow disk; on a real network the OS writes the
            # file back while it arrives and this has little left to do.
            os.fsync(handle.fileno())
        if expected_sha and actual != expected_sha.lower():
            part.unlink(missing_ok=True)
            raise _Failure(
                "checksum",
                f"{f.filename} did not match the Hub's checksum (sha256 {actual[:12]}… instead of "
                f"{expected_sha[:12]}…). The damaged file was deleted; download it again.",
            )
        self._digests.pop((job.id, f.filename), None)
        final = self.final_path(job.repo_id, f.filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:  # a pause or cancel is either before this (nothing installed) or after it
            if stop.is_set():
                raise _Stop
            os.replace(part, final)
        if f is not job.files[-1]:
            with self._lock:
                if job.state is State.VERIFYING:
                    self._set(job, State.DOWNLOADING, note="")
        else:
            self._delete_parts(job)

    def _check_space(self, job: Job, folder: Path) -> None:
        remaining = job.total - self._bytes_on_disk(job)
        free = shutil.disk_usage(folder).free
        if free < remaining + DISK_MARGIN:
            raise _Failure(
                "disk",
                f"Not enough disk space for {job.label}: it needs {format_size(remaining)} more, and "
                f"{format_size(free)} is free in {self.models_dir} "
                f"(Fireside keeps {format_size(DISK_MARGIN)} spare). "
                "Free some space or choose another models folder, then resume.",
            )

    def _hash_prefix(self, job: Job, part: Path, length: int, digest: Any, stop: threading.Event) -> None:
        """Hash the bytes a previous session wrote, so the final checksum covers the whole file."""
        with self._lock:
            job.note = f"Checking the {format_size(length)} already downloaded"
            self._changed(job)
        with open(part, "rb") as source:
            left = length
            while left > 0:
                if stop.is_set():
                    raise _Stop
                block = source.read(min(_HASH_BLOCK, left))
                if not block:
                    break
                digest.update(block)
                left -= len(block)

    def _progress_class(self, job: Job, stop: threading.Event) -> type:
        """A tqdm stand-in for http_get: counts bytes, throttles updates, stops the transfer on request."""
        manager = self
        state = {"last": time.monotonic(), "bytes": 0}

        class Progress:
            def __init__(self, *_args: Any, **_kwargs: Any) -> None:
                self.n = 0

            def __enter__(self) -> Progress:
                return self

            def __exit__(self, *_exc: object) -> None:
                pass

            def close(self) -> None:
                pass

            def update(self, n: int) -> None:
                if stop.is_set():
                    raise _Stop
                if n < 0:
                    return  # http_get rolling back after a restart: _HashingWriter.truncate counted it
                self.n += n
                with manager._lock:
                    job.done_bytes += n
                    if n > 0:
                        job.fetched_bytes += n
                    state["bytes"] += n
                    now = time.monotonic()
                    elapsed = now - state["last"]
                    if elapsed >= PROGRESS_INTERVAL:
                        rate = state["bytes"] / elapsed
                        job.speed = rate if job.speed <= 0 else 0.6 * rate + 0.4 * job.speed
                        state["last"], state["bytes"] = now, 0
                        if job.note.startswith(("Interrupted (", "Resuming", "Checking")):
                            job.note = ""
                        manager._changed(job)

        return Progress


def find_unfinished(models_dir: Path) -> list[Path]:
    """Partial files left in the staging folder (for diagnostics and tests)."""
    root = models_dir / STAGING
    return sorted(root.rglob("*.part")) if root.is_dir() else []
