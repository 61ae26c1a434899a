"""The first-run welcome: start with the small starter model or find one in Discover, and where files live."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from app.core.platform import logs, paths
from app.ui.common.accessible import set_description
from app.ui.common.icons import decorate
from app.ui.common.theme import chars, scaled_font


class WelcomePage(QWidget):
    """Shown on the first launch; either button (or Skip) leads on, and it is not shown again."""

    starterRequested = Signal()
    discoverRequested = Signal()
    dismissed = Signal()

    def __init__(self, models_folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        # In a scroll area: with large text on a small screen the page scrolls instead of clipping.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        scroll.setWidget(body)
        page = QVBoxLayout(self)
        page.setContentsMargins(0, 0, 0, 0)
        page.addWidget(scroll)
        outer = QVBoxLayout(body)
        outer.setContentsMargins(40, 30, 40, 30)
        outer.addStretch(1)
        card = QFrame()
        card.setObjectName("welcomeCard")
        card.setMaximumWidth(max(640, chars(self.font(), 80)))
        layout = QVBoxLayout(card)
        layout.setSpacing(12)
        title = QLabel("Welcome to Fireside")
        title.setFont(scaled_font(title.font(), 2.0, bold=True))
        intro = QLabel(
            "Fireside runs language models on this computer. What you type, the replies and your "
            "conversations stay here: nothing is sent anywhere. Fireside goes online only when you "
            "search for or download models in Discover."
        )
        intro.setWordWrap(True)
        self.starter_button = QPushButton("Start with the starter model")
        decorate(self.starter_button, "chat")
        self.starter_button.setObjectName("welcomeStarterButton")
        set_description(self.starter_button, "Chat with SmolLM2 135M, the small model Fireside comes with")
        self.starter_button.setDefault(True)
        self.starter_button.setMinimumHeight(40)
        starter_note = QLabel(
            "SmolLM2 135M Instruct (98 MB): small and fast, good for a first look. It answers simple "
            "questions; for real work, pick a larger model in Discover later."
        )
        starter_note.setWordWrap(True)
        starter_note.setProperty("muted", True)
        self.discover_button = QPushButton("Find a model in Discover")
        decorate(self.discover_button, "discover")
        self.discover_button.setObjectName("welcomeDiscoverButton")
        set_description(self.discover_button, "Find and download a model on the Discover page")
        self.discover_button.setMinimumHeight(40)
        discover_note = QLabel(
            "Search the Hugging Face Hub for GGUF models; Fireside shows which ones fit this computer "
            "and recommends the best file to download."
        )
        discover_note.setWordWrap(True)
        discover_note.setProperty("muted", True)
        where = QLabel(
            "<b>Where things are kept</b><br>"
            f"Models: {models_folder}<br>"
            f"Conversations and settings: {paths.data_dir()}<br>"
            f"Logs: {logs.log_file().parent}"
        )
        where.setObjectName("welcomeFolders")
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        self.status.setObjectName("welcomeStatus")
        self.status.setWordWrap(True)
        self.status.hide()  # takes no room until there is something to say
        skip = QPushButton("Skip")
        skip.setObjectName("welcomeSkipButton")
        set_description(skip, "Go straight to the chat")
        skip.setFlat(True)
        skip.clicked.connect(self.dismissed)
        self.starter_button.clicked.connect(self.starterRequested)
        self.discover_button.clicked.connect(self.discoverRequested)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addSpacing(8)
        layout.addWidget(self.starter_button)
        layout.addWidget(self.status)  # what the first button's model is doing, right under it
        layout.addWidget(starter_note)
        layout.addSpacing(4)
        layout.addWidget(self.discover_button)
        layout.addWidget(discover_note)
        layout.addSpacing(8)
        layout.addWidget(where)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(skip)
        layout.addLayout(row)
        centre = QHBoxLayout()
        centre.addStretch(1)
        centre.addWidget(card, 4)
        centre.addStretch(1)
        outer.addLayout(centre)
        outer.addStretch(2)

    def show_starter_installed(self, ready: bool) -> None:
        """The starter model is installed and loading (or `ready`): the first button goes straight to
        the chat (Enter presses it)."""
        self.starter_button.setText("Start chatting with the starter model")
        self.say(
            "SmolLM2 135M Instruct is loaded and ready."
            if ready
            else "SmolLM2 135M Instruct is installed and loading; you can start typing already."
        )

    def say(self, text: str) -> None:
        """Show `text` under the first button ("" hides the line)."""
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def showEvent(self, event: QShowEvent) -> None:
        """Enter chooses the first button as soon as the page shows."""
        super().showEvent(event)
        self.starter_button.setFocus()
