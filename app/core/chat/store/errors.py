"""Why the conversation database cannot be used, in words for users (SQLite's own errors are not)."""

from __future__ import annotations

import sqlite3
from enum import StrEnum
from pathlib import Path


class StoreErrorKind(StrEnum):
    """What kind of trouble the database is in (each member equals its string: "locked" ...)."""

    #: Another program or another Fireside holds the write lock.
    LOCKED = "locked"
    READ_ONLY = "read_only"
    #: Damaged: on opening, the file is moved aside and a new one started.
    CORRUPT = "corrupt"
    #: Written by a newer Fireside (a higher schema version): refused, left untouched.
    NEWER = "newer"
    #: Anything else, a full disk included.
    IO = "io"


class StoreError(Exception):
    """The conversation database cannot be used; `message` says why in words for users."""

    def __init__(self, kind: StoreErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = StoreErrorKind(kind)  # a caller's plain "locked" becomes the member too
        self.message = message


def explain(exc: sqlite3.Error, path: Path) -> StoreError:
    """The StoreError for an SQLite failure on the database at `path`.

    SQLite reports most failures as text only (the error classes are too coarse), so the text decides."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreError(
            StoreErrorKind.LOCKED,
            f"The conversation database is in use by another program or another Fireside ({path}).",
        )
    if "readonly" in text or "read-only" in text or "permission" in text:
        return StoreError(
            StoreErrorKind.READ_ONLY, f"The conversation database cannot be written: {path} is read-only."
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(StoreErrorKind.CORRUPT, f"The conversation database {path} is damaged.")
    if "disk" in text and "full" in text:
        return StoreError(
            StoreErrorKind.IO, "The disk is full: conversations cannot be saved until some space is freed."
        )
    return StoreError(StoreErrorKind.IO, f"The conversation database failed: {exc}")
