"""The bar along the top of the pages: the model picker, Open GGUF…, Remote engines…, the loading
progress and the button that shows or hides the chat's settings drawer."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from app.ui.common.icons import icon
from app.ui.common.theme import chars, icon_size
from app.ui.models.model_picker import ModelPicker


def _bar_button(text: str, icon_name: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setIcon(icon(icon_name))
    button.setIconSize(icon_size(button.font(), 1.1))
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setAutoRaise(True)
    button.setToolTip(tip)
    button.setAccessibleDescription(tip)
    return button


class TopBar(QWidget):
    """The model picker and the ways to get a model into it."""

    openModelRequested = Signal()
    remoteEnginesRequested = Signal()
    #: The settings drawer's button was pressed: show it (True) or hide it (False).
    drawerToggled = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("topBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 8, 6)
        layout.setSpacing(6)
        label = QLabel("Model")
        label.setProperty("muted", True)
        layout.addWidget(label)
        self.picker = ModelPicker()
        label.setBuddy(self.picker)
        layout.addWidget(self.picker, 1)
        self.open_button = _bar_button(
            "Open GGUF…", "open_model", "Use a .gguf model file from anywhere on this computer (Ctrl+O)"
        )
        self.open_button.setObjectName("openModelButton")
        self.open_button.clicked.connect(self.openModelRequested)
        layout.addWidget(self.open_button)
        self.remote_button = _bar_button(
            "Remote engines…",
            "remote",
            "Chat with models on OpenAI-compatible servers: vLLM, a llama.cpp server, Ollama, LM Studio, "
            "a hosted API",
        )
        self.remote_button.setObjectName("remoteEnginesButton")
        self.remote_button.clicked.connect(self.remoteEnginesRequested)
        layout.addWidget(self.remote_button)
        self.load_progress = QProgressBar()
        self.load_progress.setObjectName("loadProgress")
        self.load_progress.setAccessibleName("Loading the model")
        self.load_progress.setRange(0, 100)
        self.load_progress.setFixedWidth(chars(self.font(), 20))
        self.load_progress.setFormat("Loading %p%")
        self.load_progress.hide()
        layout.addWidget(self.load_progress)
        self.drawer_button = QToolButton()
        self.drawer_button.setObjectName("settingsDrawerButton")
        self.drawer_button.setCheckable(True)
        self.drawer_button.setChecked(True)
        self.drawer_button.setAutoRaise(True)
        self.drawer_button.setIconSize(icon_size(self.font(), 1.1))
        self.drawer_button.setAccessibleName("Conversation settings")
        self.drawer_button.toggled.connect(self._on_drawer)
        self.drawer_button.clicked.connect(self.drawerToggled)
        self._on_drawer(True)
        layout.addWidget(self.drawer_button)
        self.model_label = label
        #: What the buttons need with their text: below that they show their icons only.
        self._text_widths = {b: b.sizeHint().width() for b in (self.open_button, self.remote_button)}

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Narrow (a small window, large text): the buttons drop their text, keeping icon and tooltip,
        so the model picker keeps room for a name."""
        super().resizeEvent(event)
        fixed = 12 + 8 + 6 * 6  # the margins and the spacing between the six parts
        fixed += self.model_label.sizeHint().width() + self.drawer_button.sizeHint().width()
        fixed += self.load_progress.width() if self.load_progress.isVisible() else 0
        room = self.width() - fixed - chars(self.font(), 34)  # the picker's share
        compact = room < sum(self._text_widths.values())
        styles = Qt.ToolButtonStyle
        style = styles.ToolButtonIconOnly if compact else styles.ToolButtonTextBesideIcon
        for button in self._text_widths:
            if button.toolButtonStyle() != style:
                button.setToolButtonStyle(style)

    def _on_drawer(self, shown: bool) -> None:
        self.drawer_button.setIcon(icon("hide_panel" if shown else "show_panel"))
        tip = "Hide" if shown else "Show"
        self.drawer_button.setToolTip(
            f"{tip} the conversation's settings: system prompt, sampling, GPU and CPU (Ctrl+Shift+S)"
        )
        self.drawer_button.setAccessibleDescription(self.drawer_button.toolTip())

    def set_drawer_shown(self, shown: bool) -> None:
        """Show the drawer's state (it may change by itself: a narrow window hides it)."""
        self.drawer_button.setChecked(shown)

    def set_drawer_available(self, available: bool) -> None:
        """The drawer belongs to the chat page: its button shows only there."""
        self.drawer_button.setVisible(available)
