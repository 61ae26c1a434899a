"""Discover and downloads in the window: the Hub browser, the download queue and its indicator.

Hub calls run on this controller's own pool (a slow network never queues behind file work), the
token is read from the keyring on one thread of its own, and download snapshots come back to the GUI
thread through a queued signal, in the order the manager made them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from app.core.hub.client import HubClient, HubError, RepoDetails
from app.core.hub.downloads import DownloadManager, Job, State
from app.core.hub.files import FileGroup, companion_projector
from app.core.models.shape import ModelShape
from app.core.platform import paths, secrets
from app.core.system.machine import total_ram
from app.core.values.units import format_size
from app.ui.common.banner import Banner
from app.ui.common.status_bar import StatusBar
from app.ui.common.tasks import BackgroundTasks
from app.ui.hub.discover_view import DiscoverView, FileState
from app.ui.hub.downloads_panel import DownloadList
from app.ui.models.controller import ModelsController


class _Relay(QObject):
    """Carries download snapshots from worker threads to the GUI thread (queued signal)."""

    changed = Signal(object)


class HubController(QObject):
    """Discover and the downloads, for one window."""

    #: Open this installed file in chat.
    openModel = Signal(str)
    #: The user should enter a Hugging Face token (Preferences).
    preferencesWanted = Signal()
    #: A download finished and was verified: list the installed models again.
    downloaded = Signal()

    def __init__(
        self,
        library: ModelsController,
        context_length: Callable[[], int],
        status: StatusBar,
        banner: Banner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.library, self.status, self.banner = library, status, banner
        self.tasks = BackgroundTasks(self, workers=4)  # Hub calls must not queue behind file scans
        # One thread for the keyring: saves, removals and reads then happen in the order asked.
        self.keyring_tasks = BackgroundTasks(self, workers=1)
        self.token: str | None = None
        self.jobs: dict[str, Job] = {}
        self._removed: set[str] = set()
        self._relay = _Relay(self)
        # Queued even when emitted on the GUI thread (pause, cancel): snapshots then arrive in the order
        # the manager made them, so a worker's older progress can never overwrite a newer "Paused".
        self._relay.changed.connect(self._on_job_changed, Qt.ConnectionType.QueuedConnection)
        self.manager = DownloadManager(
            library.models_folder(),
            paths.data_dir() / "downloads.json",
            on_change=self._relay.changed.emit,
            token=lambda: self.token,
        )
        self.discover = DiscoverView(
            self.tasks,
            client=lambda: HubClient(token=self.token, cache_dir=paths.data_dir() / "cache" / "hub"),
            machine=library.machine,
            context_length=context_length,
            file_state=self.file_state,
            local_shape=self.local_shape,
            parallel=lambda: library.settings.parallel,
            installed=lambda: list(library.entries),
        )
        self.downloads = DownloadList()
        self.downloads.action.connect(self._on_download_action)
        self.discover.downloadRequested.connect(self.download)
        self.discover.useExisting.connect(self._use_existing_for)
        self.discover.openInstalled.connect(self._open_installed)
        self.discover.tokenWanted.connect(self.preferencesWanted)
        library.hardwareChanged.connect(lambda _hw: setattr(self.discover, "machine", library.machine))
        library.foundChanged.connect(self.discover.refresh_files)
        library.folderChanged.connect(self._on_folder)
        library.downloads_busy = self.partial_downloads

    def page(self) -> QWidget:
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

    def start(self) -> None:
        """Read the token and restore interrupted downloads."""
        self.manager.models_dir = self.library.models_folder()  # the chosen folder may have come back
        self.reload_token()
        # With the chosen folder missing, unfinished downloads stay on record for when it is back:
        # resuming them here would start over on another disk.
        unfinished = [] if self.library.folder_problem else self.manager.restore()
        for job in self.manager.jobs():
            self._on_job_changed(job)
        if unfinished:
            names = ", ".join(j.label for j in unfinished[:3]) + ("…" if len(unfinished) > 3 else "")
            self.banner.show_message(
                f"{len(unfinished)} download{'s were' if len(unfinished) > 1 else ' was'} interrupted "
                f"({names}). The bytes already downloaded are kept.",
                error=False,
                action=("Resume", self.resume_all),
            )

    def reload_token(self) -> None:
        """Read the Hugging Face token from the keyring again (after Preferences changed it)."""
        self.keyring_tasks.run(secrets.hf_token, self._on_token)

    def _on_token(self, token: str | None) -> None:
        self.token = token

    def resume_all(self) -> None:
        """Resume every paused download."""
        for job in self.manager.jobs():
            if job.state is State.PAUSED:
                self.manager.resume(job.id)

    def shutdown(self) -> None:
        """Pause transfers (they resume next launch) and stop the worker threads."""
        self.manager.shutdown(timeout=3.0)
        # Hub calls in flight are not waited for: a slow network must not hold the window open.
        self.tasks.shutdown(wait=False)
        self.keyring_tasks.shutdown(wait=False)

    def _on_folder(self, folder: Path) -> None:
        self.manager.models_dir = folder

    def refresh(self) -> None:
        """The installed models changed: the files' states in Discover follow."""
        self.discover.refresh_files()

    # ----- what Discover asks -------------------------------------------------------------------

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
        entries = self.library.entries
        if final.is_file():
            entry = next((e for e in entries if e.path == final.resolve() and e.info is not None), None)
            if entry is None or entry.info is None or group.quant is None:
                return "installed", "installed"
            if entry.info.quantization.upper() == group.quant:
                return f"installed · {group.quant} confirmed from the file", "installed"
            return f"installed · the file says {entry.info.quantization}", "installed"
        first = group.files[0]
        found = self.library.found_by_sha.get(first.sha256 or "") if len(group.files) == 1 else None
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
            entry = next(
                (e for e in self.library.entries if str(e.path) == final and e.info is not None), None
            )
            if entry is not None and entry.info is not None:
                return entry.info.shape
        return None

    def download(self, details: RepoDetails, group: FileGroup) -> Job | None:
        """Queue a file of a repository."""
        if self.library.folder_problem:
            self.banner.show_message(
                f"{self.library.folder_problem} Downloads wait until it is back, or choose another folder "
                "in My models."
            )
            return None
        try:
            job = self.manager.enqueue(details.repo_id, details.revision, group)
            projector = companion_projector(details.projectors, group, total_ram())
            if projector is not None:  # a vision model: its projector comes with it, verified alike
                self.manager.enqueue(details.repo_id, details.revision, projector)
        except HubError as exc:
            self.discover.show_problem(exc)
            self.banner.show_message(exc.message)
            return None
        self.discover.refresh_files()
        return job

    def _use_existing_for(self, details: RepoDetails, group: FileGroup) -> None:
        found = self.library.found_by_sha.get(group.files[0].sha256 or "")
        if found is not None:
            self.library.use_in_place(found)

    def _open_installed(self, details: RepoDetails, group: FileGroup) -> None:
        self.openModel.emit(str(self.manager.final_path(details.repo_id, group.name).resolve()))

    # ----- the download queue -------------------------------------------------------------------

    def partial_downloads(self) -> bool:
        """True while a download is running or has a partial file waiting to be resumed."""
        return self.manager.busy() or any(
            j.state.active or (j.state in (State.PAUSED, State.FAILED) and j.done_bytes > 0)
            for j in self.jobs.values()
        )

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
                self.downloaded.emit()
                self.status.showMessage(f"{job.label} downloaded and verified", 5000)
            elif job.state is State.FAILED and job.error_kind in ("gated", "auth"):
                self.banner.show_message(
                    job.error or "", action=("Preferences…", self.preferencesWanted.emit)
                )

    def _update_indicator(self) -> None:
        active = [j for j in self.jobs.values() if j.state.active]
        paused = [j for j in self.jobs.values() if j.state is State.PAUSED]
        if not active:
            self.status.show_downloads(
                f"↓ {len(paused)} paused download{'s' if len(paused) > 1 else ''}" if paused else ""
            )
            return
        total = sum(j.total for j in active)
        done = sum(j.done_bytes for j in active)
        speed = sum(j.speed for j in active)
        share = done / total if total else 0.0
        rate = f" · {format_size(int(speed))}/s" if speed > 0 else ""
        self.status.show_downloads(f"↓ {len(active)} downloading · {share:.0%}{rate}")
