"""The download queue: which jobs run (at most `parallel` at once, each on its own worker thread),
pause, resume and cancel, and the list saved in the data folder, so a download interrupted by a crash
or a quit is offered for resume on the next launch and continues from the bytes on disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.hub import client as hub
from app.core.hub.client import HubError, HubErrorKind
from app.core.hub.downloads import layout
from app.core.hub.downloads.jobs import Job, State
from app.core.hub.downloads.transfer import Failure, FileTransfer, Stopped
from app.core.hub.files import FileGroup, UnsafeFileName, safe_relative_path
from app.core.values.units import format_size

log = logging.getLogger(__name__)


class DownloadManager:
    """The download queue: at most `parallel` transfers at once, each on its own worker thread.

    `on_change(job)` is called with a snapshot of a job whenever its state changes, and at most every
    transfer.PROGRESS_INTERVAL seconds while it transfers; it is called from worker threads.
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
        return layout.staging_dir(self.models_dir, repo_id)

    def final_path(self, repo_id: str, filename: str) -> Path:
        """Where a verified file is installed."""
        return layout.final_path(self.models_dir, repo_id, filename)

    def part_path(self, repo_id: str, filename: str) -> Path:
        """The partial file of a download in progress."""
        return layout.part_path(self.models_dir, repo_id, filename)

    # ----- commands -----------------------------------------------------------------------------

    def enqueue(self, repo_id: str, revision: str, group: FileGroup) -> Job:
        """Queue a model for download (the same file already queued or running is not queued twice).

        Raises HubError (kind UNSAFE) for a file name that could escape the models folder."""
        try:
            for f in group.files:
                safe_relative_path(f.filename)
            layout.repo_folder(repo_id)
        except UnsafeFileName as exc:
            raise HubError(HubErrorKind.UNSAFE, f"{repo_id}: {exc}") from exc
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
            if not isinstance(records, list):
                raise ValueError(f"its jobs are a JSON {type(records).__name__}, not a list")
        except FileNotFoundError:
            return []
        except (OSError, ValueError, AttributeError, RecursionError) as exc:
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
                if job.files and layout.installed_whole(self.models_dir, job.repo_id, job.files):
                    # The app stopped after the last file was moved into place but before the list
                    # said so: the model is in My models, not a download to finish.
                    self._delete_parts(job)
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
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(
                json.dumps({"jobs": [j.to_dict() for j in self._jobs.values()]}, indent=1), "utf-8"
            )
            os.replace(tmp, self.state_file)
        except OSError as exc:
            log.warning("could not save the download list: %s", exc)
            with contextlib.suppress(OSError):  # a half-written copy (disk full) is of no use
                tmp.unlink(missing_ok=True)

    def _bytes_on_disk(self, job: Job) -> int:
        return layout.bytes_on_disk(self.models_dir, job.repo_id, job.files)

    def _installed(self, job: Job) -> bool:
        return layout.installed(self.models_dir, job.repo_id, job.files)

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
        layout.remove_parts(self.models_dir, job.repo_id, job.files)

    # ----- the worker ---------------------------------------------------------------------------

    def _work(self, job_id: str, stop: threading.Event) -> None:
        with self._lock:
            job = self._jobs[job_id]
        try:
            for f in job.files:
                FileTransfer(self, job, f, stop).run()
            with self._lock:
                job.path = str(self.final_path(job.repo_id, job.files[0].filename))
                job.done_bytes = job.total
                self._set(job, State.DONE, note="Verified")
        except Stopped:
            pass
        except Failure as exc:
            with self._lock:
                # A pause or cancel the user chose stays what it is, unless the file is gone anyway.
                if job.state.active or (job.state is State.PAUSED and exc.kind is HubErrorKind.CHECKSUM):
                    job.error, job.error_kind = exc.message, exc.kind
                    if exc.kind is HubErrorKind.CHECKSUM:
                        job.done_bytes = self._bytes_on_disk(job)
                    self._set(job, State.FAILED, note="")
        except Exception as exc:  # a bug must not kill the queue silently
            log.exception("download %s failed", job.label)
            with self._lock:
                if job.state.active:
                    job.error = hub.explain(exc, job.repo_id, self.token()).message
                    job.error_kind = HubErrorKind.OTHER
                    self._set(job, State.FAILED, note="")
        finally:
            with self._lock:
                self._threads.pop(job_id, None)
                self._running.pop(job_id, None)
                self._stops.pop(job_id, None)
                if job.state is State.CANCELLED:
                    self._delete_parts(job)
                self._schedule()
