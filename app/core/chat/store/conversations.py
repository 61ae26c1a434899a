"""Conversations: creating one, its settings and sidebar fields, the bin (delete, restore, purge)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from app.core.chat.store.database import Database
from app.core.chat.store.records import ConversationInfo, adapters_json, checked_policy, conversation_from_row
from app.core.media.attachments import KEEP_UNSENT_S, AttachmentFolder, attachments_from_json
from app.core.values.text import clean_text

log = logging.getLogger(__name__)


class Conversations(Database):
    """The conversations table: one row per conversation, its messages live in the tree."""

    def create_conversation(
        self,
        title: str = "",
        model: str | None = None,
        system_prompt: str = "",
        sampling: dict[str, Any] | None = None,
        context_policy: str = "stop",
    ) -> int:
        """A new, empty conversation; returns its id."""
        now = time.time()
        title, system_prompt = clean_text(title), clean_text(system_prompt)
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO conversations(title, created_at, updated_at, model, system_prompt, sampling, "
                "context_policy) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    title,
                    now,
                    now,
                    model,
                    system_prompt,
                    json.dumps(sampling or {}),
                    checked_policy(context_policy),
                ),
            )
            return int(cursor.lastrowid or 0)

    def conversation(self, conversation_id: int) -> ConversationInfo:
        """One conversation's fields (KeyError if there is none)."""
        rows = self._query("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise KeyError(conversation_id)
        return conversation_from_row(rows[0])

    def conversations(self, include_deleted: bool = False) -> list[ConversationInfo]:
        """Pinned first, then by latest activity."""
        where = "" if include_deleted else "WHERE deleted_at IS NULL"
        rows = self._query(
            f"SELECT * FROM conversations {where} ORDER BY pinned DESC, updated_at DESC, id DESC"
        )
        return [conversation_from_row(r) for r in rows]

    def update_conversation(self, conversation_id: int, **fields: Any) -> None:
        """Change title, pinned, model, system_prompt, sampling (dict), context_policy, tools (names),
        output_schema (JSON mode's schema, or None) or adapters ((path, scale) pairs); tools is
        {"names": [...], "required": bool}."""
        allowed = {"title", "pinned", "model", "system_prompt", "sampling", "context_policy"}
        allowed |= {"tools", "output_schema", "adapters"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown conversation fields: {sorted(unknown)}")
        for name in ("title", "system_prompt", "model"):
            if isinstance(fields.get(name), str):
                fields[name] = clean_text(fields[name])
        if "sampling" in fields:
            fields["sampling"] = json.dumps(fields["sampling"])
        if "output_schema" in fields:
            schema = fields["output_schema"]
            fields["output_schema"] = json.dumps(schema) if schema is not None else None
        if "adapters" in fields:  # (path, scale) pairs
            fields["adapters"] = adapters_json(fields["adapters"])
        if "tools" in fields:  # {"names": [...], "required": bool}
            fields["tools"] = json.dumps(fields["tools"])
        if "context_policy" in fields:
            fields["context_policy"] = checked_policy(fields["context_policy"])
        if "pinned" in fields:
            fields["pinned"] = int(bool(fields["pinned"]))
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._tx() as db:
            db.execute(
                f"UPDATE conversations SET {assignments} WHERE id = ?", (*fields.values(), conversation_id)
            )

    def delete_conversation(self, conversation_id: int) -> None:
        """Move to the bin (undo with restore_conversation); purge_deleted removes it for good."""
        with self._tx() as db:
            db.execute("UPDATE conversations SET deleted_at = ? WHERE id = ?", (time.time(), conversation_id))

    def restore_conversation(self, conversation_id: int) -> None:
        """Undo a delete."""
        with self._tx() as db:
            db.execute("UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,))

    def purge_deleted(self, older_than_s: float = 0.0) -> int:
        """Remove binned conversations (and their messages) deleted more than `older_than_s` ago,
        and the attached files no message refers to any more."""
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                (time.time() - older_than_s,),
            )
            purged = cursor.rowcount
        self.collect_attachments()
        return purged

    @property
    def attachment_folder(self) -> AttachmentFolder:
        """Where the files attached to this database's messages are kept (beside it)."""
        return AttachmentFolder(self.path.parent / "attachments")

    def collect_attachments(self, keep_unsent_s: float = KEEP_UNSENT_S) -> int:
        """Remove attached files no message refers to (see AttachmentFolder.collect)."""
        rows = self._query("SELECT attachments FROM messages WHERE attachments IS NOT NULL")
        referenced = {a.sha256 for row in rows for a in attachments_from_json(row[0])}
        try:
            return self.attachment_folder.collect(referenced, keep_unsent_s)
        except OSError as exc:
            log.warning("attached files could not be tidied: %s", exc)
            return 0
