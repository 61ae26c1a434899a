"""The context meter's count: the tokens of the system prompt, the conversation and the draft, asked of
the inference thread a moment after typing stops (the model's own tokenizer and template)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from app.core.chat.document_context import draft_tokens
from app.core.chat.session import ChatSession
from app.core.media.images import content_text
from app.ui.chat.attachments import Attachments
from app.ui.chat.composer import Composer
from app.ui.common.status_bar import StatusBar
from app.ui.inference.bridge import InferenceBridge
from app.ui.models.choice import ModelChoice

#: Typing pauses this long before the tokens are counted again.
COUNT_DELAY_MS = 400


class ContextMeter(QObject):
    """Counts what the next prompt would take and shows it in the status bar."""

    def __init__(
        self,
        session: ChatSession,
        bridge: InferenceBridge,
        choice: ModelChoice,
        composer: Composer,
        status: StatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.bridge, self.choice = session, bridge, choice
        self.composer, self.status = composer, status
        self._request: int | None = None
        #: The tokens the draft's documents will add (counted by size: their text is not read yet).
        self._documents = 0
        #: The images attached to the draft: they take tokens too (set by the window).
        self.attachments: Attachments | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(COUNT_DELAY_MS)
        self.timer.timeout.connect(self.update)
        composer.textChanged.connect(self.timer.start)
        bridge.counted.connect(self._on_counted)

    def update(self) -> None:
        """Ask the inference thread how many tokens the conversation and the draft take."""
        if self.choice.remote.choice is not None:
            self.status.show_remote_context(None)
            return
        loaded = self.choice.loaded
        if loaded is None or self.session.is_generating:
            return
        pending = self.attachments.pending if self.attachments is not None else []
        images = [a for a in pending if a.kind == "image"]
        messages = self.session.prompt(self.composer.toPlainText().strip(), images)
        n_ctx = loaded.context_length
        # Attached documents are read into the turn only when it is sent: count them by their size.
        self._documents = draft_tokens(pending, n_ctx)
        if sum(len(content_text(m["content"])) for m in messages) > 8 * n_ctx:
            # Far more text than the context holds (a token is rarely over 8 characters): no need to
            # render the template over thousands of messages to know the meter is full.
            self.status.show_context_overflow(n_ctx)
        elif messages:
            self._request = self.bridge.count(messages)
        else:
            self.status.show_context(self._documents, n_ctx)

    def _on_counted(self, request_id: int, tokens: int, context_length: int) -> None:
        if request_id == self._request:
            self.status.show_context(tokens + self._documents, context_length)
