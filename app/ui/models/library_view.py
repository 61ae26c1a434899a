"""My models: every installed model with what its GGUF says, plus models other apps already downloaded."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.core.models.estimate import Fit, fit_model
from app.core.models.library import ModelEntry
from app.core.models.other_apps import FoundModel
from app.core.system.machine import Machine
from app.core.values.units import format_size
from app.ui.common.accessible import set_description
from app.ui.common.elided_label import ElidedLabel
from app.ui.common.icons import icon
from app.ui.models.library_model import EntryRole, LibraryModel
from app.ui.models.model_cards import CardFacts, LibraryEmpty, ModelCards

#: The ways My models shows the installed models: (key, label, icon).
LAYOUTS = (("cards", "Cards", "cards"), ("table", "Table", "table"))


class LibraryView(QWidget):
    """The "My models" page. The window does the work; this view asks for it with signals."""

    useRequested = Signal(str)
    importRequested = Signal()
    deleteRequested = Signal(object)  # ModelEntry
    #: (ModelEntry, "choose" | "beside" | "none"): the vision projector a model loads with.
    projectorRequested = Signal(object, str)
    #: The chosen embedding model (a ModelEntry) is to search documents from now on.
    embeddingRequested = Signal(object)
    revealRequested = Signal(str)
    folderChangeRequested = Signal()
    useInPlaceRequested = Signal(object)  # FoundModel
    discoverRequested = Signal()
    #: The user chose "cards" or "table".
    layoutChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryView")
        self.found: list[FoundModel] = []
        self.notes: dict[str, str] = {}
        root = QVBoxLayout(self)
        root.setContentsMargins(12, 10, 12, 6)

        folder_row = QHBoxLayout()
        self.folder_label = ElidedLabel("", Qt.TextElideMode.ElideMiddle)
        self.folder_label.setObjectName("modelsFolderLabel")
        self.folder_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        change = QPushButton("Change…")
        change.setObjectName("modelsFolderButton")
        change.setToolTip("Choose the folder where Fireside keeps downloaded models")
        change.clicked.connect(self.folderChangeRequested)
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(change)
        folder_row.addSpacing(12)
        self.layout_group = QButtonGroup(self)
        self.layout_buttons: dict[str, QToolButton] = {}
        for key, label, icon_name in LAYOUTS:
            button = QToolButton()
            button.setObjectName(f"library{label}Button")
            button.setIcon(icon(icon_name, accent=True))
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setToolTip(f"Show the models as {label.lower()}")
            button.setAccessibleName(f"Show as {label.lower()}")
            button.clicked.connect(lambda _c=False, k=key: self._choose_layout(k))
            self.layout_group.addButton(button)
            self.layout_buttons[key] = button
            folder_row.addWidget(button)
        root.addLayout(folder_row)

        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        self.model = LibraryModel(self)
        self.list = QTreeView()
        self.list.setObjectName("libraryList")
        set_description(self.list, "The installed models, one row each")
        self.list.setAccessibleName("Installed models")
        self.list.setModel(self.model)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setAlternatingRowColors(True)
        self.list.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.list.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.list.header().setStretchLastSection(True)
        self.list.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        self.list.doubleClicked.connect(lambda _i: self._use())
        self.facts = CardFacts()
        self.cards = ModelCards(self.facts, EntryRole)
        self.cards.setModel(self.model)
        self.cards.setSelectionModel(self.list.selectionModel())  # one selection, whichever view shows
        self.cards.doubleClicked.connect(lambda _i: self._use())
        self.cards.activated.connect(lambda _i: self._use())
        self.empty = LibraryEmpty()
        self.empty.discoverRequested.connect(self.discoverRequested)
        self.empty.importRequested.connect(self.importRequested)
        self.views = QStackedWidget()
        for view in (self.cards, self.list, self.empty):
            self.views.addWidget(view)
        self.layout_name = "cards"
        top_layout.addWidget(self.views, 1)
        self.detail = QLabel("")
        self.detail.setObjectName("libraryDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top_layout.addWidget(self.detail)
        buttons = QHBoxLayout()
        self.use_button = QPushButton("Use in chat")
        self.use_button.setObjectName("libraryUseButton")
        self.reveal_button = QPushButton("Show in folder")
        self.reveal_button.setObjectName("libraryRevealButton")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setObjectName("libraryDeleteButton")
        self.projector_button = QToolButton()
        self.projector_button.setObjectName("libraryProjectorButton")
        self.projector_button.setText("Vision projector")
        self.projector_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        set_description(
            self.projector_button, "Choose the projector (mmproj file) that lets the model read images"
        )
        projector_menu = QMenu(self.projector_button)
        projector_menu.setObjectName("libraryProjectorMenu")
        for label, mode, name in (
            ("Choose a projector file…", "choose", "projectorChooseAction"),
            ("Use the projector beside it", "beside", "projectorBesideAction"),
            ("None: text only", "none", "projectorNoneAction"),
        ):
            action = projector_menu.addAction(label)
            action.setObjectName(name)
            action.triggered.connect(lambda _checked=False, mode=mode: self._projector(mode))
        self.projector_button.setMenu(projector_menu)
        self.embedding_button = QPushButton("Use for document search")
        self.embedding_button.setObjectName("libraryEmbeddingButton")
        set_description(
            self.embedding_button, "Keep this embedding model loaded to search documents attached to chats"
        )
        self.embedding_button.clicked.connect(self._embedding)
        #: The embedding model in use for document search (a path), or None.
        self.embedding_model: str | None = None
        import_button = QPushButton("Import GGUF…")
        import_button.setObjectName("libraryImportButton")
        set_description(import_button, "Copy a .gguf file into the models folder, or use it where it is")
        import_button.setIcon(icon("import"))
        self.use_button.setIcon(icon("use"))
        set_description(self.use_button, "Load the chosen model and chat with it")
        set_description(self.reveal_button, "Open the folder that holds the chosen model's file")
        set_description(
            self.delete_button,
            "Delete the chosen model (asks first; one outside the models folder only leaves the list)",
        )
        self.reveal_button.setIcon(icon("folder"))
        self.delete_button.setIcon(icon("delete"))
        self.use_button.clicked.connect(self._use)
        self.reveal_button.clicked.connect(self._reveal)
        self.delete_button.clicked.connect(self._delete)
        import_button.clicked.connect(self.importRequested)
        actions = (self.use_button, self.reveal_button, self.delete_button, self.projector_button)
        for action_button in (*actions, self.embedding_button):
            buttons.addWidget(action_button)
        buttons.addStretch(1)
        buttons.addWidget(import_button)
        top_layout.addLayout(buttons)
        split.addWidget(top)

        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 6, 0, 0)
        heading = QLabel("Found in other apps (use them in place: no second download)")
        heading.setObjectName("otherAppsHeading")
        heading.setWordWrap(True)
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        bottom_layout.addWidget(heading)
        self.others = QTreeView()
        self.others.setObjectName("otherAppsList")
        set_description(self.others, "GGUF files that other apps downloaded, to use in place")
        self.others.setAccessibleName("Models in other apps' folders")
        self.others.setRootIsDecorated(False)
        self.others.setUniformRowHeights(True)
        self.others.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        from PySide6.QtGui import QStandardItemModel

        self.others_model = QStandardItemModel(0, 4, self)
        self.others_model.setHorizontalHeaderLabels(["App", "Model", "Size", "Path"])
        self.others.setModel(self.others_model)
        self.others.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.others.header().setStretchLastSection(True)
        self.others.doubleClicked.connect(lambda _i: self._use_in_place())
        bottom_layout.addWidget(self.others, 1)
        others_buttons = QHBoxLayout()
        self.others_status = QLabel("Looking…")
        self.others_status.setObjectName("otherAppsStatus")
        self.use_in_place_button = QPushButton("Use in place")
        self.use_in_place_button.setObjectName("otherAppsUseButton")
        set_description(
            self.use_in_place_button,
            "Add the chosen file to your models, used where it is: no copy, no download",
        )
        self.use_in_place_button.clicked.connect(self._use_in_place)
        others_buttons.addWidget(self.others_status, 1)
        others_buttons.addWidget(self.use_in_place_button)
        bottom_layout.addLayout(others_buttons)
        split.addWidget(bottom)
        split.setSizes([420, 200])
        root.addWidget(split, 1)
        self._on_selection()

    # ----- content ------------------------------------------------------------------------------

    def set_layout(self, name: str) -> None:
        """Show the models as "cards" or as a "table" (the empty state stays while none is installed)."""
        self.layout_name = name if name in self.layout_buttons else "cards"
        self.layout_buttons[self.layout_name].setChecked(True)
        self._show_view()

    def _choose_layout(self, name: str) -> None:
        self.set_layout(name)
        self.layoutChosen.emit(name)

    def _show_view(self) -> None:
        if not self.model.entries:
            self.views.setCurrentWidget(self.empty)
        else:
            self.views.setCurrentWidget(self.cards if self.layout_name == "cards" else self.list)
        for button in self.layout_buttons.values():
            button.setEnabled(bool(self.model.entries))
        for action_button in (self.use_button, self.reveal_button, self.delete_button, self.projector_button):
            action_button.setVisible(bool(self.model.entries))  # nothing to use, show or delete yet
        # Shown only where there is an embedding model to choose.
        self.embedding_button.setVisible(
            any(e.info and e.info.is_embedding_model for e in self.model.entries)
        )

    def set_machine(self, machine: Machine, context_length: int, parallel: int) -> None:
        """Judge each card's fit against `machine` at `context_length` tokens and `parallel` replies."""

        def badge(entry: ModelEntry) -> Fit | None:
            info = entry.info
            if info is None:
                return None
            return fit_model(
                info.file_size, info.shape, context_length, machine, parallel, entry.projector_size
            )[0]

        self.facts.fit = badge
        self.cards.viewport().update()

    def set_usage(self, last_used: dict[str, float], loaded: str) -> None:
        """When each model was last used, and the one loaded now (its card says "In use now")."""
        self.facts.last_used, self.facts.loaded = last_used, loaded
        self.cards.viewport().update()

    def set_folder(self, folder: Path) -> None:
        """Show the models folder."""
        self.folder_label.setText(f"Models folder: {folder}")
        self.folder_label.setToolTip(str(folder))

    def set_entries(
        self,
        entries: list[ModelEntry],
        notes: dict[str, str] | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        """Show installed models; `notes` maps a path to an extra line (e.g. estimated vs measured memory),
        `names` to a friendly name."""
        selected = self.selected_entry()
        self.notes = notes or {}
        self.model.set_entries(entries, names)
        self.facts.names = names or {}
        if selected is not None:
            self.select_path(str(selected.path))
        self._show_view()
        self._on_selection()

    def set_found(self, found: list[FoundModel], in_library: set[str]) -> None:
        """Show other apps' models; those already used in place are marked."""
        from PySide6.QtGui import QStandardItem

        self.found = list(found)
        self.others_model.removeRows(0, self.others_model.rowCount())
        for model in self.found:
            mark = " (in your library)" if str(model.path.resolve()) in in_library else ""
            row = [QStandardItem(model.app), QStandardItem(model.name + mark),
                   QStandardItem(format_size(model.size)), QStandardItem(str(model.path))]  # fmt: skip
            for item in row:
                item.setEditable(False)
            self.others_model.appendRow(row)
        self.others_status.setText(
            f"{len(found)} model file{'s' if len(found) != 1 else ''} found in other apps"
            if found
            else "No GGUF files from LM Studio, Ollama, GPT4All, Jan or the Hugging Face cache were found."
        )
        self.use_in_place_button.setEnabled(bool(found))

    def selected_entry(self) -> ModelEntry | None:
        """The selected installed model."""
        # Any selected cell: the cards select column 0 only, the table whole rows.
        indexes = self.list.selectionModel().selectedIndexes()
        value = indexes[0].data(EntryRole) if indexes else None
        return value if isinstance(value, ModelEntry) else None

    def select_path(self, path: str) -> bool:
        """Select a model by path."""
        wanted = str(Path(path).resolve())
        for row, entry in enumerate(self.model.entries):
            if str(entry.path) == wanted:
                self.list.setCurrentIndex(self.model.index(row, 0))
                return True
        return False

    def show_embedding_model(self, path: str | None) -> None:
        """The embedding model in use for document search now (its button then offers to stop)."""
        self.embedding_model = path
        self._on_selection()

    def _on_selection(self) -> None:
        entry = self.selected_entry()
        for button in (self.use_button, self.reveal_button, self.delete_button, self.projector_button):
            button.setEnabled(entry is not None)
        if entry is not None and entry.info is None:
            self.use_button.setEnabled(False)
        embedding = entry is not None and entry.info is not None and entry.info.is_embedding_model
        self.embedding_button.setEnabled(embedding)
        chosen = entry is not None and str(entry.path) == self.embedding_model
        self.embedding_button.setText(
            "Stop using for document search" if chosen else "Use for document search"
        )
        if embedding:
            self.use_button.setEnabled(False)  # it searches documents; it does not chat
            self.projector_button.setEnabled(False)
        if entry is None:
            count = len(self.model.entries)
            self.detail.setText(f"{count} model{'s' if count != 1 else ''} installed." if count else "")
            return
        lines = [str(entry.path)]
        if entry.info is not None:
            info = entry.info
            lines.append(
                f"“{info.name}” · {info.block_count or '?'} layers · GGUF v{info.gguf_version} · "
                f"{info.tensor_count} tensors"
            )
        else:
            lines.append(entry.error or "")
        note = self.notes.get(str(entry.path))
        if note:
            lines.append(note)
        self.detail.setText("\n".join(lines))

    def _use(self) -> None:
        entry = self.selected_entry()
        if entry is not None and entry.info is not None:
            self.useRequested.emit(str(entry.path))

    def _embedding(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.embeddingRequested.emit(entry)

    def _projector(self, mode: str) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.projectorRequested.emit(entry, mode)

    def _reveal(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.revealRequested.emit(str(entry.path))

    def _delete(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.deleteRequested.emit(entry)

    def _use_in_place(self) -> None:
        rows = self.others.selectionModel().selectedRows()
        if rows and 0 <= rows[0].row() < len(self.found):
            self.useInPlaceRequested.emit(self.found[rows[0].row()])
