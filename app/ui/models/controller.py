"""My models in the window: the models folder, other apps' files used in place, delete and import, the
memory each model really took, and the hardware llama.cpp can use.

The view only asks (signals); this controller does the work through app/core, off the GUI thread
where it can take time: other apps' folders, copies, deletes of large files, asking llama.cpp for its
devices. What the rest of the window must do next (list the models again, load one) it asks for with
signals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.core.inference.options import LoadedModel
from app.core.models import library
from app.core.models.estimate import estimate
from app.core.models.library import ModelEntry
from app.core.models.other_apps import FoundModel, find_other_apps_models, sha256_index
from app.core.models.projector import is_projector, projector_beside
from app.core.platform import paths
from app.core.settings import Settings
from app.core.system import hardware as hardware_module
from app.core.system.hardware import Hardware
from app.core.system.machine import Machine, total_ram
from app.core.values.units import format_size
from app.ui.common.banner import Banner
from app.ui.common.status_bar import StatusBar
from app.ui.common.tasks import BackgroundTasks
from app.ui.models.hardware_dialog import HardwareDialog
from app.ui.models.library_view import LibraryView

log = logging.getLogger(__name__)
#: When GPUs are asked for if no model load has done it first (ms after start).
HARDWARE_DELAY_MS = 4000


class ModelsController(QObject):
    """My models and the hardware, for one window."""

    #: llama.cpp's backend and devices were (re)read.
    hardwareChanged = Signal(object)
    #: The files changed (a delete, an import, another folder): list the installed models again.
    refreshWanted = Signal()
    #: List a file kept outside the models folder / take one off the list (the file stays).
    addInPlace = Signal(str)
    forgetModel = Signal(str)
    #: Chat with this model now.
    useModel = Signal(str)
    #: Other apps' files were found: friendly names for them, by path.
    namesChanged = Signal(object)
    #: Other apps' files were found (Discover offers them instead of a download).
    foundChanged = Signal()
    #: Downloads go to this folder from now on (a Path).
    folderChanged = Signal(object)
    #: The projector a model (by path) loads with changed: a loaded model is loaded again with it.
    projectorChanged = Signal(str)
    #: The settings changed and want saving.
    settingsChanged = Signal()
    #: The embedding model (a path, or None: the chat model embeds) to keep loaded from now on.
    embeddingChanged = Signal(object)

    def __init__(
        self,
        settings: Settings,
        tasks: BackgroundTasks,
        banner: Banner,
        status: StatusBar,
        loaded_path: Callable[[], Path | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings, self.tasks, self.banner, self.status = settings, tasks, banner, status
        self.loaded_path = loaded_path
        self._parent = parent
        #: Asking llama.cpp for its devices must not queue behind file scans.
        self.hardware_tasks = BackgroundTasks(self, workers=1)
        # RAM now; GPUs once llama.cpp has been asked, off the GUI thread (start): importing it takes a while.
        self.machine = Machine(ram_total=total_ram())
        self.hardware: Hardware | None = None
        self._hardware_pending = False
        self.entries: list[ModelEntry] = []
        self.found: list[FoundModel] = []
        self.found_by_sha: dict[str, FoundModel] = {}
        self.memory_notes: dict[str, str] = {}
        self.folder_problem = ""
        #: True while downloads have partial files in the models folder (asked before it changes).
        self.downloads_busy: Callable[[], bool] = lambda: False
        #: Set when the window closes: a long copy (import) stops instead of holding the close.
        self.closing = threading.Event()
        self.library = LibraryView()
        self.library.set_folder(self.models_folder())
        self.library.useRequested.connect(self.useModel)
        self.library.importRequested.connect(self.import_model)
        self.library.deleteRequested.connect(self.delete_model)
        self.library.revealRequested.connect(self.reveal)
        self.library.folderChangeRequested.connect(self.change_folder)
        self.library.useInPlaceRequested.connect(self.use_in_place)
        self.library.projectorRequested.connect(self.choose_projector)
        self.library.embeddingRequested.connect(self.use_for_search)
        self.library.embedding_model = settings.embedding_model

    # ----- start and stop -----------------------------------------------------------------------

    def models_folder(self) -> Path:
        """Where downloads go and the library looks first: the chosen folder, or the default one when
        the chosen one is not there (a drive that is not plugged in must not receive downloads on the
        system disk under the same path)."""
        chosen = self.settings.models_dir
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
        """Look for other apps' models, and read the GPUs a little later (both off the GUI thread)."""
        self.scan_other_apps()
        # GPUs are asked for once a model has loaded (llama_cpp is imported by then) or when Discover
        # needs them: importing llama_cpp on a worker while the window paints its first frame
        # delayed that frame by ~0.4 s on 2 cores.
        QTimer.singleShot(HARDWARE_DELAY_MS, self.ensure_hardware)
        if self.folder_problem:
            self.banner.show_message(self.folder_problem, error=False)  # stays over the model load

    def shutdown(self) -> None:
        """Stop a copy in progress and the hardware worker."""
        self.closing.set()
        self.hardware_tasks.shutdown(wait=False)

    # ----- hardware -----------------------------------------------------------------------------

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
            self.hardwareChanged.emit(hardware)
            if then is not None:
                then(hardware)

        def failed(error: BaseException) -> None:
            self._hardware_pending = False  # asked again next time something needs it
            log.warning("hardware detection failed: %s", error)

        self.hardware_tasks.run(hardware_module.detect, found, failed)

    def show_hardware(self) -> HardwareDialog:
        """The hardware panel, read afresh (free GPU memory changes as other programs run)."""
        dialog = self._parent.findChild(HardwareDialog, "hardwareDialog") if self._parent else None
        if dialog is None:
            dialog = HardwareDialog(self._parent)
            dialog.refreshRequested.connect(lambda: self.refresh_hardware(dialog.show_hardware))
        dialog.show_hardware(self.hardware)
        dialog.open()
        self.refresh_hardware(dialog.show_hardware)
        return dialog

    def note_memory(self, model: LoadedModel) -> None:
        """Compare the real load's memory (llama.cpp's buffers) with the estimate, and show it."""
        info = model.info
        est = estimate(info.file_size, info.shape, model.context_length, sequences=model.n_parallel)
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

    # ----- the library --------------------------------------------------------------------------

    def set_entries(self, entries: list[ModelEntry]) -> None:
        """The latest scan of installed models (each with the projector it loads with)."""
        self.entries = [self._with_projector(entry) for entry in entries]
        self.library.set_entries(self.entries, self.memory_notes, self.display_names())
        self._refresh_found()

    def _with_projector(self, entry: ModelEntry) -> ModelEntry:
        """`entry` with the projector chosen for it by hand, when one was."""
        if str(entry.path) not in self.settings.projectors:
            return entry
        chosen = self.settings.projector_for(str(entry.path))
        size = chosen.stat().st_size if chosen is not None and chosen.is_file() else 0
        return replace(entry, projector=chosen, projector_size=size)

    def use_for_search(self, entry: ModelEntry) -> None:
        """Keep `entry` (an embedding model) loaded for document search; chosen again, stop."""
        key = str(entry.path)
        chosen = None if self.settings.embedding_model == key else key
        self.settings.embedding_model = chosen
        self.library.show_embedding_model(chosen)
        self.settingsChanged.emit()
        self.embeddingChanged.emit(chosen)

    def choose_projector(self, entry: ModelEntry, mode: str) -> None:
        """Set the projector `entry` loads with: a file chosen now, the one beside it, or none."""
        key = str(entry.path)
        if mode == "choose":
            name, _ = QFileDialog.getOpenFileName(
                self._parent, "Choose a vision projector", str(entry.path.parent), "Projectors (*.gguf)"
            )
            if not name:
                return
            self.settings.projectors[key] = name
        elif mode == "none":
            self.settings.projectors[key] = ""
        else:
            self.settings.projectors.pop(key, None)
            beside = projector_beside(entry.path)  # one folder listing: the choice is undone
            size = beside.stat().st_size if beside is not None else 0
            self.entries = [
                replace(e, projector=beside, projector_size=size) if str(e.path) == key else e
                for e in self.entries
            ]
        self.settingsChanged.emit()
        self.set_entries(self.entries)
        chosen = self.settings.projector_for(key)
        what = f"reads images through {chosen.name}" if chosen is not None else "reads text only"
        self.status.showMessage(f"{entry.path.name} {what}.", 5000)
        self.projectorChanged.emit(key)

    def scan_other_apps(self) -> None:
        """Look for GGUFs that LM Studio, Ollama, GPT4All, Jan or the Hugging Face cache downloaded."""
        self.tasks.run(find_other_apps_models, self._on_found, lambda e: log.warning("scan: %s", e))

    def _on_found(self, found: list[FoundModel]) -> None:
        self.found = found
        self.found_by_sha = sha256_index(found)
        self.namesChanged.emit(self.display_names())
        self.library.set_entries(self.entries, self.memory_notes, self.display_names())
        self._refresh_found()
        self.foundChanged.emit()

    def display_names(self) -> dict[str, str]:
        """Friendly names for other apps' files ("smollm2:135m (Ollama)" rather than a blob's hash)."""
        return {str(f.path.resolve()): f"{f.name} ({f.app})" for f in self.found}

    def _refresh_found(self) -> None:
        self.library.set_found(self.found, {str(e.path) for e in self.entries})

    def use_in_place(self, found: FoundModel) -> None:
        """Add another app's file to the library without copying it (with the projector that app
        keeps for it, where the file's own folder does not hold it: the HF cache's blobs, Ollama's)."""
        real = found.path.resolve()
        if found.projector is not None and projector_beside(real) != found.projector:
            self.settings.projectors[str(real)] = str(found.projector)
            self.settingsChanged.emit()
        self.addInPlace.emit(str(found.path))
        self.banner.show_message(
            f"{found.name} from {found.app} is now in your library, used in place (no copy, no download).",
            error=False,
        )

    def reveal(self, path: str) -> None:
        """Open the file's folder in the system file manager."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))

    def delete_model(self, entry: ModelEntry) -> None:
        """Delete a model from the models folder (after confirmation); forget one kept elsewhere."""
        if self.loaded_path() == entry.path:
            self.banner.show_message(
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
        box = QMessageBox(QMessageBox.Icon.Question, f"{verb} model", text, parent=self._parent)
        box.setObjectName("confirmDeleteDialog")
        confirm = box.addButton(verb, QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def finished() -> None:
            if box.clickedButton() is not confirm:
                return
            if inside:
                folder = self.models_folder()
                self.tasks.run(
                    lambda: library.delete_model(entry.path, folder),
                    lambda _deleted: self.refreshWanted.emit(),
                    lambda e: self.banner.show_message(f"Could not delete {entry.path.name}: {e}"),
                )
            else:
                self.forgetModel.emit(str(entry.path))

        box.finished.connect(lambda _r: finished())
        box.open()

    def import_model(self) -> None:
        """Choose a .gguf anywhere, then copy it into the models folder or use it in place."""
        path, _ = QFileDialog.getOpenFileName(
            self._parent, "Import a GGUF model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if path:
            self.ask_import(path)

    def ask_import(self, path: str) -> QMessageBox | None:
        """Ask copy or use-in-place for `path` (returns the open dialog; tests press its buttons);
        a projector is refused with a message (None)."""
        if is_projector(Path(path).name):
            self.banner.show_message(
                f"{Path(path).name} is a vision projector (mmproj), not a model. Import the model it "
                "goes with (a projector beside it comes along), or choose it for a model under "
                "Projector in My models."
            )
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Import model",
            f"Copy {Path(path).name} into the models folder, or use it where it is?",
            parent=self._parent,
        )
        box.setObjectName("importDialog")
        copy = box.addButton("Copy", QMessageBox.ButtonRole.AcceptRole)
        in_place = box.addButton("Use in place", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)

        def finished() -> None:
            if box.clickedButton() is in_place:
                self.addInPlace.emit(path)
            elif box.clickedButton() is copy:
                self.status.show_state(f"Copying {Path(path).name}…")
                folder = self.models_folder()
                self.tasks.run(
                    lambda: library.import_copy(Path(path), folder, self.closing.is_set),
                    lambda _copy: self.refreshWanted.emit(),
                    lambda e: self.banner.show_message(f"Could not import {Path(path).name}: {e}"),
                )

        box.finished.connect(lambda _r: finished())
        box.open()
        return box

    def change_folder(self) -> None:
        """Choose another models folder (not while downloads have partial files: they would be stranded)."""
        if self.downloads_busy():
            self.banner.show_message(
                "Finish or cancel the downloads in progress before changing the models folder: their "
                "partial files are in the current one."
            )
            return
        folder = QFileDialog.getExistingDirectory(self._parent, "Models folder", str(self.models_folder()))
        if folder:
            self.set_models_folder(folder)

    def set_models_folder(self, folder: str) -> None:
        """Use `folder` for downloads and the library from now on."""
        self.folder_problem = ""
        self.settings.models_dir = str(Path(folder).resolve())
        self.library.set_folder(self.models_folder())
        self.folderChanged.emit(self.models_folder())
        self.refreshWanted.emit()
