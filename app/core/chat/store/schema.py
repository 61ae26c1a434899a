"""The database's tables, and the numbered migrations that bring an older file up to date.

The schema carries a version (`PRAGMA user_version`); migration N brings a database from version
N-1 to N, each in one transaction, so a failed step leaves the file at the version before it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6

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
    3: """
        ALTER TABLE messages ADD COLUMN tool_calls TEXT;
        ALTER TABLE conversations ADD COLUMN tools TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE conversations ADD COLUMN output_schema TEXT;
        ALTER TABLE presets ADD COLUMN output_schema TEXT;
    """,
    4: """
        ALTER TABLE messages ADD COLUMN attachments TEXT;
    """,
    5: """
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            pages INTEGER NOT NULL,
            chars INTEGER NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (conversation_id, sha256)
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            page INTEGER NOT NULL,
            text TEXT NOT NULL,
            vector BLOB,
            embedder TEXT
        );
        CREATE INDEX chunks_by_document ON chunks(document_id, position);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        ALTER TABLE messages ADD COLUMN sources TEXT;
    """,
    # 6: the LoRA adapters (with their scales) a conversation or a preset applies to the model.
    6: """
        ALTER TABLE conversations ADD COLUMN adapters TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE presets ADD COLUMN adapters TEXT NOT NULL DEFAULT '[]';
    """,
}

#: The presets every database starts with (migration 2 adds them; the user may edit or delete them).
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


def migrate(db: sqlite3.Connection, version: int) -> None:
    """Bring a database at schema `version` up to SCHEMA_VERSION, one step per transaction."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        # One transaction per step (executescript would commit on its own): a failed step leaves
        # the database at the previous version, never half-migrated.
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(MIGRATIONS[target]):
                db.execute(statement)
            if target == 2:
                _seed_presets(db)
            db.execute(f"PRAGMA user_version = {target}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a full disk rolls back by itself: ROLLBACK then would hide why
                db.execute("ROLLBACK")
            raise
        log.info("conversation database migrated to schema %d", target)


def _seed_presets(db: sqlite3.Connection) -> None:
    for name, prompt, sampling in BUILTIN_PRESETS:
        db.execute(
            "INSERT OR IGNORE INTO presets(name, system_prompt, sampling, builtin) VALUES (?, ?, ?, 1)",
            (name, prompt, json.dumps(sampling)),
        )


def statements(script: str) -> list[str]:
    """Split a migration into statements (triggers contain semicolons inside BEGIN … END)."""
    found, current = [], []
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
            found.append("\n".join(current))
            current = []
    if current:
        found.append("\n".join(current))
    return found
