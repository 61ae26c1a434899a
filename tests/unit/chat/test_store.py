"""The conversation store on real SQLite: the tree, branches, migrations, search, presets, export, errors."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.core.chat.store import SCHEMA_VERSION, Store, StoreError, schema


@pytest.fixture
def db(tmp_path: Path) -> Store:
    s = Store(tmp_path / "conversations.db")
    yield s
    s.close()


def chat(db: Store, *texts: str) -> tuple[int, list[int]]:
    """A conversation with alternating user/assistant messages."""
    cid = db.create_conversation(title="t")
    ids: list[int] = []
    parent = None
    for i, text in enumerate(texts):
        parent = db.add_message(cid, "user" if i % 2 == 0 else "assistant", text, parent)
        ids.append(parent)
    return cid, ids


def test_new_database_is_wal_with_foreign_keys_and_current_schema(db: Store, tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "conversations.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()
    assert db._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert [p.name for p in db.presets() if p.builtin][:2] == ["Code helper", "Creative writer"]


def test_messages_form_a_tree_and_branches_never_destroy_text(db: Store) -> None:
    cid, (_u1, a1, u2, a2) = chat(db, "Hi", "Hello!", "Tell a joke", "Why did the chicken…")
    assert [m.content for m in db.branch(cid)] == ["Hi", "Hello!", "Tell a joke", "Why did the chicken…"]
    # Edit the second user message: a sibling, and the conversation follows the new branch.
    u2b = db.add_message(cid, "user", "Tell a poem", a1)
    a2b = db.add_message(cid, "assistant", "Roses are red…", u2b)
    assert [m.content for m in db.branch(cid)] == ["Hi", "Hello!", "Tell a poem", "Roses are red…"]
    assert db.siblings(u2) == [u2, u2b]
    # Regenerate the reply: a third alternative under the same user message.
    a2c = db.add_message(cid, "assistant", "Violets are blue…", u2b)
    assert db.siblings(a2b) == [a2b, a2c]
    # Switch back to the first branch: its whole continuation returns.
    assert db.switch_branch(u2) == a2
    assert [m.content for m in db.branch(cid)][-2:] == ["Tell a joke", "Why did the chicken…"]
    assert db.message(a2b).content == "Roses are red…"  # nothing was overwritten


def test_streaming_reply_saved_incomplete_then_finished(db: Store) -> None:
    cid, (u1,) = chat(db, "Write a story")
    reply = db.add_message(cid, "assistant", "", u1, incomplete=True)
    db.update_message(reply, content="Once upon")
    assert [m.id for m in db.incomplete_messages()] == [reply]
    db.update_message(reply, content="Once upon a time.", incomplete=False, stats={"tokens_per_s": 100.0})
    finished = db.message(reply)
    assert (finished.content, finished.incomplete, finished.stats) == (
        "Once upon a time.",
        False,
        {"tokens_per_s": 100.0},
    )
    assert db.incomplete_messages() == []


def test_delete_message_removes_its_subtree_and_moves_the_leaf(db: Store) -> None:
    cid, (_u1, _a1, u2, a2) = chat(db, "a", "b", "c", "d")
    db.delete_message(u2)
    assert [m.content for m in db.branch(cid)] == ["a", "b"]
    with pytest.raises(KeyError):
        db.message(a2)


def test_conversation_settings_order_delete_undo_purge(db: Store) -> None:
    first = db.create_conversation(title="first", system_prompt="Be brief.", sampling={"temperature": 0.3})
    second = db.create_conversation(title="second")
    db.add_message(first, "user", "newer activity", None)
    assert [c.id for c in db.conversations()] == [first, second]
    db.update_conversation(second, pinned=True, context_policy="drop_oldest", title="renamed")
    info = db.conversation(second)
    assert (info.pinned, info.context_policy, info.title) == (True, "drop_oldest", "renamed")
    assert [c.id for c in db.conversations()] == [second, first]
    assert db.conversation(first).sampling == {"temperature": 0.3}
    db.delete_conversation(first)
    assert [c.id for c in db.conversations()] == [second]
    db.restore_conversation(first)
    assert {c.id for c in db.conversations()} == {first, second}
    db.delete_conversation(first)
    assert db.purge_deleted() == 1
    assert db._query("SELECT COUNT(*) FROM messages")[0][0] == 0  # the cascade took its messages
    with pytest.raises(ValueError, match="context policy"):
        db.update_conversation(second, context_policy="sometimes")


def test_search_matches_titles_and_text_with_a_snippet(db: Store) -> None:
    cid, _ = chat(db, "How do lighthouses work?", "A lighthouse uses a Fresnel lens to focus light.")
    other = db.create_conversation(title="Fresnel optics notes")
    db.create_conversation(title="Unrelated")
    hits = {h.conversation_id: h for h in db.search("fresnel")}
    assert set(hits) == {cid, other}
    assert "[Fresnel]" in hits[cid].snippet
    assert [h.conversation_id for h in db.search("light")] == [cid]  # a prefix matches "lighthouses"
    assert db.search("") == [] and db.search('"') == []
    db.delete_conversation(cid)
    assert [h.conversation_id for h in db.search("fresnel")] == [other]


def test_presets_save_rename_delete(db: Store) -> None:
    pid = db.save_preset("Translator", "Translate to French.", {"temperature": 0.1})
    assert db.save_preset("Translator", "Translate to German.", {}) == pid  # same name: replaced
    assert next(p for p in db.presets() if p.id == pid).system_prompt == "Translate to German."
    db.rename_preset(pid, "German translator")
    with pytest.raises(ValueError, match="already exists"):
        db.rename_preset(pid, "Precise")
    db.delete_preset(pid)
    assert all(p.id != pid for p in db.presets())


def test_json_export_round_trips_every_branch(db: Store) -> None:
    cid, (u1, _a1) = chat(db, "Hi", "Hello")
    db.update_conversation(cid, system_prompt="You are terse.", sampling={"top_k": 20})
    alt = db.add_message(cid, "assistant", "Hey there", u1)
    exported = json.loads(json.dumps(db.export_json(cid)))  # survives a trip through text
    copy = db.import_json(exported)
    assert copy != cid
    assert [m.content for m in db.branch(copy)] == ["Hi", "Hey there"]
    first_reply = db.branch(copy)[1].id
    assert len(db.siblings(first_reply)) == 2
    assert db.conversation(copy).system_prompt == "You are terse."
    assert db.conversation(copy).sampling == {"top_k": 20}
    assert alt != first_reply
    with pytest.raises(ValueError):
        db.import_json({"format": "something else"})
    with pytest.raises(ValueError, match="missing parent"):
        db.import_json({"format": "fireside-conversation", "messages": [
            {"id": 5, "parent_id": 4, "role": "user", "content": "x"}]})  # fmt: skip


def test_several_conversations_export_and_import_together(db: Store) -> None:
    first, _ = chat(db, "Hi", "Hello")
    second, _ = chat(db, "Bonjour", "Salut")
    bundle = json.loads(json.dumps(db.export_many_json([first, second])))
    assert bundle["format"] == "fireside-conversations" and len(bundle["conversations"]) == 2
    copies = db.import_any(bundle)
    assert [[m.content for m in db.branch(c)] for c in copies] == [["Hi", "Hello"], ["Bonjour", "Salut"]]
    assert db.import_any(db.export_json(first)) != copies  # a single conversation works too
    markdown = db.export_markdown_many([first, second])
    assert markdown.count("\n---\n") == 1 and "Bonjour" in markdown

    # One bad conversation in a bundle: nothing is imported, not even the good ones before it.
    before = len(db.conversations())
    bad = {"format": "fireside-conversation", "messages": [{"id": 1, "role": "tool", "content": "x"}]}
    with pytest.raises(ValueError, match="unknown role"):
        db.import_any({**bundle, "conversations": [*bundle["conversations"], bad]})
    with pytest.raises(ValueError, match="unknown role"):
        db.import_json(bad)
    odd = {
        "format": "fireside-conversation",
        "messages": [{"id": 1, "role": "user", "content": "x", "error": {}}],
    }
    with pytest.raises(ValueError, match="malformed"):
        db.import_any(odd)
    with pytest.raises(ValueError, match="current_leaf"):
        db.import_any({**db.export_json(first), "current_leaf": [3]})
    assert len(db.conversations()) == before


def test_an_import_failing_part_way_imports_nothing(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = chat(db, "Hi", "Hello")
    second, _ = chat(db, "Bonjour", "Salut")
    bundle = db.export_many_json([first, second])
    before = len(db.conversations())
    calls = {"n": 0}
    real = Store.add_message

    def add_message(self: Store, *args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 3:  # the second conversation's first message: the disk fills up
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "add_message", add_message)
    with pytest.raises(StoreError):
        db.import_any(bundle)
    monkeypatch.undo()
    assert len(db.conversations()) == before  # the first conversation's import was rolled back too
    assert len(db.import_any(bundle)) == 2  # and the store works on


def test_markdown_and_finetune_jsonl_exports_parse_back(db: Store) -> None:
    cid, (_u1, _a1, u2) = chat(db, "What is 2+2?", "4.", "And 3+3?")
    db.update_conversation(cid, system_prompt="You do arithmetic.")
    unfinished = db.add_message(cid, "assistant", "6", u2, incomplete=True)
    markdown = db.export_markdown(cid)
    assert markdown.startswith("# t\n") and "## System\n\nYou do arithmetic." in markdown
    assert "## Assistant (incomplete)" in markdown
    other, _ = chat(db, "Hello", "Hi!")
    lines = db.export_finetune_jsonl([cid, other]).splitlines()
    examples = [json.loads(line) for line in lines]
    assert examples[0]["messages"] == [
        {"role": "system", "content": "You do arithmetic."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
    ]  # the unfinished reply and the question it answers are left out
    assert examples[1]["messages"][-1] == {"role": "assistant", "content": "Hi!"}
    assert unfinished


def test_migrations_from_every_earlier_version_keep_the_data(tmp_path: Path) -> None:
    for start in range(0, SCHEMA_VERSION):
        path = tmp_path / f"v{start}.db"
        raw = sqlite3.connect(path)
        for version in range(1, start + 1):
            for statement in schema.statements(schema.MIGRATIONS[version]):
                raw.execute(statement)
            if version == 2:
                schema._seed_presets(raw)  # as migrate() does
        raw.execute(f"PRAGMA user_version = {start}")
        if start >= 1:
            raw.execute(
                "INSERT INTO conversations(id, title, created_at, updated_at) VALUES (1, 'old', 1, 1)"
            )
            raw.execute(
                "INSERT INTO messages(id, conversation_id, parent_id, role, content, created_at) "
                "VALUES (1, 1, NULL, 'user', 'an old searchable message', 1)"
            )
            raw.execute("UPDATE conversations SET current_leaf = 1")
        raw.commit()
        raw.close()
        db = Store(path)
        assert db._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        if start >= 1:
            assert [m.content for m in db.branch(1)] == ["an old searchable message"]
            assert [h.conversation_id for h in db.search("searchable")] == [1]  # FTS built from old rows
            # Schema 3: no tool calls, no tools chosen, no JSON mode for what was there before.
            assert db.branch(1)[0].tool_calls is None
            info = db.conversation(1)
            assert (info.tools, info.require_tool, info.output_schema) == ((), False, None)
            assert db.branch(1)[0].attachments is None  # schema 4: no attachments before
            assert db.documents(1) == []  # schema 5: no documents before
            assert info.adapters == ()  # schema 6: no adapters before
        assert db.presets() and all(p.output_schema is None for p in db.presets())
        db.close()


def test_a_newer_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE future(x)")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert caught.value.kind == "newer" and "newer Fireside" in caught.value.message
    assert path.read_bytes() == before


def test_a_damaged_database_is_kept_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    db = Store(path)
    assert db.moved_aside is not None and db.moved_aside.read_bytes().startswith(b"this is not sqlite")
    assert db.conversations() == []
    db.close()


def test_a_read_only_database_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    Store(path).close()
    path.chmod(stat.S_IRUSR)
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    code = (
        "import sys; from pathlib import Path; from app.core.chat.store import Store, StoreError\n"
        "try:\n    Store(Path(sys.argv[1])).create_conversation()\n"
        "except StoreError as e:\n    print(e.kind, e.message)\n"
    )
    command = [sys.executable, "-c", code, str(path)]
    if os.geteuid() == 0:  # root writes anything: drop that capability, as for a normal user
        setpriv = shutil.which("setpriv")
        assert setpriv, "util-linux's setpriv is needed to drop root's write-anything capability"
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    finally:
        tmp_path.chmod(stat.S_IRWXU)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert result.stdout.startswith("read_only"), (result.stdout, result.stderr)
    assert "read-only" in result.stdout


def test_a_locked_database_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Store(path, timeout=0.2)
    other = sqlite3.connect(path, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        with pytest.raises(StoreError) as caught:
            db.create_conversation()
        assert caught.value.kind == "locked" and "in use" in caught.value.message
    finally:
        other.execute("ROLLBACK")
        other.close()
        db.close()


def test_store_is_safe_across_threads(db: Store) -> None:
    cid = db.create_conversation()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            parent = None
            for i in range(50):
                parent = db.add_message(cid, "user", f"thread {n} message {i}", parent)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert db._query("SELECT COUNT(*) FROM messages")[0][0] == 200


def test_versions_of_a_branch_in_one_query(db: Store) -> None:
    cid, (u1, a1) = chat(db, "Hi", "Hello")
    a1b = db.add_message(cid, "assistant", "Hey", u1)
    a1c = db.add_message(cid, "assistant", "Yo", u1)
    assert db.versions([u1, a1, a1b, a1c]) == {u1: (1, 1), a1: (1, 3), a1b: (2, 3), a1c: (3, 3)}
    assert db.versions([]) == {}


def test_text_with_a_lone_surrogate_is_kept_with_a_replacement_character(db: Store) -> None:
    # Python strings can hold half a UTF-16 pair (from JSON's "\ud800"); SQLite cannot take it.
    cid = db.create_conversation(title="Half \ud83d", system_prompt="Be \udc00 brief")
    first = db.add_message(cid, "user", "a\ud800b", None)
    reply = db.add_message(cid, "assistant", "", first, incomplete=True)
    db.update_message(reply, content="c\udfffd", error="cut \ud800")
    db.update_conversation(cid, title="Renamed \ud800")
    assert db.conversation(cid).title == "Renamed \ufffd"
    assert db.conversation(cid).system_prompt == "Be \ufffd brief"
    user, assistant = db.branch(cid)
    assert user.content == "a\ufffdb" and assistant.content == "c\ufffdd" and assistant.error == "cut \ufffd"
    assert db.save_preset("Half \ud83d", "x\ud800", {}) > 0
    assert any(p.name == "Half \ufffd" and p.system_prompt == "x\ufffd" for p in db.presets())


def test_an_import_with_a_lone_surrogate_keeps_everything_else(db: Store) -> None:
    cid = db.create_conversation(title="Emoji")
    first = db.add_message(cid, "user", "Smile \U0001f600", None)
    db.add_message(cid, "assistant", "Done", first, stats={"note": "ok"})
    exported = json.dumps(db.export_json(cid))
    # A broken editor cut the pair in half: valid JSON, but not Unicode.
    damaged = json.loads(exported.replace("\\ud83d\\ude00", "\\ud83d").replace('"ok"', '"o\\udc00k"'))
    [new] = db.import_any(damaged)
    user, assistant = db.branch(new)
    assert user.content == "Smile \ufffd" and assistant.content == "Done"
    assert assistant.stats == {"note": "o\ufffdk"}


def test_tool_calls_json_mode_and_tool_choice_are_kept_and_damaged_ones_read_as_none(db: Store) -> None:
    from app.core.chat.tool_uses import ToolStatus, ToolUse, uses_from_json, uses_to_json

    cid = db.create_conversation(title="tools")
    db.update_conversation(
        cid, tools={"names": ["test__add"], "required": True}, output_schema={"type": "object"}
    )
    info = db.conversation(cid)
    assert (info.tools, info.require_tool, info.output_schema) == (("test__add",), True, {"type": "object"})
    question = db.add_message(cid, "user", "2+3?", None)
    reply = db.add_message(cid, "assistant", "", question)
    uses = [ToolUse("call_1", "test__add", '{"a": 2, "b": 3}', ToolStatus.DONE, "5")]
    db.update_message(reply, tool_calls=uses_to_json(uses))
    assert uses_from_json(db.branch(cid)[-1].tool_calls) == uses
    # A call that was running when Fireside stopped reads as failed, never as running forever.
    running = uses_to_json([ToolUse("call_2", "test__add", "{}", ToolStatus.RUNNING)])
    assert uses_from_json(running)[0].status is ToolStatus.FAILED
    for damaged in ("not json", '{"a": 1}', '[{"id": 3}]', '[{"id": "x", "status": "exploded"}]'):
        assert uses_from_json(damaged) == []
    db._db.execute("UPDATE conversations SET tools = 'nonsense', output_schema = '[1]' WHERE id = ?", (cid,))
    info = db.conversation(cid)
    assert (info.tools, info.require_tool, info.output_schema) == ((), False, None)
    pid = db.save_preset("JSON reporter", "Reply in JSON.", {}, {"type": "object"})
    assert next(p for p in db.presets() if p.id == pid).output_schema == {"type": "object"}
    bad = db.export_json(cid)
    bad["messages"][1]["tool_calls"] = "not a list"
    with pytest.raises(ValueError, match="tool calls that are not a list"):
        db.import_any(bad)


def test_an_exported_conversation_keeps_its_tools_and_json_mode(db: Store) -> None:
    cid = db.create_conversation(title="with tools")
    db.update_conversation(cid, tools={"names": ["a__b"], "required": True}, output_schema={})
    db.add_message(cid, "user", "hi", None)
    copy = db.conversation(db.import_any(db.export_json(cid))[0])
    assert (copy.tools, copy.require_tool, copy.output_schema) == (("a__b",), True, {})


def test_a_conversations_and_a_presets_adapters_are_kept_exported_and_checked(db: Store) -> None:
    cid = db.create_conversation(title="adapted")
    chosen = (("/models/support-lora.gguf", 0.75), ("/models/style-lora.gguf", 2.0))
    db.update_conversation(cid, adapters=chosen)
    assert db.conversation(cid).adapters == chosen
    for bad in ([("/a.gguf", 2.5)], [("/a.gguf", -0.1)], [("", 1.0)], [(3, 1.0)]):
        with pytest.raises(ValueError, match="a scale from 0 to 2"):
            db.update_conversation(cid, adapters=bad)
    assert db.conversation(cid).adapters == chosen, "a refused change leaves the adapters as they were"
    db.add_message(cid, "user", "hi", None)
    copy = db.conversation(db.import_any(db.export_json(cid))[0])
    assert copy.adapters == chosen
    pid = db.save_preset("Support", "Help the customer.", {}, None, chosen[:1])
    assert next(p for p in db.presets() if p.id == pid).adapters == chosen[:1]
    db._db.execute(
        "UPDATE conversations SET adapters = ? WHERE id = ?",
        ('[{"path": "/ok.gguf", "scale": 1}, {"path": "/bad.gguf", "scale": 9}, "junk"]', cid),
    )
    assert db.conversation(cid).adapters == (("/ok.gguf", 1.0),), "damaged entries are left out"
    db._db.execute("UPDATE conversations SET adapters = 'not json' WHERE id = ?", (cid,))
    assert db.conversation(cid).adapters == ()
