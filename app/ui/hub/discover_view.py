"""Discover: search the Hugging Face Hub for GGUF models, read a repository, pick the file that fits.

This module is the search page (query, sort, results, the offline notice); the repository's details
and files are repo_details.RepoDetailsView, beside the results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.hub.client import SORTS, HubClient, HubError, RepoDetails, SearchResults, explain
from app.core.hub.files import FileGroup
from app.core.hub.plan import FileFit
from app.core.models.library import ModelEntry
from app.core.models.shape import ModelShape
from app.core.system.machine import Machine
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate
from app.ui.common.tasks import BackgroundTasks
from app.ui.hub.repo_details import FileState, RepoDetailsView
from app.ui.hub.results import RepoRole, ResultDelegate, SearchResultsModel

PAGE = 50
DEBOUNCE_MS = 300


class DiscoverView(QWidget):
    """The Hub browser. Emits `downloadRequested(details, group)` and `useExisting(details, group)`."""

    downloadRequested = Signal(object, object)
    useExisting = Signal(object, object)
    openInstalled = Signal(object, object)
    tokenWanted = Signal()
    #: A search for this text started / was answered (True: shown; False: a newer one replaced it).
    searchStarted = Signal(str)
    searchAnswered = Signal(str, bool)

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
        self.setObjectName("discoverView")
        self.tasks = tasks
        self.client = client
        self.repo = RepoDetailsView(
            tasks, client, machine, context_length, file_state, local_shape, parallel=parallel,
            installed=installed,
        )  # fmt: skip
        self.repo.downloadRequested.connect(self.downloadRequested)
        self.repo.useExisting.connect(self.useExisting)
        self.repo.openInstalled.connect(self.openInstalled)
        self.repo.tokenWanted.connect(self.tokenWanted)
        # The details page's parts under the names they had on this view (the window's tests use them).
        self.card, self.files, self.files_model = self.repo.card, self.repo.files, self.repo.files_model
        self.repo_meta, self.fit_note = self.repo.repo_meta, self.repo.fit_note
        self.download_button = self.repo.download_button
        self._results: SearchResults | None = None
        self._search_gen = 0
        self._searched_once = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search_now)
        self._build()

    # ----- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(12, 10, 12, 6)
        bar = QHBoxLayout()
        self.search_input = QLineEdit()
        self.search_input.setObjectName("hubSearchInput")
        self.search_input.setAccessibleName("Search models on the Hugging Face Hub")
        self.search_input.setPlaceholderText(
            "Search Hugging Face for GGUF models (e.g. llama 3.2 1b instruct)"
        )
        self.search_input.setClearButtonEnabled(True)
        self.search_input.textEdited.connect(lambda _t: self._debounce.start())
        self.search_input.returnPressed.connect(self.search_now)
        self.sort = QComboBox()
        self.sort.setObjectName("hubSort")
        set_description(self.sort, "The order of the search results")
        self.sort.addItems(list(SORTS))
        self.sort.currentIndexChanged.connect(lambda _i: self.search_now())
        bar.addWidget(self.search_input, 1)
        bar.addWidget(QLabel("Sort"))
        bar.addWidget(self.sort)
        root.addLayout(bar)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 6, 0, 0)
        self.search_status = QLabel("")
        self.search_status.setObjectName("hubSearchStatus")
        self.search_status.setWordWrap(True)
        left_layout.addWidget(self.search_status)
        self.results_stack = QStackedWidget()
        self.results_model = SearchResultsModel(self)
        self.results_model.moreWanted.connect(self._fetch_more)
        self.results = QListView()
        self.results.setObjectName("hubResults")
        set_description(self.results, "GGUF repositories on Hugging Face; choose one to see its files")
        self.results.setAccessibleName("Models found")
        self.results.setModel(self.results_model)
        self.results.setItemDelegate(ResultDelegate(self.results))
        self.results.setUniformItemSizes(True)  # thousands of rows: no per-row size queries
        self.results.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.results.selectionModel().selectionChanged.connect(self._on_result_selected)
        self.results_stack.addWidget(self.results)
        self.offline = QWidget()
        self.offline.setObjectName("hubOffline")
        offline_layout = QVBoxLayout(self.offline)
        offline_layout.addStretch(1)
        self.offline_label = QLabel()
        self.offline_label.setObjectName("hubOfflineText")
        self.offline_label.setWordWrap(True)
        self.offline_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        retry = QPushButton("Retry")
        decorate(retry, "retry")
        retry.setObjectName("hubRetryButton")
        retry.clicked.connect(self.search_now)
        offline_layout.addWidget(self.offline_label)
        offline_layout.addWidget(retry, 0, Qt.AlignmentFlag.AlignHCenter)
        offline_layout.addStretch(2)
        self.results_stack.addWidget(self.offline)
        left_layout.addWidget(self.results_stack, 1)
        split.addWidget(left)

        split.addWidget(self.repo)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([380, 560])
        root.addWidget(split, 1)

    # ----- search -------------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        """The first visit lists the most downloaded GGUF repositories."""
        super().showEvent(event)
        if not self._searched_once:
            self.search_now()

    def search_now(self) -> None:
        """Start a search for the current text and sort; a search still running is superseded."""
        self._debounce.stop()
        self._searched_once = True
        self._search_gen += 1
        gen = self._search_gen
        self._results = None
        self.results_model.reset()
        self.results_stack.setCurrentWidget(self.results)
        query = self.search_input.text().strip()
        self.searchStarted.emit(query)
        sort = SORTS[self.sort.currentText()]
        self.search_status.setText(f"Searching for “{query}”…" if query else "Loading popular GGUF models…")
        client = self.client()

        def run() -> tuple[SearchResults, list[Any]]:
            results = client.search(query, sort)
            return results, results.next(PAGE)

        self.tasks.run(
            run,
            lambda r: self._on_answer(gen, query, lambda: self._on_page(gen, r[0], r[1], query)),
            lambda e: self._on_answer(gen, query, lambda: self._on_search_failed(gen, e, client.token)),
        )

    def _on_answer(self, gen: int, query: str, show: Callable[[], None]) -> None:
        """A search answered: shown if it is still the latest, dropped if a newer one replaced it."""
        show()
        self.searchAnswered.emit(query, gen == self._search_gen)

    def _on_page(self, gen: int, results: SearchResults, page: list[Any], query: str) -> None:
        if gen != self._search_gen:
            return  # a newer search replaced this one: its results are dropped
        self._results = results
        self.results_model.append(page, results.exhausted)
        count = len(self.results_model.repos)
        if count == 0:
            self.search_status.setText(
                f"No GGUF models match “{query}”." if query else "No GGUF models found."
            )
        else:
            more = "" if results.exhausted else "+ (scroll for more)"
            self.search_status.setText(f"{count:,}{more} GGUF repositories")

    def _fetch_more(self) -> None:
        results, gen = self._results, self._search_gen
        if results is None:
            return
        token = self.client().token
        self.tasks.run(
            lambda: results.next(PAGE),
            lambda page: self._on_page(gen, results, page, ""),
            lambda e: self._on_search_failed(gen, e, token),
        )

    def _on_search_failed(self, gen: int, error: BaseException, token: str | None) -> None:
        if gen != self._search_gen:
            return
        problem = explain(error, None, token)
        self.results_model.append([], True)
        if problem.kind == "offline":
            self.offline_label.setText(
                f"You're offline. {problem.message}\n\nYour installed models and chats still work."
            )
            self.results_stack.setCurrentWidget(self.offline)
            self.search_status.setText("Offline")
        else:
            self.search_status.setText(problem.message)

    # ----- details ------------------------------------------------------------------------------

    def _on_result_selected(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            repo = indexes[0].data(RepoRole)
            self.open_repo(repo.repo_id)

    def open_repo(self, repo_id: str) -> None:
        """Show a repository's details (fetched off the GUI thread)."""
        self.repo.open_repo(repo_id)

    @property
    def details(self) -> RepoDetails | None:
        """The repository shown on the details page (None while none is, or its details are on their way)."""
        return self.repo.details

    @property
    def machine(self) -> Machine:
        """The computer the files' fit is judged for."""
        return self.repo.machine

    @machine.setter
    def machine(self, machine: Machine) -> None:
        self.repo.machine = machine

    def refresh_files(self) -> None:
        """Recompute badges and notes (after a download finishes or the context length changes)."""
        self.repo.refresh_files()

    def selected_fit(self) -> FileFit | None:
        """The file row the user selected."""
        return self.repo.selected_fit()

    def select_file(self, name: str) -> bool:
        """Select the row of a file by name (tests and keyboard users)."""
        return self.repo.select_file(name)

    def show_problem(self, error: HubError) -> None:
        """Show a Hub problem (a refused download, say) under the file list."""
        self.repo.show_problem(error)
