"""Conversations to and from files: export as Markdown, JSON (every branch) or fine-tuning JSONL, and
import JSON exports. The work runs off the GUI thread; a failed export never leaves half a file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from app.core.chat.store import Store
from app.ui.common.tasks import BackgroundTasks

SUFFIXES = {"markdown": ".md", "json": ".json", "jsonl": ".jsonl"}


class ConversationFiles:
    """Export and import for one window's conversation store."""

    def __init__(
        self,
        store: Callable[[], Store | None],
        tasks: BackgroundTasks,
        parent: QWidget | None,
        report: Callable[[str], None],
        fail: Callable[[str], None],
    ) -> None:
        #: The store (None until it is open, or when it could not be).
        self.store = store
        self.tasks, self.parent = tasks, parent
        #: Where a finished export or import is mentioned (the status bar), and where failures go.
        self.report, self.fail = report, fail

    def ask_export(self, conversation_ids: list[int] | None, kind: str) -> None:
        """Choose a file, then export (None: every conversation)."""
        suffix = SUFFIXES[kind]
        if conversation_ids is not None and len(conversation_ids) == 1:
            name = f"conversation-{conversation_ids[0]}"
        else:
            name = "conversations"
        path, _ = QFileDialog.getSaveFileName(
            self.parent, "Export", str(Path.home() / f"{name}{suffix}"), f"*{suffix}"
        )
        if path:
            self.export(conversation_ids, kind, Path(path))

    def export(self, conversation_ids: list[int] | None, kind: str, path: Path) -> None:
        """Write an export of some conversations (None: all) off the GUI thread (all conversations can
        be a lot), through a temporary file so a failed export never leaves half a file under the
        chosen name. One conversation as JSON is a plain conversation export; several are a bundle."""
        store = self.store()
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

        self.tasks.run(
            write,
            lambda written: self.report(f"Exported to {written}"),
            lambda e: self.fail(f"Could not export: {e}"),
        )

    def ask_import(self, imported: Callable[[list[int]], None]) -> None:
        """Choose a JSON export to import; `imported` gets the new conversations' ids."""
        path, _ = QFileDialog.getOpenFileName(self.parent, "Import conversations", str(Path.home()), "*.json")
        if path:
            self.import_file(Path(path), imported)

    def import_file(self, path: Path, imported: Callable[[list[int]], None]) -> None:
        """Import one conversation or several exported as JSON (all or nothing)."""
        store = self.store()
        if store is None:
            return

        def read() -> list[int]:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise ValueError(f"{path.name} could not be read ({exc.strerror or exc})") from exc
            return store.import_bytes(raw)

        def done(conversation_ids: list[int]) -> None:
            imported(conversation_ids)
            if len(conversation_ids) > 1:
                self.report(f"Imported {len(conversation_ids)} conversations")

        self.tasks.run(read, done, lambda e: self.fail(f"Could not import {path.name}: {e}"))
