"""DownloadManager against a local Hub look-alike: real HTTP, the real huggingface_hub client, real files."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.hub import downloads
from app.core.hub.client import HubClient, HubError
from app.core.hub.downloads import DownloadManager, Job, State, transfer
from app.core.hub.files import FileGroup, RemoteFile
from app.core.models import starter
from app.core.values.units import format_size
from tests.conftest import STARTER_REPO
from tests.fakehub import FakeHub, Fault, HubFile, HubRepo

MB = 1 << 20
TOKEN = "hf_DownloadTokenValue1234567890abcd"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `condition` every 20 ms until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


class Recorder:
    """Every snapshot on_change delivered, in order (it is called from worker threads)."""

    def __init__(self) -> None:
        self.events: list[Job] = []
        self._lock = threading.Lock()

    def __call__(self, job: Job) -> None:
        with self._lock:
            self.events.append(job)

    def of(self, job_id: str) -> list[Job]:
        with self._lock:
            return [j for j in self.events if j.id == job_id]

    def notes(self, job_id: str) -> list[str]:
        return [j.note for j in self.of(job_id)]


class Env:
    """A models folder, a data folder, the fake hub, and the managers a test made (all shut down after)."""

    def __init__(self, root: Path, fake: FakeHub) -> None:
        self.models = root / "models"
        self.state_file = root / "data" / "downloads.json"
        self.fake = fake
        self.managers: list[DownloadManager] = []

    def manager(self, **kwargs: object) -> tuple[DownloadManager, Recorder]:
        recorder = Recorder()
        manager = DownloadManager(self.models, self.state_file, on_change=recorder, **kwargs)  # type: ignore[arg-type]
        self.managers.append(manager)
        return manager, recorder

    def repo(self, repo_id: str, files: dict[str, bytes], **kwargs: object) -> list[FileGroup]:
        """Publish a repository on the fake hub and list its models through the real client."""
        self.fake.add(HubRepo(repo_id, files={n: HubFile(data=d) for n, d in files.items()}, **kwargs))  # type: ignore[arg-type]
        return HubClient().details(repo_id).groups

    def gets(self, filename: str) -> list:
        return [r for r in self.fake.requests if r.method == "GET" and r.path.endswith("/" + filename)]


@pytest.fixture
def env(tmp_path: Path, fake_hub: FakeHub) -> Iterator[Env]:
    environment = Env(tmp_path, fake_hub)
    yield environment
    for manager in environment.managers:
        manager.shutdown()


def worker_gone(job_id: str) -> bool:
    return not any(t.name == f"fireside-download-{job_id}" for t in threading.enumerate())


def wait_state(manager: DownloadManager, job_id: str, *states: State, timeout: float = 20.0) -> Job:
    wait_for(lambda: manager.job(job_id).state in states, f"job {job_id} to be {states}", timeout)
    return manager.job(job_id)


def part_size(manager: DownloadManager, repo_id: str, filename: str) -> int:
    part = manager.part_path(repo_id, filename)
    return part.stat().st_size if part.exists() else 0


# ----- complete downloads -------------------------------------------------------------------------


def test_full_download_of_the_starter_model_is_verified_and_installed(env: Env) -> None:
    manager, recorder = env.manager()
    details = HubClient().details(STARTER_REPO)
    job = manager.enqueue(STARTER_REPO, details.revision, details.groups[0])
    assert job.total == starter.SIZE and job.quant == "Q4_1"
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    final = manager.final_path(STARTER_REPO, starter.FILENAME)
    assert final == env.models / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / starter.FILENAME
    assert done.path == str(final)
    assert starter.sha256_of(final) == starter.SHA256
    assert downloads.find_unfinished(env.models) == []
    assert not manager.staging_dir(STARTER_REPO).exists()
    assert done.done_bytes == done.total == starter.SIZE
    assert done.fetched_bytes == starter.SIZE
    assert env.fake.body_bytes(starter.FILENAME) == starter.SIZE  # fetched once, from the start
    assert [r.range_start for r in env.gets(starter.FILENAME)] == [None]
    states = [j.state for j in recorder.of(job.id)]
    assert states[0] is State.QUEUED and State.DOWNLOADING in states and states[-1] is State.DONE
    assert recorder.of(job.id)[-1].note == "Verified"


def test_split_model_downloads_every_part(env: Env) -> None:
    parts = {"M-Q4_0-00001-of-00002.gguf": blob(3 * MB, 1), "M-Q4_0-00002-of-00002.gguf": blob(MB, 2)}
    (group,) = env.repo("t/split-GGUF", parts)
    manager, _ = env.manager()
    job = manager.enqueue("t/split-GGUF", "main", group)
    assert job.label == "M-Q4_0.gguf (2 parts)"
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    for name, data in parts.items():
        assert manager.final_path("t/split-GGUF", name).read_bytes() == data
    assert done.path == str(manager.final_path("t/split-GGUF", "M-Q4_0-00001-of-00002.gguf"))
    assert downloads.find_unfinished(env.models) == []


# ----- pause, resume, restart ---------------------------------------------------------------------


def test_pause_then_resume_fetches_only_the_missing_bytes(env: Env) -> None:
    data = blob(32 * MB)
    (group,) = env.repo("t/pause-GGUF", {"p-Q8_0.gguf": data})
    env.fake.faults["p-Q8_0.gguf"] = Fault(rate=20e6)
    manager, _ = env.manager()
    job = manager.enqueue("t/pause-GGUF", "main", group)
    wait_for(lambda: part_size(manager, "t/pause-GGUF", "p-Q8_0.gguf") > 8 * MB, "8 MB on disk")
    manager.pause(job.id)
    assert manager.job(job.id).state is State.PAUSED
    wait_for(lambda: worker_gone(job.id), "the worker to let go")
    on_disk = part_size(manager, "t/pause-GGUF", "p-Q8_0.gguf")
    assert 8 * MB < on_disk < len(data)
    assert manager.part_path("t/pause-GGUF", "p-Q8_0.gguf").read_bytes() == data[:on_disk]
    assert not manager.final_path("t/pause-GGUF", "p-Q8_0.gguf").exists()

    del env.fake.faults["p-Q8_0.gguf"]
    manager.resume(job.id)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert manager.final_path("t/pause-GGUF", "p-Q8_0.gguf").read_bytes() == data
    resumed = env.gets("p-Q8_0.gguf")[-1]
    assert resumed.range_start == on_disk
    assert resumed.status == 206
    assert resumed.body_bytes == len(data) - on_disk  # the bytes on disk were not fetched again
    assert done.fetched_bytes == len(data)  # this session: the first stretch plus the rest, nothing twice
    assert downloads.find_unfinished(env.models) == []


def test_restart_restores_a_paused_job_that_resumes_from_the_bytes_on_disk(env: Env) -> None:
    data = blob(32 * MB, 7)
    (group,) = env.repo("t/restart-GGUF", {"r-Q6_K.gguf": data})
    env.fake.faults["r-Q6_K.gguf"] = Fault(rate=20e6)
    first, _ = env.manager()
    job = first.enqueue("t/restart-GGUF", "main", group)
    wait_for(lambda: part_size(first, "t/restart-GGUF", "r-Q6_K.gguf") > 6 * MB, "6 MB on disk")
    first.shutdown()  # the app quits mid-transfer
    assert worker_gone(job.id)
    on_disk = part_size(first, "t/restart-GGUF", "r-Q6_K.gguf")
    assert 6 * MB < on_disk < len(data)

    second, recorder = env.manager()
    restored = second.restore()
    assert [j.id for j in restored] == [job.id]
    back = restored[0]
    assert back.state is State.PAUSED
    assert back.done_bytes == on_disk
    assert back.files == [RemoteFile("r-Q6_K.gguf", len(data), hashlib.sha256(data).hexdigest())]
    assert "Interrupted at" in back.note and "resume" in back.note
    assert second.restore() == []  # restoring twice does not duplicate

    del env.fake.faults["r-Q6_K.gguf"]
    second.resume(job.id)
    done = wait_state(second, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert second.final_path("t/restart-GGUF", "r-Q6_K.gguf").read_bytes() == data
    assert env.gets("r-Q6_K.gguf")[-1].range_start == on_disk
    assert done.fetched_bytes == len(data) - on_disk
    assert any(n.startswith("Checking the") for n in recorder.notes(job.id))  # bytes on disk re-hashed


def test_a_complete_part_file_is_verified_and_installed_without_fetching(env: Env) -> None:
    data = blob(2 * MB, 18)
    (group,) = env.repo("t/whole-GGUF", {"w-Q4_0.gguf": data})
    manager, _ = env.manager()
    part = manager.part_path("t/whole-GGUF", "w-Q4_0.gguf")
    part.parent.mkdir(parents=True)
    part.write_bytes(data)  # a crash came between the last byte and the move
    job = manager.enqueue("t/whole-GGUF", "main", group)
    assert job.done_bytes == len(data)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert env.fake.body_bytes("w-Q4_0.gguf") == 0
    assert done.fetched_bytes == 0
    assert manager.final_path("t/whole-GGUF", "w-Q4_0.gguf").read_bytes() == data


def test_a_part_file_longer_than_the_file_is_started_over(env: Env) -> None:
    data = blob(MB, 19)
    (group,) = env.repo("t/long-GGUF", {"l-Q4_0.gguf": data})
    manager, _ = env.manager()
    part = manager.part_path("t/long-GGUF", "l-Q4_0.gguf")
    part.parent.mkdir(parents=True)
    part.write_bytes(blob(2 * MB, 20))
    job = manager.enqueue("t/long-GGUF", "main", group)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert [r.range_start for r in env.gets("l-Q4_0.gguf")] == [None]
    assert manager.final_path("t/long-GGUF", "l-Q4_0.gguf").read_bytes() == data


def test_a_server_ignoring_range_sends_the_whole_file_and_it_still_verifies(env: Env) -> None:
    data = blob(24 * MB, 21)
    (group,) = env.repo("t/norange-GGUF", {"r-Q4_0.gguf": data})
    manager, recorder = env.manager()
    part = manager.part_path("t/norange-GGUF", "r-Q4_0.gguf")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: 12 * MB])  # an earlier session's bytes
    env.fake.faults["r-Q4_0.gguf"] = Fault(ignore_range=True, rate=40e6)
    job = manager.enqueue("t/norange-GGUF", "main", group)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    (request,) = env.gets("r-Q4_0.gguf")
    assert (request.range_start, request.status, request.body_bytes) == (12 * MB, 200, len(data))
    assert manager.final_path("t/norange-GGUF", "r-Q4_0.gguf").read_bytes() == data
    # The progress never claims more than the file: the bytes thrown away are not counted twice.
    assert max(j.done_bytes for j in recorder.of(job.id)) <= len(data)


def test_a_dropped_connection_to_a_server_ignoring_range_starts_over_and_verifies(env: Env) -> None:
    chunk = transfer.TRANSFER_CHUNK  # huggingface_hub writes whole pieces of this size
    data = blob(chunk + 14 * MB, 22)
    (group,) = env.repo("t/cdn-GGUF", {"c-Q4_0.gguf": data})
    env.fake.faults["c-Q4_0.gguf"] = Fault(ignore_range=True, drop_after=chunk + 4 * MB, rate=60e6)
    manager, recorder = env.manager()
    job = manager.enqueue("t/cdn-GGUF", "main", group)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    first, second = env.gets("c-Q4_0.gguf")
    assert (first.range_start, first.body_bytes) == (None, chunk + 4 * MB)
    # Its retry asks for the bytes after the last whole piece written; the server sends everything.
    written = (chunk + 4 * MB) // chunk * chunk
    assert (second.range_start, second.status, second.body_bytes) == (written, 200, len(data))
    assert manager.final_path("t/cdn-GGUF", "c-Q4_0.gguf").read_bytes() == data
    assert max(j.done_bytes for j in recorder.of(job.id)) <= len(data)
    assert done.done_bytes == len(data)


def test_dropped_connection_recovers_inside_the_transfer(env: Env) -> None:
    chunk = transfer.TRANSFER_CHUNK  # http_get hands over (and so writes) whole chunks of this size
    data = blob(chunk + 14 * MB, 3)
    (group,) = env.repo("t/drop-GGUF", {"d-Q4_K_M.gguf": data})
    env.fake.faults["d-Q4_K_M.gguf"] = Fault(drop_after=chunk + 4 * MB)
    manager, _ = env.manager()
    job = manager.enqueue("t/drop-GGUF", "main", group)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert manager.final_path("t/drop-GGUF", "d-Q4_K_M.gguf").read_bytes() == data
    first, second = env.gets("d-Q4_K_M.gguf")
    assert (first.range_start, first.body_bytes) == (None, chunk + 4 * MB)
    # The retry continues after the last chunk written; the part of a chunk in flight is fetched again.
    written = (chunk + 4 * MB) // chunk * chunk
    assert (second.range_start, second.body_bytes) == (written, len(data) - written)
    assert second.status == 206
    assert done.fetched_bytes == len(data)
    assert done.done_bytes == len(data)  # the progress was not counted twice


def test_server_errors_are_retried_with_back_off(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "RETRY_DELAYS", (0.05, 0.05, 0.05))
    data = blob(MB, 4)
    (group,) = env.repo("t/flaky-GGUF", {"f-Q5_K_M.gguf": data})
    env.fake.faults["f-Q5_K_M.gguf"] = Fault(status=500, times=2)
    manager, recorder = env.manager()
    job = manager.enqueue("t/flaky-GGUF", "main", group)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert [r.status for r in env.gets("f-Q5_K_M.gguf")] == [500, 500, 200]
    notes = recorder.notes(job.id)
    assert any("server error 500" in n and "try 1 of 3" in n for n in notes)
    assert any("try 2 of 3" in n for n in notes)
    assert manager.final_path("t/flaky-GGUF", "f-Q5_K_M.gguf").read_bytes() == data


def test_server_errors_fail_once_the_retries_are_spent(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "RETRY_DELAYS", (0.02, 0.02))
    (group,) = env.repo("t/down-GGUF", {"x-Q4_0.gguf": blob(1000)})
    env.fake.faults["x-Q4_0.gguf"] = Fault(status=503, times=100)
    manager, _ = env.manager()
    job = manager.enqueue("t/down-GGUF", "main", group)
    failed = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert failed.state is State.FAILED
    assert failed.error_kind == "server" and failed.error is not None and "503" in failed.error
    assert len(env.gets("x-Q4_0.gguf")) == 3  # the first try and two retries


# ----- verification -------------------------------------------------------------------------------


def test_checksum_mismatch_fails_and_leaves_no_file(env: Env) -> None:
    data = blob(2 * MB, 5)
    env.fake.add(HubRepo("t/bad-GGUF", files={"b-Q8_0.gguf": HubFile(data=data, fake_sha256="ab" * 32)}))
    (group,) = HubClient().details("t/bad-GGUF").groups
    assert group.files[0].sha256 == "ab" * 32
    manager, _ = env.manager()
    job = manager.enqueue("t/bad-GGUF", "main", group)
    failed = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert failed.state is State.FAILED
    assert failed.error_kind == "checksum"
    assert failed.error is not None and "did not match the Hub's checksum" in failed.error
    assert "deleted" in failed.error
    assert not manager.part_path("t/bad-GGUF", "b-Q8_0.gguf").exists()
    assert not manager.final_path("t/bad-GGUF", "b-Q8_0.gguf").exists()
    assert downloads.find_unfinished(env.models) == []
    assert failed.done_bytes == 0

    # The Hub fixes its file (a new listing): downloading it again installs the verified file.
    env.fake.repos["t/bad-GGUF"].files["b-Q8_0.gguf"].fake_sha256 = None
    manager.remove(job.id)
    (fixed,) = HubClient().details("t/bad-GGUF").groups
    again = manager.enqueue("t/bad-GGUF", "main", fixed)
    done = wait_state(manager, again.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert manager.final_path("t/bad-GGUF", "b-Q8_0.gguf").read_bytes() == data


def test_bytes_damaged_in_transit_fail_the_check_and_resume_downloads_them_again(env: Env) -> None:
    data = blob(3 * MB, 6)
    (group,) = env.repo("t/noisy-GGUF", {"n-Q4_K_S.gguf": data})
    env.fake.faults["n-Q4_K_S.gguf"] = Fault(corrupt_at=MB + 17)
    manager, _ = env.manager()
    job = manager.enqueue("t/noisy-GGUF", "main", group)
    failed = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert (failed.state, failed.error_kind) == (State.FAILED, "checksum")
    assert not manager.part_path("t/noisy-GGUF", "n-Q4_K_S.gguf").exists()

    manager.resume(job.id)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert done.error is None and done.error_kind is None
    assert manager.final_path("t/noisy-GGUF", "n-Q4_K_S.gguf").read_bytes() == data
    assert env.gets("n-Q4_K_S.gguf")[-1].range_start is None  # the damaged bytes were not kept


# ----- cancel and remove --------------------------------------------------------------------------


def test_cancel_mid_transfer_deletes_the_partial_file(env: Env) -> None:
    (group,) = env.repo("t/cancel-GGUF", {"c-Q4_0.gguf": blob(32 * MB, 8)})
    env.fake.faults["c-Q4_0.gguf"] = Fault(rate=20e6)
    manager, _ = env.manager()
    job = manager.enqueue("t/cancel-GGUF", "main", group)
    wait_for(lambda: part_size(manager, "t/cancel-GGUF", "c-Q4_0.gguf") > 4 * MB, "4 MB on disk")
    manager.cancel(job.id)
    assert manager.job(job.id).state is State.CANCELLED
    wait_for(lambda: worker_gone(job.id), "the worker to let go")
    assert not manager.part_path("t/cancel-GGUF", "c-Q4_0.gguf").exists()
    assert not manager.staging_dir("t/cancel-GGUF").exists()
    assert not manager.final_path("t/cancel-GGUF", "c-Q4_0.gguf").exists()
    assert downloads.find_unfinished(env.models) == []
    saved = json.loads(env.state_file.read_text("utf-8"))["jobs"]
    assert [(j["id"], j["state"]) for j in saved] == [(job.id, "cancelled")]


def test_remove_a_paused_job_forgets_it_and_its_bytes(env: Env) -> None:
    (group,) = env.repo("t/remove-GGUF", {"m-Q4_0.gguf": blob(32 * MB, 9)})
    env.fake.faults["m-Q4_0.gguf"] = Fault(rate=20e6)
    manager, _ = env.manager()
    job = manager.enqueue("t/remove-GGUF", "main", group)
    wait_for(lambda: part_size(manager, "t/remove-GGUF", "m-Q4_0.gguf") > 2 * MB, "2 MB on disk")
    manager.pause(job.id)
    wait_for(lambda: worker_gone(job.id), "the worker to let go")
    assert manager.part_path("t/remove-GGUF", "m-Q4_0.gguf").exists()
    manager.remove(job.id)
    assert manager.jobs() == []
    assert not manager.part_path("t/remove-GGUF", "m-Q4_0.gguf").exists()
    assert json.loads(env.state_file.read_text("utf-8")) == {"jobs": []}


# ----- disk space ---------------------------------------------------------------------------------


def test_not_enough_disk_space_fails_before_fetching(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "DISK_MARGIN", 1 << 60)
    data = blob(3 * MB, 10)
    (group,) = env.repo("t/big-GGUF", {"g-Q8_0.gguf": data})
    manager, _ = env.manager()
    job = manager.enqueue("t/big-GGUF", "main", group)
    failed = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert failed.state is State.FAILED
    assert failed.error_kind == "disk"
    assert failed.error is not None and f"needs {format_size(len(data))} more" in failed.error
    assert env.gets("g-Q8_0.gguf") == []  # not one byte requested
    assert env.fake.body_bytes("g-Q8_0.gguf") == 0
    assert not manager.part_path("t/big-GGUF", "g-Q8_0.gguf").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_disk_full_while_writing_fails_as_a_disk_error(env: Env) -> None:
    (group,) = env.repo("t/full-GGUF", {"z-Q4_0.gguf": blob(2 * MB, 11)})
    manager, _ = env.manager()
    part = manager.part_path("t/full-GGUF", "z-Q4_0.gguf")
    part.parent.mkdir(parents=True)
    part.symlink_to("/dev/full")  # every write fails with ENOSPC, as on a full disk
    job = manager.enqueue("t/full-GGUF", "main", group)
    failed = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert failed.state is State.FAILED
    assert failed.error_kind == "disk", failed.error
    assert failed.error is not None and "disk is full" in failed.error
    assert not manager.final_path("t/full-GGUF", "z-Q4_0.gguf").exists()


# ----- tokens and gated repositories --------------------------------------------------------------


def test_gated_repository_needs_an_accepted_token_that_is_never_saved(env: Env) -> None:
    data = blob(MB, 12)
    (group,) = env.repo("meta/gated-GGUF", {"l-Q4_K_M.gguf": data}, gated="manual")
    token: dict[str, str | None] = {"value": None}
    manager, recorder = env.manager(token=lambda: token["value"])
    job = manager.enqueue("meta/gated-GGUF", "main", group)

    no_token = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert (no_token.state, no_token.error_kind) == (State.FAILED, "gated")
    assert no_token.error is not None and "access token" in no_token.error

    env.fake.valid_tokens.add(TOKEN)  # a real token whose owner has not accepted the license
    token["value"] = TOKEN
    manager.resume(job.id)
    refused = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert (refused.state, refused.error_kind) == (State.FAILED, "gated")
    assert refused.error is not None and "does not have access yet" in refused.error

    env.fake.accepted_tokens.add(TOKEN)
    manager.resume(job.id)
    done = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert manager.final_path("meta/gated-GGUF", "l-Q4_K_M.gguf").read_bytes() == data
    assert env.gets("l-Q4_K_M.gguf")[-1].headers["authorization"] == f"Bearer {TOKEN}"

    manager.shutdown()
    assert TOKEN not in env.state_file.read_text("utf-8")
    for snapshot in recorder.events:
        assert TOKEN not in f"{snapshot.error} {snapshot.note}"
    saved_files = [p for p in env.state_file.parent.rglob("*") if p.is_file()]
    assert saved_files and not any(TOKEN.encode() in p.read_bytes() for p in saved_files)


def test_invalid_token_fails_as_auth(env: Env) -> None:
    (group,) = env.repo("t/open-GGUF", {"o-Q4_0.gguf": blob(1000, 13)})
    manager, _ = env.manager(token=lambda: TOKEN)  # a token the Hub does not know
    job = manager.enqueue("t/open-GGUF", "main", group)
    failed = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert (failed.state, failed.error_kind) == (State.FAILED, "auth")
    assert failed.error is not None and TOKEN not in failed.error


def test_file_removed_from_the_repository_is_not_found(env: Env) -> None:
    (group,) = env.repo("t/gone-GGUF", {"gone-Q4_0.gguf": blob(1000, 14)})
    del env.fake.repos["t/gone-GGUF"].files["gone-Q4_0.gguf"]
    manager, _ = env.manager()
    job = manager.enqueue("t/gone-GGUF", "main", group)
    failed = wait_state(manager, job.id, State.DONE, State.FAILED)
    assert (failed.state, failed.error_kind) == (State.FAILED, "not_found")


# ----- unsafe names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo_id", "filename"),
    [
        ("t/evil-GGUF", "../evil.gguf"),
        ("t/evil-GGUF", "a/../../evil.gguf"),
        ("t/evil-GGUF", "/tmp/evil.gguf"),
        ("t/evil-GGUF", "..\\evil.gguf"),
        ("../..", "evil.gguf"),
    ],
)
def test_names_escaping_the_models_folder_are_refused(env: Env, repo_id: str, filename: str) -> None:
    manager, _ = env.manager()
    group = FileGroup((RemoteFile("ok-Q4_0.gguf", 10, None), RemoteFile(filename, 10, None)), "Q4_0")
    with pytest.raises(HubError) as caught:
        manager.enqueue(repo_id, "main", group)
    assert caught.value.kind == "unsafe"
    assert manager.jobs() == []
    assert not env.state_file.exists()
    root = env.models.parent
    assert [p for p in root.rglob("*evil*")] == []
    assert not env.models.exists()


def test_restore_skips_records_with_unsafe_names(env: Env) -> None:
    record = {
        "id": "abc", "repo_id": "t/x-GGUF", "revision": "main", "label": "x", "quant": None,
        "files": [{"filename": "../../evil.gguf", "size": 10, "sha256": None}], "state": "paused",
    }  # fmt: skip
    env.state_file.parent.mkdir(parents=True)
    env.state_file.write_text(json.dumps({"jobs": [record]}), "utf-8")
    manager, _ = env.manager()
    assert manager.restore() == []
    assert manager.jobs() == []


# ----- the queue ----------------------------------------------------------------------------------


def test_one_transfer_at_a_time_with_parallel_one(env: Env) -> None:
    first_data, second_data = blob(4 * MB, 15), blob(4 * MB, 16)
    groups = env.repo("t/two-GGUF", {"a-Q8_0.gguf": first_data, "a-Q4_0.gguf": second_data})
    by_name = {g.name: g for g in groups}
    env.fake.faults[".gguf"] = Fault(rate=24e6)
    manager, recorder = env.manager(parallel=1)
    first = manager.enqueue("t/two-GGUF", "main", by_name["a-Q8_0.gguf"])
    second = manager.enqueue("t/two-GGUF", "main", by_name["a-Q4_0.gguf"])
    assert manager.job(second.id).state is State.QUEUED
    assert manager.enqueue("t/two-GGUF", "main", by_name["a-Q4_0.gguf"]).id == second.id  # not twice
    assert len(manager.jobs()) == 2
    wait_state(manager, second.id, State.DONE, State.FAILED)
    assert [j.state for j in manager.jobs()] == [State.DONE, State.DONE]
    assert manager.final_path("t/two-GGUF", "a-Q8_0.gguf").read_bytes() == first_data
    assert manager.final_path("t/two-GGUF", "a-Q4_0.gguf").read_bytes() == second_data

    events = list(recorder.events)
    first_done = next(i for i, j in enumerate(events) if j.id == first.id and j.state is State.DONE)
    second_starts = next(
        i for i, j in enumerate(events) if j.id == second.id and j.state is State.DOWNLOADING
    )
    assert first_done < second_starts
    # At no point were both transferring.
    latest: dict[str, State] = {}
    for snapshot in events:
        latest[snapshot.id] = snapshot.state
        assert sum(s in (State.DOWNLOADING, State.VERIFYING) for s in latest.values()) <= 1


def test_state_file_is_json_and_a_damaged_one_is_survived(env: Env) -> None:
    (group,) = env.repo("t/state-GGUF", {"s-Q4_0.gguf": blob(1000, 17)})
    manager, _ = env.manager()
    job = manager.enqueue("t/state-GGUF", "main", group)
    wait_state(manager, job.id, State.DONE, State.FAILED)
    manager.shutdown()
    saved = json.loads(env.state_file.read_text("utf-8"))
    (record,) = saved["jobs"]
    assert record["id"] == job.id and record["state"] == "done" and record["repo_id"] == "t/state-GGUF"
    assert record["files"] == [{"filename": "s-Q4_0.gguf", "size": 1000, "sha256": group.files[0].sha256}]
    assert not {"done_bytes", "speed", "note", "fetched_bytes"} & set(record)
    assert Job.from_dict(record).files == list(group.files)

    for damaged in (b"\x00\xffgarbage{", b"[1, 2, 3]", b'{"jobs": [{"id": 1}, 42, null]}'):
        env.state_file.write_bytes(damaged)
        fresh, _ = env.manager()
        assert fresh.restore() == []
        assert fresh.jobs() == []


# ----- found in review: overlapping jobs for one file ------------------------------------------------


def test_download_again_right_after_cancel_is_not_sabotaged_by_the_stopping_worker(env: Env) -> None:
    data = blob(6 * MB, 30)
    (group,) = env.repo("t/again-GGUF", {"a-Q4_0.gguf": data})
    env.fake.faults["a-Q4_0.gguf"] = Fault(rate=3e6)  # slow: the old worker is still mid-piece
    manager, _ = env.manager()
    first = manager.enqueue("t/again-GGUF", "main", group)
    wait_for(lambda: part_size(manager, "t/again-GGUF", "a-Q4_0.gguf") > MB, "1 MB on disk")
    manager.cancel(first.id)
    second = manager.enqueue("t/again-GGUF", "main", group)  # at once, before the old worker let go
    assert second.id != first.id
    env.fake.faults.clear()
    done = wait_state(manager, second.id, State.DONE, State.FAILED, timeout=30)
    assert done.state is State.DONE, done.error
    assert manager.final_path("t/again-GGUF", "a-Q4_0.gguf").read_bytes() == data
    assert manager.job(first.id).state is State.CANCELLED


def test_a_deleted_model_can_be_downloaded_again(env: Env) -> None:
    data = blob(2 * MB, 31)
    (group,) = env.repo("t/redo-GGUF", {"r-Q4_0.gguf": data})
    manager, _ = env.manager()
    first = manager.enqueue("t/redo-GGUF", "main", group)
    wait_state(manager, first.id, State.DONE)
    manager.final_path("t/redo-GGUF", "r-Q4_0.gguf").unlink()  # deleted in My models
    second = manager.enqueue("t/redo-GGUF", "main", group)
    assert second.id != first.id
    assert wait_state(manager, second.id, State.DONE, State.FAILED).state is State.DONE
    assert manager.final_path("t/redo-GGUF", "r-Q4_0.gguf").read_bytes() == data


def test_a_saved_record_pointing_outside_the_models_folder_is_dropped(env: Env) -> None:
    env.state_file.parent.mkdir(parents=True)
    record = {"id": "x", "repo_id": "../..", "revision": "main", "label": "x", "quant": None,
              "files": [{"filename": "x.gguf", "size": 1, "sha256": None}], "state": "paused"}  # fmt: skip
    env.state_file.write_text(json.dumps({"jobs": [record]}))
    manager, _ = env.manager()
    assert manager.restore() == []
    assert manager.jobs() == []


def test_clearing_a_cancelled_job_does_not_let_a_new_worker_share_its_file(env: Env) -> None:
    data = blob(6 * MB, 32)
    (group,) = env.repo("t/clear-GGUF", {"k-Q4_0.gguf": data})
    env.fake.faults["k-Q4_0.gguf"] = Fault(rate=3e6)
    manager, _ = env.manager()
    first = manager.enqueue("t/clear-GGUF", "main", group)
    wait_for(lambda: part_size(manager, "t/clear-GGUF", "k-Q4_0.gguf") > MB, "1 MB on disk")
    manager.cancel(first.id)
    manager.remove(first.id)  # "Clear" while its worker may still be stopping
    second = manager.enqueue("t/clear-GGUF", "main", group)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("fireside-download-")]
    assert len(alive) <= 1, alive  # never two workers on one file
    env.fake.faults.clear()
    assert wait_state(manager, second.id, State.DONE, State.FAILED, timeout=30).state is State.DONE
    assert manager.final_path("t/clear-GGUF", "k-Q4_0.gguf").read_bytes() == data


def test_cancelling_a_download_again_of_a_deleted_model_removes_its_partial_file(env: Env) -> None:
    data = blob(8 * MB, 33)
    (group,) = env.repo("t/again2-GGUF", {"g-Q4_0.gguf": data})
    manager, _ = env.manager()
    first = manager.enqueue("t/again2-GGUF", "main", group)
    wait_state(manager, first.id, State.DONE)
    manager.final_path("t/again2-GGUF", "g-Q4_0.gguf").unlink()
    env.fake.faults["g-Q4_0.gguf"] = Fault(rate=3e6)
    second = manager.enqueue("t/again2-GGUF", "main", group)
    wait_for(lambda: part_size(manager, "t/again2-GGUF", "g-Q4_0.gguf") > MB, "1 MB on disk")
    manager.cancel(second.id)
    wait_for(lambda: worker_gone(second.id), "the worker to let go")
    assert not manager.part_path("t/again2-GGUF", "g-Q4_0.gguf").exists()
    assert not manager.staging_dir("t/again2-GGUF").exists()
