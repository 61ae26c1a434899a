"""Wires the model browser, the download queue and the library to the main window.

The views only ask (signals); this controller does the work through app/core, off the GUI thread
where it can take time: Hub calls, other apps' folders, copies, deletes of large files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QPushButton, QSplitter, QVBoxLayout, QWidget

from app.core.hub.client import HubClient, HubError, RepoDetails
from app.core.hub.downloads import DownloadManager, Job, State
from app.core.hub.files import FileGroup
from app.core.inference.options import LoadedModel
from app.core.models import library
from app.core.models.estimate import estimate
from app.core.models.library import ModelEntry
from app.core.models.other_apps import FoundModel, find_other_apps_models, sha256_index
from app.core.models.shape import ModelShape
from app.core.platform import paths, secrets
from app.core.system import hardware as hardware_module
from app.core.system.hardware import Hardware
from app.core.system.machine import Machine, total_ram
from app.core.values.units import format_size
from app.ui.common.tasks import BackgroundTasks
from app.ui.hub.discover_view import DiscoverView, FileState
from app.ui.hub.downloads_panel import DownloadList
from app.ui.models.library_view import LibraryView
from app.ui.shell.preferences import PreferencesDialog

if TYPE_CHECKING:
    from app.ui.shell.main_window import MainWindow

log = logging.getLogger(__name__)
#: When GPUs are asked for if no model load has done it first (ms after start).
HARDWARE_DELAY_MS = 4000


class _Relay(QObject):
    """Carries download snapshots from worker threads to the GUI thread (queued signal)."""

    changed = Signal(object)


class ModelsController(QObject):
    """Discover, downloads and My models for one window."""

    #: llama.cpp's backend and devices were (re)read.
    hardwareChanged = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.hub_tasks = BackgroundTasks(self, workers=4)  # Hub calls must not queue behind file scans
        # One thread for the keyring: saves, removals and reads then happen in the order asked.
        self.keyring_tasks = BackgroundTasks(self, workers=1)
        # RAM now; GPUs once llama.cpp has been asked, off the GUI thread (start): importing it takes a while.
        self.machine = Machine(ram_total=total_ram())
        self.hardware: Hardware | None = None
        self._hardware_pending = False
        self.token: str | None = None
        self.entries: list[ModelEntry] = []
        self.found: list[FoundModel] = []
        self.found_by_sha: dict[str, FoundModel] = {}
        self.memory_notes: dict[str, str] = {}
        self.jobs: dict[str, Job] = {}
        self.folder_problem = ""
        self._removed: set[str] = set()
        #: Set when the window closes: a long copy (import) stops instead of holding the close.
        self.closing = threading.Event()
        self._relay = _Relay(self)
        # Queued even when emitted on the GUI thread (pause, cancel): snapshots then arrive in the order
        # the manager made them, so a worker's older progress can never overwrite a newer "Paused".
        self._relay.changed.connect(self._on_job_changed, Qt.ConnectionType.QueuedConnection)
        self.manager = DownloadManager(
            self.models_folder(),
            paths.data_dir() / "downloads.json",
            on_change=self._relay.changed.emit,
            token=lambda: self.token,
        )
        self.discover = DiscoverView(
            self.hub_tasks,
            client=lambda: HubClient(token=self.token, cache_dir=paths.data_dir() / "cache" / "hub"),
            machine=self.machine,
            context_length=lambda: self.window.sampling.params().context_length,
            file_state=self.file_state,
            local_shape=self.local_shape,
        )
        self.downloads = DownloadList()
        self.downloads.action.connect(self._on_download_action)
        self.library = LibraryView()
        self.library.set_folder(self.models_folder())
        self.discover.downloadRequested.connect(self.download)
        self.discover.useExisting.connect(self._use_existing_for)
        self.discover.openInstalled.connect(self._open_installed)
        self.discover.tokenWanted.connect(self.open_preferences)
        self.library.useRequested.connect(self._use_from_library)
        self.library.importRequested.connect(self.import_model)
        self.library.deleteRequested.connect(self.delete_model)
        self.library.revealRequested.connect(self.reveal)
        self.library.folderChangeRequested.connect(self.change_folder)
        self.library.useInPlaceRequested.connect(self.use_in_place)

    # ----- layout -------------------------------------------------------------------------------

    def discover_page(self) -> QWidget:
        """Discover above the download list."""
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        split = QSplitter()
        split.setOrientation(split.orientation().Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(self.discover)
        box = QWidget()
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(12, 4, 12, 6)
        heading = QLabel("Downloads")
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        box_layout.addWidget(heading)
        box_layout.addWidget(self.downloads, 1)
        split.addWidget(box)
        split.setSizes([520, 150])
        layout.addWidget(split)
        return page

    # ----- start and stop -----------------------------------------------------------------------

    def models_folder(self) -> Path:
        """Where downloads go and the library looks first: the chosen folder, or the default one when
        the chosen one is not there (a drive that is not plugged in must not receive downloads on the
        system disk under the same path)."""
        chosen = self.window.settings.models_dir
        if chosen:
            folder = Path(chosen)
            if folder.is_dir():
                return folder
            if not self.folder_problem:
                self.folder_problem = (
                    f"The models folder {folder} is not available (is its drive connected?). "
                    f"Using {paths.models_dir()} until it is back."
                )
                log.warning("%s", self.folder_problem)
        return paths.models_dir()

    def start(self) -> None:
        """Read the token, restore interrupted downloads, and look for other apps' models (all off the GUI
        thread where slow)."""
        self.manager.models_dir = self.models_folder()  # the chosen folder may have come back, or gone
        self.keyring_tasks.run(secrets.hf_token, self._on_token)
        # With the chosen folder missing, unfinished downloads stay on record for when it is back:
        # resuming them here would start over on another disk.
        unfinished = [] if self.folder_problem else self.manager.restore()
        for job in self.manager.jobs():
            self._on_job_changed(job)
        if unfinished:
            names = ", ".join(j.label for j in unfinished[:3]) + ("…" if len(unfinished) > 3 else "")
            self.window.banner.show_message(
                f"{len(unfinished)} download{'s were' if len(unfinished) > 1 else ' was'} interrupted "
                f"({names}). The bytes already downloaded are kept.",
                error=False,
                action=("Resume", self.resume_all),
            )
        self.scan_other_apps()
        # GPUs are asked for once a model has loaded (llama_cpp is imported by then) or when Discover
        # needs them: importing llama_cpp on a worker while the window paints its first frame
        # delayed that frame by ~0.4 s on 2 cores.
        QTimer.singleShot(HARDWARE_DELAY_MS, self.ensure_hardware)
        if self.folder_problem:
            self.window.banner.show_message(self.folder_problem, error=False)  # stays over the model load

    def ensure_hardware(self) -> None:
        """Read the hardware once, if nobody has yet."""
        if self.hardware is None and not self._hardware_pending:
            self.refresh_hardware()

    def refresh_hardware(self, then: Callable[[Hardware], None] | None = None) -> None:
        """Ask llama.cpp for its backend and devices (free memory changes: asked again when shown)."""
        self._hardware_pending = True

        def found(hardware: Hardware) -> None:
            self._hardware_pending = False
            self.hardware = hardware
            self.machine = hardware.machine()
            self.discover.machine = self.machine
            self.hardwareChanged.emit(hardware)
            if then is not None:
                then(hardware)

        def failed(error: BaseException) -> None:
            self._hardware_pending = False  # asked again next time something needs it
            log.warning("hardware detection failed: %s", error)

        self.hub_tasks.run(hardware_module.detect, found, failed)

    def _on_token(self, token: str | None) -> None:
        self.token = token

    def resume_all(self) -> None:
        """Resume every paused download."""
        for job in self.manager.jobs():
            if job.state is State.PAUSED:
                self.manager.resume(job.id)

    def shutdown(self) -> None:
        """Pause transfers (they resume next launch) and stop the worker threads."""
        self.closing.set()
        self.manager.shutdown(timeout=3.0)
        # Hub calls in flight are not waited for: a slow network must not hold the window open.
        self.hub_tasks.shutdown(wait=False)
        self.keyring_tasks.shutdown(wait=False)

    # ----- library --------------------------------------------------------------------------

    def set_entries(self, entries: list[ModelEntry]) -> None:
        """The window's latest scan of installed models."""
        self.entries = entries
        self.library.set_entries(entries, self.memory_notes, self.display_names())
        self._refresh_found()
        self.discover.refresh_files()

    def scan_other_apps(self) -> None:
        """Look for GGUFs that LM Studio, Ollama, GPT4All, Jan or the Hugging Face cache downloaded."""
        self.window.tasks.run(find_other_apps_models, self._on_found, lambda e: log.warning("scan: %s", e))

    def _on_found(self, found: list[FoundModel]) -> None:
        self.found = found
        self.found_by_sha = sha256_index(found)
        picker = self.window.picker
        picker.names = self.display_names()
        picker.set_entries(picker.entries, picker.current_path())
        self.library.set_entries(self.entries, self.memory_notes, self.display_names())
        self._refresh_found()
        self.discover.refresh_files()

    def display_names(self) -> dict[str, str]:
        """Friendly names for other apps' files ("smollm2:135m (Ollama)" rather than a blob's hash)."""
        return {str(f.path.resolve()): f"{f.name} ({f.app})" for f in self.found}

    def _refresh_found(self) -> None:
        self.library.set_found(self.found, {str(e.path) for e in self.entries})

    def use_in_place(self, found: FoundModel) -> None:
        """Add another app's file to the library without copying it."""
        self.window.add_model_in_place(str(found.path))
        self.window.banner.show_message(
            f"{found.name} from {found.app} is now in your library, used in place (no copy, no download).",
            error=False,
        )

    def _use_from_library(self, path: str) -> None:
        self.window.show_page("chat")
        self.window.load_model(path)

    def reveal(self, path: str) -> None:
        """Open the file's folder in the system file manager."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))

    def delete_model(self, entry: ModelEntry) -> None:
        """Delete a model from the models folder (after confirmation); forget one kept elsewhere."""
        window = self.window
        loaded = window.loaded.info.path if window.loaded else None
        if loaded is not None and loaded == entry.path:
            window.banner.show_message(
                f"{entry.path.name} is loaded. Choose another model first, then delete this one."
            )
            return
        inside = library.is_inside(entry.path, self.models_folder())
        parts = library.split_parts(entry.path) if inside else [entry.path]
        size = sum(p.stat().st_size for p in parts if p.exists())
        if inside:
            text = (
                f"Delete {entry.path.name} ({format_size(size)}) from the models folder? "
                "This cannot be undone."
            )
            verb = "Delete"
        else:
            text = (
                f"Remove {entry.path.name} from the library? The file itself stays where it is:\n{entry.path}"
            )
            verb = "Remove"
        box = QMessageBox(QMessageBox.Icon.Question, f"{verb} model", text, parent=window)
        box.setObjectName("confirmDeleteDialog")
        confirm = box.addButton(verb, QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def finished() -> None:
            if box.clickedButton() is not confirm:
                return
            if inside:
                folder = self.models_folder()
                window.tasks.run(
                    lambda: library.delete_model(entry.path, folder),
                    lambda _deleted: window.refresh_models(),
                    lambda e: window.banner.show_message(f"Could not delete {entry.path.name}: {e}"),
                )
            else:
                window.forget_model(str(entry.path))

        box.finished.connect(lambda _r: finished())
        box.open()

    def import_model(self) -> None:
        """Choose a .gguf anywhere, then copy it into the models folder or use it in place."""
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Import a GGUF model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if path:
            self.ask_import(path)

    def ask_import(self, path: str) -> QMessageBox:
        """Ask copy or use-in-place for `path` (returns the open dialog; tests press its buttons)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Import model",
            f"Copy {Path(path).name} into the models folder, or use it where it is?",
            parent=self.window,
        )
        box.setObjectName("importDialog")
        copy = box.addButton("Copy", QMessageBox.ButtonRole.AcceptRole)
        in_place = box.addButton("Use in place", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)

        def finished() -> None:
            if box.clickedButton() is in_place:
                self.window.add_model_in_place(path)
            elif box.clickedButton() is copy:
                self.window.state_label.setText(f"Copying {Path(path).name}…")
                folder = self.models_folder()
                self.window.tasks.run(
                    lambda: library.import_copy(Path(path), folder, self.closing.is_set),
                    lambda _copy: self.window.refresh_models(),
                    lambda e: self.window.banner.show_message(f"Could not import {Path(path).name}: {e}"),
                )

        box.finished.connect(lambda _r: finished())
        box.open()
        return box

    def change_folder(self) -> None:
        """Choose another models folder (not while downloads have partial files: they would be stranded)."""
        if self.partial_downloads():
            self.window.banner.show_message(
                "Finish or cancel the downloads in progress before changing the models folder: their "
                "partial files are in the current one."
            )
            return
        folder = QFileDialog.getExistingDirectory(self.window, "Models folder", str(self.models_folder()))
        if folder:
            self.set_models_folder(folder)

    def partial_downloads(self) -> bool:
        """True while a download is running or has a partial file waiting to be resumed."""
        return self.manager.busy() or any(
            j.state.active or (j.state in (State.PAUSED, State.FAILED) and j.done_bytes > 0)
            for j in self.jobs.values()
        )

    def set_models_folder(self, folder: str) -> None:
        """Use `folder` for downloads and the library from now on."""
        self.folder_problem = ""
        self.window.settings.models_dir = str(Path(folder).resolve())
        self.manager.models_dir = self.models_folder()
        self.library.set_folder(self.models_folder())
        self.window.refresh_models()

    def note_memory(self, model: LoadedModel) -> None:
        """Compare the real load's memory (llama.cpp's buffers) with the estimate, and show it."""
        info = model.info
        est = estimate(info.file_size, info.shape, model.context_length)
        if model.memory_bytes:
            ratio = est.total / model.memory_bytes
            note = (
                f"Memory at {model.context_length:,} tokens: estimated {format_size(est.total)}, "
                f"llama.cpp allocated {format_size(model.memory_bytes)} "
                f"(the estimate is {ratio:.2f}× the real figure)."
            )
            if model.n_gpu_layers and model.gpu_memory_bytes:
                note += (
                    f" On the GPU ({model.n_gpu_layers} of {model.max_gpu_layers} layers): estimated "
                    f"{format_size(model.estimated_gpu_bytes)}, "
                    f"allocated {format_size(model.gpu_memory_bytes)}."
                )
            log.info("%s: %s", info.path.name, note)
            self.memory_notes[str(info.path)] = note
            self.library.set_entries(self.entries, self.memory_notes, self.display_names())

    # ----- discover and downloads ---------------------------------------------------------------

    def file_state(self, details: RepoDetails, group: FileGroup) -> FileState:
        """What the window knows of one file: downloading, installed, or already in another app."""
        for job in self.jobs.values():
            if job.repo_id == details.repo_id and job.files[0].filename == group.name:
                if job.state.active:
                    return f"downloading {job.fraction:.0%}", "downloading"
                if job.state is State.PAUSED:
                    return "paused", "download"
        try:
            final = self.manager.final_path(details.repo_id, group.name)
            for part in group.files:
                self.manager.final_path(details.repo_id, part.filename)
        except ValueError as exc:  # UnsafeFileName: never written to disk
            return f"refused: {exc}", "refused"
        if final.is_file():
            entry = next((e for e in self.entries if e.path == final.resolve() and e.info is not None), None)
            if entry is None or entry.info is None or group.quant is None:
                return "installed", "installed"
            if entry.info.quantization.upper() == group.quant:
                return f"installed · {group.quant} confirmed from the file", "installed"
            return f"installed · the file says {entry.info.quantization}", "installed"
        first = group.files[0]
        found = self.found_by_sha.get(first.sha256 or "") if len(group.files) == 1 else None
        if found is not None:
            return f"already on this computer ({found.app}: {found.name})", "use-existing"
        return None, "download"

    def local_shape(self, details: RepoDetails) -> ModelShape | None:
        """A downloaded file's shape (layers, heads, vocabulary) beats the Hub's parameter count."""
        for group in details.groups:
            try:
                final = str(self.manager.final_path(details.repo_id, group.name).resolve())
            except ValueError:
                continue
            entry = next((e for e in self.entries if str(e.path) == final and e.info is not None), None)
            if entry is not None and entry.info is not None:
                return entry.info.shape
        return None

    def download(self, details: RepoDetails, group: FileGroup) -> Job | None:
        """Queue a file of a repository."""
        if self.folder_problem:
            self.window.banner.show_message(
                f"{self.folder_problem} Downloads wait until it is back, or choose another folder in "
                "My models."
            )
            return None
        try:
            job = self.manager.enqueue(details.repo_id, details.revision, group)
        except HubError as exc:
            self.discover.show_problem(exc)
            self.window.banner.show_message(exc.message)
            return None
        self.discover.refresh_files()
        return job

    def _use_existing_for(self, details: RepoDetails, group: FileGroup) -> None:
        found = self.found_by_sha.get(group.files[0].sha256 or "")
        if found is not None:
            self.use_in_place(found)

    def _open_installed(self, details: RepoDetails, group: FileGroup) -> None:
        self.window.show_page("chat")
        self.window.load_model(str(self.manager.final_path(details.repo_id, group.name).resolve()))

    def _on_download_action(self, job_id: str, verb: str) -> None:
        action = {
            "pause": self.manager.pause,
            "resume": self.manager.resume,
            "cancel": self.manager.cancel,
            "remove": self.manager.remove,
        }[verb]
        action(job_id)
        if verb == "remove":
            self._removed.add(job_id)  # snapshots still in the queue must not bring the row back
            self.jobs.pop(job_id, None)
            self.downloads.remove_job(job_id)
            self._update_indicator()

    def _on_job_changed(self, job: Job) -> None:
        previous = self.jobs.get(job.id)
        if job.id in self._removed or (previous is None and job.state is State.CANCELLED):
            return
        self.jobs[job.id] = job
        self.downloads.update_job(job)
        self._update_indicator()
        if previous is None or previous.state is not job.state:
            self.discover.refresh_files()
            if job.state is State.DONE:
                self.window.refresh_models()
                self.window.statusBar().showMessage(f"{job.label} downloaded and verified", 5000)
            elif job.state is State.FAILED and job.error_kind in ("gated", "auth"):
                self.window.banner.show_message(
                    job.error or "", action=("Preferences…", self.open_preferences)
                )

    def _update_indicator(self) -> None:
        indicator: QPushButton = self.window.download_indicator
        active = [j for j in self.jobs.values() if j.state.active]
        paused = [j for j in self.jobs.values() if j.state is State.PAUSED]
        if not active:
            indicator.setText(f"↓ {len(paused)} paused download{'s' if len(paused) > 1 else ''}")
            indicator.setVisible(bool(paused))
            return
        total = sum(j.total for j in active)
        done = sum(j.done_bytes for j in active)
        speed = sum(j.speed for j in active)
        share = done / total if total else 0.0
        rate = f" · {format_size(int(speed))}/s" if speed > 0 else ""
        indicator.setText(f"↓ {len(active)} downloading · {share:.0%}{rate}")
        indicator.show()

    def open_preferences(self) -> PreferencesDialog:
        """Show the preferences (non-modal to the event loop; the token is re-read when it closes)."""
        dialog = PreferencesDialog(self.keyring_tasks, self.window)
        dialog.changed.connect(lambda: self.keyring_tasks.run(secrets.hf_token, self._on_token))
        dialog.finished.connect(lambda _r: self.keyring_tasks.run(secrets.hf_token, self._on_token))
        dialog.remoteEnginesRequested.connect(self.window.open_remote_engines)
        dialog.open()
        return dialog
