"""The main window: builds the parts and connects their signals; the parts do the work."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.session import ChatSession
from app.core.inference.kv_disk import KvDiskCache
from app.core.inference.options import LoadedModel
from app.core.models.library import ModelEntry
from app.core.platform import logs, paths
from app.core.settings import Settings, sources_from_settings
from app.core.system.hardware import Hardware
from app.core.values.sampling import SamplingParams
from app.ui.api.controller import ServerController
from app.ui.api.indicator import ServerIndicator
from app.ui.chat.attaching import attach_documents, attach_images
from app.ui.chat.context_meter import ContextMeter
from app.ui.chat.controller import ChatController
from app.ui.chat.page import ChatPage
from app.ui.chat.side_panel import SidePanel
from app.ui.chat.tool_flow import ToolApprovals
from app.ui.chat.zoom import ChatZoom
from app.ui.common.banner import Banner
from app.ui.common.status_bar import StatusBar
from app.ui.common.tasks import BackgroundTasks
from app.ui.conversations.controller import ConversationController
from app.ui.conversations.presets import PresetBar
from app.ui.hub.controller import HubController
from app.ui.inference.bridge import InferenceBridge
from app.ui.inference.speculation_control import SpeculationControl
from app.ui.inference.speculation_panel import SpeculationPanel
from app.ui.models.choice import ModelChoice
from app.ui.models.controller import ModelsController
from app.ui.models.installed import InstalledModels
from app.ui.remote.controller import RemoteEngines
from app.ui.shell import shortcuts
from app.ui.shell.dialogs import Dialogs
from app.ui.shell.error_dialog import ErrorReporter
from app.ui.shell.first_run import StarterFlow
from app.ui.shell.nav_rail import NavRail
from app.ui.shell.top_bar import TopBar
from app.ui.shell.welcome import WelcomePage
from app.ui.tools.controller import ToolsController
from app.ui.tools.picker import ToolsButton

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Fireside's main window."""

    def __init__(self, bridge: InferenceBridge | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Fireside")
        self.setObjectName("mainWindow")
        self.resize(1100, 720)
        self.setMinimumSize(900, 600)
        self.settings = settings = settings or Settings.load()
        # Conversations' KV caches outlive the session, within the size the user allows.
        self.kv_cache = KvDiskCache(paths.kv_cache_dir(), settings.kv_cache_mb * 1_000_000)
        self.bridge = bridge = bridge or InferenceBridge(self, kv_cache=self.kv_cache)
        self.tasks = BackgroundTasks(self)
        self.remote = RemoteEngines(settings, self)
        # The local API server shares the window's inference thread (one model, one queue); fields a
        # request leaves out take the window's sampling settings (read from the server's thread: a
        # reference to an immutable SamplingParams, replaced whole when the user changes one).
        self.server = ServerController(
            bridge.worker,
            self.tasks,
            settings.api_server,
            lambda: self.settings.sampling,
            self,
            sources=sources_from_settings(
                lambda: self.settings, models_folder=lambda: self.models.models_folder()
            ),
            installed=lambda: list(self.models.entries),
        )
        self.server.parallel_choice = settings.parallel
        self.session = ChatSession(bridge.worker, run=self.tasks.run)
        self.session.sampling = settings.sampling
        self._closing = self._started = False
        self._build()
        self._connect()

    # ----- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        settings, session, tasks, bridge = self.settings, self.session, self.tasks, self.bridge
        self.rail, self.top, self.banner, self.status = NavRail(), TopBar(), Banner(), StatusBar()
        self.picker = self.top.picker
        self.setStatusBar(self.status)
        banner, status = self.banner, self.status
        presets = PresetBar()
        speculation = SpeculationPanel(settings.speculative, settings.draft_model)
        self.side = side = SidePanel(settings.sampling, presets, speculation)
        self.speculation = SpeculationControl(speculation, settings, bridge, self._save_settings, self)
        self.sampling, self.offload, self.system_prompt = side.sampling, side.offload, side.system_prompt
        self.choice = choice = ModelChoice(
            settings,
            bridge,
            self.remote,
            self.picker,
            self.top.load_progress,
            status,
            banner,
            self._save_settings,
            self,
        )
        choice.context_length = settings.sampling.context_length
        self.models = ModelsController(settings, tasks, banner, status, self._loaded_path, self)
        self.hub = HubController(self.models, self._context_length, status, banner, self)
        self.installed = InstalledModels(
            settings, tasks, choice, self.models.models_folder, status, banner, self._save_settings, self
        )
        self.conversations = ConversationController(session, settings, tasks, side, presets, banner, self)
        self.page = page = ChatPage(session.transcript, self.conversations.sidebar, side)
        self.messages, self.view, self.composer = page.messages, page.view, page.composer
        self.send_button = page.send_button
        self.meter = ContextMeter(session, bridge, choice, self.composer, status, self)
        self.chat = ChatController(session, choice, self.remote, page, side, self.meter, status, banner, self)
        self.tools = ToolsController(settings, session, self)
        self.tool_approvals = ToolApprovals(session, choice, page.view, page.approval, banner, self)
        self.tools_button = ToolsButton(self.tools)
        page.add_composer_button(self.tools_button)
        self.attachments = attach_images(page, tasks, self.chat, self.meter, banner)
        self.documents = attach_documents(
            page, self.chat, choice, bridge, settings, status, banner, self._discover_search
        )
        self.dialogs = Dialogs(
            self,
            self.server,
            self.remote,
            self.hub,
            self.models,
            settings,
            self._save_settings,
            self.kv_cache,
            self.tools,
        )
        self.server_indicator = ServerIndicator(
            self.server, settings, status, banner, self._save_settings, self.dialogs.server_panel, self
        )
        self.welcome = WelcomePage(str(self.models.models_folder()))
        self.first_run = StarterFlow(
            self.welcome, self.installed, choice, self.hub, tasks, banner, self._leave_welcome, self
        )
        self.errors = ErrorReporter(self)
        self.pages = QStackedWidget()
        self.pages.setObjectName("pages")
        self._page_index = {
            "chat": self.pages.addWidget(page),
            "discover": self.pages.addWidget(self.hub.page()),
            "library": self.pages.addWidget(self.models.library),
            "welcome": self.pages.addWidget(self.welcome),
        }
        central = QWidget()
        outer = QHBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.rail)
        column = QVBoxLayout()
        column.setSpacing(0)
        for part, stretch in ((self.top, 0), (banner, 0), (self.pages, 1)):
            column.addWidget(part, stretch)
        outer.addLayout(column, 1)
        self.setCentralWidget(central)
        self.page.drawerShown.connect(self.top.set_drawer_shown)
        self.page.restore_drawer(settings.settings_drawer)
        library = self.models.library
        library.set_layout(settings.library_layout)
        library.set_machine(self.picker.machine, settings.sampling.context_length, settings.parallel)
        library.set_usage(settings.model_last_used, "")
        self.show_page("chat" if settings.welcomed else "welcome")  # the first launch: hello first

    def _connect(self) -> None:
        choice, models, hub, installed = self.choice, self.models, self.hub, self.installed
        top, rail, status, dialogs = self.top, self.rail, self.status, self.dialogs
        self.bridge.happened.connect(self.chat.handle)
        rail.pageRequested.connect(self.show_page)
        self.welcome.discoverRequested.connect(lambda: self._leave_welcome("discover"))
        self.welcome.dismissed.connect(lambda: self._leave_welcome("chat"))
        top.openModelRequested.connect(self._open_model_file)
        top.remoteEnginesRequested.connect(dialogs.remote_engines)
        top.drawerToggled.connect(self._show_drawer)
        rail.preferencesRequested.connect(dialogs.preferences)
        rail.aboutRequested.connect(dialogs.about)
        rail.serverRequested.connect(dialogs.server_panel)
        rail.logFolderRequested.connect(self._open_log_folder)
        status.downloadsClicked.connect(lambda: self.show_page("discover"))
        status.serverClicked.connect(dialogs.server_panel)
        choice.loadedChanged.connect(self._on_loaded)
        choice.targetChanged.connect(self._on_target)
        installed.listed.connect(self._on_listed)
        installed.pageWanted.connect(self.show_page)
        models.refreshWanted.connect(installed.refresh)
        models.addInPlace.connect(installed.add_in_place)
        models.forgetModel.connect(installed.forget)
        models.useModel.connect(self._chat_with)
        models.settingsChanged.connect(self._save_settings)
        models.projectorChanged.connect(self._on_projector_changed)
        models.embeddingChanged.connect(self.bridge.worker.load_embedding_model)
        models.library.discoverRequested.connect(lambda: self.show_page("discover"))
        models.library.layoutChosen.connect(self._remember_library_layout)
        models.namesChanged.connect(self.picker.set_names)
        models.hardwareChanged.connect(self._on_hardware)
        hub.downloaded.connect(installed.refresh)
        hub.openModel.connect(self._chat_with)
        hub.preferencesWanted.connect(dialogs.preferences)
        self.server.parallelRequested.connect(choice.set_parallel)
        self.chat.remoteEnginesWanted.connect(dialogs.remote_engines)
        self.tools_button.setupRequested.connect(dialogs.mcp_servers)
        self.conversations.modelWanted.connect(choice.use_model)
        self.conversations.settingsChanged.connect(self._save_settings)
        self.conversations.note.connect(lambda text: status.showMessage(text, 5000))
        self.view.codeCopied.connect(lambda _code: status.showMessage("Code copied", 2000))
        self.view.messageCopied.connect(lambda: status.showMessage("Message copied", 2000))
        self.sampling.changed.connect(self._on_sampling_changed)
        self.offload.applyRequested.connect(choice.apply_offload)
        self.offload.hardwareRequested.connect(models.show_hardware)
        rail.shortcutsRequested.connect(dialogs.shortcuts)
        shortcuts.bind(
            self,
            {
                "stop": self.chat.stop,
                "composer": self.composer.setFocus,
                "attach": lambda: self.attachments.choose(self),
                "new_conversation": self.conversations.new_conversation,
                "search": self._focus_search,
                "page_chat": lambda: self.show_page("chat"),
                "page_discover": lambda: self.show_page("discover"),
                "page_library": lambda: self.show_page("library"),
                "open_model": self._open_model_file,
                "preferences": dialogs.preferences,
                "settings_drawer": self.top.drawer_button.click,
                "shortcuts": dialogs.shortcuts,
            },
        )
        self._set_tab_order()
        self.zoom = ChatZoom(
            (self.view, self.composer), self, self.settings.chat_zoom, self._remember_zoom, self
        )

    def _discover_search(self, query: str) -> None:
        """Show Discover searching for `query` (a suggestion's "Find one")."""
        self.show_page("discover")
        view = self.hub.discover
        view.search_input.setText(query)
        view.search_now()

    def _on_projector_changed(self, path: str) -> None:
        """A loaded model is loaded again with the projector chosen for it."""
        if self.choice.current_path() == path and not self.chat.is_generating:
            self.choice.load_model(path, choose=False)

    def _set_tab_order(self) -> None:
        """Tab goes the way the eye reads: the rail, the model bar, the conversations, the messages,
        the message box and Send, then the settings drawer, and round again."""
        sidebar = self.conversations.sidebar
        order: list[QWidget] = [*self.rail.findChildren(QToolButton)]
        order += [self.picker, self.top.open_button, self.top.remote_button, self.top.drawer_button]
        order += [sidebar.new_button, sidebar.search, sidebar.list, sidebar.more_button]
        order += [self.view, self.composer, self.send_button]
        drawer = self.side.findChildren(QWidget)
        # (Not a combo box's popup: a window of its own.)
        order += [w for w in drawer if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.window() is self]
        for first, second in itertools.pairwise(order):
            QWidget.setTabOrder(first, second)

    def _show_drawer(self, shown: bool) -> None:
        """Show or hide the chat's settings drawer; remembered when the window is wide enough for it."""
        narrow = self.page.narrow()
        self.page.set_drawer_wanted(shown)
        if not narrow and self.settings.settings_drawer != shown:
            self.settings.settings_drawer = shown
            self._save_settings()

    def _focus_search(self) -> None:
        self.show_page("chat")
        self.page.show_conversations()
        self.conversations.sidebar.search.setFocus()

    def _remember_library_layout(self, name: str) -> None:
        self.settings.library_layout = name
        self._save_settings()

    def _remember_zoom(self, percent: int) -> None:
        self.settings.chat_zoom = percent
        self._save_settings()
        self.status.showMessage(f"Text size {percent}%", 3000)

    # ----- what the parts ask of the window -----------------------------------------------------

    @property
    def loaded(self) -> LoadedModel | None:
        """The local model loaded now."""
        return self.choice.loaded

    @property
    def is_generating(self) -> bool:
        """True while a reply streams."""
        return self.chat.is_generating

    def start(self, model: str | None = None) -> None:
        """After the window is shown: find installed models (off the GUI thread), then load one."""
        if not self._started:
            self._started = self.server_indicator.started = True
            self.hub.start()
            self.models.start()
            self.conversations.start()
            self.remote.start()
            self.tools.refresh()
            # The key first: a server on the network must not start without it.
            self.server.load_key(self.server.start if self.settings.api_server.enabled else None)
        self.installed.start(model)

    def show_page(self, name: str) -> None:
        """Switch between "chat", "discover", "library" and the first-run "welcome"."""
        self.pages.setCurrentIndex(self._page_index[name])
        self.rail.show_page(name)
        self.top.set_drawer_available(name == "chat")
        if name == "discover":
            self.models.ensure_hardware()  # the fit badges need the GPUs

    def _leave_welcome(self, page: str) -> None:
        if not self.settings.welcomed:
            self.settings.welcomed = True
            self._save_settings()
        self.show_page(page)
        if page == "chat":
            self.composer.setFocus()  # the first thing to do there is to type

    def _show_starter_on_welcome(self) -> None:
        """While the welcome page shows, say that the starter model is installed, loading or ready."""
        entry = self.installed.starter_entry()
        if self.settings.welcomed or entry is None:
            return
        loaded = self.choice.loaded
        self.welcome.show_starter_installed(loaded is not None and loaded.info.path == entry.path)

    def _loaded_path(self) -> Path | None:
        return self.choice.loaded.info.path if self.choice.loaded else None

    def _context_length(self) -> int:
        return self.sampling.params().context_length

    def _on_listed(self, entries: list[ModelEntry]) -> None:
        self.models.set_entries(entries)
        self.speculation.set_entries(entries)
        self._show_adapters()
        self.hub.refresh()
        self._show_starter_on_welcome()

    def _open_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(logs.log_file().parent)))

    def _chat_with(self, path: str) -> None:
        self.show_page("chat")
        self.choice.load_model(path)

    def _on_loaded(self, model: LoadedModel | None) -> None:
        self._show_starter_on_welcome()
        self.server.show_parallel(self.settings.parallel, model.n_parallel if model is not None else 0)
        if model is not None:
            self.sampling.set_max_context(model.info.context_length)
            options = self.settings.options_for(str(model.info.path))
            self.offload.set_model(model.info, options, model.context_length, model.n_parallel)
            self.models.note_memory(model)
            self.settings.note_model_used(str(model.info.path), time.time())
            self.models.ensure_hardware()  # llama_cpp is imported now: reading the GPUs costs little
            self._save_settings()
        self.speculation.set_loaded(model)
        self._show_adapters()
        loaded_path = str(model.info.path) if model is not None else ""
        self.models.library.set_usage(self.settings.model_last_used, loaded_path)
        self._on_target()

    def _show_adapters(self) -> None:
        """The drawer offers the adapters beside the loaded model."""
        loaded = self.loaded
        entry = next((e for e in self.models.entries if loaded and e.path == loaded.info.path), None)
        self.side.adapters.set_available(list(entry.adapters) if entry is not None else [])

    def _on_target(self) -> None:
        self.conversations.presets.set_model_defaults(*self.choice.sampling_defaults())
        self.meter.update()

    def _on_hardware(self, hardware: Hardware) -> None:
        self.offload.set_hardware(hardware)
        context, parallel = self.sampling.params().context_length, self.settings.parallel
        self.picker.set_machine(hardware.machine(), context, parallel)
        self.models.library.set_machine(hardware.machine(), context, parallel)

    def _on_sampling_changed(self, params: SamplingParams) -> None:
        self.settings.sampling = params  # the session takes them too (ChatController)
        self.choice.context_length = params.context_length
        self.offload.set_context_length(params.context_length)
        QTimer.singleShot(0, self._save_settings)

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.banner.show_message(f"Settings could not be saved: {exc.strerror or exc}")

    def _open_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a GGUF model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if path:
            self.installed.add_and_load(path)

    def bring_to_front(self, model: str = "") -> None:
        """A second launch asked for this window (and maybe a model to open)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
        if model:
            self.installed.add_and_load(model)

    # ----- closing ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop generation, free the model and join the worker threads (bounded wait)."""
        if self._closing:
            return
        self._closing = self.installed.closing = True
        self.errors.close()
        self.conversations.close()
        self._save_settings()
        self.documents.stop()  # its wait for an embedding gives up: the inference thread goes next
        self.server.shutdown()  # before the inference thread: API streams end with a clear error
        if not self.bridge.shutdown(timeout=1.0):
            log.warning("inference thread did not stop within a second")
        self.remote.shutdown()
        self.tools.close()
        self.hub.shutdown()
        self.models.shutdown()
        self.tasks.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing mid-reply stops generation and frees the model."""
        self.shutdown()
        event.accept()
