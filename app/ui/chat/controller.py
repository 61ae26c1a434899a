"""The chat in the window: the composer and Send/Stop drive the session, the session's events drive the
banner and the status bar. The state itself (messages, the reply, the store) is the ChatSession's."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

from app.core.chat.events import ReplyEnded, ReplyStateChanged, SessionEvent, StoreFailed, Trimmed
from app.core.chat.session import ChatSession
from app.core.inference.context_policy import ContextPolicy
from app.core.inference.events import Event
from app.core.values.sampling import SamplingParams
from app.ui.chat import message_accessibility
from app.ui.chat.attachments import Attachments
from app.ui.chat.composer import Composer
from app.ui.chat.context_meter import ContextMeter
from app.ui.chat.message_view import MessageView
from app.ui.chat.page import ChatPage
from app.ui.chat.side_panel import SidePanel
from app.ui.common.banner import Action, Banner
from app.ui.common.icons import icon
from app.ui.common.status_bar import StatusBar
from app.ui.models.choice import ModelChoice
from app.ui.remote.controller import RemoteEngines, failure_message


class ChatController(QObject):
    """Sends what the user writes, stops, regenerates, continues, edits and deletes, and says how it went."""

    #: The user wants the remote engines dialog (from a failed remote reply's banner).
    remoteEnginesWanted = Signal()
    #: A reply started or ended (the context meter waits while one streams).
    generatingChanged = Signal(bool)

    def __init__(
        self,
        session: ChatSession,
        choice: ModelChoice,
        remote: RemoteEngines,
        page: ChatPage,
        side: SidePanel,
        meter: ContextMeter,
        status: StatusBar,
        banner: Banner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.choice, self.remote = session, choice, remote
        self.composer: Composer = page.composer
        self.send_button: QPushButton = page.send_button
        self.view: MessageView = page.view
        self.side, self.meter, self.status, self.banner = side, meter, status, banner
        self._dialog_parent = parent
        session.listen(self._on_session)
        # Earlier turns' images reach a text-only model as a line of text (the chat goes on with it).
        session.reads_images = lambda: choice.loaded is None or choice.loaded.vision
        # The open conversation's settings: the session has them first, the store after a pause.
        side.promptEdited.connect(self._on_prompt)
        side.promptSettled.connect(session.save_settings)
        side.policyChanged.connect(self._on_policy)
        side.sampling.changed.connect(self._on_sampling)
        page.messages.modelReset.connect(meter.timer.start)
        self.composer.submitted.connect(self.send)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.view.versionStep.connect(session.step_version)
        self.view.messageAction.connect(self.on_message_action)
        choice.stopWanted.connect(self.stop)
        choice.targetChanged.connect(self._on_target)
        choice.loadedChanged.connect(self._on_loaded_changed)
        #: Send was pressed while the model loaded: the composer's text goes out once it is ready.
        self.send_when_loaded = False
        #: The images attached to the message being written (set by the window).
        self.attachments: Attachments | None = None
        self._update_send_button()

    def _on_prompt(self, text: str) -> None:
        self.session.system_prompt = text
        self.meter.timer.start()

    def _on_policy(self, policy: ContextPolicy) -> None:
        self.session.policy = policy
        self.session.save_settings()

    def _on_sampling(self, params: SamplingParams) -> None:
        self.session.sampling = params
        self.session.save_settings()

    def handle(self, event: Event) -> None:
        """An event of the inference thread (the bridge's `event` signal): the session takes its own."""
        self.session.handle(event)

    @property
    def is_generating(self) -> bool:
        """True while a reply streams."""
        return self.session.is_generating

    # ----- what the user does -------------------------------------------------------------------

    def _on_send_clicked(self) -> None:
        if self.is_generating:
            self.stop()
        else:
            self.send()

    def send(self) -> None:
        """Send the composer's text and attached images; ignored when empty or while a reply
        streams. While the model loads it waits in the composer (still editable) and goes out as
        soon as the model is ready. Images for a local model that reads none stay in the composer,
        and the banner says why."""
        text = self.composer.toPlainText().strip()
        images = self.attachments.pending if self.attachments is not None else []
        if (not text and not images) or self.is_generating:
            return
        if self.attachments is not None and self.attachments.busy:
            self.banner.show_message("An image is still being attached: send again in a moment.", error=False)
            return
        if self.choice.loading_local():
            self.send_when_loaded = True
            self.banner.show_message(
                "The model is still loading: your message will be sent as soon as it is ready.",
                error=False,
                action=("Don't send", self._cancel_waiting_send),
            )
            return
        if not self.choice.ready():
            return
        self.send_when_loaded = False
        loaded = self.choice.loaded
        pictures = [a for a in images if a.kind == "image"]
        if pictures and self.choice.remote.choice is None and loaded is not None and not loaded.vision:
            count = "the image" if len(pictures) == 1 else f"the {len(pictures)} images"
            self.banner.show_message(
                f"{loaded.info.path.name} reads text only, so {count} cannot be sent. Load a vision "
                "model (one shown with “Vision” in My models, which has a projector), or remove the "
                "images to send the text alone.",
                error=True,
            )
            return
        self.banner.hide()
        self.composer.clear()
        if self.attachments is not None:
            self.attachments.strip.clear()
        self.session.send(text, self.choice.target(), images)

    def _cancel_waiting_send(self) -> None:
        self.send_when_loaded = False
        self.banner.hide()

    def _on_loaded_changed(self, model: object) -> None:
        if not self.send_when_loaded:
            return
        self.send_when_loaded = False
        if model is not None:
            # After every other listener of the load has run (the status bar, the context meter).
            QTimer.singleShot(0, self.send)
        # A load that failed leaves the message in the composer, and the banner says why.

    def stop(self) -> None:
        """Stop the streaming reply before its next token; what was generated is kept."""
        self.session.stop()

    def regenerate(self, row: int) -> None:
        """A new version of the reply at `row`; the old one stays reachable with "< >"."""
        if not self.is_generating and row >= 1 and self.choice.ready():
            self.session.regenerate(row, self.choice.target())

    def continue_reply(self, row: int) -> None:
        """Carry on writing the last reply where it stopped (max tokens, or cut off)."""
        if self.remote.choice is not None:
            # An OpenAI-style API answers with a new message; few servers carry on the last one, and
            # each in its own way. Rather than a continuation that quietly starts over, say so.
            self.banner.show_message(
                "Continue needs a local model: a remote engine starts a new reply instead of carrying on "
                "this one. Use Regenerate with a higher Max tokens, or ask it to go on in a new message.",
                error=False,
            )
            return
        if self.choice.loaded is not None:
            self.session.continue_reply(row, self.choice.target())

    def edit_message(self, row: int) -> None:
        """Put a sent message back in the composer; sending it makes a new version of it."""
        text = self.session.edit(row)
        if text is None:
            return
        self.composer.setPlainText(text)
        self.composer.setFocus()
        self.banner.show_message(
            "Editing your message: Send makes a new version of it, and the conversation continues from "
            "there. The old version stays (‹ ›).",
            error=False,
            action=("Cancel", self._cancel_edit),
        )

    def _cancel_edit(self) -> None:
        self.session.cancel_edit()
        self.composer.clear()

    def on_message_action(self, row: int, action: str) -> None:
        """A message's context-menu action: edit, regenerate, continue or delete (confirmed first)."""
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
                parent=self._dialog_parent,
            )
            box.setObjectName("confirmDeleteMessage")
            confirm = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.finished.connect(
                lambda _r: self.session.delete_message(row) if box.clickedButton() is confirm else None
            )
            box.open()

    # ----- what the session says ----------------------------------------------------------------

    def _on_target(self) -> None:
        self.view.can_continue = self.remote.choice is None  # see continue_reply
        self.session.model_key = self.choice.model_key()
        self.session.save_settings()
        self._update_send_button()

    def _on_session(self, event: SessionEvent) -> None:
        if isinstance(event, ReplyStateChanged):
            self._on_reply_state(event)
        elif isinstance(event, Trimmed):
            where = "from the middle" if event.policy is ContextPolicy.KEEP_FIRST_LAST else "oldest"
            self.banner.show_message(
                f"The conversation is longer than the context window: the {event.dropped} {where} messages "
                f"(faded, marked “left out”) were not sent with this reply's prompt ({event.tokens:,} "
                "tokens sent). They are still in the conversation.",
                error=False,
            )
        elif isinstance(event, ReplyEnded):
            self._on_reply_ended(event)
        elif isinstance(event, StoreFailed):
            self.banner.show_message(f"Could not save or read conversations: {event.message}")

    def _on_reply_state(self, event: ReplyStateChanged) -> None:
        self.choice.generating = event.generating
        if event.generating:
            choice = self.remote.choice
            if event.remote and choice is not None:
                target = self.remote.target()  # its client must not be closed under the reply
                self.remote.in_use = target.client if target is not None else None
                self.status.show_state(f"Generating on {choice.endpoint.name}…")
            elif event.waiting:
                plural = "s" if event.waiting > 1 else ""
                self.status.show_state(f"Waiting for {event.waiting} API request{plural} to finish…")
            else:
                self.status.show_state("Generating…")
        else:
            self.remote.in_use = None
            self.remote.collect()
        self._update_send_button()
        self.generatingChanged.emit(event.generating)

    def _on_reply_ended(self, event: ReplyEnded) -> None:
        detached = event.row < 0
        if not detached:  # said to a screen reader once it finishes what it is reading
            message_accessibility.announce(
                self.view,
                f"Assistant replied: {event.text}"
                if event.stats is not None
                else f"The reply failed. {event.message}",
            )
        if event.stats is not None:
            if event.remote and not detached:  # a detached reply's figures belong to another conversation
                self.status.show_remote_context(event.stats)
            elif not detached:
                self.status.show_context(event.stats.context_used, event.stats.context_length)
            self.status.show_state(f"Ready · {event.stats.tokens_per_s:.1f} tok/s")
        else:
            self.status.show_state("Ready")
            self._show_failure(event)
        if self.remote.choice is not None:
            self.choice.show_remote_status()

    def _show_failure(self, event: ReplyEnded) -> None:
        if not event.remote:
            self.banner.show_message(event.message)
            return
        choice = self.remote.choice
        shown = failure_message(
            event.code, event.message, bool(event.text), choice.endpoint.base_url if choice else ""
        )
        action: Action | None = None
        if event.code in ("unreachable", "auth", "not_found"):
            action = ("Remote engines…", self.remoteEnginesWanted.emit)
        elif event.code in ("rate_limited", "server", "cut") and event.row >= 0:
            conversation, rows, row = self.session.conversation_id, len(self.session.transcript), event.row

            def retry() -> None:  # only while that reply is still the last one shown
                if self.session.conversation_id == conversation and len(self.session.transcript) == rows:
                    self.regenerate(row)

            action = ("Retry", retry)
        self.banner.show_message(shown, action=action)

    def _update_send_button(self) -> None:
        if self.is_generating:
            self.send_button.setText("Stop")
            self.send_button.setIcon(icon("stop", on_accent=True))
            self.send_button.setToolTip("Stop the reply (Esc). What was generated is kept.")
            self.send_button.setAccessibleName("Stop")
        else:
            self.send_button.setText("Send")
            self.send_button.setIcon(icon("send", on_accent=True))
            self.send_button.setToolTip("Send (Enter)")
            self.send_button.setAccessibleName("Send")
