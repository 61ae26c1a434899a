"""Conversations kept safe: SQLite (WAL, foreign keys, FTS5) in the data folder, messages as a tree.

Every message has a parent, so an edit or a regeneration is a new sibling, never an overwrite; a
conversation's `current_leaf` says which branch is shown. The schema carries a version
(`PRAGMA user_version`) and is brought up to date by numbered migrations, each in one transaction.

A database that is locked, read-only, damaged or from a newer Fireside raises StoreError with a
message for users; a damaged file is moved aside (never deleted) and a new one started.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.values.text import clean_json, clean_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

#: Migration N brings a database from version N-1 to N. Never edit a released one: add a new one.
MIGRATIONS: dict[int, str] = {
    1: """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            pinned INTEGER NOT NULL DEFAULT 0,
            deleted_at REAL,
            model TEXT,
            system_prompt TEXT NOT NULL DEFAULT '',
            sampling TEXT NOT NULL DEFAULT '{}',
            context_policy TEXT NOT NULL DEFAULT 'stop',
            current_leaf INTEGER
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            incomplete INTEGER NOT NULL DEFAULT 0,
            stats TEXT,
            error TEXT
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        CREATE INDEX messages_by_parent ON messages(parent_id, id);
        CREATE INDEX conversations_by_activity ON conversations(pinned DESC, updated_at DESC);
    """,
    2: """
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages;
        CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;
        CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END;
        CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;
        CREATE TABLE presets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            system_prompt TEXT NOT NULL DEFAULT '',
            sampling TEXT NOT NULL DEFAULT '{}',
            builtin INTEGER NOT NULL DEFAULT 0
        );
    """,
}

CONTEXT_POLICIES = ("stop", "drop_oldest", "keep_first_last")


class StoreError(Exception):
    """The conversation database cannot be used; `message` says why in words for users."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # locked, read_only, corrupt, newer, io
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of the tree."""

    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    created_at: float
    incomplete: bool = False
    stats: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """A conversation's settings and sidebar fields."""

    id: int
    title: str
    created_at: float
    updated_at: float
    pinned: bool
    model: str | None
    system_prompt: str
    sampling: dict[str, Any]
    context_policy: str
    current_leaf: int | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A conversation matching a search, with the matching text around the hit."""

    conversation_id: int
    title: str
    snippet: str
    message_id: int | None


@dataclass(frozen=True, slots=True)
class Preset:
    """A named system prompt and sampling settings."""

    id: int
    name: str
    system_prompt: str
    sampling: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False


BUILTIN_PRESETS: list[tuple[str, str, dict[str, Any]]] = [
    ("Helpful assistant", "You are a helpful, concise assistant.", {}),
    (
        "Precise",
        "Answer accurately and briefly. Say when you are not sure.",
        {"temperature": 0.2, "top_p": 0.9},
    ),
    (
        "Creative writer",
        "You are an imaginative writer with a vivid, varied style.",
        {"temperature": 1.0, "min_p": 0.05},
    ),
    (
        "Code helper",
        "You are an expert programmer. Give working code with short explanations.",
        {"temperature": 0.3},
    ),
]


def _explain(exc: sqlite3.Error, path: Path) -> StoreError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreError(
            "locked", f"The conversation database is in use by another program or another Fireside ({path})."
        )
    if "readonly" in text or "read-only" in text or "permission" in text:
        return StoreError("read_only", f"The conversation database cannot be written: {path} is read-only.")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError("corrupt", f"The conversation database {path} is damaged.")
    if "disk" in text and "full" in text:
        return StoreError("io", "The disk is full: conversations cannot be saved until some space is freed.")
    return StoreError("io", f"The conversation database failed: {exc}")


class Store:
    """The conversation database. Thread-safe: one connection behind a lock, so short calls can run
    on the GUI thread and long ones (search, export, migrations) on a worker without conflict."""

    def __init__(self, path: Path, *, timeout: float = 2.0) -> None:
        self.path = path
        self.moved_aside: Path | None = None
        self._lock = threading.RLock()
        self._tx_depth = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(timeout)
        except StoreError as exc:
            if exc.kind != "corrupt":
                raise
            self.moved_aside = self._move_aside()
            self._db = self._open(timeout)

    # ----- opening --------------------------------------------------------------------------------

    def _open(self, timeout: float) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise _explain(exc, self.path) from exc
        try:
            db.row_factory = sqlite3.Row
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                db.close()
                raise StoreError(
                    "newer",
                    f"The conversation database {self.path} was written by a newer Fireside (schema "
                    f"{version}, this one knows {SCHEMA_VERSION}). Update Fireside; the file is left "
                    "untouched.",
                )
            db.execute("PRAGMA foreign_keys = ON")
            if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                log.warning("WAL mode unavailable for %s", self.path)
            db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at each checkpoint, fast
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                db.close()
                raise StoreError("corrupt", f"The conversation database {self.path} is damaged ({check}).")
            self._migrate(db, version)
        except sqlite3.Error as exc:
            db.close()
            raise _explain(exc, self.path) from exc
        return db

    def _migrate(self, db: sqlite3.Connection, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # One transaction per step (executescript would commit on its own): a failed step leaves
            # the database at the previous version, never half-migrated.
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[target]):
                    db.execute(statement)
                if target == 2:
                    self._seed_presets(db)
                db.execute(f"PRAGMA user_version = {target}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            log.info("conversation database migrated to schema %d", target)

    @staticmethod
    def _seed_presets(db: sqlite3.Connection) -> None:
        for name, prompt, sampling in BUILTIN_PRESETS:
            db.execute(
                "INSERT OR IGNORE INTO presets(name, system_prompt, sampling, builtin) VALUES (?, ?, ?, 1)",
                (name, prompt, json.dumps(sampling)),
            )

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.stem}.damaged-{stamp}{self.path.suffix}")
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = Path(str(self.path) + suffix)
            if side.exists():
                os.replace(side, Path(str(target) + suffix))
        log.warning("damaged conversation database moved aside to %s", target)
        return target

    def close(self) -> None:
        """Close the connection (a checkpoint folds the WAL into the database)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # Re-entrant: inside another transaction of this thread it is a savepoint, so a larger
        # operation (an import of many conversations) is all or nothing while its parts stay usable.
        with self._lock:
            depth = self._tx_depth
            begin, end, undo = (
                ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
                if depth == 0
                else (f"SAVEPOINT s{depth}", f"RELEASE s{depth}", f"ROLLBACK TO s{depth}; RELEASE s{depth}")
            )
            try:
                self._db.execute(begin)
                self._tx_depth = depth + 1
                try:
                    yield self._db
                    self._db.execute(end)
                except BaseException:
                    for statement in undo.split("; "):
                        self._db.execute(statement)
                    raise
                finally:
                    self._tx_depth = depth
            except sqlite3.Error as exc:
                raise _explain(exc, self.path) from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args))
            except sqlite3.Error as exc:
                raise _explain(exc, self.path) from exc

    # ----- conversations ----------------------------------------------------------------------------

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
                (title, now, now, model, system_prompt, json.dumps(sampling or {}), _policy(context_policy)),
            )
            return int(cursor.lastrowid or 0)

    def conversation(self, conversation_id: int) -> ConversationInfo:
        """One conversation's fields (KeyError if there is none)."""
        rows = self._query("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise KeyError(conversation_id)
        return _info(rows[0])

    def conversations(self, include_deleted: bool = False) -> list[ConversationInfo]:
        """Pinned first, then by latest activity."""
        where = "" if include_deleted else "WHERE deleted_at IS NULL"
        rows = self._query(
            f"SELECT * FROM conversations {where} ORDER BY pinned DESC, updated_at DESC, id DESC"
        )
        return [_info(r) for r in rows]

    def update_conversation(self, conversation_id: int, **fields: Any) -> None:
        """Change title, pinned, model, system_prompt, sampling (dict) or context_policy."""
        allowed = {"title", "pinned", "model", "system_prompt", "sampling", "context_policy"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown conversation fields: {sorted(unknown)}")
        for name in ("title", "system_prompt", "model"):
            if isinstance(fields.get(name), str):
                fields[name] = clean_text(fields[name])
        if "sampling" in fields:
            fields["sampling"] = json.dumps(fields["sampling"])
        if "context_policy" in fields:
            fields["context_policy"] = _policy(fields["context_policy"])
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
        """Remove binned conversations (and their messages) deleted more than `older_than_s` ago."""
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                (time.time() - older_than_s,),
            )
            return cursor.rowcount

    # ----- messages -------------------------------------------------------------------------------

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
    ) -> int:
        """Append a message under `parent_id` (None: a first message) and make it the current leaf.
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
                "stats, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, parent_id, role, content, now, int(incomplete),
                 json.dumps(stats) if stats is not None else None, error),
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
    ) -> None:
        """Save a streaming reply's text so far, or its final state."""
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
        return _message(rows[0])

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
        return [_message(r) for r in rows]

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
        return [_message(r) for r in self._query("SELECT * FROM messages WHERE incomplete = 1 ORDER BY id")]

    # ----- search ---------------------------------------------------------------------------------

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose title or messages contain every word of `text` (prefixes match), the
        most recently active first, each with the matching text around the hit.

        The message index is read newest first and stops as soon as `limit` conversations are found,
        so a common word costs no more than a rare one."""
        words = [w for w in text.replace('"', " ").split() if w]
        if not words:
            return []
        match = " ".join(f'"{w}"*' for w in words)
        like = "%" + "%".join(words) + "%"
        with self._lock:
            try:
                titled = self._db.execute(
                    "SELECT id, title FROM conversations WHERE deleted_at IS NULL AND title LIKE ? "
                    "ORDER BY updated_at DESC LIMIT ?",
                    (like, limit),
                ).fetchall()
                found = self._newest_matches(match, limit)
                marks = ",".join("?" * len(found))
                contents = dict(
                    self._db.execute(
                        f"SELECT id, content FROM messages WHERE id IN ({marks})", (*found.values(),)
                    )
                )
                titles = dict(
                    self._db.execute(f"SELECT id, title FROM conversations WHERE id IN ({marks})", (*found,))
                )
            except sqlite3.Error as exc:
                raise _explain(exc, self.path) from exc
        hits = [
            SearchHit(
                int(cid), title, _snippet(contents[found[cid]], words) if cid in found else "", found.get(cid)
            )
            for cid, title in titled
        ]
        seen = {h.conversation_id for h in hits}
        hits += [
            SearchHit(cid, titles.get(cid, ""), _snippet(contents.get(mid, ""), words), mid)
            for cid, mid in found.items()
            if cid not in seen
        ]
        return hits[:limit]

    def _newest_matches(self, match: str, limit: int) -> dict[int, int]:
        """Up to `limit` conversations with a message matching `match`: conversation -> newest such message.

        FTS5 walks its index in rowid order by itself; a join inside the query would make SQLite collect
        and sort every match first (seconds for a common word over 200,000 messages)."""
        found: dict[int, int] = {}
        owner = (
            "SELECT m.conversation_id, c.deleted_at FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?"
        )
        matches = self._db.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC", (match,)
        )
        for (message_id,) in matches:
            conversation_id, deleted = self._db.execute(owner, (message_id,)).fetchone()
            if deleted is None:
                found.setdefault(conversation_id, message_id)
                if len(found) >= limit:
                    break
        return found

    # ----- presets ----------------------------------------------------------------------------------

    def presets(self) -> list[Preset]:
        """Built-in presets first, then the user's, by name."""
        rows = self._query("SELECT * FROM presets ORDER BY builtin DESC, name COLLATE NOCASE")
        return [
            Preset(r["id"], r["name"], r["system_prompt"], json.loads(r["sampling"]), bool(r["builtin"]))
            for r in rows
        ]

    def save_preset(self, name: str, system_prompt: str, sampling: dict[str, Any]) -> int:
        """Create or replace the user's preset called `name`."""
        name, system_prompt = clean_text(name).strip(), clean_text(system_prompt)
        if not name:
            raise ValueError("a preset needs a name")
        with self._tx() as db:
            db.execute(
                "INSERT INTO presets(name, system_prompt, sampling) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE "
                "SET system_prompt = excluded.system_prompt, sampling = excluded.sampling",
                (name, system_prompt, json.dumps(sampling)),
            )
            return int(db.execute("SELECT id FROM presets WHERE name = ?", (name,)).fetchone()[0])

    def rename_preset(self, preset_id: int, name: str) -> None:
        """Rename a preset (ValueError if the name is taken or empty)."""
        name = clean_text(name).strip()
        if not name:
            raise ValueError("a preset needs a name")
        try:
            with self._tx() as db:
                db.execute("UPDATE presets SET name = ? WHERE id = ?", (name, preset_id))
        except StoreError as exc:
            raise ValueError(f"a preset called “{name}” already exists") from exc

    def delete_preset(self, preset_id: int) -> None:
        """Delete a preset."""
        with self._tx() as db:
            db.execute("DELETE FROM presets WHERE id = ?", (preset_id,))

    # ----- export and import --------------------------------------------------------------------

    def export_json(self, conversation_id: int) -> dict[str, Any]:
        """The whole conversation, every branch included, as plain data (import_json reads it back)."""
        info = self.conversation(conversation_id)
        rows = self._query("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return {
            "format": "fireside-conversation",
            "version": 1,
            "title": info.title,
            "created_at": info.created_at,
            "model": info.model,
            "system_prompt": info.system_prompt,
            "sampling": info.sampling,
            "context_policy": info.context_policy,
            "current_leaf": info.current_leaf,
            "messages": [
                {
                    "id": m.id, "parent_id": m.parent_id, "role": m.role, "content": m.content,
                    "created_at": m.created_at, "incomplete": m.incomplete, "stats": m.stats,
                    "error": m.error,
                }
                for m in (_message(r) for r in rows)
            ],
        }  # fmt: skip

    def export_many_json(self, conversation_ids: list[int]) -> dict[str, Any]:
        """Several conversations in one file (import_any reads it back)."""
        return {
            "format": "fireside-conversations",
            "version": 1,
            "conversations": [self.export_json(cid) for cid in conversation_ids],
        }

    def import_any(self, data: Any) -> list[int]:
        """Import one conversation (export_json) or several (export_many_json); the new ids, in order.
        Every conversation is checked before any is written, so a bad file imports nothing. Text that
        is not Unicode (JSON allows a lone "\\ud800") is imported with U+FFFD in its place."""
        data = clean_json(data)
        if isinstance(data, dict) and data.get("format") == "fireside-conversations":
            items = data.get("conversations")
            if not isinstance(items, list):
                raise ValueError("the export has no conversation list")
        else:
            items = [data]
        for item in items:
            self._check_import(item)
        with self._tx():  # one transaction: a failure part-way (a full disk) imports nothing
            return [self.import_json(item) for item in items]

    @staticmethod
    def _check_import(data: Any) -> None:
        if not isinstance(data, dict) or data.get("format") != "fireside-conversation":
            raise ValueError("not a Fireside conversation export")
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise ValueError("the export has no message list")
        seen: set[int] = set()
        try:
            ordered = sorted(messages, key=lambda m: int(m["id"]))
        except (TypeError, KeyError, ValueError):
            raise ValueError("a message has no numeric id") from None
        for item in ordered:
            if item.get("role") not in ("user", "assistant"):
                raise ValueError(f"unknown role {item.get('role')!r}")
            if not isinstance(item.get("content", ""), str):
                raise ValueError(f"message {item['id']} has content that is not text")
            if not isinstance(item.get("error"), str | None) or not isinstance(
                item.get("stats"), dict | None
            ):
                raise ValueError(f"message {item['id']} has a malformed error or stats field")
            parent = item.get("parent_id")
            if parent is not None and parent not in seen:
                raise ValueError(f"message {item['id']} refers to a missing parent {parent}")
            seen.add(int(item["id"]))
        leaf = data.get("current_leaf")
        if leaf is not None and (not isinstance(leaf, int) or isinstance(leaf, bool)):
            raise ValueError("current_leaf is not a message id")

    def import_json(self, data: dict[str, Any]) -> int:
        """A new conversation from export_json's data (ValueError when it is not such data; then
        nothing is written)."""
        self._check_import(data)
        messages = data["messages"]
        new_id = self.create_conversation(
            title=str(data.get("title") or ""),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            system_prompt=str(data.get("system_prompt") or ""),
            sampling=data.get("sampling") if isinstance(data.get("sampling"), dict) else {},
            context_policy=str(data.get("context_policy") or "stop"),
        )
        mapping: dict[int, int] = {}
        for item in sorted(messages, key=lambda m: int(m["id"])):
            parent = item.get("parent_id")
            mapping[int(item["id"])] = self.add_message(
                new_id, item["role"], str(item.get("content", "")),
                mapping[parent] if parent is not None else None,
                incomplete=bool(item.get("incomplete")), stats=item.get("stats"), error=item.get("error"),
            )  # fmt: skip
        leaf = data.get("current_leaf")
        if leaf in mapping:
            self.switch_branch(mapping[leaf])
            with self._tx() as db:  # switch_branch follows the latest child; keep the exported leaf exactly
                db.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (mapping[leaf], new_id))
        return new_id

    def export_markdown(self, conversation_id: int) -> str:
        """The shown branch as Markdown: a title, the system prompt, then each turn."""
        info = self.conversation(conversation_id)
        lines = [f"# {info.title or 'Conversation'}", ""]
        if info.model:
            lines += [f"*Model: {Path(info.model).name}*", ""]
        if info.system_prompt:
            lines += ["## System", "", info.system_prompt, ""]
        for m in self.branch(conversation_id):
            heading = "User" if m.role == "user" else "Assistant"
            note = " (incomplete)" if m.incomplete else ""
            lines += [f"## {heading}{note}", "", m.content, ""]
        return "\n".join(lines).rstrip() + "\n"

    def export_markdown_many(self, conversation_ids: list[int]) -> str:
        """Several conversations as one Markdown file, separated by rules."""
        return "\n---\n\n".join(self.export_markdown(cid) for cid in conversation_ids)

    def export_finetune_jsonl(self, conversation_ids: list[int]) -> str:
        """OpenAI chat fine-tuning format: one conversation per line, {"messages": [{role, content}...]}.

        Only the shown branch is used; unfinished or failed replies, and turns after them, are left out,
        since a training example must end with a complete assistant reply."""
        out = []
        for conversation_id in conversation_ids:
            info = self.conversation(conversation_id)
            messages: list[dict[str, str]] = []
            if info.system_prompt:
                messages.append({"role": "system", "content": info.system_prompt})
            for m in self.branch(conversation_id):
                if m.incomplete or m.error or not m.content.strip():
                    break
                messages.append({"role": m.role, "content": m.content})
            while messages and messages[-1]["role"] != "assistant":
                messages.pop()
            if any(m["role"] == "assistant" for m in messages):
                out.append(json.dumps({"messages": messages}, ensure_ascii=False))
        return "\n".join(out) + ("\n" if out else "")


def _snippet(text: str, words: list[str], width: int = 60) -> str:
    """The text around the earliest matching word, the match in [brackets]. (FTS5's own snippet()
    re-runs the whole query for each row: half a second over a large history.)"""
    lowered = text.lower()
    best: tuple[int, int] | None = None
    for word in words:
        at = re.search(r"(?<!\w)" + re.escape(word.lower()), lowered)
        if at is not None and (best is None or at.start() < best[0]):
            end = at.end()
            while end < len(text) and text[end].isalnum():
                end += 1  # the rest of the word the prefix matched
            best = (at.start(), end)
    if best is None:
        return text[: 2 * width].replace("\n", " ").strip()
    start, end = best
    left, right = max(0, start - width), min(len(text), end + width)
    before = ("…" if left else "") + text[left:start]
    after = text[end:right] + ("…" if right < len(text) else "")
    return (before + "[" + text[start:end] + "]" + after).replace("\n", " ")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers contain semicolons inside BEGIN … END)."""
    statements, current = [], []
    depth = 0
    for line in script.strip().splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        current.append(line)
        upper = stripped.upper()
        if upper.startswith("CREATE TRIGGER"):
            depth += 1
        if upper == "END;":
            depth -= 1
        if stripped.endswith(";") and depth == 0:
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements


def _policy(value: str) -> str:
    if value not in CONTEXT_POLICIES:
        raise ValueError(f"unknown context policy {value!r}; choose one of {', '.join(CONTEXT_POLICIES)}")
    return value


def _info(row: sqlite3.Row) -> ConversationInfo:
    return ConversationInfo(
        id=row["id"], title=row["title"], created_at=row["created_at"], updated_at=row["updated_at"],
        pinned=bool(row["pinned"]), model=row["model"], system_prompt=row["system_prompt"],
        sampling=json.loads(row["sampling"] or "{}"), context_policy=row["context_policy"],
        current_leaf=row["current_leaf"], deleted=row["deleted_at"] is not None,
    )  # fmt: skip


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"], conversation_id=row["conversation_id"], parent_id=row["parent_id"], role=row["role"],
        content=row["content"], created_at=row["created_at"], incomplete=bool(row["incomplete"]),
        stats=json.loads(row["stats"]) if row["stats"] else None, error=row["error"],
    )  # fmt: skip
