"""The rail down the window's left edge: the pages (Chat, Discover, My models), the API server, and at
its foot Preferences and Help; each an icon with its name under it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QButtonGroup, QMenu, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from app.ui.common.icons import icon
from app.ui.common.theme import icon_size

#: The pages with a place on the rail, in order: (key, label, what it is for).
PAGES = (
    ("chat", "Chat", "Your conversations with the model"),
    ("discover", "Discover", "Find and download models from Hugging Face"),
    ("library", "My models", "The models on this computer"),
)


def _rail_button(text: str, icon_name: str, description: str, accent: bool = False) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setIcon(icon(icon_name, accent=accent))
    button.setIconSize(icon_size(button.font(), 1.4))
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
    button.setAutoRaise(True)
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    button.setAccessibleName(text)
    button.setAccessibleDescription(description)
    button.setToolTip(description)
    return button


class NavRail(QWidget):
    """The navigation rail: one checked page at a time; Server, Preferences and Help open dialogs."""

    pageRequested = Signal(str)
    serverRequested = Signal()
    preferencesRequested = Signal()
    aboutRequested = Signal()
    logFolderRequested = Signal()
    shortcutsRequested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("navRail")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setAccessibleName("Navigation")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 10, 6, 10)
        layout.setSpacing(4)
        self.nav = QButtonGroup(self)
        self.nav.setExclusive(True)
        self.nav_buttons: dict[str, QToolButton] = {}
        for key, text, description in PAGES:
            button = _rail_button(text, key, description, accent=True)
            button.setObjectName(f"nav{key.capitalize()}")
            button.setCheckable(True)
            button.clicked.connect(lambda _c=False, k=key: self.pageRequested.emit(k))
            self.nav.addButton(button)
            self.nav_buttons[key] = button
            layout.addWidget(button)
        self.server_button = _rail_button(
            "Server", "server", "The local OpenAI-compatible API server: switch it on, see its activity"
        )
        self.server_button.setObjectName("navServer")
        self.server_button.clicked.connect(self.serverRequested)
        layout.addWidget(self.server_button)
        layout.addStretch(1)
        self.preferences_button = _rail_button(
            "Settings", "preferences", "Preferences: folders, downloads, the KV cache, remote engines"
        )
        self.preferences_button.setObjectName("preferencesButton")
        self.preferences_button.clicked.connect(self.preferencesRequested)
        layout.addWidget(self.preferences_button)
        self.help_button = _rail_button("Help", "help", "Keyboard shortcuts, About, the welcome screen, logs")
        self.help_button.setObjectName("helpButton")
        self.help_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        help_menu = QMenu(self.help_button)
        help_menu.addAction(icon("shortcuts"), "Keyboard shortcuts (F1)", self.shortcutsRequested.emit)
        help_menu.addAction(icon("about"), "About Fireside", self.aboutRequested.emit)
        help_menu.addAction("Welcome screen", lambda: self.pageRequested.emit("welcome"))
        help_menu.addAction(icon("server"), "Local API server…", self.serverRequested.emit)
        help_menu.addAction(icon("folder"), "Open the log folder", self.logFolderRequested.emit)
        self.help_button.setMenu(help_menu)
        # No menu arrow: the rail's buttons look alike; the tooltip says what Help holds.
        self.help_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0; }")
        layout.addWidget(self.help_button)
        # As wide as the widest label needs, and no wider: the pages get the room.
        self.setFixedWidth(max(76, max(b.sizeHint().width() for b in self.findChildren(QToolButton)) + 12))

    def show_page(self, name: str) -> None:
        """Check the button of page `name` (the welcome page has none: no button is checked then)."""
        if name in self.nav_buttons:
            self.nav_buttons[name].setChecked(True)
            return
        checked = self.nav.checkedButton()
        if checked is not None:
            self.nav.setExclusive(False)
            checked.setChecked(False)
            self.nav.setExclusive(True)
