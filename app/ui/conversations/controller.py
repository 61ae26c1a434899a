"""The window's conversations: the store opened off the GUI thread, the sidebar (list, search, rename,
pin, delete with Undo), presets, export and import, and the last conversation reopened on launch.

What is shown and saved as the chat goes on is the ChatSession's work; this controller opens the
store for it, tells it which conversation to show, and follows what it says. If the database cannot
be used, chat goes on unsaved and the banner says so.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QWidget

from app.core.chat.events import Opened, Saved, SessionEvent
from app.core.chat.session import ChatSession
from app.core.chat.store import Preset, SearchHit, Store, StoreError
from app.core.platform import paths
from app.core.settings import Settings
from app.core.values.sampling import SamplingParams
from app.ui.chat.side_panel import SidePanel
from app.ui.common.banner import Banner
from app.ui.common.tasks import BackgroundTasks
from app.ui.conversations.files import ConversationFiles
from app.ui.conversations.presets import MODEL_DEFAULTS_ID, PresetBar
from app.ui.conversations.sidebar import ConversationSidebar

log = logging.getLogger(__name__)


class ConversationController(QObject):
    """The list of conversations and the presets, around the session's open conversation."""

    #: An opened conversation was last chatting with this model (a local path or a remote key).
    modelWanted = Signal(str)
    #: Settings changed that must be saved (the last open conversation).
    settingsChanged = Signal()
    #: A short note for the status bar (export written, conversations imported).
    note = Signal(str)

    def __init__(
        self,
        session: ChatSession,
        settings: Settings,
        tasks: BackgroundTasks,
        panel: SidePanel,
        presets: PresetBar,
        banner: Banner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.settings, self.tasks = session, settings, tasks
        self.panel, self.presets, self.banner = panel, presets, banner
        self._parent = parent
        self.closing = False
        self.sidebar = ConversationSidebar()
        self.files = ConversationFiles(lambda: self.store, tasks, parent, self.note.emit, self._fail)
        self.sidebar.chosen.connect(self.open_conversation)
        self.sidebar.newRequested.connect(self.new_conversation)
        self.sidebar.searchChanged.connect(self.search)
        self.sidebar.renameRequested.connect(self.rename)
        self.sidebar.pinRequested.connect(self.pin)
        self.sidebar.deleteRequested.connect(self.delete)
        self.sidebar.exportRequested.connect(self.files.ask_export)
        self.sidebar.exportAllRequested.connect(lambda kind: self.files.ask_export(None, kind))
        self.sidebar.importRequested.connect(lambda: self.files.ask_import(self._imported))
        presets.applyRequested.connect(self.apply_preset)
        panel.reply_format.changed.connect(self._on_reply_format)
        panel.adapters.changed.connect(self._on_adapters)
        presets.saveRequested.connect(self.save_preset)
        presets.renameRequested.connect(self.rename_preset)
        presets.deleteRequested.connect(self.delete_preset)
        session.listen(self._on_session)

    @property
    def store(self) -> Store | None:
        """The conversation database (None until it is open, or when it could not be)."""
        return self.session.store

    @property
    def current(self) -> int | None:
        """The conversation shown (None: a new one, not saved yet)."""
        return self.session.conversation_id

    # ----- opening ------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the database (off the GUI thread: it may migrate), then reopen the last conversation."""
        path = paths.data_dir() / "conversations.db"

        def open_store() -> Store:
            store = Store(path)
            store.purge_deleted(older_than_s=7 * 86400)  # the undo bin keeps a week
            return store

        self.tasks.run(open_store, self._on_opened, self._on_open_failed)

    def _on_opened(self, store: Store) -> None:
        if self.closing:
            store.close()
            return
        self.session.attach_store(store)
        if store.moved_aside is not None:
            self.banner.show_message(
                f"The conversation database was damaged; it was kept as {store.moved_aside} and a new one "
                "was started.",
            )
        self.refresh_list()
        self.presets.set_presets(self._safe(store.presets) or [])
        if len(self.session.transcript):
            return  # the user already started chatting
        last = self.settings.last_conversation
        try:
            if last is not None and not store.conversation(last).deleted:
                self.open_conversation(last)
                return
        except KeyError:
            pass
        # No record of the last one (first launch after a crash, say): the most recently active.
        rows = self.sidebar.model.rows
        if rows and last is not None:
            self.open_conversation(rows[0][0])

    def _on_open_failed(self, error: BaseException) -> None:
        message = error.message if isinstance(error, StoreError) else str(error)
        self.sidebar.setEnabled(False)
        self.banner.show_message(f"{message} Conversations are not being saved in this session.")

    def close(self) -> None:
        """Save the reply in progress and close the database."""
        self.closing = True
        self.session.close()
        store = self.store
        if store is not None:
            store.close()
            self.session.attach_store(None)

    # ----- the list -----------------------------------------------------------------------------

    def refresh_list(self) -> None:
        """Reload the sidebar (or re-run the search shown)."""
        if self.store is None:
            return
        query = self.sidebar.search.text().strip()
        if query:
            self.search(query)
            return
        self.sidebar.model.set_conversations(self._safe(self.store.conversations) or [])
        self.sidebar.select(self.current)

    def search(self, query: str) -> None:
        """Show conversations matching `query` (off the GUI thread: a large history takes tens of ms)."""
        store = self.store
        if store is None:
            return
        if not query:
            self.refresh_list()
            return

        def done(hits: list[SearchHit]) -> None:
            if self.sidebar.search.text().strip() == query:  # a newer query replaced this one
                self.sidebar.model.set_hits(hits)
                self.sidebar.select(self.current)

        self.tasks.run(lambda: store.search(query), done, self._failed)

    def _safe(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except StoreError as exc:
            self._failed(exc)
            return None

    def _failed(self, error: BaseException) -> None:
        message = error.message if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
        self._fail(f"Could not save or read conversations: {message}")

    def _fail(self, text: str) -> None:
        self.banner.show_message(text)

    # ----- switching ----------------------------------------------------------------------------

    def new_conversation(self) -> None:
        """An empty chat; it is stored when its first message is sent."""
        self.session.new()

    def open_conversation(self, conversation_id: int, force: bool = False) -> None:
        """Show a stored conversation as it was left: messages, system prompt, sampling, model."""
        self.session.open(conversation_id, force)

    def _on_session(self, event: SessionEvent) -> None:
        if isinstance(event, Opened):
            self._remember(event.conversation_id)
            self.sidebar.select(event.conversation_id)
            self.panel.show_conversation(self.session.system_prompt, self.session.policy)
            self.panel.reply_format.show_value(self.session.output_schema)
            self.panel.adapters.show_value(self.session.adapters)
            if event.conversation_id is None:
                return
            if self.session.sampling != self.panel.sampling.params():
                self.panel.sampling.set_params(self.session.sampling)
            # A long conversation adds tens of thousands of long-lived objects; Python's full garbage
            # collection would then walk them all, pausing the GUI for ~100 ms now and then while it
            # scrolls. Objects alive now are set aside from those passes (freed normally when released).
            gc.freeze()
            if event.model_key:
                self.modelWanted.emit(event.model_key)  # the model it was last chatting with
        elif isinstance(event, Saved):
            if event.conversation_id == self.session.conversation_id:
                self._remember(event.conversation_id)
            self.refresh_list()

    def _remember(self, conversation_id: int | None) -> None:
        # Saved at once, not at exit: after a crash the next launch still knows what was open.
        if self.settings.last_conversation != conversation_id:
            self.settings.last_conversation = conversation_id
            self.settingsChanged.emit()

    # ----- presets ------------------------------------------------------------------------------

    def apply_preset(self, preset: Preset) -> None:
        """Use a preset's system prompt and sampling settings (settings it does not name stay)."""
        if preset.id != MODEL_DEFAULTS_ID:  # the model's own defaults carry sampling settings only
            self.panel.set_system_prompt(preset.system_prompt)
        merged = {**self.panel.sampling.params().to_dict(), **preset.sampling}
        self.panel.sampling.set_params(SamplingParams.from_dict(merged))
        if preset.id != MODEL_DEFAULTS_ID:  # a preset's JSON mode (or its free text) comes with it
            self.session.output_schema = preset.output_schema
            self.panel.reply_format.show_value(preset.output_schema)
            self.session.adapters = preset.adapters
            self.panel.adapters.show_value(preset.adapters)
        self.session.save_settings()

    def _on_adapters(self, adapters: object) -> None:
        self.session.adapters = tuple(adapters) if isinstance(adapters, tuple) else ()
        self.session.save_settings()

    def _on_reply_format(self, schema: object) -> None:
        self.session.output_schema = schema if isinstance(schema, dict) else None
        self.session.save_settings()

    def save_preset(self, name: str) -> None:
        """Save the current system prompt, sampling settings, JSON mode and adapters as `name`
        (replacing one of that name)."""
        if self.store is None:
            return
        try:
            preset_id = self.store.save_preset(
                name,
                self.panel.system_prompt.toPlainText(),
                self.panel.sampling.params().to_dict(),
                self.session.output_schema,
                self.session.adapters,
            )
        except (ValueError, StoreError) as exc:
            self.banner.show_message(f"Could not save the preset: {getattr(exc, 'message', exc)}")
            return
        self.presets.set_presets(self._safe(self.store.presets) or [], preset_id)

    def rename_preset(self, preset_id: int, name: str) -> None:
        """Rename one of the user's presets."""
        if self.store is None:
            return
        try:
            self.store.rename_preset(preset_id, name)
        except ValueError as exc:
            self.banner.show_message(str(exc))
            return
        self.presets.set_presets(self._safe(self.store.presets) or [], preset_id)

    def delete_preset(self, preset_id: int) -> None:
        """Delete one of the user's presets."""
        if self.store is not None:
            self._safe(self.store.delete_preset, preset_id)
            self.presets.set_presets(self._safe(self.store.presets) or [])

    # ----- export, import and the sidebar's actions ---------------------------------------------

    def export(self, conversation_ids: list[int] | None, kind: str, path: Path) -> None:
        """Export some conversations (None: all) to `path` (see ConversationFiles.export)."""
        self.files.export(conversation_ids, kind, path)

    def import_file(self, path: Path) -> None:
        """Import one conversation or several exported as JSON, then open the first."""
        self.files.import_file(path, self._imported)

    def _imported(self, conversation_ids: list[int]) -> None:
        self.refresh_list()
        if conversation_ids:
            self.open_conversation(conversation_ids[0])

    def rename(self, conversation_id: int) -> None:
        """Ask for a new title."""
        if self.store is None:
            return
        dialog = QInputDialog(self._parent)
        dialog.setObjectName("renameDialog")
        dialog.setWindowTitle("Rename conversation")
        dialog.setLabelText("Title")
        dialog.setTextValue(self.store.conversation(conversation_id).title)
        dialog.textValueSelected.connect(lambda title: self.set_title(conversation_id, title))
        dialog.open()

    def set_title(self, conversation_id: int, title: str) -> None:
        """Rename a conversation (an empty title is ignored)."""
        if self.store is not None and title.strip():
            self._safe(self.store.update_conversation, conversation_id, title=title.strip())
            self.refresh_list()

    def pin(self, conversation_id: int, pinned: bool) -> None:
        """Pin to the top, or unpin."""
        if self.store is not None:
            self._safe(self.store.update_conversation, conversation_id, pinned=pinned)
            self.refresh_list()

    def delete(self, conversation_id: int) -> None:
        """Move to the bin, with Undo in the banner."""
        store = self.store
        if store is None:
            return
        title = store.conversation(conversation_id).title
        self._safe(store.delete_conversation, conversation_id)
        if conversation_id == self.current:
            self.new_conversation()
        self.refresh_list()

        def undo() -> None:
            self._safe(store.restore_conversation, conversation_id)
            self.refresh_list()

        self.banner.show_message(f"Deleted “{title}”.", error=False, action=("Undo", undo))
