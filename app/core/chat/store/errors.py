"""Why the conversation database cannot be used, in words for users (SQLite's own errors are not)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StoreError(Exception):
    """The conversation database cannot be used; `message` says why in words for users."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # locked, read_only, corrupt, newer, io
        self.message = message


def explain(exc: sqlite3.Error, path: Path) -> StoreError:
    """The StoreError for an SQLite failure on the database at `path`.

    SQLite reports most failures as text only (the error classes are too coarse), so the text decides."""
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
