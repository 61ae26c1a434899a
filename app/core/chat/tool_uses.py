"""A tool call in the chat: what the model asked for, what the user decided, and what came back.

An assistant message that called tools carries one ToolUse per call. The calls and their results are
kept in the conversation (the store's `tool_calls` column, as JSON) and go back to the model as
OpenAI's assistant `tool_calls` and `tool` messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.core.tools.calls import ToolCall


class ToolStatus(StrEnum):
    """Where a call stands."""

    #: Waiting for the user: Allow once, Always allow this tool, or Deny.
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    #: The tool answered with an error, could not be reached, or the call itself was malformed.
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    DENIED = "denied"

    @property
    def settled(self) -> bool:
        """The call has its result (or its refusal): nothing more will happen to it."""
        return self not in (ToolStatus.PENDING, ToolStatus.RUNNING)


#: What the model is told of a call the user refused.
DENIED_TEXT = "The user denied this tool call."


@dataclass(slots=True)
class ToolUse:
    """One call: its id, the tool's name, its arguments (JSON text), its status and its result."""

    id: str
    name: str
    arguments: str
    status: ToolStatus = ToolStatus.PENDING
    result: str = ""
    #: The result is shown unfolded under its card (the view's state; never saved).
    unfolded: bool = False

    @property
    def arguments_valid(self) -> bool:
        """The arguments are a JSON object (a remote engine or a model may send anything)."""
        try:
            return isinstance(json.loads(self.arguments or "{}"), dict)
        except ValueError:
            return False

    def call_dict(self) -> dict[str, Any]:
        """The call as an assistant message's `tool_calls` item (OpenAI's format)."""
        return ToolCall(self.id, self.name, self.arguments).openai()

    def result_message(self) -> dict[str, Any]:
        """The `tool` message that answers the call."""
        return {"role": "tool", "tool_call_id": self.id, "content": self.result_text()}

    def result_text(self) -> str:
        """What the model is told: the result, the error, or that the user said no."""
        if self.status is ToolStatus.DENIED:
            return DENIED_TEXT
        if self.status in (ToolStatus.FAILED, ToolStatus.TIMED_OUT):
            return f"Error: {self.result}"
        return self.result

    def to_dict(self) -> dict[str, Any]:
        """For the store."""
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "status": self.status.value,
            "result": self.result,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ToolUse | None:
        """From the store; None for an entry another version wrote that this one cannot read."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        try:
            status = ToolStatus(data.get("status", "pending"))
        except ValueError:
            return None
        if status is ToolStatus.RUNNING:
            # Fireside stopped while it ran: its result never came.
            status, result = ToolStatus.FAILED, "Fireside closed before the tool answered."
        else:
            result = str(data.get("result") or "")
        return cls(data["id"], str(data.get("name") or ""), str(data.get("arguments") or ""), status, result)


def uses_to_json(uses: list[ToolUse]) -> str:
    """The calls of a message as the store keeps them."""
    return json.dumps([use.to_dict() for use in uses])


def uses_from_json(text: str | None) -> list[ToolUse]:
    """The calls of a stored message (none for an empty or unreadable column)."""
    if not text:
        return []
    try:
        items = json.loads(text)
    except ValueError:
        return []
    uses = [ToolUse.from_dict(item) for item in items] if isinstance(items, list) else []
    return [use for use in uses if use is not None]
