"""Tools and tool calls put into the messages a chat template renders.

With a template that renders tools itself (`native`), the definitions go to it as `tools` and the
history keeps its structure (calls with their arguments as objects, as templates expect). Otherwise
the definitions become part of the system message (GENERIC_INSTRUCTIONS, documented in the README),
calls are written in the Hermes syntax they were asked in, and tool results become user turns in
<tool_response> blocks: a template that knows nothing of tools still renders every turn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from app.core.tools.calls import ToolSpec
from app.core.tools.formats import ToolFormat

#: Fireside's generic tool prompt, for a model whose template does not render tools. {tools} is
#: one JSON definition per line.
GENERIC_INSTRUCTIONS = (
    "You can call functions (tools) to help answer. These are their definitions, in JSON Schema:\n"
    "<tools>\n{tools}\n</tools>\n"
    "To call one, answer with nothing but this, once for each call:\n"
    "<tool_call>\n"
    '{{"name": "<function name>", "arguments": <its arguments as a JSON object>}}\n'
    "</tool_call>\n"
    "Each result comes back in a <tool_response> block. When no function is needed, answer normally."
)

Turn = dict[str, Any]


def template_messages(
    messages: Sequence[Turn],
    tools: Sequence[ToolSpec] | None,
    native: bool,
    fmt: ToolFormat = ToolFormat.HERMES,
) -> tuple[list[Turn], list[dict[str, Any]] | None]:
    """The messages (and `tools` argument) to render with a chat template that renders tools
    itself (`native`, in syntax `fmt`) or not."""
    if native:
        return _native(messages, fmt), [tool.openai() for tool in tools] if tools else None
    return _generic(messages, tools), None


def _arguments(text: Any) -> Any:
    """A call's arguments as an object, as templates write them with `tojson` (text that does not
    parse stays text)."""
    if not isinstance(text, str):
        return text
    if not text.strip():
        return {}  # OpenAI's clients send "" for a call without arguments
    try:
        return json.loads(text)
    except ValueError:
        return text


def _names(messages: Sequence[Turn]) -> dict[str, str]:
    """The function name of every call in `messages`, by call id (a tool result names its function)."""
    names = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            names[str(call.get("id"))] = str(call.get("function", {}).get("name", ""))
    return names


def _mistral_id(call_id: str) -> str:
    """A call id as Mistral's templates demand it (9 letters and digits), the same for the same id."""
    digest = hashlib.sha256(call_id.encode("utf-8")).hexdigest()
    return call_id if len(call_id) == 9 and call_id.isalnum() else digest[:9]


def _one_call_each(messages: Sequence[Turn]) -> list[Turn]:
    """Assistant messages of several calls split into one message per call (Llama 3.1's template
    renders one call at a time)."""
    out: list[Turn] = []
    for message in messages:
        calls = message.get("tool_calls") or []
        if len(calls) < 2:
            out.append(dict(message))
            continue
        out.append({**message, "tool_calls": calls[:1]})
        out.extend({"role": "assistant", "content": "", "tool_calls": [call]} for call in calls[1:])
    return out


def _native(messages: Sequence[Turn], fmt: ToolFormat = ToolFormat.HERMES) -> list[Turn]:
    """The messages as templates that render tools read them (ids and one-call turns as `fmt`'s
    templates require)."""
    names = _names(messages)
    if fmt is ToolFormat.LLAMA3:
        messages = _one_call_each(messages)
    ident = _mistral_id if fmt is ToolFormat.MISTRAL else str
    out: list[Turn] = []
    for message in messages:
        turn: Turn = {"role": message["role"], "content": message.get("content") or ""}
        if calls := message.get("tool_calls"):
            turn["tool_calls"] = [
                {
                    "id": ident(call["id"]),
                    "type": "function",
                    "function": {
                        "name": call["function"]["name"],
                        "arguments": _arguments(call["function"]["arguments"]),
                    },
                }
                for call in calls
            ]
        if message["role"] == "tool":
            turn["tool_call_id"] = ident(str(message.get("tool_call_id", "")))
            turn["name"] = names.get(str(message.get("tool_call_id")), "")
        out.append(turn)
    return out


def call_block(name: str, arguments: Any) -> str:
    """One call in the generic (Hermes) syntax."""
    body = json.dumps({"name": name, "arguments": _arguments(arguments)}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _generic(messages: Sequence[Turn], tools: Sequence[ToolSpec] | None) -> list[Turn]:
    """The messages for a template that knows nothing of tools: calls as text, results as user
    turns (a user message right after results joins their turn: templates want turns to alternate)."""
    names = _names(messages)
    out: list[Turn] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            result = json.dumps(
                {"name": names.get(str(message.get("tool_call_id")), ""), "content": content},
                ensure_ascii=False,
            )
            block = f"<tool_response>\n{result}\n</tool_response>"
            if out and out[-1].get("tool_results"):  # results of one turn's calls: one user turn
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "tool_results": True})
            continue
        if role == "user" and out and out[-1].get("tool_results"):
            out[-1]["content"] += "\n\n" + content
            out[-1]["tool_results"] = False
            continue
        if calls := message.get("tool_calls"):
            blocks = [call_block(c["function"]["name"], c["function"]["arguments"]) for c in calls]
            content = "\n".join(([content] if content else []) + blocks)
        out.append({"role": role, "content": content})
    for turn in out:
        turn.pop("tool_results", None)
    if tools:
        listing = "\n".join(json.dumps(tool.openai(), ensure_ascii=False) for tool in tools)
        instructions = GENERIC_INSTRUCTIONS.format(tools=listing)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{instructions}"}
        else:
            out.insert(0, {"role": "system", "content": instructions})
    return out
