"""Discover's details page: a repository's licence and size, its model card, its GGUF files with how
each fits this computer, and the button that downloads (or uses) the chosen one.

The details and a GGUF header (for the model's shape) are read from the Hub on background tasks.
Each details request carries a generation number, so the answer for a repository the user has
already left is dropped; a header is kept per repository and revision, shown when that one is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.hub.client import HubClient, HubError, RepoDetails, explain
from app.core.hub.files import FileGroup, projector_note
from app.core.hub.plan import FileFit, plan
from app.core.models.estimate import describe
from app.core.models.gguf_header import AdapterShape, adapter_misfit
from app.core.models.library import ModelEntry
from app.core.models.shape import ModelShape
from app.core.system.machine import Machine
from app.core.values.units import format_params
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate
from app.ui.common.markdown_html import render_markdown
from app.ui.common.tasks import BackgroundTasks
from app.ui.common.theme import markdown_palette
from app.ui.hub.files import FilesModel, FitRole

log = logging.getLogger(__name__)

#: What the window knows about a file of a repository: (note for the table, action for the button).
#: Actions: "download", "downloading", "installed", "use-existing", "refused" (an unsafe file name).
FileState = tuple[str | None, str]


class RepoDetailsView(QWidget):
    """One repository's details and files. Emits `downloadRequested(details, group)`,
    `useExisting(details, group)` and `openInstalled(details, group)` for the Download button's
    action, and `tokenWanted` for the Preferences link of a gated repository."""

    downloadRequested = Signal(object, object)
    useExisting = Signal(object, object)
    openInstalled = Signal(object, object)
    tokenWanted = Signal()

    def __init__(
        self,
        tasks: BackgroundTasks,
        client: Callable[[], HubClient],
        machine: Machine,
        context_length: Callable[[], int],
        file_state: Callable[[RepoDetails, FileGroup], FileState],
        local_shape: Callable[[RepoDetails], ModelShape | None],
        parent: QWidget | None = None,
        parallel: Callable[[], int] = lambda: 0,
        installed: Callable[[], list[ModelEntry]] = list,
    ) -> None:
        super().__init__(parent)
        self.tasks = tasks
        #: The installed models (an adapter repository says which of them its adapters fit).
        self.installed = installed
        #: "Parallel replies" now (0: Auto).
        self.parallel = parallel
        self.client = client
        self.machine = machine
        self.context_length = context_length
        self.file_state = file_state
        self.local_shape = local_shape
        self.details: RepoDetails | None = None
        #: Model shapes read from GGUF headers on the Hub, per (repo, revision).
        self.remote_shapes: dict[tuple[str, str], ModelShape] = {}
        #: For a repository of LoRA adapters, the base model shape its header names, per (repo, revision).
        self.adapters: dict[tuple[str, str], AdapterShape] = {}
        self._summary = ""
        self._details_gen = 0
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 0)
        self.repo_title = QLabel("Choose a model on the left")
        self.repo_title.setObjectName("hubRepoTitle")
        font = self.repo_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.repo_title.setFont(font)
        self.repo_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.repo_meta = QLabel("")
        self.repo_meta.setObjectName("hubRepoMeta")
        self.repo_meta.setWordWrap(True)
        self.repo_meta.setOpenExternalLinks(False)
        self.repo_meta.linkActivated.connect(lambda _link: self.tokenWanted.emit())
        self.adapter_note = QLabel("")
        self.adapter_note.setObjectName("hubAdapterNote")
        self.adapter_note.setWordWrap(True)
        self.adapter_note.hide()
        self.card = QTextBrowser()
        self.card.setObjectName("hubCard")
        self.card.setOpenLinks(False)
        self.card.setMaximumHeight(170)
        self.files_model = FilesModel(self)
        self.files = QTableView()
        self.files.setObjectName("hubFiles")
        set_description(
            self.files,
            "The repository's GGUF files, best first, with their size and whether they fit this computer",
        )
        self.files.setAccessibleName("Files of this model")
        self.files.setModel(self.files_model)
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.files.verticalHeader().hide()
        self.files.setShowGrid(False)
        self.files.setWordWrap(False)
        header = self.files.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(
            3, QHeaderView.ResizeMode.Stretch
        )  # long notes elide; full text in tooltips
        self.files.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.files.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.files.selectionModel().selectionChanged.connect(lambda *_: self._update_download_button())
        self.files.doubleClicked.connect(lambda _i: self._on_download_clicked())
        self.fit_note = QLabel("")
        self.fit_note.setObjectName("hubFitNote")
        self.fit_note.setWordWrap(True)
        action_row = QHBoxLayout()
        action_row.addWidget(self.fit_note, 1)
        self.download_button = QPushButton("Download")
        decorate(self.download_button, "download")
        self.download_button.setObjectName("downloadButton")
        set_description(self.download_button, "Download the chosen file into the models folder")
        self.download_button.setEnabled(False)
        self.download_button.clicked.connect(self._on_download_clicked)
        action_row.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.repo_title)
        layout.addWidget(self.repo_meta)
        layout.addWidget(self.adapter_note)
        layout.addWidget(self.card)
        layout.addWidget(self.files, 1)
        layout.addLayout(action_row)
        self._show_details(None)

    def open_repo(self, repo_id: str) -> None:
        """Show a repository's details (fetched off the GUI thread)."""
        self._details_gen += 1
        gen = self._details_gen
        self.repo_title.setText(repo_id)
        self.details = None  # until the new details arrive, nothing refers to the previous repository
        self.repo_meta.setText("Reading the repository…")
        self.card.clear()
        self.files_model.set_rows([])
        self._update_download_button()
        client = self.client()
        self.tasks.run(
            lambda: client.details(repo_id),
            lambda d: self._on_details(gen, d),
            lambda e: self._on_details_failed(gen, repo_id, e, client.token),
        )

    def _on_details_failed(self, gen: int, repo_id: str, error: BaseException, token: str | None) -> None:
        if gen != self._details_gen:
            return
        problem = explain(error, repo_id, token)
        self.repo_meta.setText(problem.message)

    def _on_details(self, gen: int, details: RepoDetails) -> None:
        if gen != self._details_gen:
            return
        self._show_details(details)
        key = (details.repo_id, details.revision)
        if details.groups and key not in self.remote_shapes and self.local_shape(details) is None:
            # Every quantization of a repository shares one shape: read it from the first file's header.
            client, first = self.client(), details.groups[0].name
            self.tasks.run(
                lambda: client.remote_header(details.repo_id, details.revision, first),
                lambda header: self._on_remote_shape(key, *header),
                lambda e: log.info("GGUF header of %s not read: %s", details.repo_id, e),
            )

    def _on_remote_shape(
        self, key: tuple[str, str], shape: ModelShape, adapter: AdapterShape | None = None
    ) -> None:
        self.remote_shapes[key] = shape
        if adapter is not None:
            self.adapters[key] = adapter
        if self.details is not None and (self.details.repo_id, self.details.revision) == key:
            self._show_adapter_note(self.details)
            self.refresh_files()

    def _show_details(self, details: RepoDetails | None) -> None:
        self.details = details
        if details is None:
            self.card.setHtml("")
            self.card.hide()
            self.files_model.set_rows([])
            self.fit_note.setText("")
            self._update_download_button()
            return
        meta = [f"License: {details.license or 'not stated'}"]
        if details.n_params:
            meta.append(f"{format_params(details.n_params)} parameters")
        if details.architecture:
            meta.append(details.architecture)
        if details.context_length:
            meta.append(f"{details.context_length:,} tokens of context")
        if details.vision:
            meta.append(projector_note(details.projectors))
        if details.gated:
            meta.append(
                "Gated: accept its license on the Hub, then add your access token in "
                "<a href='#token'>Preferences</a>"
            )
        self.repo_meta.setText(" · ".join(meta))
        self._show_adapter_note(details)
        if details.card:
            self.card.setHtml(render_markdown(details.card, markdown_palette(self.palette())).html)
            self.card.show()
        else:
            self.card.hide()
        self.refresh_files()

    def _show_adapter_note(self, details: RepoDetails) -> None:
        """For a repository of LoRA adapters: the base model they were made for, and which installed
        models they fit (matched by architecture, layers and width, as My models matches them)."""
        adapter = self.adapters.get((details.repo_id, details.revision))
        self.adapter_note.setVisible(adapter is not None)
        if adapter is None:
            return
        wide = f", {adapter.width} wide" if adapter.width else ""
        made = f"LoRA adapters for a {adapter.architecture} model ({adapter.n_layers} layers{wide})"
        fits = [
            e.path.stem
            for e in self.installed()
            if e.info is not None
            and not e.info.is_adapter
            and adapter_misfit(adapter, e.info.architecture, e.info.block_count, e.info.embedding_length)
            is None
        ]
        if fits:
            self.adapter_note.setText(
                f"{made}. They fit {', '.join(fits)}: once downloaded, turn one on under Adapters in "
                "the chat's settings, with a scale."
            )
        else:
            self.adapter_note.setText(
                f"{made}. None of your installed models fits them: download such a base model first."
            )

    def refresh_files(self) -> None:
        """Recompute badges and notes (after a download finishes or the context length changes)."""
        details = self.details
        if details is None:
            return
        remote = self.remote_shapes.get((details.repo_id, details.revision))
        shape = (
            self.local_shape(details)
            or (replace(remote, n_params=details.n_params) if remote else None)
            or ModelShape(n_params=details.n_params, context_length=details.context_length)
        )
        # Every reply at once has a KV cache of its own: counted as the file would load.
        rows = plan(
            details.groups, shape, self.machine, self.context_length(), self.parallel(), details.projectors
        )
        status = {row.group.name: self.file_state(details, row.group)[0] or "" for row in rows}
        selected = self.selected_fit()
        self.files_model.set_rows(rows, {k: v for k, v in status.items() if v})
        if not rows:
            self._summary = "This repository has no GGUF model files."
        elif (details.repo_id, details.revision) in self.adapters:
            # Adapters are not models: they load with the model they fit, adding about their size.
            self._summary = (
                "These files are LoRA adapters: each loads with the model it fits, adding about its size."
            )
        else:
            pick = next((r for r in rows if r.recommended), None)
            self._summary = (
                f"★ {pick.group.quant or pick.group.label} is the best quality that fits this computer "
                f"with room to spare ({describe(pick.estimate)})."
                if pick
                else "None of these files fits this computer with room to spare."
            )
        self.fit_note.setText(self._summary)
        # Keep the user's selection (when it is a file of this repository); else select the recommended one.
        names = {r.group.name for r in rows}
        recommended = next((r.group.name for r in rows if r.recommended), None)
        wanted = selected.group.name if selected and selected.group.name in names else recommended
        for i, row in enumerate(rows):
            if row.group.name == wanted:
                self.files.selectRow(i)
                break
        self._update_download_button()

    def selected_fit(self) -> FileFit | None:
        """The file row the user selected."""
        rows = self.files.selectionModel().selectedRows() if self.files.selectionModel() else []
        if not rows:
            return None
        value = rows[0].data(FitRole)
        return value if isinstance(value, FileFit) else None

    def select_file(self, name: str) -> bool:
        """Select the row of a file by name (tests and keyboard users)."""
        for i, row in enumerate(self.files_model.rows):
            if row.group.name == name or row.group.label == name:
                self.files.selectRow(i)
                return True
        return False

    def _update_download_button(self) -> None:
        fit = self.selected_fit()
        details = self.details
        if fit is None or details is None:
            self.download_button.setText("Download")
            self.download_button.setEnabled(False)
            return
        _note, action = self.file_state(details, fit.group)
        text = {
            "download": "Download",
            "downloading": "Downloading…",
            "installed": "Use in chat",
            "use-existing": "Use the copy on this computer",
            "refused": "Refused: unsafe file name",
        }[action]
        self.download_button.setText(text)
        self.download_button.setEnabled(action not in ("downloading", "refused") and fit.group.complete)
        # Under the table: the recommendation, and what matters about the selected file.
        if action == "refused":
            self.fit_note.setText(f"{fit.group.label}: {_note}")
        elif action == "use-existing" and _note:
            self.fit_note.setText(f"{fit.group.label} is {_note}: Fireside uses it in place, no download.")
        else:
            self.fit_note.setText(self._summary)

    def _on_download_clicked(self) -> None:
        fit = self.selected_fit()
        details = self.details
        if fit is None or details is None or not self.download_button.isEnabled():
            return
        _note, action = self.file_state(details, fit.group)
        if action == "download":
            self.downloadRequested.emit(details, fit.group)
        elif action == "use-existing":
            self.useExisting.emit(details, fit.group)
        elif action == "installed":
            self.openInstalled.emit(details, fit.group)
        self.refresh_files()

    def show_problem(self, error: HubError) -> None:
        """Show a Hub problem (a refused download, say) under the file list."""
        self.fit_note.setText(error.message)
