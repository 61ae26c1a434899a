"""What the store hands out: messages, conversations, search hits and presets as frozen values,
and how a database row becomes one."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from app.core.chat.messages import Role
from app.core.inference.adapters import MAX_SCALE

CONTEXT_POLICIES = ("stop", "drop_oldest", "keep_first_last")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of the tree."""

    id: int
    conversation_id: int
    parent_id: int | None
    #: User or assistant: the schema allows no other role (a system prompt is a conversation field).
    role: Role
    content: str
    created_at: float
    incomplete: bool = False
    stats: dict[str, Any] | None = None
    error: str | None = None
    #: The tools a reply called, with decisions and results (JSON; see app.core.chat.tool_uses).
    tool_calls: str | None = None
    #: Files the user attached (JSON; see app.core.media.attachments).
    attachments: str | None = None
    #: The passages of documents a question was given (JSON; see app.core.values.sources).
    sources: str | None = None


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
    #: The tools (by the name the model calls them) the conversation lets the model use.
    tools: tuple[str, ...] = ()
    #: The reply to each message must call one of them.
    require_tool: bool = False
    #: JSON mode: replies are JSON of this schema ({}: any JSON object); None for free text.
    output_schema: dict[str, Any] | None = None
    #: The LoRA adapters (path, scale) applied to the model for its replies.
    adapters: tuple[tuple[str, float], ...] = ()


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
    #: JSON mode: replies are JSON of this schema ({}: any JSON object); None for free text.
    output_schema: dict[str, Any] | None = None
    #: The LoRA adapters (path, scale) applied to the model.
    adapters: tuple[tuple[str, float], ...] = ()


def adapters_json(adapters: Any) -> str:
    """`adapters` ((path, scale) pairs) as stored (ValueError for a scale outside 0-2 or a bad pair)."""
    stored = []
    for pair in adapters:
        path, scale = pair
        if not isinstance(path, str) or not path or not 0.0 <= float(scale) <= MAX_SCALE:
            raise ValueError(f"an adapter needs a path and a scale from 0 to {MAX_SCALE:g}, not {pair!r}")
        stored.append({"path": path, "scale": float(scale)})
    return json.dumps(stored)


def stored_adapters(text: str | None) -> tuple[tuple[str, float], ...]:
    """Stored adapters as (path, scale) pairs (a damaged column or entry is left out, never raised)."""
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return ()
    if not isinstance(value, list):
        return ()
    return tuple(
        (entry["path"], float(entry["scale"]))
        for entry in value
        if isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("scale"), int | float)
        and 0.0 <= float(entry["scale"]) <= MAX_SCALE
    )


def checked_policy(value: str) -> str:
    """`value` if it is one of CONTEXT_POLICIES (ValueError otherwise)."""
    if value not in CONTEXT_POLICIES:
        raise ValueError(f"unknown context policy {value!r}; choose one of {', '.join(CONTEXT_POLICIES)}")
    return value


def conversation_from_row(row: sqlite3.Row) -> ConversationInfo:
    """A `conversations` row as a ConversationInfo."""
    return ConversationInfo(
        id=row["id"], title=row["title"], created_at=row["created_at"], updated_at=row["updated_at"],
        pinned=bool(row["pinned"]), model=row["model"], system_prompt=row["system_prompt"],
        sampling=json.loads(row["sampling"] or "{}"), context_policy=row["context_policy"],
        current_leaf=row["current_leaf"], deleted=row["deleted_at"] is not None,
        tools=_names(row["tools"]), require_tool=_required(row["tools"]),
        output_schema=output_schema(row["output_schema"]), adapters=stored_adapters(row["adapters"]),
    )  # fmt: skip


def output_schema(text: str | None) -> dict[str, Any] | None:
    """A stored JSON mode: a schema object, or None (free text; also for a damaged column)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tools(text: str | None) -> dict[str, Any]:
    """A conversation's stored tool choice: {"names": [...], "required": bool} ({} when damaged)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _names(text: str | None) -> tuple[str, ...]:
    """The tools a conversation lets the model use (none when the column holds anything else)."""
    names = _tools(text).get("names")
    return tuple(str(v) for v in names if isinstance(v, str)) if isinstance(names, list) else ()


def _required(text: str | None) -> bool:
    """The conversation's replies must call a tool."""
    return _tools(text).get("required") is True


def message_from_row(row: sqlite3.Row) -> StoredMessage:
    """A `messages` row as a StoredMessage."""
    return StoredMessage(
        id=row["id"], conversation_id=row["conversation_id"], parent_id=row["parent_id"],
        role=Role(row["role"]), content=row["content"], created_at=row["created_at"],
        incomplete=bool(row["incomplete"]), error=row["error"],
        stats=json.loads(row["stats"]) if row["stats"] else None, tool_calls=row["tool_calls"],
        attachments=row["attachments"], sources=row["sources"],
    )  # fmt: skip
