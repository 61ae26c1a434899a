"""One file's transfer: fetched into its partial file with HTTP Range resume and retries, hashed while
it is written, checked against the Hub's sha256, then installed.

Each file is fetched with huggingface_hub's `http_get` (Range resume, its own retries inside one
transfer). The sha256 is computed while the bytes are written (the bytes already on disk are hashed
once when a download resumes) and compared with the Hub's LFS sha256; only then is the file moved to
where the library finds it. Between tries of a transient failure (a dropped connection, a server
error) it waits RETRY_DELAYS, longer each time.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from app.core.hub import client as hub
from app.core.hub.client import HubErrorKind
from app.core.hub.downloads import layout
from app.core.hub.downloads.jobs import Job, State
from app.core.hub.files import RemoteFile
from app.core.values.units import format_size

log = logging.getLogger(__name__)

#: Free space kept beyond the download itself: a full disk breaks far more than this download.
DISK_MARGIN = 256 * 1024 * 1024
PROGRESS_INTERVAL = 0.25
RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 32.0)
_HASH_BLOCK = 4 << 20
#: huggingface_hub reads the response in pieces of this size (its default is 10 MB). Pause, cancel and
#: progress act between pieces, so 1 MiB keeps them prompt on slow connections (a second at 1 MB/s).
TRANSFER_CHUNK = 1 << 20


class Stopped(Exception):
    """Raised inside a transfer when the user paused or cancelled it, or the app is closing."""


class Failure(Exception):
    """A transfer failed for good (no retry left, or one would not help); `message` is for users."""

    def __init__(self, kind: HubErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Manager(Protocol):
    """The bookkeeping of the download queue that a transfer takes part in (DownloadManager's).

    The queue owns each job and guards its fields with `_lock`: a transfer changes a job's progress
    under that lock and reports through `_changed` (progress) and `_set` (a new state, also saved).
    The names are private because nothing but a transfer should use them."""

    models_dir: Path
    token: Callable[[], str | None]
    _lock: threading.RLock
    #: (job, file) -> (bytes hashed, sha256 state): a retry continues the hash instead of re-reading.
    _digests: dict[tuple[str, str], tuple[int, Any]]

    def _changed(self, job: Job) -> None: ...

    def _set(self, job: Job, state: State, note: str | None = None) -> None: ...

    def _bytes_on_disk(self, job: Job) -> int: ...

    def _delete_parts(self, job: Job) -> None: ...


_RESET = b""


class HashingWriter:
    """A file wrapper that hashes what is written, for http_get (which writes, tells, seeks, truncates).

    The hashing runs on a helper thread (hashlib releases the GIL on large blocks), so it overlaps
    the network instead of following it."""

    def __init__(self, handle: Any, digest: Any, on_truncate: Callable[[int], None]) -> None:
        self._handle = handle
        self.digest = digest
        #: Where the hashed bytes end in the file. Not the file's position: a write the disk cut short
        #: (it filled up) leaves bytes in the file that were never hashed.
        self.length = int(handle.tell())
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
        """Write `data` to the file and queue it for hashing."""
        written = int(self._handle.write(data))
        self._queue.put(bytes(data))
        self.length += len(data)
        return written

    def close(self) -> str:
        """Wait for the hashing to catch up; the sha256 of everything written."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        return str(self.digest.hexdigest())

    def tell(self) -> int:
        """The file's position."""
        return int(self._handle.tell())

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the file's position."""
        return int(self._handle.seek(offset, whence))

    def truncate(self, size: int | None = None) -> int:
        """Cut the file and start the hash afresh (http_get only ever cuts it back to empty)."""
        # http_get truncates only when a server ignored our Range and sent the whole file again.
        self._handle.flush()
        before = os.fstat(self._handle.fileno()).st_size
        result = int(self._handle.truncate(size))
        self._queue.put(_RESET)  # in order: blocks written before the truncate are hashed, then dropped
        self.length = result
        self.restarted = True
        self._on_truncate(max(0, before - result))
        return result

    def flush(self) -> None:
        """Flush the file's buffer."""
        self._handle.flush()


class FileTransfer:
    """One file of a job, fetched on the job's worker thread: `run()` returns once the file is verified
    and installed, and raises Stopped (pause, cancel, closing) or Failure."""

    def __init__(self, manager: Manager, job: Job, file: RemoteFile, stop: threading.Event) -> None:
        self.manager = manager
        self.job = job
        self.file = file
        self.stop = stop

    def run(self) -> None:
        """Fetch, verify and install the file, retrying transient failures with back-off."""
        import httpx2
        from huggingface_hub.errors import HfHubHTTPError

        job, f, stop = self.job, self.file, self.stop
        final = layout.final_path(self.manager.models_dir, job.repo_id, f.filename)
        if final.is_file() and final.stat().st_size == f.size:
            return  # verified by an earlier run (only verified files are ever moved there)
        attempt = 0
        while True:
            if stop.is_set():
                raise Stopped
            try:
                self._fetch()
                return
            except (Stopped, Failure):
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
                if isinstance(exc, OSError) and (failure := self._folder_failure(exc)) is not None:
                    raise failure from exc
                if not transient or attempt >= len(RETRY_DELAYS):
                    explained = hub.explain(exc, job.repo_id, self.manager.token())
                    raise Failure(explained.kind, explained.message) from exc
                delay = RETRY_DELAYS[attempt]
                attempt += 1
                log.info(
                    "download %s: %s; retry %d in %.0f s", f.filename, type(exc).__name__, attempt, delay
                )
                with self.manager._lock:
                    tries = len(RETRY_DELAYS)
                    cause = f"server error {status}" if status else "connection lost"
                    job.note = f"Interrupted ({cause}); retrying in {delay:.0f} s, try {attempt} of {tries}"
                    job.speed = 0.0
                    self.manager._changed(job)
                if stop.wait(delay):
                    raise Stopped from exc

    def _fetch(self) -> None:
        """One try: resume the partial file, verify the whole, install it."""
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers

        manager, job, f, stop = self.manager, self.job, self.file, self.stop
        constants.DOWNLOAD_CHUNK_SIZE = TRANSFER_CHUNK  # read by http_get on each call
        token = manager.token() or False
        url = hf_hub_url(job.repo_id, f.filename, revision=job.revision, endpoint=hub.endpoint())
        meta = get_hf_file_metadata(url, token=token, timeout=15)
        size = meta.size if meta.size is not None else f.size
        expected_sha = f.sha256 or (meta.etag if meta.etag and len(meta.etag) == 64 else None)
        part = layout.part_path(manager.models_dir, job.repo_id, f.filename)
        part.parent.mkdir(parents=True, exist_ok=True)
        on_disk = part.stat().st_size if part.exists() else 0
        if on_disk > size:
            part.unlink()
            on_disk = 0
        self._check_space(part.parent)

        known = manager._digests.pop((job.id, f.filename), None)
        with open(part, "ab") as handle:
            if known is not None and known[0] == on_disk:
                digest = known[1]  # a retry in this session: the bytes on disk are already hashed
            else:
                digest = hashlib.sha256()
                if on_disk:
                    self._hash_prefix(part, on_disk, digest)

            def discarded(n_bytes: int) -> None:
                with manager._lock:
                    job.done_bytes = max(0, job.done_bytes - n_bytes)

            writer = HashingWriter(handle, digest, discarded)
            with manager._lock:
                job.note = f"Resuming from {format_size(on_disk)}" if on_disk else ""
                manager._changed(job)
            try:
                http_get(
                    meta.location, writer, resume_size=on_disk,  # type: ignore[arg-type]
                    headers=build_hf_headers(token=token, library_name="fireside"),
                    expected_size=size, displayed_filename=f.filename,
                    tqdm_class=self._progress_class(),
                )  # fmt: skip
            finally:
                actual = writer.close()
                manager._digests[(job.id, f.filename)] = (writer.length, writer.digest.copy())
            with manager._lock:
                if job.state is State.DOWNLOADING:
                    manager._set(job, State.VERIFYING, note="Verifying")
            handle.flush()
            # On disk before it is installed: a power cut must not leave a verified-looking file of
            # zeros. It costs about 2 s per GB on a slow disk; on a real network the OS writes the
            # file back while it arrives and this has little left to do.
            os.fsync(handle.fileno())
        if expected_sha and actual != expected_sha.lower():
            part.unlink(missing_ok=True)
            raise Failure(
                HubErrorKind.CHECKSUM,
                f"{f.filename} did not match the Hub's checksum (sha256 {actual[:12]}… instead of "
                f"{expected_sha[:12]}…). The damaged file was deleted; download it again.",
            )
        manager._digests.pop((job.id, f.filename), None)
        final = layout.final_path(manager.models_dir, job.repo_id, f.filename)
        if not part.exists():
            # Deleted since the last write: making the folders again would leave empty ones behind.
            raise _deleted(part)
        final.parent.mkdir(parents=True, exist_ok=True)
        with manager._lock:  # a pause or cancel is either before this (nothing installed) or after it
            if stop.is_set():
                raise Stopped
            os.replace(part, final)
        if f is not job.files[-1]:
            with manager._lock:
                if job.state is State.VERIFYING:
                    manager._set(job, State.DOWNLOADING, note="")
        else:
            manager._delete_parts(job)

    def _folder_failure(self, exc: OSError) -> Failure | None:
        """The failure to report for a file-system error of the models folder (None for another error)."""
        folder = self.manager.models_dir
        ours = _inside(exc.filename, folder)
        if exc.filename is not None and not ours:
            return None  # a file elsewhere (a certificate bundle): not the models folder's problem
        kept = "the bytes downloaded so far are kept"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            text = f"The disk is full (no space left in {folder}). Free some space, then resume: {kept}."
        elif exc.errno == errno.EROFS:
            text = (
                f"The models folder {folder} is read-only now (its disk was made read-only). "
                f"Make it writable, then resume: {kept}."
            )
        elif exc.errno in (errno.EACCES, errno.EPERM):
            text = (
                f"Fireside may not write in the models folder {folder} (permission denied). Allow it or "
                f"choose another models folder, then resume: {kept}."
            )
        elif exc.errno == errno.ENOENT and ours:
            text = (
                f"The partial download of {self.file.filename} in {folder} was deleted (the folder was "
                "removed, or its drive unplugged). Retry to download it again."
            )
        else:
            return None
        return Failure(HubErrorKind.DISK, text)

    def _check_space(self, folder: Path) -> None:
        job = self.job
        remaining = job.total - self.manager._bytes_on_disk(job)
        free = shutil.disk_usage(folder).free
        if free < remaining + DISK_MARGIN:
            raise Failure(
                HubErrorKind.DISK,
                f"Not enough disk space for {job.label}: it needs {format_size(remaining)} more, and "
                f"{format_size(free)} is free in {self.manager.models_dir} "
                f"(Fireside keeps {format_size(DISK_MARGIN)} spare). "
                "Free some space or choose another models folder, then resume.",
            )

    def _hash_prefix(self, part: Path, length: int, digest: Any) -> None:
        """Hash the bytes a previous session wrote, so the final checksum covers the whole file."""
        with self.manager._lock:
            self.job.note = f"Checking the {format_size(length)} already downloaded"
            self.manager._changed(self.job)
        with open(part, "rb") as source:
            left = length
            while left > 0:
                if self.stop.is_set():
                    raise Stopped
                block = source.read(min(_HASH_BLOCK, left))
                if not block:
                    break
                digest.update(block)
                left -= len(block)

    def _progress_class(self) -> type:
        """A tqdm stand-in for http_get: counts bytes, throttles updates, stops the transfer on request."""
        manager, job, stop = self.manager, self.job, self.stop
        part = layout.part_path(manager.models_dir, job.repo_id, self.file.filename)
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
                    raise Stopped
                if n < 0:
                    return  # http_get rolling back after a restart: HashingWriter.truncate counted it
                self.n += n
                tick = False
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
                        tick = True
                if tick and not part.exists():
                    # Its folder was deleted (or its drive unplugged): the rest would go to a file no
                    # one can reach, so the transfer stops now rather than at the end.
                    raise _deleted(part)

        return Progress


def _deleted(part: Path) -> FileNotFoundError:
    """The error for a partial file that was deleted while it was downloaded."""
    return FileNotFoundError(errno.ENOENT, "the partial file was deleted", str(part))


def _inside(name: object, folder: Path) -> bool:
    """True when the file name an OSError carries lies in `folder`."""
    return isinstance(name, str | os.PathLike) and Path(name).is_relative_to(folder)
