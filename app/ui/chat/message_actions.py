"""The buttons over the message under the mouse (or the keyboard's cursor): copy, edit and resend or
regenerate, continue a reply cut at its limit, and delete. The same actions are in the message's
context menu (Menu or Shift+F10 from the keyboard), so these buttons never take the focus."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QToolButton, QWidget

from app.core.chat.messages import Message, Role
from app.core.values.replies import StopReason
from app.ui.common.icons import icon
from app.ui.common.theme import icon_size

#: (action, icon, tooltip); "copy" is done here, the others go to the view's messageAction.
ACTIONS = (
    ("copy", "copy", "Copy the message"),
    ("edit", "edit", "Edit and resend"),
    ("regenerate", "regenerate", "Regenerate the reply"),
    ("continue", "continue", "Continue the reply from where it stopped"),
    ("delete", "delete", "Delete the message"),
)


def can_continue_reply(message: Message) -> bool:
    """Whether a reply stopped short (its token limit, or cut off) so it can be carried on."""
    stopped_early = message.stats is not None and message.stats.stop_reason is StopReason.MAX_TOKENS
    return message.role is not Role.USER and (stopped_early or message.cut_off)


class MessageActionBar(QWidget):
    """A row of small icon buttons laid over a message's header strip, on the side its title is not."""

    def __init__(self, parent: QWidget, act: Callable[[int, str], None], copied: Callable[[], None]) -> None:
        super().__init__(parent)
        self.setObjectName("messageActions")
        self._act, self._copied = act, copied
        self.row = -1
        self._text = ""
        self._shown: dict[str, bool] = {}  # which buttons show now
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.buttons: dict[str, QToolButton] = {}
        for name, icon_name, tip in ACTIONS:
            button = QToolButton(self)
            button.setObjectName(f"message{name.capitalize()}Action")
            button.setIcon(icon(icon_name))
            button.setIconSize(icon_size(button.font(), 0.9))
            button.setAutoRaise(True)
            button.setToolTip(tip)
            button.setAccessibleName(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the context menu is the keyboard's way
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _c=False, n=name: self._on_click(n))
            layout.addWidget(button)
            self.buttons[name] = button
        self.hide()

    def _on_click(self, name: str) -> None:
        if name == "copy":
            QGuiApplication.clipboard().setText(self._text)
            self._copied()
            return
        row = self.row
        self.hide_bar()
        self._act(row, name)

    def show_for(self, row: int, message: Message, bubble: QRect, last: bool, can_continue: bool) -> None:
        """Lay the bar just above row `row`'s `bubble` (viewport coordinates); `last`: the newest
        message (only it can be continued), `can_continue`: the model chat goes to can carry on a
        reply (a remote engine's API cannot)."""
        if message.streaming:  # nothing to act on until the reply is written
            self.hide_bar()
            return
        user = message.role is Role.USER
        shown = {
            "copy": bool(message.content),
            "edit": user,
            "regenerate": not user,
            "continue": last and can_continue and can_continue_reply(message),
            "delete": True,
        }
        # The view calls this on every paint (scrolls, streaming): the buttons are laid out again
        # only when which of them show changes.
        if shown != self._shown:
            for name, button in self.buttons.items():
                button.setVisible(shown[name])
            self.adjustSize()
            self._shown = shown
        self.row, self._text = row, message.content
        size = self.sizeHint()
        # Above the bubble's edge opposite the title: the right for a reply, the left for the user's.
        x = bubble.left() if user else bubble.right() - size.width() + 1
        # Just above the bubble: in its header strip and the gap before it (a little taller than the
        # title), never over the text; the top row's clamps to the viewport.
        y = max(0, bubble.top() - size.height())
        geometry = QRect(x, y, size.width(), size.height())
        if self.geometry() != geometry:
            self.setGeometry(geometry)
        if not self.isVisible():
            self.show()
            self.raise_()

    def hide_bar(self) -> None:
        """Hide the bar (the mouse left the messages, or its row went away)."""
        self.row = -1
        self.hide()
