"""The data folder turns read-only (or fills up) while the app runs: saving settings and starting a
download fail with a clear message, what is in memory goes on, and nothing saved before is lost.

The data folder (paths.data_dir(), as --data-dir sets it) is on a real tmpfs that is remounted
read-only mid-test; the download goes to the fake Hub on 127.0.0.1 through the real client.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.hub.client import HubClient
from app.core.hub.downloads import DownloadManager, State, transfer
from app.core.models import library
from app.core.platform import paths
from app.core.settings import Settings, SettingsError
from app.core.values.sampling import SamplingParams
from tests.fakehub import FakeHub, HubFile, HubRepo
from tests.faults.conftest import fill_disk, set_read_only
from tests.faults.test_download_faults import Watch, assert_plain_message, sha256
from tests.gguf_writer import write_model

MB = 1 << 20


@pytest.fixture
def disk(small_disk: Callable[[int], Path]) -> Iterator[Path]:
    """An 8 MiB tmpfs holding the app's data folder (settings, download list, models, caches)."""
    where = small_disk(8 * MB)
    paths.set_data_dir(where / "data")
    try:
        yield where
    finally:
        paths.set_data_dir(None)


def chosen() -> Settings:
    """Settings a user has changed from the defaults."""
    return Settings(
        sampling=SamplingParams(temperature=0.3, top_k=12, context_length=8192),
        last_model="/models/a/b/model-Q4_K_M.gguf",
        extra_models=["/elsewhere/other.gguf"],
        chat_zoom=130,
        kv_cache_mb=1234,
        library_layout="table",
        model_last_used={"/models/a/b/model-Q4_K_M.gguf": 1.7e9},
    )


def saved_settings() -> Settings:
    """chosen(), saved at the start of the session."""
    settings = chosen()
    settings.save()
    return settings


def test_settings_saved_to_a_read_only_data_folder_fail_clearly_and_the_saved_ones_survive(
    disk: Path,
) -> None:
    settings = saved_settings()
    on_disk = paths.settings_file().read_bytes()
    set_read_only(disk, True)

    settings.chat_zoom, settings.library_layout = 150, "cards"
    with pytest.raises(SettingsError) as caught:
        settings.save()
    assert isinstance(caught.value, OSError)  # what the window's save catches, to show in its banner
    message = assert_plain_message(caught.value.strerror)
    assert "read-only" in message and str(paths.data_dir()) in message
    assert (settings.chat_zoom, settings.library_layout) == (150, "cards")  # the session goes on with them
    assert Settings.load().chat_zoom == 130  # a read-only folder still reads

    set_read_only(disk, False)
    assert paths.settings_file().read_bytes() == on_disk  # not truncated, not emptied
    relaunched = Settings.load()
    assert relaunched == chosen()
    assert (relaunched.chat_zoom, relaunched.sampling.temperature, relaunched.kv_cache_mb) == (130, 0.3, 1234)
    assert sorted(p.name for p in paths.data_dir().iterdir()) == ["settings.json"]  # no temporary left

    settings.save()  # writable again: the changes are kept now
    assert Settings.load().chat_zoom == 150


def test_settings_saved_to_a_full_disk_fail_clearly_and_leave_the_old_file_whole(disk: Path) -> None:
    settings = saved_settings()
    on_disk = paths.settings_file().read_bytes()
    filler = fill_disk(disk)
    settings.mcp_servers = [{"name": "big", "command": "x" * 20000}]  # more than is left: a page or more
    with pytest.raises(SettingsError) as caught:
        settings.save()
    message = assert_plain_message(caught.value.strerror)
    assert "disk is full" in message and str(paths.data_dir()) in message
    assert paths.settings_file().read_bytes() == on_disk
    assert not paths.settings_file().with_suffix(".tmp").exists()

    filler.unlink()
    settings.save()
    assert Settings.load().mcp_servers == settings.mcp_servers


def test_a_download_started_in_a_read_only_data_folder_fails_clearly_and_works_once_writable(
    disk: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transfer, "DISK_MARGIN", 0)  # the real margin is larger than this small disk
    source = disk.parent / "src"
    source.mkdir()
    write_model(source / "old-Q4_0.gguf")
    write_model(source / "new-Q4_0.gguf", layers=6)
    old_data, new_data = (source / "old-Q4_0.gguf").read_bytes(), (source / "new-Q4_0.gguf").read_bytes()
    fake_hub.add(HubRepo("t/ro-GGUF", files={"old-Q4_0.gguf": HubFile(data=old_data)}))
    fake_hub.add(HubRepo("t/ro2-GGUF", files={"new-Q4_0.gguf": HubFile(data=new_data)}))
    (old_group,) = HubClient().details("t/ro-GGUF").groups
    (new_group,) = HubClient().details("t/ro2-GGUF").groups

    # The session so far: settings saved, one model downloaded.
    saved_settings()
    state_file = paths.data_dir() / "downloads.json"
    watch = Watch()
    manager = DownloadManager(paths.models_dir(), state_file, on_change=watch)
    try:
        old_job = manager.enqueue("t/ro-GGUF", "main", old_group)
        assert watch.wait(old_job.id, State.DONE, State.FAILED).state is State.DONE
        old_model = manager.final_path("t/ro-GGUF", "old-Q4_0.gguf")
        old_sha = sha256(old_model)
        saved_list = state_file.read_bytes()

        set_read_only(disk, True)
        caplog.set_level(logging.INFO)
        job = manager.enqueue("t/ro2-GGUF", "main", new_group)
        failed = watch.wait(job.id, State.FAILED, State.DONE)
        assert (failed.state, failed.error_kind) == (State.FAILED, "disk")
        message = assert_plain_message(failed.error)
        assert "read-only" in message and str(paths.models_dir()) in message and "resume" in message
        assert any("could not save the download list" in r.getMessage() for r in caplog.records)
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        # The session goes on: the queue still knows both downloads, the library still lists the model.
        assert [j.state for j in manager.jobs()] == [State.DONE, State.FAILED]
        listed = library.scan(paths.models_dir())
        assert [(e.path, e.info is not None) for e in listed] == [(old_model.resolve(), True)]
        assert sha256(old_model) == old_sha

        set_read_only(disk, False)
        assert state_file.read_bytes() == saved_list  # the list saved before is whole
        mark = watch.mark()
        manager.resume(job.id)
        done = watch.wait(job.id, State.DONE, State.FAILED, after=mark)
        assert done.state is State.DONE, done.error
        new_model = manager.final_path("t/ro2-GGUF", "new-Q4_0.gguf")
        assert sha256(new_model) == hashlib.sha256(new_data).hexdigest()
    finally:
        manager.shutdown()

    # The relaunch: settings, the download list and both models as they should be.
    assert Settings.load().chat_zoom == 130
    assert [r["state"] for r in json.loads(state_file.read_text("utf-8"))["jobs"]] == ["done", "done"]
    assert DownloadManager(paths.models_dir(), state_file).restore() == []
    assert sha256(old_model) == old_sha
    assert sorted(e.path for e in library.scan(paths.models_dir())) == sorted(
        [old_model.resolve(), new_model.resolve()]
    )
