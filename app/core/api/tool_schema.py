"""Tool calling in the chat API: `tools`, `tool_choice` and `parallel_tool_calls`, and the calls
and results in a request's messages, validated; and what they ask of the reply (ToolPlan).

A call is held to its tool's schema by a grammar. With `tool_choice` "required" or a named
function the grammar holds the whole reply; with "auto" it is lazy: free text until the model
begins a call (its format's marker, such as <tool_call>), the call's arguments then held to the
schema. A schema keyword the grammar cannot enforce is refused by name for a `strict` function; for
the others it is left to the model, as OpenAI does without strict mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.api.errors import ApiError
from app.core.tools.calls import ToolSpec
from app.core.tools.formats import ToolFormat
from app.core.tools.grammar import TRIGGERS, ToolGrammarError, call_grammar
from app.core.tools.json_output import MAX_SCHEMA_CHARS, unenforceable

#: The most tools one request may offer (OpenAI's limit).
MAX_TOOLS = 128


class FunctionDef(BaseModel):
    """A function the model may call (`tools[i].function`)."""

    model_config = ConfigDict(extra="forbid")
    # OpenAI: letters, digits, underscores and dashes, at most 64.
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    #: The arguments always follow the schema: every keyword must be one the grammar enforces.
    strict: bool | None = None


class ToolDef(BaseModel):
    """One item of `tools`."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    """`tool_choice.function`: the function that must be called."""

    model_config = ConfigDict(extra="forbid")
    name: str


class NamedChoice(BaseModel):
    """`tool_choice` naming one function."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedChoice


class CallFunction(BaseModel):
    """The function of a call in an assistant message: its name and arguments (JSON text)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    arguments: str

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ValueError(f"the arguments are not JSON ({exc})") from exc
        if not isinstance(parsed, dict):
            raise ValueError("the arguments must be a JSON object")
        return value


class MessageToolCall(BaseModel):
    """One call in an assistant message's `tool_calls`."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: CallFunction


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What a request's tools ask of its reply."""

    tools: tuple[ToolSpec, ...]
    #: "auto" (the model may call tools), "required" (it must), or "named" (it must call `named`).
    choice: Literal["auto", "required", "named"]
    parallel: bool
    named: str | None = None

    def names(self) -> frozenset[str]:
        """The names of the tools a call may name."""
        return frozenset(tool.name for tool in self.tools)

    def grammar(self, fmt: ToolFormat) -> tuple[str, tuple[str, ...]]:
        """The grammar calls are held to in `fmt`, and the patterns that start it (none: it holds the
        whole reply). Raises ApiError naming what cannot be turned into one."""
        indexes = [
            i for i, tool in enumerate(self.tools) if self.choice != "named" or tool.name == self.named
        ]
        tools = [self.tools[i] for i in indexes]
        try:
            grammar = call_grammar(tools, fmt, self.parallel, indexes)
        except ToolGrammarError as exc:
            where = f"tools[{exc.index}].function.parameters{exc.path}"
            raise ApiError(400, f"{where}: {exc}", "unsupported_schema", where) from exc
        return grammar, (TRIGGERS[fmt],) if self.choice == "auto" else ()


def tool_plan(
    tools: list[ToolDef] | None, choice: ToolChoice | None, parallel: bool | None
) -> ToolPlan | None:
    """The plan for a request's tool fields (None: no tools, or tool_choice "none"). Raises ApiError."""
    if not tools:
        if isinstance(choice, NamedChoice) or choice == "required":
            raise ApiError(
                400, "tool_choice asks for a tool call, but the request offers no tools.",
                "invalid_value", "tool_choice",
            )  # fmt: skip
        return None
    if len(tools) > MAX_TOOLS:
        raise ApiError(400, f"At most {MAX_TOOLS} tools may be offered.", "invalid_value", "tools")
    specs: list[ToolSpec] = []
    for index, tool in enumerate(tools):
        function = tool.function
        if any(spec.name == function.name for spec in specs):
            where = f"tools[{index}].function.name"
            raise ApiError(400, f"{where}: “{function.name}” is offered twice.", "invalid_value", where)
        parameters = function.parameters or {}
        where = f"tools[{index}].function.parameters"
        if len(json.dumps(parameters)) > MAX_SCHEMA_CHARS:
            raise ApiError(400, f"{where} is too large.", "schema_too_large", where)
        if function.strict:
            for path, problem in unenforceable(parameters, where):
                raise ApiError(400, f"{path}: {problem} (the function is strict)", "unsupported_schema", path)
        specs.append(ToolSpec(function.name, function.description or "", parameters))
    if choice == "none":
        return None
    parallel = True if parallel is None else parallel
    if not isinstance(choice, NamedChoice):
        return ToolPlan(tuple(specs), choice or "auto", parallel)
    name = choice.function.name
    if name not in {spec.name for spec in specs}:
        raise ApiError(
            400, f"tool_choice names “{name}”, which is not one of the tools offered.",
            "invalid_value", "tool_choice.function.name",
        )  # fmt: skip
    return ToolPlan(tuple(specs), "named", parallel, name)
