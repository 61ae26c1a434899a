"""Stored conversations as the chat session shows them: what is read to show one, messages from the
store's rows, and a title from the first message."""

from __future__ import annotations

from dataclasses import dataclass, fields

from app.core.chat.messages import Message, Role
from app.core.chat.store import ConversationInfo, StoredMessage
from app.core.chat.tool_uses import uses_from_json
from app.core.media.attachments import attachments_from_json
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sources import sources_from_json

TITLE_LENGTH = 60


def propose_title(text: str) -> str:
    """A title from the first message: its first line, cut at a word near TITLE_LENGTH characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "New conversation")
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:") + "…"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored conversation as read for showing: its fields, the shown branch, and versions."""

    info: ConversationInfo
    branch: list[StoredMessage]
    versions: dict[int, tuple[int, int]]


#: The fields of ReplyStats: a stored stats object also names the model that wrote the reply ("model").
_STATS_FIELDS = {f.name for f in fields(ReplyStats)}


def to_message(stored: StoredMessage) -> Message:
    """A stored message as the transcript shows it (stats from another version are left out)."""
    stats = None
    if stored.stats:
        try:
            known = {k: v for k, v in stored.stats.items() if k in _STATS_FIELDS}
            stats = ReplyStats(**{**known, "stop_reason": StopReason(stored.stats["stop_reason"])})
        except (KeyError, TypeError, ValueError):
            stats = None  # written by another version: shown without its stats line
    return Message(
        Role(stored.role), stored.content, stats=stats, incomplete=stored.incomplete, error=stored.error,
        tool_uses=uses_from_json(stored.tool_calls), attachments=attachments_from_json(stored.attachments),
        sources=sources_from_json(stored.sources),
    )  # fmt: skip
