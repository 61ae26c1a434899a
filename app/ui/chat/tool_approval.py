"""The bar above the composer while a tool call waits: what the model wants to run, and Allow once /
Always allow this tool / Deny as real buttons (the card's links do the same; these take the keyboard
and a screen reader too)."""

from __future__ import annotations

import json

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.chat.tool_uses import ToolUse
from app.ui.common.accessible import set_description

#: The most characters of a call's arguments the bar shows (the card shows them all).
SHOWN_ARGUMENTS = 160


class ToolApprovalBar(QFrame):
    """Hidden until a call waits; `decided` carries "once", "always" or "deny"."""

    decided = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolApprovalBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        column = QVBoxLayout(self)
        column.setContentsMargins(12, 6, 12, 6)
        self.text = QLabel()
        self.text.setObjectName("toolApprovalText")
        self.text.setWordWrap(True)
        column.addWidget(self.text)
        layout = QHBoxLayout()
        layout.addStretch(1)
        column.addLayout(layout)
        self.buttons: dict[str, QPushButton] = {}
        for decision, words, name, description in (
            ("once", "Allow once", "toolAllowOnceButton", "Run this call, and ask again next time"),
            ("always", "Always allow", "toolAlwaysAllowButton", "Run this tool's calls without asking"),
            ("deny", "Deny", "toolDenyButton", "Do not run it: the model is told you said no"),
        ):
            button = QPushButton(words)
            button.setObjectName(name)
            set_description(button, description)
            button.clicked.connect(lambda _checked=False, d=decision: self.decided.emit(d))
            layout.addWidget(button)
            self.buttons[decision] = button
        self.buttons["once"].setProperty("primary", True)
        self.hide()

    def show_call(self, use: ToolUse | None, waiting: int = 1) -> None:
        """Show the call that waits (None: hide the bar); `waiting`: how many calls wait in all."""
        if use is None:
            self.hide()
            return
        try:
            arguments = json.dumps(json.loads(use.arguments or "{}"), ensure_ascii=False)
        except ValueError:
            arguments = use.arguments
        if len(arguments) > SHOWN_ARGUMENTS:
            arguments = arguments[:SHOWN_ARGUMENTS] + "…"
        more = f" ({waiting - 1} more after it)" if waiting > 1 else ""
        self.text.setText(
            f"The model wants to run <b>{_escape(use.name)}</b>{more}: <code>{_escape(arguments)}</code>"
        )
        self.text.setAccessibleName(f"The model wants to run {use.name}{more} with {arguments}")
        self.show()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
