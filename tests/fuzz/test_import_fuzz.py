"""Fuzzing the import of conversation files (Exports.import_bytes / import_any, what File > Import
runs) against a real SQLite store.

The rule: a clear ValueError, or a correct import; a failed import leaves the database as it was
(the same conversations), and an imported attachment's file lands inside the attachments folder.
A conversation exported then imported is the same conversation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.chat.store import Store
from tests.fuzz.bounds import bounded

#: The same store for every example of a property (a fresh SQLite file each costs more than the import).
_SLOW_FIXTURE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real store in a temporary folder."""
    db = Store(tmp_path / "conversations.db")
    yield db
    db.close()


def _count(store: Store) -> int:
    return len(store.conversations(include_deleted=True))


def _imports(store: Store, call: Any) -> list[int] | ValueError:
    """Run one import under the bounds; check the all-or-nothing rule and what a success made."""
    before = _count(store)
    outcome = bounded(call, ValueError)
    if isinstance(outcome, ValueError):
        assert _count(store) == before, "a failed import wrote something"
        return outcome
    assert isinstance(outcome, list) and _count(store) == before + len(outcome)
    for cid in outcome:  # what was imported reads back like any conversation
        info = store.conversation(cid)
        assert isinstance(info.title, str)
        for message in store.branch(cid):
            assert isinstance(message.content, str) and message.role.value in ("user", "assistant")
        json.dumps(store.export_json(cid))  # and exports again
    return outcome


# ----- a valid export to start from ---------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
).decode()


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    """A conversation as export_json writes it: a tree of messages, maybe branched."""
    count = draw(st.integers(1, 8))
    messages = []
    for index in range(count):
        parent = None if index == 0 else draw(st.sampled_from([None, *range(1, index + 1)]))
        messages.append(
            {
                "id": index + 1, "parent_id": parent, "role": draw(st.sampled_from(["user", "assistant"])),
                "content": draw(TEXT), "created_at": 0.0, "incomplete": draw(st.booleans()),
                "stats": draw(st.none() | st.just({"tokens": 3})), "error": draw(st.none() | TEXT),
                "tool_calls": [], "attachments": [], "sources": [],
            }
        )  # fmt: skip
    return {
        "format": "fireside-conversation", "version": 1, "title": draw(TEXT), "created_at": 0.0,
        "model": draw(st.none() | TEXT), "system_prompt": draw(TEXT), "sampling": {"top_k": 20},
        "context_policy": "stop", "tools": {"names": [], "required": False}, "output_schema": None,
        "adapters": [], "current_leaf": draw(st.sampled_from([None, *range(1, count + 1)])),
        "messages": messages,
    }  # fmt: skip


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | TEXT
    | st.sampled_from([10**400, 2**200, 1e308]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=15,
)
TOP_KEYS = ["format", "version", "title", "model", "system_prompt", "sampling", "context_policy",
            "tools", "output_schema", "adapters", "current_leaf", "messages"]  # fmt: skip
MESSAGE_KEYS = ["id", "parent_id", "role", "content", "incomplete", "stats", "error", "tool_calls",
                "attachments", "sources"]  # fmt: skip


# ----- properties ---------------------------------------------------------------------------------


@_SLOW_FIXTURE
@given(data=st.binary(max_size=300) | TEXT.map(str.encode))
@example(data=b"[" * 10_000)  # found: nesting too deep raised RecursionError out of the import
@example(data=b"\xff\xfe\x00{")
@example(data=b'{"format": "fireside-conversation", "messages": [')  # truncated
def test_any_bytes_import_or_fail_clearly(store: Store, data: bytes) -> None:
    """Any bytes: a clear ValueError (nothing written) or a correct import."""
    _imports(store, lambda: store.import_bytes(data))


@_SLOW_FIXTURE
@given(conversation=conversations(), data=st.data())
@example(  # found: a list as parent_id raised TypeError (unhashable), not ValueError
    conversation={"format": "fireside-conversation", "messages": [{"id": 1, "role": "user"}]},
    data=None,
)
def test_any_field_of_an_export_replaced_imports_or_fails_clearly(
    store: Store, conversation: dict[str, Any], data: st.DataObject
) -> None:
    """A valid export with one field (top level or of a message) replaced by JSON of any shape."""
    if data is None:
        conversation["messages"][0]["parent_id"] = [1]
    elif data.draw(st.booleans()):
        conversation[data.draw(st.sampled_from(TOP_KEYS))] = data.draw(JSON)
    else:
        message = data.draw(st.sampled_from(conversation["messages"]))
        message[data.draw(st.sampled_from(MESSAGE_KEYS))] = data.draw(JSON)
    text = json.dumps(conversation, allow_nan=True)
    _imports(store, lambda: store.import_bytes(text.encode()))


def test_an_id_too_large_for_a_float_fails_clearly(store: Store) -> None:
    """Regression: a message id of 1e400 (inf once read) raised OverflowError, not ValueError."""
    export = {"format": "fireside-conversation", "messages": [{"id": 1e400, "role": "user", "content": "x"}]}
    before = _count(store)
    with pytest.raises(ValueError, match="numeric id"):
        store.import_bytes(json.dumps(export).encode())
    assert _count(store) == before


def test_deep_nesting_fails_clearly(store: Store) -> None:
    """Regression: 10,000 levels of [[[...]]] raised RecursionError; now a ValueError saying why."""
    with pytest.raises(ValueError, match="nested too deeply"):
        store.import_bytes(b"[" * 10_000 + b"]" * 10_000)
    assert _count(store) == 0


def test_huge_numbers_and_long_strings_import(store: Store) -> None:
    """2**200 ids and stats, a 1 MB message: imported as they are, nothing lost."""
    long = "x" * (1 << 20)
    export = {
        "format": "fireside-conversation", "title": "big", "current_leaf": 2**200 + 1,
        "messages": [
            {"id": 2**200, "role": "user", "content": long, "stats": {"n": 2**200}},
            {"id": 2**200 + 1, "parent_id": 2**200, "role": "assistant", "content": "ok"},
        ],
    }  # fmt: skip
    (cid,) = _imports(store, lambda: store.import_bytes(json.dumps(export).encode()))  # type: ignore[misc]
    assert [m.content for m in store.branch(cid)] == [long, "ok"]


def test_lone_surrogates_import_as_replacement_characters(store: Store) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"): the text comes in with U+FFFD there."""
    text = '{"format": "fireside-conversation", "title": "\\udc00t", "messages": [' \
        '{"id": 1, "role": "user", "content": "a\\ud800b"}]}'  # fmt: skip
    (cid,) = _imports(store, lambda: store.import_bytes(text.encode()))  # type: ignore[misc]
    assert store.branch(cid)[0].content == "a\ufffdb"
    assert store.conversation(cid).title == "\ufffdt"


@_SLOW_FIXTURE
@given(conversation=conversations())
def test_export_then_import_gives_the_same_conversation(store: Store, conversation: dict[str, Any]) -> None:
    """Import, export, import again: every branch, text and field the same (only ids differ)."""
    (first,) = store.import_bytes(json.dumps(conversation).encode())
    exported = store.export_json(first)
    (second,) = store.import_bytes(json.dumps(exported).encode())
    again = store.export_json(second)

    def shape(export: dict[str, Any]) -> Any:
        # Ids are the store's own: compare the tree by positions instead.
        position = {m["id"]: i for i, m in enumerate(export["messages"])}
        messages = [
            {**{k: v for k, v in m.items() if k not in ("id", "parent_id", "created_at")},
             "parent": position.get(m["parent_id"])}
            for m in export["messages"]
        ]  # fmt: skip
        rest = {k: v for k, v in export.items() if k not in ("messages", "current_leaf", "created_at")}
        return rest, messages, position.get(export["current_leaf"])

    assert shape(again) == shape(exported)
    original = shape({**conversation, "messages": conversation["messages"]})
    assert [m["content"] for m in shape(exported)[1]] == [m["content"] for m in original[1]]
    assert [m["parent"] for m in shape(exported)[1]] == [m["parent"] for m in original[1]]
    assert exported["title"] == conversation["title"]


NAMES = st.one_of(
    st.sampled_from(
        [
            "../../../etc/passwd",
            "/etc/passwd",
            "..\\..\\win.ini",
            "C:\\x\\y.txt",
            "a\x00b.txt",
            ".",
            "..",
            "",
            " . ",
            "CON",
            "x" * 5000 + ".txt",
            "\u202etxt.exe",
            "ﬁle.txt",
            "A.TXT",
            "a.txt",
            "dir/",
        ]
    ),
    st.text(max_size=300),
)


@_SLOW_FIXTURE
@given(name=NAMES, kind=st.sampled_from(["document", "image"]))
@example(name="x" * 5000 + ".txt", kind="document")  # a name no file system takes
@example(name="a\x00b.txt", kind="document")  # NUL: refused by every OS call
def test_attachment_names_never_place_files_outside(store: Store, name: str, kind: str) -> None:
    """Attachment and document names with path tricks: the files land inside the attachments folder."""
    data = base64.b64encode(b"plain text\n").decode() if kind == "document" else PNG
    export = {
        "format": "fireside-conversation",
        "messages": [{"id": 1, "role": "user", "content": "see",
                      "attachments": [{"kind": kind, "name": name, "data": data}]}],
    }  # fmt: skip
    outcome = _imports(store, lambda: store.import_bytes(json.dumps(export).encode()))
    assert not isinstance(outcome, ValueError)  # a bad attachment is left out; the message comes in
    root = store.attachment_folder.root.resolve()
    for path in root.rglob("*") if root.is_dir() else ():
        assert path.resolve().is_relative_to(root)
    for message in store.branch(outcome[0]):
        from app.core.media.attachments import attachments_from_json

        for attachment in attachments_from_json(message.attachments):
            assert store.attachment_folder.path(attachment).resolve().is_relative_to(root)
            assert store.attachment_folder.path(attachment).is_file()
