"""Keeps the window's chat in the conversation store: every message saved, a streaming reply at least
once a second, and the last conversation reopened on launch.

The store is opened (and migrated) off the GUI thread; single-row writes are sub-millisecond in WAL
mode and stay on it, in order. If the database cannot be used, chat goes on unsaved and the window
says so.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QInputDialog

from app.core.chat.messages import Message, Role
from app.core.chat.store import ConversationInfo, Preset, SearchHit, Store, StoredMessage, StoreError
from app.core.platform import paths
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import SamplingParams
from app.ui.conversations.presets import MODEL_DEFAULTS_ID, PresetBar
from app.ui.conversations.sidebar import ConversationSidebar

if TYPE_CHECKING:
    from app.ui.shell.main_window import MainWindow

log = logging.getLogger(__name__)

#: A streaming reply is written to the database at least this often (and when it ends).
SAVE_INTERVAL_MS = 1000
TITLE_LENGTH = 60


def propose_title(text: str) -> str:
    """A title from the first message: its first line, cut at a word near TITLE_LENGTH characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "New conversation")
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:") + "…"


#: The fields of ReplyStats: a stored stats object also names the model that wrote the reply ("model").
_STATS_FIELDS = {f.name for f in fields(ReplyStats)}


def _to_message(stored: StoredMessage) -> Message:
    stats = None
    if stored.stats:
        try:
            known = {k: v for k, v in stored.stats.items() if k in _STATS_FIELDS}
            stats = ReplyStats(**{**known, "stop_reason": StopReason(stored.stats["stop_reason"])})
        except (KeyError, TypeError, ValueError):
            stats = None  # written by another version: shown without its stats line
    return Message(
        Role(stored.role), stored.content, stats=stats, incomplete=stored.incomplete, error=stored.error
    )


class ConversationController(QObject):
    """The bridge between the chat in the window and the store."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.store: Store | None = None
        self.current: int | None = None
        #: The stored id of each row of window.messages.
        self.ids: list[int] = []
        self._reply: tuple[int, int] | None = None  # (row, stored id) of the streaming reply
        self._reply_model: str | None = None  # the model writing it (a path, or a remote model's key)
        self._saved_length = 0
        self.sidebar = ConversationSidebar()
        self.sidebar.chosen.connect(self.open_conversation)
        self.sidebar.newRequested.connect(self.new_conversation)
        self.sidebar.searchChanged.connect(self.search)
        self.sidebar.renameRequested.connect(self.rename)
        self.sidebar.pinRequested.connect(self.pin)
        self.sidebar.deleteRequested.connect(self.delete)
        self.sidebar.exportRequested.connect(self.ask_export)
        self.sidebar.exportAllRequested.connect(lambda kind: self.ask_export(None, kind))
        self.sidebar.importRequested.connect(self.ask_import)
        self.presets = PresetBar()
        self.presets.applyRequested.connect(self.apply_preset)
        self.presets.saveRequested.connect(self.save_preset)
        self.presets.renameRequested.connect(self.rename_preset)
        self.presets.deleteRequested.connect(self.delete_preset)
        self._timer = QTimer(self)
        self._timer.setInterval(SAVE_INTERVAL_MS)
        self._timer.timeout.connect(self.save_reply)

    # ----- opening ------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the database (off the GUI thread: it may migrate), then reopen the last conversation."""
        path = paths.data_dir() / "conversations.db"

        def open_store() -> Store:
            store = Store(path)
            store.purge_deleted(older_than_s=7 * 86400)  # the undo bin keeps a week
            return store

        self.window.tasks.run(open_store, self._on_opened, self._on_open_failed)

    def _on_opened(self, store: Store) -> None:
        if self.window._closing:
            store.close()
            return
        self.store = store
        if store.moved_aside is not None:
            self.window.banner.show_message(
                f"The conversation database was damaged; it was kept as {store.moved_aside} and a new one "
                "was started.",
            )
        self.refresh_list()
        self.presets.set_presets(self._safe(store.presets) or [])
        if self.window.messages.rowCount():
            return  # the user already started chatting
        last = self.window.settings.last_conversation
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
        self.window.banner.show_message(f"{message} Conversations are not being saved in this session.")

    def close(self) -> None:
        """Save the reply in progress and close the database."""
        self._timer.stop()
        self.save_reply()
        if self.store is not None:
            self.store.close()
            self.store = None

    # ----- the list -------------------------------------------------------------------------------

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

        self.window.tasks.run(lambda: store.search(query), done, self._failed)

    def _safe(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except StoreError as exc:
            self._failed(exc)
            return None

    def _failed(self, error: BaseException) -> None:
        message = error.message if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
        self.window.banner.show_message(f"Could not save or read conversations: {message}")

    # ----- switching ------------------------------------------------------------------------------

    def new_conversation(self) -> None:
        """An empty chat; it is stored when its first message is sent."""
        if self.window.is_generating:
            self.window.detach_reply()  # the reply finishes in the store, not in this view
        self.current = None
        self.ids = []
        self.window._editing_row = None
        self.window.messages.clear()
        self.window.system_prompt.setPlainText("")
        self._remember(None)
        self.sidebar.select(None)
        self.window.composer.setFocus()

    def open_conversation(self, conversation_id: int, force: bool = False) -> None:
        """Show a stored conversation as it was left: messages, system prompt, sampling, model."""
        store = self.store
        if store is None or (conversation_id == self.current and not force):
            return
        if self.window.is_generating:
            self.window.detach_reply()  # the reply finishes in the store, not in the next view

        def read() -> tuple[ConversationInfo, list[StoredMessage], dict[int, tuple[int, int]]]:
            branch = store.branch(conversation_id)
            return store.conversation(conversation_id), branch, store.versions([m.id for m in branch])

        self.window.tasks.run(read, self._show, self._failed)

    def _show(self, loaded: tuple[ConversationInfo, list[StoredMessage], dict[int, tuple[int, int]]]) -> None:
        info, branch, versions = loaded
        self.current = info.id
        self.window._editing_row = None
        self.ids = [m.id for m in branch]
        messages = [_to_message(m) for m in branch]
        for message, stored in zip(messages, branch, strict=True):
            message.version = versions.get(stored.id)
        self.window.messages.load(messages)
        # A long conversation adds tens of thousands of long-lived objects; Python's full garbage
        # collection would then walk them all, pausing the GUI for ~100 ms now and then while it
        # scrolls. Objects alive now are set aside from those passes (freed normally when released).
        gc.freeze()
        self.window.system_prompt.blockSignals(True)
        self.window.system_prompt.setPlainText(info.system_prompt)
        self.window.system_prompt.blockSignals(False)
        if info.sampling:
            self.window.sampling.set_params(SamplingParams.from_dict(info.sampling))
        picker = self.window.context_policy
        picker.blockSignals(True)
        picker.setCurrentIndex(max(0, picker.findData(info.context_policy)))
        picker.blockSignals(False)
        self._remember(info.id)
        self.sidebar.select(info.id)
        if info.model:
            self.window.use_model(info.model)  # the model it was last chatting with, local or remote

    # ----- saving ---------------------------------------------------------------------------------

    def user_sent(self, text: str) -> None:
        """Store the user's message (creating the conversation on its first message)."""
        store = self.store
        if store is None:
            return
        if self.current is None:
            params = self.window.sampling.params()
            model = self.window.model_key()
            created = self._safe(
                store.create_conversation,
                title=propose_title(text),
                model=model,
                system_prompt=self.window.system_prompt.toPlainText(),
                sampling=params.to_dict(),
                context_policy=self.window.policy(),
            )
            if created is None:
                return
            self.current = created
            self._remember(created)
        parent = self.ids[-1] if self.ids else None
        message_id = self._safe(store.add_message, self.current, "user", text, parent)
        if message_id is not None:
            self.ids.append(message_id)
        self.refresh_list()

    def reply_started(self, row: int) -> None:
        """Store an empty, incomplete reply; it is filled in as it streams."""
        if self.store is None or self.current is None or not self.ids:
            return
        message_id = self._safe(
            self.store.add_message, self.current, "assistant", "", self.ids[-1], incomplete=True
        )
        if message_id is None:
            return
        self.ids.append(message_id)
        self._reply = (row, message_id)
        self._reply_model = self.window.model_key()
        self._saved_length = 0
        self._timer.start()

    def reply_resumed(self, row: int) -> None:
        """A stored reply continues (Continue): it is saved as it grows, like a new one."""
        if self.store is None or not 0 <= row < len(self.ids):
            return
        self._reply = (row, self.ids[row])
        self._reply_model = self.window.model_key()
        self._saved_length = len(self.window.messages.message(row).content)
        self._safe(self.store.update_message, self.ids[row], incomplete=True)
        self._timer.start()

    def reply_detached(self) -> None:
        """The streaming reply left the view (another conversation is shown): save what it has now;
        its final text comes with reply_finished."""
        self.save_reply()
        if self._reply is not None:
            self._reply = (-1, self._reply[1])

    def save_reply(self) -> None:
        """Write the streaming reply's text so far (called every SAVE_INTERVAL_MS)."""
        if self.store is None or self._reply is None or self._reply[0] < 0:
            return
        row, message_id = self._reply
        text = self.window.messages.message(row).content
        if len(text) != self._saved_length:
            self._safe(self.store.update_message, message_id, content=text)
            self._saved_length = len(text)

    def reply_finished(self, text: str, stats: ReplyStats | None, error: str | None = None) -> None:
        """Store the final text and stats (or the error, which leaves the reply marked incomplete)."""
        self._timer.stop()
        if self.store is None or self._reply is None:
            return
        _row, message_id = self._reply
        self._reply = None
        self._safe(
            self.store.update_message,
            message_id,
            content=text,
            incomplete=error is not None,
            # Which model answered, with the figures: a conversation can change models between replies.
            stats={**asdict(stats), "model": self._reply_model} if stats is not None else None,
            error=error,
        )
        self.refresh_versions()
        self.refresh_list()

    def _remember(self, conversation_id: int | None) -> None:
        # Saved at once, not at exit: after a crash the next launch still knows what was open.
        self.window.settings.last_conversation = conversation_id
        self.window._save_settings()

    def settings_changed(self) -> None:
        """The open conversation remembers its system prompt, sampling and model."""
        if self.store is None or self.current is None:
            return
        model = self.window.model_key()
        changes: dict[str, Any] = {
            "system_prompt": self.window.system_prompt.toPlainText(),
            "sampling": self.window.sampling.params().to_dict(),
            "context_policy": self.window.policy(),
        }
        if model:
            changes["model"] = model
        self._safe(self.store.update_conversation, self.current, **changes)

    # ----- branches -------------------------------------------------------------------------------

    def branch_at(self, row: int) -> None:
        """The conversation continues from before `row`: an edit or a regeneration makes a new version
        of that message beside the old one, which stays reachable with "< >"."""
        self.window.messages.truncate(row)
        self.ids = self.ids[:row]

    def step_version(self, row: int, delta: int) -> None:
        """Show the previous or next version of the message at `row` (and the branch that follows it)."""
        store = self.store
        if store is None or self.current is None or not 0 <= row < len(self.ids) or self.window.is_generating:
            return
        siblings = self._safe(store.siblings, self.ids[row]) or []
        if self.ids[row] not in siblings:
            return
        target = siblings.index(self.ids[row]) + delta
        if 0 <= target < len(siblings):
            self._safe(store.switch_branch, siblings[target])
            self.open_conversation(self.current, force=True)

    def delete_message(self, row: int) -> None:
        """Delete a message and what follows it on every branch below it."""
        store = self.store
        if store is None or self.current is None or not 0 <= row < len(self.ids) or self.window.is_generating:
            return
        self._safe(store.delete_message, self.ids[row])
        self.open_conversation(self.current, force=True)

    def refresh_versions(self) -> None:
        """Update "< 2/3 >" for the last two rows (after a new version was added)."""
        if self.store is None or not self.ids:
            return
        first = max(0, len(self.ids) - 2)
        versions = self._safe(self.store.versions, self.ids[first:]) or {}
        self.window.messages.set_versions(
            {row: versions[mid] for row, mid in enumerate(self.ids) if row >= first and mid in versions}
        )

    # ----- presets ------------------------------------------------------------------------------

    def apply_preset(self, preset: Preset) -> None:
        """Use a preset's system prompt and sampling settings (settings it does not name stay)."""
        if preset.id != MODEL_DEFAULTS_ID:  # the model's own defaults carry sampling settings only
            self.window.system_prompt.setPlainText(preset.system_prompt)
        merged = {**self.window.sampling.params().to_dict(), **preset.sampling}
        self.window.sampling.set_params(SamplingParams.from_dict(merged))
        self.settings_changed()

    def save_preset(self, name: str) -> None:
        """Save the current system prompt and sampling settings as `name` (replacing one of that name)."""
        if self.store is None:
            return
        try:
            preset_id = self.store.save_preset(
                name, self.window.system_prompt.toPlainText(), self.window.sampling.params().to_dict()
            )
        except (ValueError, StoreError) as exc:
            self.window.banner.show_message(f"Could not save the preset: {getattr(exc, 'message', exc)}")
            return
        self.presets.set_presets(self._safe(self.store.presets) or [], preset_id)

    def rename_preset(self, preset_id: int, name: str) -> None:
        """Rename one of the user's presets."""
        if self.store is None:
            return
        try:
            self.store.rename_preset(preset_id, name)
        except ValueError as exc:
            self.window.banner.show_message(str(exc))
            return
        self.presets.set_presets(self._safe(self.store.presets) or [], preset_id)

    def delete_preset(self, preset_id: int) -> None:
        """Delete one of the user's presets."""
        if self.store is not None:
            self._safe(self.store.delete_preset, preset_id)
            self.presets.set_presets(self._safe(self.store.presets) or [])

    # ----- export and import ----------------------------------------------------------------------

    def ask_export(self, conversation_ids: list[int] | None, kind: str) -> None:
        """Choose a file, then export (None: every conversation)."""
        suffix = {"markdown": ".md", "json": ".json", "jsonl": ".jsonl"}[kind]
        if conversation_ids is not None and len(conversation_ids) == 1:
            name = f"conversation-{conversation_ids[0]}"
        else:
            name = "conversations"
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export", str(Path.home() / f"{name}{suffix}"), f"*{suffix}"
        )
        if path:
            self.export(conversation_ids, kind, Path(path))

    def export(self, conversation_ids: list[int] | None, kind: str, path: Path) -> None:
        """Write an export of some conversations (None: all) off the GUI thread (all conversations can
        be a lot), through a temporary file so a failed export never leaves half a file under the
        chosen name. One conversation as JSON is a plain conversation export; several are a bundle."""
        store = self.store
        if store is None:
            return

        def write() -> Path:
            ids = conversation_ids if conversation_ids is not None else [c.id for c in store.conversations()]
            if kind == "markdown":
                text = store.export_markdown_many(ids)
            elif kind == "json":
                data = (
                    store.export_json(ids[0])
                    if conversation_ids and len(ids) == 1
                    else store.export_many_json(ids)
                )
                text = json.dumps(data, ensure_ascii=False, indent=1)
            else:
                text = store.export_finetune_jsonl(ids)
            tmp = path.with_name(path.name + ".part")
            try:
                tmp.write_text(text, "utf-8")
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)  # a full disk must not leave half an export behind
                raise
            return path

        self.window.tasks.run(
            write,
            lambda written: self.window.statusBar().showMessage(f"Exported to {written}", 5000),
            lambda e: self.window.banner.show_message(f"Could not export: {e}"),
        )

    def ask_import(self) -> None:
        """Choose a JSON export to import."""
        path, _ = QFileDialog.getOpenFileName(self.window, "Import conversations", str(Path.home()), "*.json")
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> None:
        """Import one conversation or several exported as JSON, then open the first."""
        store = self.store
        if store is None:
            return

        def read() -> list[int]:
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path.name} is not a readable JSON file ({exc})") from exc
            return store.import_any(data)

        def imported(conversation_ids: list[int]) -> None:
            self.refresh_list()
            if conversation_ids:
                self.open_conversation(conversation_ids[0])
            if len(conversation_ids) > 1:
                self.window.statusBar().showMessage(f"Imported {len(conversation_ids)} conversations", 5000)

        self.window.tasks.run(
            read, imported, lambda e: self.window.banner.show_message(f"Could not import {path.name}: {e}")
        )

    # ----- sidebar actions ------------------------------------------------------------------------

    def rename(self, conversation_id: int) -> None:
        """Ask for a new title."""
        if self.store is None:
            return
        dialog = QInputDialog(self.window)
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

        self.window.banner.show_message(f"Deleted “{title}”.", error=False, action=("Undo", undo))
