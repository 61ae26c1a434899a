"""What chat goes to: the local model (loaded in the background, with its GPU options) or a remote one.

`ModelChoice` keeps the one answer to "which model answers the next message", shows it in the
picker and the status bar, loads local models through the inference thread, and switches to and
from remote engines' models (the local model stays loaded meanwhile: switching back is instant).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressBar

from app.core.chat.reply import ReplyTarget
from app.core.inference.options import LoadedModel
from app.core.models.offload import OffloadSettings
from app.core.remote.endpoints import is_model_key
from app.core.settings import Settings
from app.ui.common.banner import Banner, sentence
from app.ui.common.status_bar import StatusBar
from app.ui.inference.bridge import InferenceBridge
from app.ui.models.model_picker import ModelPicker
from app.ui.models.offload_panel import describe_loaded
from app.ui.remote.controller import RemoteChoice, RemoteEngines


class ModelChoice(QObject):
    """The model chat goes to, local or remote, and the loading of local ones."""

    #: The local model was loaded, refused (the previous one kept), or freed: LoadedModel | None.
    loadedChanged = Signal(object)
    #: Chat goes to another model (a local one, or a remote engine's).
    targetChanged = Signal()
    #: A reply in progress must stop (another model was chosen).
    stopWanted = Signal()

    def __init__(
        self,
        settings: Settings,
        bridge: InferenceBridge,
        remote: RemoteEngines,
        picker: ModelPicker,
        progress: QProgressBar,
        status: StatusBar,
        banner: Banner,
        save: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings, self.bridge, self.remote, self.save = settings, bridge, remote, save
        self.picker, self.progress, self.status, self.banner = picker, progress, status, banner
        self.loaded: LoadedModel | None = None
        self.loading_path: str | None = None
        #: Read by the context length of each load.
        self.context_length = 4096
        #: True while a reply streams: a reload must wait (set by the chat controller).
        self._generating = False
        self._reload_when_idle = False  # "Parallel replies" changed while the window's reply streamed
        self._load_request: int | None = None
        #: A remote model to go back to once its endpoint has listed it (the one chat last went to).
        self._restore_remote = settings.last_remote_model
        self._showing_remote = False
        picker.modelChosen.connect(self.choose_local)
        picker.remoteChosen.connect(self.choose_remote)
        remote.listsChanged.connect(self._on_remote_lists)
        bridge.loadProgress.connect(self._on_load_progress)
        bridge.loaded.connect(self._on_loaded)
        bridge.loadFailed.connect(self._on_load_failed)
        bridge.unloaded.connect(self._on_unloaded)

    # ----- what chat goes to --------------------------------------------------------------------

    def model_key(self) -> str | None:
        """A remote model's key, or the local model's path (None: nothing yet)."""
        if self.remote.choice is not None:
            return self.remote.choice.key
        return str(self.loaded.info.path) if self.loaded else self.loading_path

    def current_path(self) -> str | None:
        """The local model loaded or loading."""
        return str(self.loaded.info.path) if self.loaded else self.loading_path

    def target(self) -> ReplyTarget:
        """Where the next reply is generated."""
        remote = self.remote.target() if self.remote.choice is not None else None
        template = self.loaded.info.chat_template if self.loaded is not None and remote is None else None
        return ReplyTarget(self.model_key(), remote, template)

    def loading_local(self) -> bool:
        """True while the local model that chat goes to is still loading."""
        return self.remote.choice is None and self.loaded is None and bool(self.loading_path)

    def ready(self) -> bool:
        """True when a message can be sent now; otherwise the banner says why not."""
        choice = self.remote.choice
        if choice is not None:
            if self.remote.target() is None:
                self.banner.show_message(
                    f"Fireside is still connecting to {choice.endpoint.name}; send again in a moment.",
                    error=False,
                )
                return False
            return True
        if self.loaded is not None:
            return True
        if self.loading_path:
            self.banner.show_message(
                "The model is still loading; press Enter again when the status bar says Ready.", error=False
            )
        else:
            self.banner.show_message("No model is loaded. Choose one in the model picker at the top.")
        return False

    def sampling_defaults(self) -> tuple[str | None, dict[str, float] | None]:
        """The loaded model's own sampling recommendation (none for a remote model: no GGUF to read)."""
        if self.remote.choice is None and self.loaded is not None:
            return self.loaded.info.path.stem, self.loaded.info.sampling_defaults
        return None, None

    # ----- local models -------------------------------------------------------------------------

    def load_model(self, path: str, choose: bool = True) -> None:
        """Load `path` in the background (stopping a reply, cancelling a load in progress). With
        `choose` (the user picked it), chat goes to it, also if it went to a remote model; without (the
        model loaded at launch, a reload with new GPU options), a remote model chosen stays chosen."""
        self.stopWanted.emit()
        if choose:
            self._restore_remote = None
            if self.remote.choice is not None:
                self._set_remote(None)
                self.targetChanged.emit()
        self.loaded = None
        self.loading_path = path
        self.banner.hide_error()
        self.progress.setValue(0)
        self.progress.show()
        if self.remote.choice is None:
            self.picker.select_path(path)
            self.status.show_model(Path(path).name)
            self.status.show_state("Loading…")
        self._load_request = self.bridge.load(path, self.settings.load_options(path, self.context_length))

    def apply_offload(self, options: OffloadSettings) -> None:
        """Keep a model's GPU and CPU options and reload it with them."""
        path = self.current_path()
        if path is None or self.generating:
            return
        if options == OffloadSettings():
            self.settings.model_options.pop(path, None)
        else:
            self.settings.model_options[path] = options
        self.save()
        self.load_model(path, choose=False)

    @property
    def generating(self) -> bool:
        """Whether a reply streams in the window now."""
        return self._generating

    @generating.setter
    def generating(self, value: bool) -> None:
        self._generating = value
        if not value and self._reload_when_idle:
            self._reload_when_idle = False
            path = self.current_path()
            if path is not None:
                self.load_model(path, choose=False)

    def set_parallel(self, choice: int) -> None:
        """Generate `choice` replies at once from now on (0: Auto): the model is reloaded with that many
        sequences, at once or when the reply streaming in the window ends (it is not cut short)."""
        self.settings.parallel = choice
        self.save()
        self.picker.set_machine(self.picker.machine, self.picker.context_length, choice)
        path = self.current_path()
        if path is None:
            return
        if self.generating:
            self._reload_when_idle = True
        else:
            self.load_model(path, choose=False)

    def _on_load_progress(self, request_id: int, fraction: float) -> None:
        if request_id == self._load_request:
            self.progress.setValue(int(fraction * 100))

    def _on_loaded(self, request_id: int, model: LoadedModel) -> None:
        if request_id != self._load_request:
            return
        self._load_request = None
        self.loaded = model
        self.loading_path = None
        self.progress.hide()
        self.settings.last_model = str(model.info.path)
        self.status.show_model(f"{model.info.path.stem} · {model.info.quantization}")
        sees = " · reads images" if model.vision else ""
        self.status.show_state(f"Ready · loaded in {model.load_s:.2f} s · {describe_loaded(model)}{sees}")
        if model.offload_note:
            self.banner.show_message(model.offload_note, error=False)
        if model.vision_note:
            self.banner.show_message(model.vision_note, error=False)
        self.status.show_context(0, model.context_length)
        if model.template_is_default:
            self.banner.show_message(
                f"{model.info.path.name} has no chat template; Fireside uses ChatML, which most "
                "instruct models understand. Replies may be odd if this model expects another format.",
                error=False,
            )
        if self.remote.choice is not None:  # chosen while the local model loaded: chat still goes there
            self._show_remote_status()
            self.status.show_remote_context(None)
        self.loadedChanged.emit(model)
        self.targetChanged.emit()

    def _on_load_failed(self, request_id: int, message: str, kept: LoadedModel | None) -> None:
        if request_id != self._load_request:
            return
        self._load_request = None
        self.loading_path = None
        self.progress.hide()
        self.loaded = kept
        if kept is not None:  # the file was refused before loading: the previous model stays
            if self.remote.choice is None:
                self.picker.select_path(str(kept.info.path))
            self.status.show_model(f"{kept.info.path.stem} · {kept.info.quantization}")
            self.status.show_state("Ready")
            self.banner.show_message(
                f"Could not load the model. {sentence(message)} {kept.info.path.name} is still loaded."
            )
        else:
            self.status.show_state("Load failed")
            self.status.show_model("No model")
            self.banner.show_message(f"Could not load the model. {sentence(message)}")
        self.loadedChanged.emit(kept)

    def _on_unloaded(self, _request_id: int) -> None:
        self.loaded = None
        self.status.show_model("No model")
        self.status.show_state("No model loaded")
        self.status.clear_context()
        if self.remote.choice is not None:
            self._show_remote_status()
        self.loadedChanged.emit(None)

    # ----- remote models ------------------------------------------------------------------------

    def choose_remote(self, key: str) -> None:
        """Send chat to a remote model; the local model stays loaded (the local API server serves it)."""
        choice = self.remote.resolve(key)
        if choice is None:
            return
        self._restore_remote = None
        self.stopWanted.emit()
        self.banner.hide_error()
        self._set_remote(choice)
        self.targetChanged.emit()

    def choose_local(self, path: str) -> None:
        """Send chat to a local model: the one loaded (no reload) or another one, loaded now."""
        self._restore_remote = None
        if self.remote.choice is not None and self.current_path() == str(Path(path).resolve()):
            self.stopWanted.emit()  # a remote reply streaming now ends; the model needs no reload
            self._set_remote(None)
            self.targetChanged.emit()
            return
        self.load_model(path)

    def use_model(self, model: str) -> None:
        """Chat with `model` (a local path or a remote key), as an opened conversation records it."""
        if is_model_key(model):
            if self.remote.choice is not None and self.remote.choice.key == model:
                return
            if self.remote.is_listed(model):
                self.choose_remote(model)
            elif self.remote.resolve(model) is not None:
                self._restore_remote = model  # chosen once its endpoint has listed it
            return
        if (self.remote.choice is not None or model != self.current_path()) and Path(model).is_file():
            self.choose_local(model)

    def forget_remote(self) -> None:
        """The user chose a local file (Open GGUF…): chat goes to it, not to a remote model."""
        self._restore_remote = None
        if self.remote.choice is not None:
            self._set_remote(None)

    def _set_remote(self, choice: RemoteChoice | None) -> None:
        self.remote.remember_choice(choice)
        self._showing_remote = choice is not None
        if choice is not None:
            self.picker.select_path(choice.key)
            self._show_remote_status()
            self.status.show_remote_context(None)
            return
        model = self.loaded
        if model is not None:
            self.picker.select_path(str(model.info.path))
            self.status.show_model(f"{model.info.path.stem} · {model.info.quantization}")
            self.status.show_state(f"Ready · {describe_loaded(model)}")
            self.status.show_context(0, model.context_length)
        elif self.loading_path is None:
            self.status.show_model("No model")
            self.status.show_state("No model loaded")
            self.status.clear_context()

    def show_remote_status(self) -> None:
        """The status bar for the remote model chosen (after a reply, or as its endpoint answers)."""
        self._show_remote_status()

    def _show_remote_status(self) -> None:
        choice = self.remote.choice
        if choice is None:
            return
        endpoint = choice.endpoint
        local = (
            f" {self.loaded.info.path.name} stays loaded: switching back is instant." if self.loaded else ""
        )
        self.status.show_model(
            choice.label, f"Chat goes to {choice.model} on {endpoint.name} ({endpoint.base_url}).{local}"
        )
        if self.generating:
            return
        listed = self.remote.lists.get(endpoint.base_url)
        if listed is None or listed.kind == "pending":
            self.status.show_state(f"Connecting to {endpoint.name}…")
        elif listed.error is not None:
            self.status.show_state(f"{endpoint.name} is not answering")
        else:
            self.status.show_state("Ready · remote engine")

    def _on_remote_lists(self) -> None:
        self.picker.set_remote(self.remote.model_lists())
        key = self._restore_remote
        if key and self.remote.choice is None and self.remote.is_listed(key):
            self.choose_remote(key)
            return
        if self.remote.choice is not None:
            self.picker.select_path(self.remote.choice.key)
            self._show_remote_status()
        elif self._showing_remote:  # its endpoint was removed: back to the local model
            self._set_remote(None)
            self.targetChanged.emit()
