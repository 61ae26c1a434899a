"""The model browser through the real window: Discover against a Hub look-alike, downloads, My models."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QLabel, QLineEdit, QMessageBox, QPushButton, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from app.core.hub import downloads
from app.core.hub.client import RepoDetails
from app.core.hub.downloads import State, transfer
from app.core.hub.files import FileGroup, RemoteFile
from app.core.models import starter
from app.core.platform import secrets
from app.core.settings import Settings
from app.ui.hub.downloads_panel import DownloadList
from app.ui.hub.results import subtitle
from app.ui.shell.main_window import MainWindow
from tests.conftest import STARTER_REPO
from tests.fakehub import FakeHub, Fault, HubFile, HubRepo
from tests.projector_writer import write_projector
from tests.window_fixtures import shot

SIZE = starter.SIZE
FILE = starter.FILENAME
TOKEN = "hf_" + "a1B2c3D4e5F6g7H8i9J0" * 2


@pytest.fixture(autouse=True)
def other_apps_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Other apps' folders are looked for under a private home, not this machine's."""
    import app.ui.models.controller as controller
    from app.core.models.other_apps import find_other_apps_models

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(
        controller, "find_other_apps_models", lambda: find_other_apps_models(home=home, env={})
    )
    return home


def _discover(qtbot: QtBot, window: MainWindow, query: str) -> None:
    window.show_page("discover")
    box = window.findChild(QLineEdit, "hubSearchInput")
    assert box is not None
    view = window.hub.discover
    before = view._search_gen
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, query)
    # This query's own answer: the list may still hold (or be filling with) the popular models.
    qtbot.waitUntil(
        lambda: (
            view._search_gen > before and not view.results_model.loading and view.results_model.rowCount() > 0
        ),
        timeout=10_000,
    )
    assert view.search_input.text() == query


def _open_repo(qtbot: QtBot, window: MainWindow, repo_id: str) -> None:
    view = window.hub.discover
    row = next(i for i, r in enumerate(view.results_model.repos) if r.repo_id == repo_id)
    view.results.setCurrentIndex(view.results_model.index(row, 0))
    qtbot.waitUntil(lambda: view.details is not None and view.details.repo_id == repo_id, timeout=10_000)


def _job(window: MainWindow) -> Any:
    jobs = list(window.hub.jobs.values())
    assert jobs
    return jobs[-1]


def _press_row_button(window: MainWindow, name: str) -> None:
    listing = window.findChild(DownloadList, "downloadList")
    assert listing is not None
    row = listing.row(_job(window).id)
    assert row is not None
    button = row.findChild(QToolButton, name)
    assert button is not None and button.isVisible()
    button.click()


def test_object_names_and_pages(window: MainWindow, fake_hub: FakeHub) -> None:
    for name in ("hubSearchInput", "hubResults", "hubFiles", "downloadButton", "downloadList", "libraryList"):
        assert window.findChild(QObject, name) is not None, name
    window.show_page("library")
    assert window.models.library.isVisible()
    window.show_page("chat")
    assert window.view.isVisible()


def test_search_download_pause_resume_verify_load_and_chat(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, data_dir: Path
) -> None:
    # Slow enough to pause midway: 98 MB at 40 MB/s.
    fake_hub.faults[FILE] = Fault(rate=40e6, times=1)
    _discover(qtbot, window, "smollm2")
    view = window.hub.discover
    assert [r.repo_id for r in view.results_model.repos] == [STARTER_REPO]
    _open_repo(qtbot, window, STARTER_REPO)
    rows = view.files_model.rows
    assert [r.group.name for r in rows] == [FILE]
    assert rows[0].recommended and rows[0].fit.label == "fits in RAM"
    # The shape comes from the GGUF header on the Hub (a few MB by Range), before any download.
    qtbot.waitUntil(lambda: view.files_model.rows[0].estimate.basis == "model shape", timeout=10_000)
    # Parallel replies on Auto: four at once here, each with a KV cache of its own.
    assert view.files_model.rows[0].estimate.kv_cache == 4 * 4096 * 30 * 2 * 192 * 2
    assert "apache-2.0" in view.repo_meta.text() and "135M parameters" in view.repo_meta.text()
    assert "compact language models" in view.card.toPlainText()
    assert view.download_button.text() == "Download"
    qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: _job(window).done_bytes > 20_000_000, timeout=20_000)
    assert (
        window.status.download_indicator.isVisible()
        and "downloading" in window.status.download_indicator.text()
    )
    _press_row_button(window, "pauseButton")  # the transfer is cut midway
    qtbot.waitUntil(lambda: _job(window).state is State.PAUSED, timeout=5_000)
    part = window.hub.manager.part_path(STARTER_REPO, FILE)
    qtbot.waitUntil(lambda: not window.hub.manager.busy(), timeout=5_000)
    on_disk = part.stat().st_size
    assert 0 < on_disk < SIZE
    shot(window, "download-paused")

    _press_row_button(window, "pauseButton")  # now labelled Resume
    qtbot.waitUntil(lambda: _job(window).state is State.DONE, timeout=30_000)
    resumed = [r for r in fake_hub.requests if r.method == "GET" and r.path.endswith(FILE)][-1]
    assert resumed.range_start == on_disk, "the bytes already on disk were fetched again"
    assert resumed.body_bytes == SIZE - on_disk
    final = window.hub.manager.final_path(STARTER_REPO, FILE)
    assert final.is_file() and not part.exists()
    assert downloads.find_unfinished(window.hub.manager.models_dir) == []

    # Installed: listed in the library and the picker, marked in Discover, and it loads and chats.
    qtbot.waitUntil(lambda: any(str(e.path) == str(final) for e in window.models.entries), timeout=15_000)
    assert any(
        window.picker.itemData(i, Qt.ItemDataRole.UserRole + 1) == str(final)
        for i in range(window.picker.count())
    )
    qtbot.waitUntil(lambda: view.download_button.text() == "Use in chat", timeout=5_000)
    assert "Q4_1 confirmed from the file" in view.files_model.index(0, 3).data()  # name vs GGUF header
    qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.loaded is not None and window.loaded.info.path == final, timeout=30_000)
    assert window.pages.currentWidget() is not None and window.view.isVisible()
    window.composer.setPlainText("Say hello.")
    window.chat.send()
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    assert window.messages.rowCount() == 2 and window.messages.peek(1).content.strip()

    # The real load's memory was compared with the estimate.
    note = window.models.memory_notes[str(final)]
    assert "estimated" in note and "llama.cpp allocated" in note


def test_new_query_supersedes_the_previous_one(qtbot: QtBot, window: MainWindow, fake_hub: FakeHub) -> None:
    for i in range(30):
        fake_hub.add(HubRepo(f"alpha{i}/Alpha-{i}-GGUF", downloads=i))
    fake_hub.search_delay = 0.4  # the first search is still running when the second starts
    window.show_page("discover")
    view = window.hub.discover
    qtbot.waitUntil(lambda: view.results_model.rowCount() > 0, timeout=10_000)  # the opening list
    answers: list[tuple[str, bool]] = []
    view.searchAnswered.connect(lambda query, shown: answers.append((query, shown)))
    view.search_input.setText("alpha")
    view.search_now()
    view.search_input.setText("smollm2")
    view.search_now()
    # Both answers arrive (the superseded one later, or earlier: either way it is not shown).
    qtbot.waitUntil(lambda: {q for q, _ in answers} == {"alpha", "smollm2"}, timeout=10_000)
    assert sorted(answers) == [("alpha", False), ("smollm2", True)]
    assert [r.repo_id for r in view.results_model.repos] == [STARTER_REPO]


def test_typing_is_debounced(qtbot: QtBot, window: MainWindow, fake_hub: FakeHub) -> None:
    window.show_page("discover")
    view = window.hub.discover
    qtbot.waitUntil(lambda: view.results_model.rowCount() > 0, timeout=10_000)

    def searches() -> list[Any]:
        return [r for r in fake_hub.requests if r.path == "/api/models" and r.method == "GET"][before:]

    before = 0
    before = len(searches())
    started: list[str] = []
    answered: list[str] = []
    view.searchStarted.connect(started.append)
    view.searchAnswered.connect(lambda query, _shown: answered.append(query))
    view.search_input.setFocus()
    qtbot.keyClicks(view.search_input, "smollm2")  # seven key presses
    assert started == [] and view._debounce.isActive()  # nothing yet: the pause decides
    qtbot.waitUntil(lambda: answered == ["smollm2"], timeout=10_000)
    # Searches start on the GUI thread, on a key press or when the pause ends: with no key pressed
    # and no pause pending, no other search can start any more.
    assert not view._debounce.isActive() and started == ["smollm2"]
    assert [s.query.get("search") for s in searches()] == [["smollm2"]]


def test_more_results_load_on_scroll(qtbot: QtBot, window: MainWindow, fake_hub: FakeHub) -> None:
    for i in range(1000):
        fake_hub.add(HubRepo(f"bulk{i:04d}/Model-{i}-GGUF", downloads=5000 - i))
    _discover(qtbot, window, "bulk")
    view = window.hub.discover
    assert view.results_model.rowCount() == 50
    for _ in range(3):
        view.results.scrollToBottom()
        count = view.results_model.rowCount()
        qtbot.waitUntil(lambda c=count: view.results_model.rowCount() > c, timeout=10_000)
    ids = [r.repo_id for r in view.results_model.repos]
    assert len(ids) == len(set(ids)) >= 200
    assert ids[:3] == ["bulk0000/Model-0-GGUF", "bulk0001/Model-1-GGUF", "bulk0002/Model-2-GGUF"]


def test_offline_discover_says_so_and_retries(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{dead}")
    window.show_page("discover")
    view = window.hub.discover
    qtbot.waitUntil(lambda: view.results_stack.currentWidget() is view.offline, timeout=20_000)
    assert "offline" in view.offline_label.text().lower()
    shot(window, "discover-offline")
    # Chat still works while offline.
    window.show_page("chat")
    window.composer.setPlainText("Hi")
    window.chat.send()
    qtbot.waitUntil(lambda: not window.is_generating, timeout=60_000)
    assert window.messages.peek(1).content.strip()
    # Back online: Retry lists models.
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    window.show_page("discover")
    retry = window.findChild(QPushButton, "hubRetryButton")
    assert retry is not None
    retry.click()
    qtbot.waitUntil(lambda: view.results_model.rowCount() > 0, timeout=10_000)
    assert view.results_stack.currentWidget() is view.results


def _gated_hub(fake_hub: FakeHub, starter_model: Path) -> str:
    repo = fake_hub.add(
        HubRepo(
            "meta-llama/Gated-GGUF", files={FILE: HubFile(path=starter_model)}, gated="manual", downloads=5
        )
    )
    return repo.repo_id


def test_gated_model_explains_and_token_unlocks_it(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, starter_model: Path, data_dir: Path
) -> None:
    repo_id = _gated_hub(fake_hub, starter_model)
    _discover(qtbot, window, "gated")
    _open_repo(qtbot, window, repo_id)
    view = window.hub.discover
    assert "Gated" in view.repo_meta.text()
    qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _job(window).state is State.FAILED, timeout=10_000)
    assert _job(window).error_kind == "gated"
    assert "accept the model's license" in (_job(window).error or "")
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5_000)
    action = window.findChild(QPushButton, "bannerAction")
    assert action is not None and action.text() == "Preferences…"

    # Enter a token in Preferences: it goes to the keyring, and the download works.
    fake_hub.valid_tokens.add(TOKEN)
    fake_hub.accepted_tokens.add(TOKEN)
    action.click()
    dialog = window.findChild(QWidget, "preferencesDialog")
    assert dialog is not None and dialog.isVisible()
    token_box = dialog.findChild(QLineEdit, "hfTokenInput")
    assert token_box is not None
    token_box.setText("not a token")
    assert dialog.save() is False  # type: ignore[attr-defined]
    message = dialog.findChild(QLabel, "hfTokenMessage")
    assert message is not None and "does not look like" in message.text()
    token_box.setText(TOKEN)
    assert dialog.save() is True  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5_000)  # kept in the keyring: it closes
    assert secrets.hf_token() == TOKEN
    qtbot.waitUntil(lambda: window.hub.token == TOKEN, timeout=5_000)
    _press_row_button(window, "pauseButton")  # "Retry" on a failed download
    qtbot.waitUntil(lambda: _job(window).state is State.DONE, timeout=30_000)

    # The token is in no file Fireside wrote.
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".log", ""):
            assert TOKEN not in path.read_text("utf-8", errors="ignore"), path


def test_without_a_keyring_the_token_is_kept_for_the_session_only(
    qtbot: QtBot, window: MainWindow, no_keyring: Any, data_dir: Path
) -> None:
    dialog = window.dialogs.preferences()
    store = dialog.findChild(QLabel, "hfTokenStore")
    assert store is not None
    qtbot.waitUntil(lambda: "session only" in store.text(), timeout=5_000)
    token_box = dialog.findChild(QLineEdit, "hfTokenInput")
    assert token_box is not None
    token_box.setText(TOKEN)
    assert dialog.save() is True
    message = dialog.findChild(QLabel, "hfTokenMessage")
    assert message is not None
    qtbot.waitUntil(lambda: "this session only" in message.text(), timeout=5_000)
    assert dialog.isVisible()
    assert secrets.hf_token() == TOKEN and not secrets.has_secure_store()
    assert not any(TOKEN in p.read_text("utf-8", errors="ignore") for p in data_dir.rglob("*.json"))
    dialog.close()


def test_bad_token_is_explained(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, memory_keyring: Any
) -> None:
    secrets.set_secret(secrets.HF_TOKEN, TOKEN)  # the Hub does not know it
    window.hub.token = TOKEN
    _discover(qtbot, window, "smollm2")
    view = window.hub.discover
    view.results.setCurrentIndex(view.results_model.index(0, 0))
    qtbot.waitUntil(lambda: "refused the access token" in view.repo_meta.text(), timeout=10_000)
    assert TOKEN not in view.repo_meta.text()
    assert not view.download_button.isEnabled()


def test_restart_offers_to_resume_and_continues_from_disk(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, fake_hub: FakeHub
) -> None:
    fake_hub.faults[FILE] = Fault(rate=40e6, times=1)
    first = make_window()
    _discover(qtbot, first, "smollm2")
    _open_repo(qtbot, first, STARTER_REPO)
    first.hub.discover.download_button.click()
    qtbot.waitUntil(lambda: _job(first).done_bytes > 20_000_000, timeout=20_000)
    first.close()  # quitting mid-download keeps the partial file
    part = first.hub.manager.part_path(STARTER_REPO, FILE)
    on_disk = part.stat().st_size
    assert 0 < on_disk < SIZE

    second = make_window()
    qtbot.waitUntil(
        lambda: second.banner.isVisible() and "interrupted" in second.banner.label.text(), timeout=5_000
    )
    assert _job(second).state is State.PAUSED and _job(second).done_bytes == on_disk
    action = second.findChild(QPushButton, "bannerAction")
    assert action is not None and action.text() == "Resume"
    action.click()
    qtbot.waitUntil(lambda: _job(second).state is State.DONE, timeout=30_000)
    resumed = [r for r in fake_hub.requests if r.method == "GET" and r.path.endswith(FILE)][-1]
    assert resumed.range_start == on_disk and resumed.body_bytes == SIZE - on_disk


def test_cancel_leaves_no_partial_file(qtbot: QtBot, window: MainWindow, fake_hub: FakeHub) -> None:
    fake_hub.faults[FILE] = Fault(rate=20e6, times=1)
    _discover(qtbot, window, "smollm2")
    _open_repo(qtbot, window, STARTER_REPO)
    window.hub.discover.download_button.click()
    qtbot.waitUntil(lambda: _job(window).done_bytes > 5_000_000, timeout=20_000)
    _press_row_button(window, "cancelButton")
    qtbot.waitUntil(lambda: _job(window).state is State.CANCELLED, timeout=5_000)
    manager = window.hub.manager
    # The stopping worker deletes the partial file as it lets go (within one 1 MiB piece).
    qtbot.waitUntil(
        lambda: not manager.busy() and not manager.staging_dir(STARTER_REPO).exists(), timeout=5_000
    )
    assert not manager.part_path(STARTER_REPO, FILE).exists()
    assert not manager.final_path(STARTER_REPO, FILE).exists()


def test_not_enough_disk_space_is_refused_before_downloading(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "DISK_MARGIN", 1 << 60)  # more than any disk has free
    _discover(qtbot, window, "smollm2")
    _open_repo(qtbot, window, STARTER_REPO)
    window.hub.discover.download_button.click()
    qtbot.waitUntil(lambda: _job(window).state is State.FAILED, timeout=10_000)
    assert _job(window).error_kind == "disk" and "Not enough disk space" in (_job(window).error or "")
    assert fake_hub.download_bytes(FILE) == 0


def test_traversal_file_name_is_refused(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, tmp_path: Path
) -> None:
    fake_hub.add(
        HubRepo("evil/Traversal-GGUF", files={"../../escape-Q4_0.gguf": HubFile(data=b"GGUF" + bytes(64))})
    )
    _discover(qtbot, window, "traversal")
    _open_repo(qtbot, window, "evil/Traversal-GGUF")
    view = window.hub.discover
    assert view.files_model.rowCount() == 1
    view.files.selectRow(0)
    assert not view.download_button.isEnabled()
    assert view.download_button.text() == "Refused: unsafe file name"
    assert "refused file name" in view.fit_note.text()
    # Even asked directly, the queue refuses it.
    assert view.details is not None
    assert window.hub.download(view.details, view.files_model.rows[0].group) is None
    assert "refused file name" in window.banner.label.text()
    assert not list(tmp_path.rglob("escape-Q4_0.gguf"))
    assert fake_hub.body_bytes("escape-Q4_0.gguf") == 0


def test_library_lists_metadata_and_deletes_with_confirmation(
    qtbot: QtBot, window: MainWindow, models_dir: Path
) -> None:
    copy = models_dir / "extra" / "Second.Q4_1.gguf"
    copy.parent.mkdir()
    copy.hardlink_to(models_dir / FILE)
    window.installed.refresh()
    library = window.models.library
    qtbot.waitUntil(lambda: library.model.rowCount() == 2, timeout=15_000)
    window.show_page("library")
    assert library.select_path(str(copy))
    texts = [
        library.model.index(library.model.entries.index(library.selected_entry()), c).data() for c in range(8)
    ]
    assert texts[:7] == ["Second.Q4_1", "llama", "135M", "Q4_1", "8,192", "yes", "98.4 MB"]
    shot(window, "library")

    library.delete_button.click()
    box = window.findChild(QMessageBox, "confirmDeleteDialog")
    assert box is not None and "cannot be undone" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert copy.exists()
    library.delete_button.click()
    box = next(b for b in window.findChildren(QMessageBox, "confirmDeleteDialog") if b.isVisible())
    next(b for b in box.buttons() if b.text() == "Delete").click()
    qtbot.waitUntil(lambda: library.model.rowCount() == 1, timeout=15_000)
    assert not copy.exists() and not copy.parent.exists()


def test_loaded_model_is_not_deleted(qtbot: QtBot, window: MainWindow) -> None:
    library = window.models.library
    qtbot.waitUntil(lambda: library.model.rowCount() == 1, timeout=15_000)
    assert window.loaded is not None
    library.select_path(str(window.loaded.info.path))
    library.delete_button.click()
    assert "is loaded" in window.banner.label.text()
    assert window.loaded.info.path.exists()


def test_import_copy_and_in_place(qtbot: QtBot, window: MainWindow, models_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "Outside.Q4_1.gguf"
    outside.parent.mkdir()
    outside.write_bytes((models_dir / FILE).read_bytes())
    library = window.models.library
    qtbot.waitUntil(lambda: library.model.rowCount() == 1, timeout=15_000)

    box = window.models.ask_import(str(outside))
    assert box is not None
    next(b for b in box.buttons() if b.text() == "Use in place").click()
    qtbot.waitUntil(lambda: library.model.rowCount() == 2, timeout=15_000)
    assert str(outside.resolve()) in window.settings.extra_models
    assert not list(models_dir.rglob("Outside.Q4_1.gguf"))

    box = window.models.ask_import(str(outside))
    assert box is not None
    next(b for b in box.buttons() if b.text() == "Copy").click()
    copied = models_dir / "imported" / "Outside.Q4_1.gguf"
    qtbot.waitUntil(lambda: library.model.rowCount() == 3, timeout=15_000)
    assert copied.stat().st_size == outside.stat().st_size and outside.exists()

    # Removing the in-place one from the library leaves the file where it was.
    library.select_path(str(outside))
    library.delete_button.click()
    box = next(b for b in window.findChildren(QMessageBox, "confirmDeleteDialog") if b.isVisible())
    assert "stays where it is" in box.text()
    next(b for b in box.buttons() if b.text() == "Remove").click()
    qtbot.waitUntil(lambda: library.model.rowCount() == 2, timeout=15_000)
    assert outside.exists() and str(outside.resolve()) not in window.settings.extra_models


def test_importing_a_vision_model_brings_its_projector_and_a_projector_alone_is_refused(
    qtbot: QtBot, window: MainWindow, models_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "lmstudio" / "vision"
    folder.mkdir(parents=True)
    model = folder / "Seeing.Q4_1.gguf"
    model.write_bytes((models_dir / FILE).read_bytes())
    projector = folder / "mmproj-Seeing-f16.gguf"
    write_projector(projector)
    library = window.models.library
    qtbot.waitUntil(lambda: library.model.rowCount() == 1, timeout=15_000)

    assert window.models.ask_import(str(projector)) is None
    assert "is a vision projector (mmproj), not a model" in window.banner.label.text()
    box = window.models.ask_import(str(model))
    assert box is not None
    next(b for b in box.buttons() if b.text() == "Copy").click()
    qtbot.waitUntil(lambda: library.model.rowCount() == 2, timeout=15_000)
    copied = models_dir / "imported" / "Seeing.Q4_1" / "Seeing.Q4_1.gguf"
    assert copied.is_file() and (copied.parent / projector.name).is_file()
    entry = next(e for e in window.models.entries if e.path == copied.resolve())
    assert entry.projector == (copied.parent / projector.name).resolve(), "the copy keeps its projector"


def test_a_vision_model_used_in_place_from_the_hf_cache_loads_with_its_projector(
    qtbot: QtBot, window: MainWindow, starter_model: Path, tmp_path: Path
) -> None:
    from app.core.models.other_apps import HF_CACHE, FoundModel

    snapshot = tmp_path / "hub" / "models--ggml-org--Seeing-GGUF" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    link = snapshot / "Seeing-Q4_1.gguf"
    link.symlink_to(starter_model)  # as the cache links to a blob named by its hash
    projector = snapshot / "mmproj-Seeing-f16.gguf"
    write_projector(projector)
    found = FoundModel(link, HF_CACHE, "ggml-org/Seeing-GGUF/Seeing-Q4_1.gguf", 1, None, projector=projector)
    library = window.models.library
    qtbot.waitUntil(lambda: library.model.rowCount() == 1, timeout=15_000)
    window.models.use_in_place(found)
    real = str(starter_model.resolve())
    qtbot.waitUntil(lambda: any(str(e.path) == real for e in window.models.entries), timeout=15_000)
    assert window.settings.projectors[real] == str(projector)
    entry = next(e for e in window.models.entries if str(e.path) == real)
    assert entry.projector == projector and window.settings.load_options(real).projector == projector


def test_reveal_opens_the_folder(qtbot: QtBot, window: MainWindow) -> None:
    opened: list[QUrl] = []

    class Catcher(QObject):
        @Slot(QUrl)
        def open(self, url: QUrl) -> None:
            opened.append(url)

    catcher = Catcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        library = window.models.library
        qtbot.waitUntil(lambda: library.model.rowCount() == 1, timeout=15_000)
        library.select_path(str(library.model.entries[0].path))
        library.reveal_button.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in opened] == [str(library.model.entries[0].path.parent)]


def _ollama_copy(home: Path, model: Path) -> Path:
    """Lay out an Ollama store holding the starter model (a hard link: no copy of 98 MB)."""
    import hashlib

    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    root = home / ".ollama" / "models"
    blob = root / "blobs" / f"sha256-{sha}"
    blob.parent.mkdir(parents=True)
    blob.hardlink_to(model)
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    manifest.parent.mkdir(parents=True)
    layer = {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{sha}", "size": SIZE}
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [layer]}))
    return blob


def test_other_apps_models_are_offered_in_place_and_not_downloaded_again(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    data_dir: Path,
    fake_hub: FakeHub,
    other_apps_home: Path,
    starter_model: Path,
) -> None:
    blob = _ollama_copy(other_apps_home, starter_model)
    window = make_window(start=False)
    window.start()
    library = window.models.library
    qtbot.waitUntil(lambda: library.others_model.rowCount() == 1, timeout=15_000)
    assert library.others_model.item(0, 0).text() == "Ollama"
    assert library.others_model.item(0, 1).text() == "smollm2:135m"

    # Discover knows the Hub's file is the same bytes (same sha256) and offers the copy instead.
    _discover(qtbot, window, "smollm2")
    _open_repo(qtbot, window, STARTER_REPO)
    view = window.hub.discover
    assert view.download_button.text() == "Use the copy on this computer"
    assert "Ollama" in view.files_model.index(0, 3).data()
    view.download_button.click()
    qtbot.waitUntil(lambda: any(e.path == blob.resolve() for e in window.models.entries), timeout=15_000)
    assert fake_hub.download_bytes(FILE) == 0
    assert str(blob.resolve()) in window.settings.extra_models


def test_models_folder_can_be_changed(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "bigdisk"
    folder.mkdir()
    window.models.set_models_folder(str(folder))
    assert window.hub.manager.models_dir == folder.resolve()
    assert str(folder.resolve()) in window.models.library.folder_label.text()
    settings = Settings.load()
    assert settings.models_dir == str(folder.resolve())


def test_no_models_offers_discover(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIRESIDE_MODEL_CACHE", str(tmp_path / "empty-cache"))  # no starter to link in
    window = make_window(start=False)
    window.start()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=15_000)
    assert window.loaded is None
    action = window.findChild(QPushButton, "bannerAction")
    assert action is not None and action.text() == "Discover models"
    action.click()
    assert window.hub.discover.isVisible()


def test_an_unplugged_models_folder_falls_back_with_a_banner(
    qtbot: QtBot, make_window: Callable[..., MainWindow], models_dir: Path, tmp_path: Path
) -> None:
    window = make_window(start=False)
    window.settings.models_dir = str(tmp_path / "unplugged-drive" / "models")
    window.start()
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=60_000)
    assert window.banner.isVisible() and "is not available" in window.banner.label.text()
    assert window.hub.manager.models_dir == models_dir
    # Downloads wait for the chosen folder instead of filling the system disk.
    group = FileGroup((RemoteFile("m-Q4_0.gguf", 10, None),), "Q4_0")
    assert window.hub.download(RepoDetails("o/r", "main", None, False, [group]), group) is None
    assert "Downloads wait until it is back" in window.banner.label.text()
    assert not (tmp_path / "unplugged-drive").exists()  # never recreated on another disk


def test_models_folder_cannot_change_under_a_partial_download(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub
) -> None:
    fake_hub.faults[FILE] = Fault(rate=20e6, times=1)
    _discover(qtbot, window, "smollm2")
    _open_repo(qtbot, window, STARTER_REPO)
    window.hub.discover.download_button.click()
    qtbot.waitUntil(lambda: _job(window).done_bytes > 4_000_000, timeout=20_000)
    _press_row_button(window, "pauseButton")
    qtbot.waitUntil(lambda: _job(window).state is State.PAUSED, timeout=5_000)
    before = window.hub.manager.models_dir
    window.models.change_folder()  # refused before any folder dialog opens
    assert "Finish or cancel the downloads" in window.banner.label.text()
    assert window.hub.manager.models_dir == before


def test_a_vision_repository_says_so_and_its_projector_comes_with_the_model(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, starter_model: Path
) -> None:
    from tests.fakehub import gguf_repo

    repo_id = "someone/SmolVLM-GGUF"
    projectors = {
        "mmproj-SmolVLM-Q8_0.gguf": HubFile(data=b"GGUF" + b"q" * 3000),
        "mmproj-SmolVLM-f16.gguf": HubFile(data=b"GGUF" + b"f" * 6000),
    }
    fake_hub.add(gguf_repo(repo_id, starter_model, downloads=5, files=projectors))
    fake_hub.add(gguf_repo("someone/SmolLM-text-GGUF", starter_model, downloads=3))
    _discover(qtbot, window, "smol")
    # The search results mark the repository with a projector, and only it, as "vision".
    rows = {repo.repo_id: repo for repo in window.hub.discover.results_model.repos}
    assert rows[repo_id].vision and not rows["someone/SmolLM-text-GGUF"].vision
    assert "vision" in subtitle(rows[repo_id]) and "vision" not in subtitle(rows["someone/SmolLM-text-GGUF"])
    _open_repo(qtbot, window, repo_id)
    view = window.hub.discover
    details = view.details
    assert details is not None and details.vision
    assert [p.filename for p in details.projectors] == ["mmproj-SmolVLM-f16.gguf", "mmproj-SmolVLM-Q8_0.gguf"]
    assert [r.group.name for r in view.files_model.rows] == [FILE]  # a projector is not a model to chat with
    assert "Vision" in view.repo_meta.text() and "mmproj-SmolVLM-f16.gguf" in view.repo_meta.text()
    qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: len(window.hub.jobs) == 2 and all(j.state is State.DONE for j in window.hub.jobs.values()),
        timeout=30_000,
    )
    manager = window.hub.manager
    model, projector = (
        manager.final_path(repo_id, FILE),
        manager.final_path(repo_id, "mmproj-SmolVLM-f16.gguf"),
    )
    assert model.is_file() and projector.is_file() and projector.parent == model.parent  # found beside it
    assert projector.read_bytes() == b"GGUF" + b"f" * 6000  # verified like any file
    assert not manager.final_path(repo_id, "mmproj-SmolVLM-Q8_0.gguf").exists()
    # My models: the model, marked with its projector; the projector is not a model of its own.
    qtbot.waitUntil(lambda: any(e.path == model.resolve() for e in window.models.entries), timeout=15_000)
    entry = next(e for e in window.models.entries if e.path == model.resolve())
    assert entry.projector is not None and entry.projector.name == "mmproj-SmolVLM-f16.gguf"
    assert not any("mmproj" in e.path.name for e in window.models.entries)
    window.show_page("library")
    shot(window, "library-vision")


def test_an_adapter_repository_names_the_installed_model_it_fits_and_its_download_joins_it(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, starter_model: Path, tmp_path: Path
) -> None:
    from tests.lora_writer import write_lora

    sea = write_lora(tmp_path / "sea-lora.gguf", starter_model)
    narrow = write_lora(tmp_path / "narrow-lora.gguf", starter_model, width=512)
    fake_hub.add(
        HubRepo("org/SmolLM2-sea-LoRA-GGUF", files={"sea-lora.gguf": HubFile(path=sea)}, downloads=9)
    )
    fake_hub.add(
        HubRepo("org/Narrow-LoRA-GGUF", files={"narrow-lora.gguf": HubFile(path=narrow)}, downloads=8)
    )
    library = window.models.library
    qtbot.waitUntil(lambda: library.model.rowCount() == 1, timeout=15_000)
    _discover(qtbot, window, "lora")
    view = window.hub.discover
    note = view.repo.adapter_note
    _open_repo(qtbot, window, "org/Narrow-LoRA-GGUF")
    qtbot.waitUntil(lambda: note.isVisible(), timeout=15_000)  # read from the file's header on the Hub
    assert (
        "for a llama model (30 layers, 512 wide)" in note.text() and "None of your installed" in note.text()
    )
    _open_repo(qtbot, window, "org/SmolLM2-sea-LoRA-GGUF")
    qtbot.waitUntil(lambda: "576 wide" in note.text(), timeout=15_000)
    assert f"They fit {Path(FILE).stem}" in note.text()
    assert "These files are LoRA adapters" in view.fit_note.text()  # not "the best quality that fits"
    shot(window, "discover-adapter")
    qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(window.hub.jobs) and _job(window).state is State.DONE, timeout=30_000)
    # Downloaded into its own folder, it is shown with the model it fits, never as a model.
    qtbot.waitUntil(
        lambda: any(a.name == "sea-lora.gguf" for e in window.models.entries for a in e.adapters),
        timeout=15_000,
    )
    assert [e.path.name for e in window.models.entries] == [FILE]
