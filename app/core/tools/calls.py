"""The values of tool calling: a tool a model may call, and a call it made."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: its name, what it does, and its arguments' JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def openai(self) -> dict[str, Any]:
        """The tool as OpenAI's `tools` list holds it (what chat templates expect too)."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters or {"type": "object", "properties": {}}
        return {"type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model made: an id the tool's result answers to, the function and its arguments
    (JSON text of an object, as OpenAI sends them)."""

    id: str
    name: str
    arguments: str

    def openai(self) -> dict[str, Any]:
        """The call as an assistant message's `tool_calls` item."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    def argument_values(self) -> dict[str, Any]:
        """The arguments parsed (an empty dict when they are not a JSON object)."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def new_call_id() -> str:
    """A fresh id for a tool call, shaped like OpenAI's ("call_" and 24 letters and digits)."""
    return "call_" + secrets.token_hex(12)
