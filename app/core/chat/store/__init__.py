"""Conversations kept safe: SQLite (WAL, foreign keys, FTS5) in the data folder, messages as a tree.

`Store` is the one object the app uses. Each of its jobs lives in its own module, as one class that
builds on the ones it needs:

- database: opening, checking and migrating the file (schema: the tables and migrations), and the
  transactions the rest use; errors: StoreError, in words for users;
- conversations: a conversation's settings, the bin;
- tree: messages as a tree (branches, versions, siblings, switching branch);
- search: full-text search with snippets;
- presets: named system prompts and sampling settings;
- export: JSON with every branch, Markdown, fine-tuning JSONL, and import of those JSON files;
- documents: attached documents as passages, with FTS5 over their words and their vectors.

Why classes stacked by inheritance rather than a Store holding one object per job: every job shares one
connection, one lock and one transaction depth (a nested transaction is a savepoint of the outer one),
and the jobs call each other (an import creates a conversation and adds messages). As parts of one
object they share that state without passing it around, and Store needs no forwarding method for
each of its thirty-odd public methods.
"""

from __future__ import annotations

from app.core.chat.store.documents import DocumentIndex, StoredDocument, StoredPassage
from app.core.chat.store.errors import StoreError, StoreErrorKind
from app.core.chat.store.export import Exports
from app.core.chat.store.presets import Presets
from app.core.chat.store.records import CONTEXT_POLICIES, ConversationInfo, Preset, SearchHit, StoredMessage
from app.core.chat.store.schema import SCHEMA_VERSION
from app.core.chat.store.search import Search

__all__ = [
    "CONTEXT_POLICIES",
    "SCHEMA_VERSION",
    "ConversationInfo",
    "Preset",
    "SearchHit",
    "Store",
    "StoreError",
    "StoreErrorKind",
    "StoredDocument",
    "StoredMessage",
    "StoredPassage",
]


class Store(Exports, Search, Presets, DocumentIndex):
    """The conversation database. Thread-safe: one connection behind a lock, so short calls can run
    on the GUI thread and long ones (search, export, migrations) on a worker without conflict.

    A database that is locked, read-only, damaged or from a newer Fireside raises StoreError with a
    message for users; a damaged file is moved aside (never deleted) and a new one started."""
