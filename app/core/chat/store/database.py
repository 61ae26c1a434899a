"""Opening the conversation database safely, and the transactions every other part of the store uses.

The file is opened in WAL mode with foreign keys on, checked, and migrated to the current schema. A
file from a newer Fireside is refused and left untouched; a damaged one is moved aside (never
deleted) and a new one started, so the user can still chat and the old file can still be rescued.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.core.chat.store.errors import StoreError, StoreErrorKind, explain
from app.core.chat.store.schema import SCHEMA_VERSION, migrate

log = logging.getLogger(__name__)


class Database:
    """One SQLite connection behind a re-entrant lock, with transactions and queries that raise
    StoreError. Thread-safe, so short calls can run on the GUI thread and long ones on a worker."""

    def __init__(self, path: Path, *, timeout: float = 2.0) -> None:
        self.path = path
        self.moved_aside: Path | None = None
        self._lock = threading.RLock()
        self._tx_depth = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(timeout)
        except StoreError as exc:
            if exc.kind is not StoreErrorKind.CORRUPT:
                raise
            self.moved_aside = self._move_aside()
            self._db = self._open(timeout)

    def _open(self, timeout: float) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc
        try:
            db.row_factory = sqlite3.Row
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                db.close()
                raise StoreError(
                    StoreErrorKind.NEWER,
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
                raise StoreError(
                    StoreErrorKind.CORRUPT, f"The conversation database {self.path} is damaged ({check})."
                )
            migrate(db, version)
        except sqlite3.Error as exc:
            db.close()
            raise explain(exc, self.path) from exc
        return db

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
                    self._undo(undo)
                    raise
                finally:
                    self._tx_depth = depth
            except sqlite3.Error as exc:
                raise explain(exc, self.path) from exc

    def _undo(self, undo: str) -> None:
        # A full disk or an I/O error makes SQLite roll the whole transaction back by itself; a
        # ROLLBACK after that fails ("no transaction is active") and would hide the real error.
        if not self._db.in_transaction:
            return
        try:
            for statement in undo.split("; "):
                self._db.execute(statement)
        except sqlite3.Error as exc:
            log.warning("rolling back in %s failed: %s", self.path, exc)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args))
            except sqlite3.Error as exc:
                raise explain(exc, self.path) from exc
