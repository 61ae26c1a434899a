"""The dismissable message line above the pages, for errors and notices (with an optional button)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from app.ui.common.icons import icon
from app.ui.common.theme import is_dark

#: A banner button: its label and what it does.
Action = tuple[str, Callable[[], object]]


def sentence(text: str) -> str:
    """`text` ending with a full stop, so messages can be joined."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def banner_style(error: bool, dark: bool) -> str:
    """A tint of red (error) or blue (notice) that suits the theme: pale on light, deep on dark."""
    tints = {  # (dark, error): background, edge, text
        (True, True): ("#3c1f22", "#f85149", "#ffdcd7"),
        (True, False): ("#172a41", "#4493f8", "#e6edf3"),
        (False, True): ("#fbe3e4", "#d1242f", "#1f2328"),
        (False, False): ("#e3eefc", "#0969da", "#1f2328"),
    }
    color, border, text = tints[(dark, error)]
    return (
        f"#banner {{ background: {color}; border-left: 4px solid {border}; }} "
        f"#banner QLabel, #banner QToolButton {{ color: {text}; }}"
    )


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
        close.setIcon(icon("close"))
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.setAccessibleName("Dismiss the message")
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

    def show_message(self, text: str, error: bool = True, action: Action | None = None) -> None:
        """Show `text`, red-tinted for errors, with an optional button (label, callback)."""
        self._action = action[1] if action else None
        self.action_button.setText(action[0] if action else "")
        self.action_button.setVisible(action is not None)
        self.setProperty("error", error)
        self.setStyleSheet(banner_style(error, is_dark(self.palette())))
        self.label.setText(text)
        self.show()

    def hide_error(self) -> None:
        """Hide an error that a new choice made moot; a notice (resume downloads…) stays."""
        if self.property("error"):
            self.hide()

    @property
    def showing(self) -> str:
        """The text shown now ("" when hidden)."""
        return self.label.text() if self.isVisible() else ""
