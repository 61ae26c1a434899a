"""The bar along the top of the window: the pages, the model picker and the window's menus."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QToolButton,
    QWidget,
)

from app.ui.models.model_picker import ModelPicker

#: The pages with a tab, in order: (key, label).
PAGES = (("chat", "Chat"), ("discover", "Discover"), ("library", "My models"))


class TopBar(QWidget):
    """Tabs for the pages, the model picker, Open GGUF…, Remote engines…, Preferences… and Help."""

    pageRequested = Signal(str)
    openModelRequested = Signal()
    remoteEnginesRequested = Signal()
    preferencesRequested = Signal()
    aboutRequested = Signal()
    serverRequested = Signal()
    logFolderRequested = Signal()
    shortcutsRequested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("topBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.nav = QButtonGroup(self)
        self.nav.setExclusive(True)
        self.nav_buttons: dict[str, QToolButton] = {}
        for key, text in PAGES:
            button = QToolButton()
            button.setObjectName(f"nav{key.capitalize()}")
            button.setText(text)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.clicked.connect(lambda _c=False, k=key: self.pageRequested.emit(k))
            self.nav.addButton(button)
            self.nav_buttons[key] = button
            layout.addWidget(button)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Model"))
        self.picker = ModelPicker()
        layout.addWidget(self.picker, 1)
        self.open_button = QPushButton("Open GGUF…")
        self.open_button.setObjectName("openModelButton")
        self.open_button.setToolTip("Use a .gguf model file from anywhere on this computer")
        self.open_button.clicked.connect(self.openModelRequested)
        layout.addWidget(self.open_button)
        self.remote_button = QPushButton("Remote engines…")
        self.remote_button.setObjectName("remoteEnginesButton")
        self.remote_button.setToolTip(
            "Chat with models on OpenAI-compatible servers: vLLM, a llama.cpp server, Ollama, LM Studio, "
            "a hosted API"
        )
        self.remote_button.clicked.connect(self.remoteEnginesRequested)
        layout.addWidget(self.remote_button)
        self.load_progress = QProgressBar()
        self.load_progress.setObjectName("loadProgress")
        self.load_progress.setRange(0, 100)
        self.load_progress.setFixedWidth(140)
        self.load_progress.setFormat("Loading %p%")
        self.load_progress.hide()
        layout.addWidget(self.load_progress)
        self.preferences_button = QToolButton()
        self.preferences_button.setObjectName("preferencesButton")
        self.preferences_button.setText("Preferences…")
        self.preferences_button.clicked.connect(self.preferencesRequested)
        layout.addWidget(self.preferences_button)
        self.help_button = QToolButton()
        self.help_button.setObjectName("helpButton")
        self.help_button.setText("Help")
        self.help_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        help_menu = QMenu(self.help_button)
        help_menu.addAction("Keyboard shortcuts (F1)", self.shortcutsRequested.emit)
        help_menu.addAction("About Fireside", self.aboutRequested.emit)
        help_menu.addAction("Welcome screen", lambda: self.pageRequested.emit("welcome"))
        help_menu.addAction("Local API server…", self.serverRequested.emit)
        help_menu.addAction("Open the log folder", self.logFolderRequested.emit)
        self.help_button.setMenu(help_menu)
        layout.addWidget(self.help_button)

    def show_page(self, name: str) -> None:
        """Check the tab of page `name` (the welcome page has none: no tab is checked then)."""
        if name in self.nav_buttons:
            self.nav_buttons[name].setChecked(True)
            return
        checked = self.nav.checkedButton()
        if checked is not None:
            self.nav.setExclusive(False)
            checked.setChecked(False)
            self.nav.setExclusive(True)
