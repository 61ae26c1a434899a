"""Why the conversation database cannot be used, in words for users (SQLite's own errors are not)."""

from __future__ import annotations

import shutil
import sqlite3
from enum import StrEnum
from pathlib import Path

#: Free space under which an I/O error is taken for a full disk (SQLite cannot even map its
#: shared-memory file then, and reports "disk I/O error" rather than "disk is full").
LOW_SPACE = 1024 * 1024


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
    if _disk_full(exc, text, path):
        return StoreError(
            StoreErrorKind.IO, "The disk is full: conversations cannot be saved until some space is freed."
        )
    return StoreError(StoreErrorKind.IO, f"The conversation database failed: {exc}")


def _disk_full(exc: sqlite3.Error, text: str, path: Path) -> bool:
    """SQLite says the disk is full, or an I/O error happened on a disk with (almost) no room left."""
    if "disk" in text and "full" in text:
        return True
    if not getattr(exc, "sqlite_errorname", "").startswith("SQLITE_IOERR"):
        return False
    try:
        return shutil.disk_usage(path.parent).free < LOW_SPACE
    except OSError:
        return False
