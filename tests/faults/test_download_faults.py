"""Downloads under real faults: the disk fills up, the models folder is deleted mid-transfer, the app is
killed around the final rename. The Hub is tests/fakehub.py on 127.0.0.1, fetched through the real
huggingface_hub client code path the app uses; every fault happens for real (a tmpfs that fills, an
rmtree, a SIGKILL) and the tests wait on the download's own events, never on fixed sleeps.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.hub.client import HubClient
from app.core.hub.downloads import DownloadManager, Job, State, find_unfinished, transfer
from app.core.hub.files import FileGroup
from app.core.models import library
from app.core.values.units import format_size
from tests.fakehub import FakeHub, Fault, HubFile, HubRepo
from tests.faults.conftest import fill_disk, run_killed
from tests.gguf_writer import write_model

MB = 1 << 20
REPO = "t/fault-GGUF"
NAME = "fault-Q8_0.gguf"
#: A model that is already installed when the fault strikes: it must come through untouched.
KEPT_REPO, KEPT_NAME = "t/kept-GGUF", "kept-Q4_0.gguf"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real GGUF of 3.7 MiB (llama architecture, 3 layers): the file each test downloads."""
    path = tmp_path_factory.mktemp("gguf") / NAME
    write_model(path, dim=256, ffn=512, layers=3)
    return path.read_bytes()


@pytest.fixture(scope="module")
def kept_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small real GGUF (380 KiB) standing for a model downloaded earlier."""
    path = tmp_path_factory.mktemp("gguf") / KEPT_NAME
    write_model(path)
    return path.read_bytes()


class Watch:
    """A DownloadManager's on_change: keeps every snapshot and wakes whoever waits for one.

    `hook(job)` runs first, on the thread that reported (a worker, mid-transfer): where a test makes
    its fault happen at an exact point of the download."""

    def __init__(self, hook: Callable[[Job], None] | None = None) -> None:
        self.events: list[Job] = []
        self.hook = hook
        self._cond = threading.Condition()

    def __call__(self, job: Job) -> None:
        if self.hook is not None:
            self.hook(job)
        with self._cond:
            self.events.append(job)
            self._cond.notify_all()

    def mark(self) -> int:
        """Where the events are now: wait(..., after=mark) looks only at later ones."""
        with self._cond:
            return len(self.events)

    def wait(self, job_id: str, *states: State, after: int = 0, timeout: float = 60.0) -> Job:
        """The first snapshot of `job_id` in one of `states` reported after event `after`."""

        def found() -> Job | None:
            return next((j for j in self.events[after:] if j.id == job_id and j.state in states), None)

        with self._cond:
            assert self._cond.wait_for(found, timeout), f"{job_id} never reached {states}"
            job = found()
            assert job is not None
            return job


class Once:
    """A hook that runs `action` the first time a download of NAME has `at` bytes or more."""

    def __init__(self, at: int, action: Callable[[], None]) -> None:
        self.at, self.action, self.done = at, action, threading.Event()

    def __call__(self, job: Job) -> None:
        if (
            not self.done.is_set()
            and job.state is State.DOWNLOADING
            and self.at <= job.done_bytes < job.total
        ):
            self.done.set()
            self.action()


class Place:
    """A models folder and the data folder beside it (its downloads.json), and the managers made there."""

    def __init__(self, root: Path, fake: FakeHub) -> None:
        self.root = root
        self.models = root / "models"
        self.state_file = root / "data" / "downloads.json"
        self.fake = fake
        self.managers: list[DownloadManager] = []

    def manager(self, watch: Watch) -> DownloadManager:
        manager = DownloadManager(self.models, self.state_file, on_change=watch)
        self.managers.append(manager)
        return manager

    def publish(self, data: bytes, repo_id: str = REPO, name: str = NAME) -> FileGroup:
        """Put the file on the fake hub and list it through the real client, as Discover does."""
        self.fake.add(HubRepo(repo_id, files={name: HubFile(data=data)}))
        (group,) = HubClient().details(repo_id).groups
        return group

    def install_kept(self, data: bytes) -> Path:
        """A model downloaded (and verified) earlier, where the library finds it."""
        path = self.models / KEPT_REPO / KEPT_NAME
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        return path

    def gets(self) -> list:
        return [r for r in self.fake.requests if r.method == "GET" and r.path.endswith("/" + NAME)]

    def final(self) -> Path:
        return self.models / REPO / NAME

    def part(self) -> Path:
        return self.models / ".downloads" / REPO.replace("/", "--") / (NAME + ".part")

    def files(self) -> list[Path]:
        """Every file under the root, the data folder's aside."""
        data = self.state_file.parent
        return sorted(p for p in self.root.rglob("*") if p.is_file() and not p.is_relative_to(data))


def managers_shut_down(place: Place) -> None:
    for manager in place.managers:
        manager.shutdown()


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real margin (256 MiB) is larger than these small disks: the app's own check is exercised
    # with none, so the disk really runs out while the file is written.
    monkeypatch.setattr(transfer, "DISK_MARGIN", 0)


def assert_plain_message(text: str | None) -> str:
    """A message for people: no traceback, no bare errno text."""
    assert text, "no message"
    for raw in ("Traceback", "[Errno", "OSError", "FileNotFoundError"):
        assert raw not in text, text
    return text


# ----- 1. the disk fills up --------------------------------------------------------------------------


@pytest.fixture
def small_place(small_disk: Callable[[int], Path], fake_hub: FakeHub, no_margin: None) -> Iterator[Place]:
    """The models folder and the data folder on an 8 MiB tmpfs."""
    place = Place(small_disk(8 * MB), fake_hub)
    yield place
    managers_shut_down(place)


@pytest.mark.parametrize("leave", [0, 300 * 1024], ids=["no byte left", "part of a write left"])
def test_disk_filling_up_mid_download_fails_clearly_keeps_every_byte_and_resumes(
    small_place: Place, model_bytes: bytes, kept_bytes: bytes, leave: int
) -> None:
    place = small_place
    kept = place.install_kept(kept_bytes)
    kept_sha = sha256(kept)
    group = place.publish(model_bytes)
    place.fake.faults[NAME] = Fault(rate=8e6)  # half a second: progress is reported on the way
    filler: list[Path] = []
    # Another program takes the free space once the first megabyte of the download has arrived: all
    # of it, or all but 300 KiB, so that the next write is cut short before the disk is full.
    fill = Once(MB, lambda: filler.append(fill_disk(place.root, leave)))
    watch = Watch(fill)
    manager = place.manager(watch)

    job = manager.enqueue(REPO, "main", group)
    failed = watch.wait(job.id, State.FAILED, State.DONE)
    assert fill.done.is_set()
    assert failed.state is State.FAILED, "the disk was full, yet the download finished"
    assert failed.error_kind == "disk"
    message = assert_plain_message(failed.error)
    assert "disk is full" in message and str(place.models) in message and "resume" in message
    # Nothing half-written where the library looks; the model installed earlier is untouched.
    assert not place.final().exists()
    assert library.model_files(place.models) == [kept.resolve()]
    assert sha256(kept) == kept_sha and kept.stat().st_size == len(kept_bytes)
    # The bytes that made it to disk are kept (and are the file's first bytes) for the resume.
    on_disk = place.part().stat().st_size
    assert 0 < on_disk < len(model_bytes)
    assert place.part().read_bytes() == model_bytes[:on_disk]
    json.loads(place.state_file.read_text("utf-8"))  # the saved list is still whole JSON

    filler[0].unlink()  # space freed
    mark = watch.mark()
    manager.resume(job.id)
    done = watch.wait(job.id, State.DONE, State.FAILED, after=mark)
    assert done.state is State.DONE, done.error
    assert sha256(place.final()) == hashlib.sha256(model_bytes).hexdigest()
    assert place.final().stat().st_size == len(model_bytes)
    resumed = place.gets()[-1]
    assert (resumed.range_start, resumed.status) == (on_disk, 206)  # only the missing bytes fetched
    assert resumed.body_bytes == len(model_bytes) - on_disk
    assert find_unfinished(place.models) == []
    assert sorted(library.model_files(place.models)) == sorted([kept.resolve(), place.final().resolve()])
    assert sha256(kept) == kept_sha


def test_a_file_bigger_than_the_disk_is_refused_before_a_byte_and_fits_once_there_is_room(
    small_disk: Callable[[int], Path], fake_hub: FakeHub, no_margin: None, model_bytes: bytes
) -> None:
    place = Place(small_disk(2 * MB), fake_hub)
    try:
        group = place.publish(model_bytes)
        watch = Watch()
        manager = place.manager(watch)
        job = manager.enqueue(REPO, "main", group)
        failed = watch.wait(job.id, State.FAILED, State.DONE)
        assert (failed.state, failed.error_kind) == (State.FAILED, "disk")
        message = assert_plain_message(failed.error)
        assert f"needs {format_size(len(model_bytes))} more" in message and str(place.models) in message
        assert place.gets() == []  # refused before fetching: the disk never filled
        assert not place.part().exists() and not place.final().exists()

        grow = subprocess.run(["mount", "-o", f"remount,size={8 * MB}", str(place.root)], check=False)
        assert grow.returncode == 0
        mark = watch.mark()
        manager.resume(job.id)
        done = watch.wait(job.id, State.DONE, State.FAILED, after=mark)
        assert done.state is State.DONE, done.error
        assert sha256(place.final()) == hashlib.sha256(model_bytes).hexdigest()
    finally:
        managers_shut_down(place)


# ----- 2. the models folder disappears mid-download --------------------------------------------------


@pytest.fixture
def place(tmp_path: Path, fake_hub: FakeHub) -> Iterator[Place]:
    place = Place(tmp_path, fake_hub)
    yield place
    managers_shut_down(place)


@pytest.mark.parametrize("deleted", ["models folder", "staging folder"])
def test_models_folder_deleted_mid_download_fails_clearly_and_a_retry_downloads_it(
    place: Place, model_bytes: bytes, deleted: str
) -> None:
    group = place.publish(model_bytes)
    place.fake.faults[NAME] = Fault(rate=4e6)  # about a second: the deletion comes well before the end
    target = place.models if deleted == "models folder" else place.models / ".downloads"
    remove = Once(MB, lambda: shutil.rmtree(target))
    watch = Watch(remove)
    manager = place.manager(watch)

    job = manager.enqueue(REPO, "main", group)
    failed = watch.wait(job.id, State.FAILED, State.DONE)
    assert remove.done.is_set()
    assert failed.state is State.FAILED, "the file was deleted, yet the download says it finished"
    assert failed.error_kind == "disk"
    assert failed.done_bytes < len(model_bytes)  # stopped when it happened, not after fetching the rest
    message = assert_plain_message(failed.error)
    assert str(place.models) in message and "deleted" in message
    # No file anywhere (not at the model's place, not in a folder made again); the queue goes on.
    assert place.files() == []
    assert (
        not place.models.exists()
        if deleted == "models folder"
        else not (place.models / ".downloads").exists()
    )
    assert library.model_files(place.models) == []
    assert manager.jobs()[0].state is State.FAILED

    place.fake.faults.clear()
    mark = watch.mark()
    manager.resume(job.id)
    done = watch.wait(job.id, State.DONE, State.FAILED, after=mark)
    assert done.state is State.DONE, done.error
    assert sha256(place.final()) == hashlib.sha256(model_bytes).hexdigest()
    assert place.gets()[-1].range_start is None  # nothing was left to resume from: fetched whole
    assert place.files() == [place.final()]


# ----- 3. killed around the final rename ------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading
    from pathlib import Path

    from app.core.hub.client import HubClient
    from app.core.hub.downloads import DownloadManager, State

    point = os.environ["FAULT_POINT"]
    real_replace = os.replace

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def replace(src, dst, *args, **kwargs):
        # Only the model's own rename (.part -> .gguf); downloads.json is replaced as usual.
        if not str(dst).endswith(".gguf"):
            return real_replace(src, dst, *args, **kwargs)
        if point == "before rename":
            die()
        real_replace(src, dst, *args, **kwargs)
        if point == "after rename":
            die()

    os.replace = replace
    ended = threading.Event()

    def changed(job):
        if point == "mid transfer" and job.state is State.DOWNLOADING and 0 < job.done_bytes < job.total:
            die()
        if job.state in (State.DONE, State.FAILED):
            print(job.state, job.error, flush=True)
            ended.set()

    repo = os.environ["FAULT_REPO"]
    (group,) = HubClient().details(repo).groups
    models, state_file = Path(os.environ["FAULT_MODELS"]), Path(os.environ["FAULT_STATE"])
    manager = DownloadManager(models, state_file, on_change=changed)
    manager.enqueue(repo, "main", group)
    ended.wait(60)
    sys.exit(3)  # not killed: the test says so
    """
)


@pytest.mark.parametrize("point", ["before rename", "after rename", "mid transfer"])
def test_killed_around_the_final_rename_never_lists_a_truncated_model(
    place: Place, model_bytes: bytes, data_dir: Path, point: str
) -> None:
    place.publish(model_bytes)
    if point == "mid transfer":
        place.fake.faults[NAME] = Fault(rate=4e6)  # progress is reported before the end
    env = {
        "FAULT_POINT": point, "FAULT_REPO": REPO,
        "FAULT_MODELS": str(place.models), "FAULT_STATE": str(place.state_file),
    }  # fmt: skip
    child = run_killed(CHILD, env=env)
    assert child.returncode == -signal.SIGKILL, f"{child.returncode}\n{child.stdout}\n{child.stderr}"
    place.fake.faults.clear()

    # The relaunch: the library scans the models folder, the download list is restored.
    expected = hashlib.sha256(model_bytes).hexdigest()
    watch = Watch()
    manager = place.manager(watch)
    restored = manager.restore()
    listed = library.scan(place.models)
    for entry in listed:  # whatever is listed is whole
        assert entry.info is not None, entry.error
        assert sha256(entry.path) == expected
    asked_before = len(place.gets())

    if point == "after rename":
        # The model was installed whole: listed, and not offered as a download to finish.
        assert [e.path for e in listed] == [place.final().resolve()]
        assert restored == [] and manager.jobs() == []
        assert find_unfinished(place.models) == [] and not place.part().parent.exists()
        assert place.files() == [place.final()]
        return

    assert listed == [] and not place.final().exists()
    (job,) = restored
    assert job.state is State.PAUSED
    on_disk = place.part().stat().st_size
    assert place.part().read_bytes() == model_bytes[:on_disk]
    if point == "before rename":
        assert on_disk == len(model_bytes) == job.done_bytes  # whole, waiting to be checked and moved
    else:
        assert 0 < on_disk < len(model_bytes) and job.done_bytes == on_disk
    manager.resume(job.id)
    done = watch.wait(job.id, State.DONE, State.FAILED)
    assert done.state is State.DONE, done.error
    assert sha256(place.final()) == expected
    resumed = place.gets()[asked_before:]  # only what was missing was fetched
    if point == "before rename":
        assert resumed == []
    else:
        assert [(r.range_start, r.body_bytes) for r in resumed] == [(on_disk, len(model_bytes) - on_disk)]
    assert [e.path for e in library.scan(place.models)] == [place.final().resolve()]
    assert find_unfinished(place.models) == []
