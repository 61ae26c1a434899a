"""The conversation database (real SQLite) when the disk fills up under it and when Fireside is
killed in the middle of a schema migration.

A full disk is a real one (a small tmpfs filled by a real file); the kill is a real SIGKILL of a
child process at a chosen statement of the migration. Each test then checks what a user would see:
a StoreError that says the disk is full (never a raw sqlite3 traceback), a store that still reads,
every conversation and message saved before intact, writes that work again once space is freed,
and on the next launch `PRAGMA integrity_check` ok with all the earlier data there.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.core.chat.store import SCHEMA_VERSION, Store, StoreError, schema
from tests.faults.conftest import fill_disk, run_killed

DISK = 2 * 1024 * 1024


def _rows(db: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the conversations and messages tables, in order: the data to compare."""
    return {
        table: [tuple(r) for r in db._query(f"SELECT * FROM {table} ORDER BY id")]
        for table in ("conversations", "messages")
    }


def _integrity(path: Path) -> str:
    raw = sqlite3.connect(path)
    try:
        return str(raw.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        raw.close()


def _earlier(db: Store) -> list[int]:
    """Three conversations of six messages each, saved before the disk fills."""
    cids = []
    for n in range(3):
        cid = db.create_conversation(title=f"earlier {n}")
        parent = None
        for i in range(6):
            role = "user" if i % 2 == 0 else "assistant"
            parent = db.add_message(cid, role, f"earlier message {n}.{i} about lighthouses " * 5, parent)
        cids.append(cid)
    return cids


@pytest.mark.parametrize("how", ["many messages", "one long message"])
def test_a_full_disk_says_so_keeps_everything_and_writes_again_once_freed(small_disk: Any, how: str) -> None:
    where = small_disk(DISK)
    path = where / "conversations.db"
    db = Store(path)
    cids = _earlier(db)
    before = _rows(db)
    filler = fill_disk(where, leave=96 * 1024 if how == "many messages" else 8 * 1024)

    parent = db.conversation(cids[0]).current_leaf
    written: list[int] = []
    with pytest.raises(StoreError) as caught:
        if how == "many messages":
            for n in range(10_000):  # bounded: the disk is full long before
                parent = db.add_message(cids[0], "user", f"filling {n} " + "x" * 4000, parent)
                written.append(parent)
            pytest.fail("the disk never filled up")
        else:
            db.add_message(cids[0], "user", "a very long message " * 50_000, parent)  # 1 MB
    error = caught.value
    assert error.kind == "io" and "disk is full" in error.message, error.message
    assert not isinstance(error, sqlite3.Error) and isinstance(error.__cause__, sqlite3.OperationalError)
    assert "full" in str(error.__cause__)

    # Still usable for reads, and nothing saved before is lost or changed; the failed write is not
    # there by half: the rows are exactly the earlier ones and the messages written before it.
    after = _rows(db)
    assert after["conversations"][1:] == before["conversations"][1:]
    assert after["messages"][: len(before["messages"])] == before["messages"]
    assert [r[0] for r in after["messages"][len(before["messages"]) :]] == written
    assert [m.content for m in db.branch(cids[1])] == [r[4] for r in before["messages"] if r[1] == cids[1]]
    assert {h.conversation_id for h in db.search("lighthouses")} == set(cids)
    with pytest.raises(StoreError):  # still full: the next write says so too, the store does not break
        db.create_conversation(title="x" * 200_000)

    filler.unlink()  # the user frees some space
    fresh = db.create_conversation(title="after freeing space")
    last = db.add_message(fresh, "user", "it works again " * 1000, None)
    db.close()

    # The next launch: the file is whole and everything is there.
    assert _integrity(path) == "ok"
    again = Store(path)
    try:
        final = _rows(again)
        assert final["messages"][: len(after["messages"])] == after["messages"]
        assert final["conversations"][1:3] == before["conversations"][1:]
        assert again.message(last).content == "it works again " * 1000
        assert [m.content for m in again.branch(cids[2])] == [
            r[4] for r in before["messages"] if r[1] == cids[2]
        ]
    finally:
        again.close()


def test_a_database_that_fills_the_whole_disk_reopens_with_everything(small_disk: Any) -> None:
    """No filler file: the database's own write-ahead log takes the last byte, then Fireside quits
    (its checkpoint on close cannot grow the file either) and starts again on the still-full disk."""
    where = small_disk(1024 * 1024)
    path = where / "conversations.db"
    db = Store(path)
    cids = _earlier(db)
    parent = None
    with pytest.raises(StoreError) as caught:
        for n in range(10_000):
            parent = db.add_message(cids[0], "user", f"filling {n} " + "y" * 4000, parent)
        pytest.fail("the disk never filled up")
    assert "disk is full" in caught.value.message
    kept = _rows(db)
    db.close()
    assert os.statvfs(where).f_bavail * os.statvfs(where).f_frsize < 64 * 1024, "the disk is still full"

    assert _integrity(path) == "ok"
    again = Store(path)
    try:
        assert _rows(again) == kept
    finally:
        again.close()


# ----- killed in the middle of a migration --------------------------------------------------------


def _old_database(path: Path, version: int) -> None:
    """A database an older Fireside left at schema `version` (built the way the migration tests do),
    with conversations and messages in it."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")  # as every Fireside opened it
    raw.execute("BEGIN")
    for step in range(1, version + 1):
        for statement in schema.statements(schema.MIGRATIONS[step]):
            raw.execute(statement)
        if step == 2:
            schema._seed_presets(raw)  # as migrate() does
    raw.execute(f"PRAGMA user_version = {version}")
    for cid in (1, 2, 3):
        raw.execute(
            "INSERT INTO conversations(id, title, created_at, updated_at) VALUES (?, ?, 1, 1)",
            (cid, f"old {cid}"),
        )
        parent = None
        for i in range(4):
            mid = cid * 10 + i
            raw.execute(
                "INSERT INTO messages(id, conversation_id, parent_id, role, content, created_at) "
                "VALUES (?, ?, ?, ?, ?, 1)",
                (mid, cid, parent, "user" if i % 2 == 0 else "assistant", f"old searchable text {mid}"),
            )
            parent = mid
        raw.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (parent, cid))
    raw.execute("COMMIT")
    raw.close()


#: A child that opens the database with a connection that SIGKILLs the process at one statement.
KILL_IN_MIGRATION = """
import os, signal, sqlite3
from pathlib import Path

from app.core.chat.store import database, schema

step, where = int(os.environ["KILL_STEP"]), os.environ["KILL_WHERE"]
first = schema.statements(schema.MIGRATIONS[step])[0]
kill_after = first if where == "first statement" else f"PRAGMA user_version = {step}"


class Dying(sqlite3.Connection):
    def execute(self, sql, *args):
        cursor = super().execute(sql, *args)
        if sql == kill_after:
            print("killed", step, where, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return cursor


real_connect = sqlite3.connect
database.sqlite3.connect = lambda *a, **k: real_connect(*a, factory=Dying, **k)
database.Database(Path(os.environ["DATABASE"]))
print("the migration finished: the kill point was never reached", flush=True)
"""


@pytest.mark.parametrize(
    ("start", "step", "where"),
    [
        (1, 2, "first statement"),  # the full-text index half-made
        (1, 2, "before commit"),  # every statement of the step run and the version bumped
        (1, 4, "first statement"),  # steps 2 and 3 committed before it
        (3, 5, "before commit"),
        (5, 6, "first statement"),
    ],
)
def test_killed_during_a_migration_the_next_launch_migrates_and_keeps_the_data(
    tmp_path: Path, start: int, step: int, where: str
) -> None:
    path = tmp_path / "conversations.db"
    _old_database(path, start)
    old = sqlite3.connect(path)
    rows = {
        t: old.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("conversations", "messages")
    }
    old.close()

    done = run_killed(
        KILL_IN_MIGRATION, env={"KILL_STEP": str(step), "KILL_WHERE": where, "DATABASE": str(path)}
    )
    assert done.returncode == -9, (done.stdout, done.stderr)
    assert done.stdout.strip() == f"killed {step} {where}"

    # Each step is one transaction: the killed one left no trace, those before it are committed.
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == step - 1
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()

    db = Store(path)  # the next launch
    try:
        assert db._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for table, before in rows.items():
            now = db._db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            assert [tuple(r)[: len(before[0])] for r in now] == before  # old columns unchanged
        assert [m.content for m in db.branch(2)] == [f"old searchable text {n}" for n in (20, 21, 22, 23)]
        hits = db.search("searchable")
        assert sorted(h.conversation_id for h in hits) == [1, 2, 3]
        # The index holds each old message once (a half-made one was rolled back, not doubled).
        count = db._db.execute("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'searchable'")
        assert count.fetchone()[0] == 12
        assert sorted(p.name for p in db.presets()) == sorted(p[0] for p in schema.BUILTIN_PRESETS)
        assert db.documents(1) == [] and db.conversation(1).adapters == ()
        cid = db.create_conversation(title="after the migration")
        assert db.add_message(cid, "user", "new", None) > 0
    finally:
        db.close()
    assert _integrity(path) == "ok"


@pytest.mark.parametrize("leave", [0, 64 * 1024], ids=["cannot even open", "fills during the migration"])
def test_a_migration_on_a_full_disk_says_so_and_runs_once_space_is_freed(small_disk: Any, leave: int) -> None:
    where = small_disk(DISK)
    path = where / "conversations.db"
    _old_database(path, 1)
    filler = fill_disk(where, leave=leave)
    with pytest.raises(StoreError) as caught:
        Store(path)
    # With no room at all SQLite cannot map its shared memory ("disk I/O error"); with a little, a
    # migration step runs out of it ("database or disk is full"): both say the disk is full.
    assert "disk is full" in caught.value.message, caught.value.message

    filler.unlink()
    raw = sqlite3.connect(path)
    reached = raw.execute("PRAGMA user_version").fetchone()[0]
    raw.close()
    assert 1 <= reached < SCHEMA_VERSION, "the steps before the full disk are kept, the failed one is not"
    db = Store(path)
    try:
        assert db._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [m.content for m in db.branch(3)] == [f"old searchable text {n}" for n in (30, 31, 32, 33)]
        assert len(db.search("searchable")) == 3
    finally:
        db.close()
    assert _integrity(path) == "ok"
