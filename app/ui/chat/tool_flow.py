"""The user's side of tool calls in the chat: a card's links and the approval bar's buttons answer the
call that waits, the bar follows the session, and what the session warns of reaches the banner."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from app.core.chat.events import Opened, SessionEvent, ToolsChanged, Warned
from app.core.chat.session import ChatSession
from app.core.chat.tool_uses import ToolStatus
from app.ui.chat import message_accessibility
from app.ui.chat.message_view import MessageView
from app.ui.chat.tool_approval import ToolApprovalBar
from app.ui.common.banner import Banner
from app.ui.models.choice import ModelChoice


class ToolApprovals(QObject):
    """Connects the cards, the approval bar and the session."""

    def __init__(
        self,
        session: ChatSession,
        choice: ModelChoice,
        view: MessageView,
        bar: ToolApprovalBar,
        banner: Banner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.choice, self.view, self.bar, self.banner = session, choice, view, bar, banner
        view.toolAction.connect(self.on_card)
        bar.decided.connect(self.answer_waiting)
        session.listen(self._on_session)
        session.target_of = choice.target  # a result that comes later goes to the model chosen then

    def on_card(self, row: int, index: int, action: str) -> None:
        """A card's link: fold or unfold its result, or answer it."""
        if action == "fold":
            self.session.toggle_result(row, index)
        elif self.choice.ready():  # else the banner says why not (no model loaded yet, say)
            self.session.decide(row, index, action, self.choice.target())

    def answer_waiting(self, decision: str) -> None:
        """The bar's buttons answer the first call that waits."""
        waiting = self.session.pending_call()
        if waiting is not None and self.choice.ready():
            row, index, _use = waiting
            self.session.decide(row, index, decision, self.choice.target())

    def _on_session(self, event: SessionEvent) -> None:
        if isinstance(event, ToolsChanged | Opened):
            self.refresh()
        elif isinstance(event, Warned):
            self.banner.show_message(event.message, error=False)

    def refresh(self) -> None:
        """Show the call that waits in the bar, or hide it."""
        waiting = self.session.pending_call()
        if waiting is None:
            self.bar.show_call(None)
            return
        row, _index, use = waiting
        count = sum(1 for u in self.session.transcript.peek(row).tool_uses if u.status is ToolStatus.PENDING)
        was_hidden = self.bar.isHidden()
        self.bar.show_call(use, count)
        if was_hidden:
            message_accessibility.announce(self.view, self.bar.text.accessibleName() + ". Allow or deny?")
