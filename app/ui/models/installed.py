"""The installed models: found off the GUI thread, listed in the picker and My models, and at launch
the one to load chosen (the model asked for, else the last one, else the starter model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.models import library, starter
from app.core.models.library import ModelEntry
from app.core.settings import Settings
from app.ui.common.banner import Banner, sentence
from app.ui.common.status_bar import StatusBar
from app.ui.common.tasks import BackgroundTasks
from app.ui.models.choice import ModelChoice


class InstalledModels(QObject):
    """Keeps the lists of installed models current and picks the model to load at launch."""

    #: A scan finished: list[ModelEntry] (My models shows them too).
    listed = Signal(object)
    #: The user should look at another page ("discover" when nothing is installed).
    pageWanted = Signal(str)

    def __init__(
        self,
        settings: Settings,
        tasks: BackgroundTasks,
        choice: ModelChoice,
        models_folder: Callable[[], Path],
        status: StatusBar,
        banner: Banner,
        save: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings, self.tasks, self.choice, self.save = settings, tasks, choice, save
        self.models_folder, self.status, self.banner = models_folder, status, banner
        self.entries: list[ModelEntry] = []
        self.closing = False

    def start(self, model: str | None = None) -> None:
        """Find installed models (off the GUI thread), then load `model`, the last one or the starter."""
        self.status.show_state("Looking for models…")
        extra = list(self.settings.extra_models)
        if model:
            extra.append(str(Path(model).expanduser().resolve()))
        folder = self.models_folder()

        def scan() -> list[ModelEntry]:
            starter.install_cached()  # links the verified starter model into a new data folder
            return library.scan(folder, extra=extra)

        wanted = model or self.settings.last_model
        self.tasks.run(scan, lambda entries: self._found(entries, wanted), self._failed)

    def refresh(self) -> None:
        """Re-read the installed models (after a download, import or delete); the loaded one stays."""
        self.save()  # the list of models kept elsewhere, the models folder: kept before anything else
        extra = list(self.settings.extra_models)
        folder = self.models_folder()

        def done(entries: list[ModelEntry]) -> None:
            if not self.closing:
                self._show(entries, self.choice.current_path())

        self.tasks.run(lambda: library.scan(folder, extra=extra), done, self._failed)

    def add_in_place(self, path: str) -> None:
        """List a model file kept outside the models folder (it is used where it is, never copied)."""
        resolved = str(Path(path).resolve())
        if resolved not in self.settings.extra_models:
            self.settings.extra_models.append(resolved)
        self.refresh()

    def forget(self, path: str) -> None:
        """Take a model kept elsewhere off the list (the file is left alone)."""
        resolved = str(Path(path).resolve())
        self.settings.extra_models = [p for p in self.settings.extra_models if p != resolved]
        if self.settings.last_model == resolved:
            self.settings.last_model = None
        self.refresh()

    def add_and_load(self, path: str) -> None:
        """Remember a model file kept outside the models folder, list it and load it."""
        resolved = str(Path(path).resolve())
        if resolved not in self.settings.extra_models:
            self.settings.extra_models.append(resolved)
        self.choice.forget_remote()  # the user chose this file: chat goes to it
        self.start(resolved)

    def starter_entry(self) -> ModelEntry | None:
        """The starter model, when it is installed and readable."""
        return next((e for e in self.entries if e.path.name == starter.FILENAME and e.info), None)

    def _show(self, entries: list[ModelEntry], selected: str | None) -> None:
        self.entries = entries
        remote = self.choice.remote.choice
        self.choice.picker.set_entries(entries, remote.key if remote else selected)
        self.listed.emit(entries)

    def _failed(self, error: BaseException) -> None:
        self.banner.show_message(f"Could not list the installed models: {error}")
        self.status.show_state("No model")

    def _found(self, entries: list[ModelEntry], wanted: str | None) -> None:
        if self.closing:
            return
        problem = None
        if wanted:
            wanted_entry = next((e for e in entries if e.path == Path(wanted).resolve()), None)
            if wanted_entry is not None and wanted_entry.info is None:
                problem = f"Could not load the model. {sentence(wanted_entry.error or '')}"
                wanted = None
        usable = [e for e in entries if e.info is not None]
        current = self.choice.current_path()
        chosen = None
        if wanted and any(str(e.path) == str(Path(wanted).resolve()) for e in usable):
            chosen = str(Path(wanted).resolve())
        elif current:
            chosen = current
        elif usable:
            starter_entry = next((e for e in usable if e.path.name == starter.FILENAME), None)
            chosen = str((starter_entry or usable[0]).path)
        self._show(entries, chosen)
        if chosen is None:
            self.status.show_state("No model")
            self.banner.show_message(
                problem
                or (
                    "No local models are installed. Choose a remote model in the model picker, find one "
                    "in Discover, or use “Open GGUF…” to choose a .gguf file."
                    if self.choice.remote.endpoints
                    else "No models are installed. Find one in Discover, or use “Open GGUF…” to choose a "
                    ".gguf file."
                ),
                error=problem is not None,
                action=None if problem else ("Discover models", lambda: self.pageWanted.emit("discover")),
            )
            return
        if chosen != current:
            self.choice.load_model(chosen, choose=False)
        elif self.choice.loaded is not None and self.choice.remote.choice is None:
            self.status.show_state("Ready")
        if problem:
            if current:
                problem += f" {Path(current).name} is still loaded."
            self.banner.show_message(problem)
