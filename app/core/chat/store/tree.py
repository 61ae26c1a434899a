"""The message tree: every message has a parent, so an edit or a regeneration is a new sibling, never
an overwrite; a conversation's `current_leaf` says which branch is shown."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from app.core.chat.store.conversations import Conversations
from app.core.chat.store.records import StoredMessage, message_from_row
from app.core.values.text import clean_text


class MessageTree(Conversations):
    """Messages, branches, versions and siblings (built on Conversations: a branch starts from a
    conversation's current leaf, and adding a message moves it)."""

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        parent_id: int | None,
        *,
        incomplete: bool = False,
        stats: dict[str, Any] | None = None,
        error: str | None = None,
        attachments: str | None = None,
    ) -> int:
        """Append a message under `parent_id` (None: a first message) and make it the current leaf
        (with its attachments as JSON, see app.core.media.attachments).
        Text that is not Unicode (a lone surrogate) is stored with U+FFFD in its place, never refused."""
        now = time.time()
        content = clean_text(content)
        error = clean_text(error) if error is not None else None
        with self._tx() as db:
            if parent_id is not None:
                owner = db.execute(
                    "SELECT conversation_id FROM messages WHERE id = ?", (parent_id,)
                ).fetchone()
                if owner is None or owner[0] != conversation_id:
                    raise ValueError(f"message {parent_id} is not in conversation {conversation_id}")
            cursor = db.execute(
                "INSERT INTO messages(conversation_id, parent_id, role, content, created_at, incomplete, "
                "stats, error, attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, parent_id, role, content, now, int(incomplete),
                 json.dumps(stats) if stats is not None else None, error, attachments),
            )  # fmt: skip
            message_id = int(cursor.lastrowid or 0)
            db.execute(
                "UPDATE conversations SET current_leaf = ?, updated_at = ? WHERE id = ?",
                (message_id, now, conversation_id),
            )
            return message_id

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        incomplete: bool | None = None,
        stats: dict[str, Any] | None = None,
        error: str | None = None,
        tool_calls: str | None = None,
        sources: str | None = None,
    ) -> None:
        """Save a streaming reply's text so far, or its final state (with its tool calls, as JSON);
        or the passages a question was given (`sources`, JSON)."""
        sets: list[str] = []
        args: list[Any] = []
        if content is not None:
            sets.append("content = ?")
            args.append(clean_text(content))
        if incomplete is not None:
            sets.append("incomplete = ?")
            args.append(int(incomplete))
        if stats is not None:
            sets.append("stats = ?")
            args.append(json.dumps(stats))
        if error is not None:
            sets.append("error = ?")
            args.append(clean_text(error))
        if tool_calls is not None:
            sets.append("tool_calls = ?")
            args.append(clean_text(tool_calls))
        if sources is not None:
            sets.append("sources = ?")
            args.append(clean_text(sources))
        if not sets:
            return
        with self._tx() as db:
            db.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*args, message_id))
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = "
                "(SELECT conversation_id FROM messages WHERE id = ?)",
                (time.time(), message_id),
            )

    def delete_message(self, message_id: int) -> None:
        """Delete a message and everything below it; the current leaf moves to its parent's branch."""
        with self._tx() as db:
            row = db.execute(
                "SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return
            conversation_id, parent_id = row
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            leaf = self._deepest(db, parent_id, conversation_id)
            db.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (leaf, conversation_id))

    def message(self, message_id: int) -> StoredMessage:
        """One message (KeyError if there is none)."""
        rows = self._query("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise KeyError(message_id)
        return message_from_row(rows[0])

    def branch(self, conversation_id: int, leaf: int | None = None) -> list[StoredMessage]:
        """The messages from the first to `leaf` (default: the current leaf), in order."""
        if leaf is None:
            leaf = self.conversation(conversation_id).current_leaf
        if leaf is None:
            return []
        rows = self._query(
            """
            WITH RECURSIVE chain(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM messages WHERE id = ? AND conversation_id = ?
                UNION ALL
                SELECT m.id, m.parent_id, chain.depth + 1 FROM messages m JOIN chain ON m.id = chain.parent_id
            )
            SELECT messages.* FROM chain JOIN messages ON messages.id = chain.id ORDER BY chain.depth DESC
            """,
            (leaf, conversation_id),
        )
        return [message_from_row(r) for r in rows]

    def versions(self, message_ids: list[int]) -> dict[int, tuple[int, int]]:
        """For each message, its place among its alternatives and how many there are: {id: (2, 3)}.
        One query, however long the branch (the "< 2/3 >" of every shown message)."""
        if not message_ids:
            return {}
        rows = self._query(
            f"""
            SELECT m.id,
                   (SELECT COUNT(*) FROM messages s WHERE s.conversation_id = m.conversation_id
                        AND s.parent_id IS m.parent_id AND s.id <= m.id),
                   (SELECT COUNT(*) FROM messages s WHERE s.conversation_id = m.conversation_id
                        AND s.parent_id IS m.parent_id)
              FROM messages m WHERE m.id IN ({",".join("?" * len(message_ids))})
            """,
            tuple(message_ids),
        )
        return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}

    def siblings(self, message_id: int) -> list[int]:
        """Ids of a message's alternatives (itself included), oldest first: the "< 2/3 >" of the UI."""
        rows = self._query(
            "SELECT id FROM messages "
            "WHERE conversation_id = (SELECT conversation_id FROM messages WHERE id = ?) "
            "AND parent_id IS (SELECT parent_id FROM messages WHERE id = ?) ORDER BY id",
            (message_id, message_id),
        )
        return [int(r[0]) for r in rows]

    def switch_branch(self, message_id: int) -> int:
        """Show the branch through `message_id` (its latest continuation); returns the new leaf."""
        with self._tx() as db:
            row = db.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise KeyError(message_id)
            leaf = self._deepest(db, message_id, row[0])
            db.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (leaf, row[0]))
            return int(leaf) if leaf is not None else message_id

    @staticmethod
    def _deepest(db: sqlite3.Connection, start: int | None, conversation_id: int) -> int | None:
        """Follow the most recent child from `start` down to a leaf (from the roots when None)."""
        current = start
        while True:
            child = db.execute(
                "SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS ? "
                "ORDER BY id DESC LIMIT 1",
                (conversation_id, current),
            ).fetchone()
            if child is None:
                return current
            current = int(child[0])

    def incomplete_messages(self) -> list[StoredMessage]:
        """Replies that were streaming when the app stopped (marked so on the next launch)."""
        return [
            message_from_row(r)
            for r in self._query("SELECT * FROM messages WHERE incomplete = 1 ORDER BY id")
        ]
