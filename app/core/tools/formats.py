"""The ways models write tool calls, and which one a model uses (read from its chat template).

A chat template that mentions `tools` renders the tool definitions itself, in the words the model
was trained on, and the model answers in its family's syntax. A template that does not (the starter
model's) gets Fireside's generic prompt (see prompting.py), which asks for the Hermes syntax: the
one most small instruct models have seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class ToolFormat(Enum):
    """How a model writes its calls."""

    #: Hermes, Qwen, SmolLM3 and most fine-tunes: <tool_call>{"name": …, "arguments": {…}}</tool_call>.
    HERMES = "hermes"
    #: Llama 3.1 to 3.3: a bare {"name": …, "parameters": {…}} (after <|python_tag|> at times).
    LLAMA3 = "llama3"
    #: Mistral and Mixtral: [TOOL_CALLS][{"name": …, "arguments": {…}}, …].
    MISTRAL = "mistral"


#: What each format writes around one call, and what it calls the arguments.
@dataclass(frozen=True, slots=True)
class Syntax:
    """The text around calls in one format (see ToolFormat)."""

    #: Written before the calls (once), between two calls, and after the calls.
    opening: str
    between: str
    closing: str
    #: The key of the arguments in a call's JSON object.
    arguments_key: str


SYNTAX = {
    ToolFormat.HERMES: Syntax(
        "<tool_call>\n", "\n</tool_call>\n<tool_call>\n", "\n</tool_call>", "arguments"
    ),
    ToolFormat.LLAMA3: Syntax("", "\n", "", "parameters"),
    ToolFormat.MISTRAL: Syntax("[TOOL_CALLS][", ", ", "]", "arguments"),
}

_MENTIONS_TOOLS = re.compile(r"\btools\b")


@dataclass(frozen=True, slots=True)
class TemplateTools:
    """What a chat template does with tools."""

    #: The template renders the `tools` it is given (else Fireside's generic prompt is used).
    native: bool
    #: The syntax the model writes calls in.
    format: ToolFormat


def template_tools(template: str | None) -> TemplateTools:
    """How the model with chat `template` (None: it has none) is given tools and writes its calls."""
    if not template or not _MENTIONS_TOOLS.search(template):
        return TemplateTools(native=False, format=ToolFormat.HERMES)
    if "[TOOL_CALLS]" in template:
        return TemplateTools(native=True, format=ToolFormat.MISTRAL)
    if "<|python_tag|>" in template or "ipython" in template:
        return TemplateTools(native=True, format=ToolFormat.LLAMA3)
    # <tool_call> templates, and those of other families: Hermes is what they most often resemble,
    # and the parser reads every format whichever is expected.
    return TemplateTools(native=True, format=ToolFormat.HERMES)
