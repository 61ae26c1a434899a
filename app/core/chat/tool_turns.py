"""What the chat session needs for tool calls: who runs them, what a reply is offered, and how the
calls read from a reply become cards waiting for the user."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from app.core.chat.messages import Message, Role
from app.core.chat.tool_uses import ToolStatus, ToolUse
from app.core.tools.calls import ToolCall, ToolSpec
from app.core.tools.formats import template_tools
from app.core.tools.grammar import TRIGGERS, call_grammar
from app.core.tools.mcp_client import ToolResult

#: The most replies in a row that may call tools after one message of the user; the next reply is
#: offered none, so a model that calls tools forever still ends with an answer.
MAX_TOOL_ROUNDS = 8


class ToolRunner(Protocol):
    """What the session needs of whoever runs tools (the window's MCP toolbox)."""

    def run(self, name: str, arguments: dict[str, Any], done: Callable[[ToolResult], None]) -> None:
        """Call tool `name`; `done` gets its result later, on the session's thread."""

    def always_allowed(self, name: str) -> bool:
        """The user chose "Always allow this tool" for `name`."""

    def allow_always(self, name: str) -> None:
        """Remember "Always allow this tool" for `name`."""


def call_rules(
    tools: Sequence[ToolSpec], chat_template: str | None, required: bool = False
) -> tuple[str, tuple[str, ...]]:
    """The grammar that holds a call's arguments to its tool's schema, in the model's own call
    syntax, and the patterns that start it: lazy (free text until the model begins a call), or
    holding the whole reply to one call when one is `required` (one is enough: the reply after its
    result may call again, and a second call a small model starts may not fit in max tokens)."""
    fmt = template_tools(chat_template).format
    grammar = call_grammar(tools, fmt, not required, list(range(len(tools))))
    return grammar, () if required else (TRIGGERS[fmt],)


def proposed(calls: Sequence[ToolCall], names: Collection[str]) -> list[ToolUse]:
    """The calls of a reply as cards: waiting for the user, or failed at once when the model named
    a tool it was not offered or sent arguments that are not a JSON object."""
    uses = []
    for call in calls:
        use = ToolUse(call.id, call.name, call.arguments)
        if call.name not in names:
            use.status, use.result = ToolStatus.FAILED, f"There is no tool called “{call.name}” here."
        elif not use.arguments_valid:
            use.status = ToolStatus.FAILED
            shown = call.arguments if len(call.arguments) < 200 else call.arguments[:200] + "…"
            use.result = f"The arguments are not a JSON object, so the tool was not run: {shown}"
        uses.append(use)
    return uses


def rounds_before(messages: Sequence[Message]) -> int:
    """How many replies that called tools come after the user's last message."""
    rounds = 0
    for message in reversed(messages):
        if message.role is Role.USER:
            break
        if message.tool_uses:
            rounds += 1
    return rounds
