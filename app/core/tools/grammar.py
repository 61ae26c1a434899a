"""A grammar (llama.cpp's GBNF) that holds a reply to tool calls: `tool_choice` "required" or a
named function. Every token then keeps the reply a call, in the model's syntax, to one of the
tools, with arguments of that tool's schema; even a small model cannot answer otherwise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from typing import Any

from app.core.tools.calls import ToolSpec
from app.core.tools.formats import SYNTAX, ToolFormat

#: The largest bound of a length or a count a grammar spells out (the converter writes one nested
#: rule per unit: a bound of 10 million is a grammar of hundreds of megabytes).
MAX_BOUND = 1000
#: The deepest schema (a deeper one is almost certainly an accident or an attack) and the largest
#: grammar accepted, for tools and response_format alike.
MAX_DEPTH = 32
MAX_GRAMMAR_CHARS = 2_000_000
_BOUNDS = ("minLength", "maxLength", "minItems", "maxItems")
#: What begins a call in each format: the lazy grammar of tool_choice "auto" starts there.
TRIGGERS = {
    # The marker and the call's "{": only then is the grammar fed the text (from the marker on).
    ToolFormat.HERMES: r"<tool_call>\s*\{",
    ToolFormat.LLAMA3: r'^\s*(\{)\s*"name"',
    ToolFormat.MISTRAL: r"\[TOOL_CALLS\]",
}


def schema_limits(schema: Any, where: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every place in `schema` that is nested too deeply or bounds a length or count beyond what a
    grammar can spell out, as (path, why)."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from schema_limits(item, f"{where}[{index}]", depth + 1)
        return
    if not isinstance(schema, dict):
        return
    if depth > MAX_DEPTH:
        yield where, f"the schema is nested more than {MAX_DEPTH} levels deep"
        return
    for key, value in schema.items():
        path = f"{where}.{key}"
        if key in _BOUNDS and isinstance(value, int | float) and value > MAX_BOUND:
            yield path, f"{key} is {value:,}; a grammar can hold at most {MAX_BOUND:,}"
        elif isinstance(value, dict | list):
            yield from schema_limits(value, path, depth + 1)


class ToolGrammarError(ValueError):
    """A tool's parameters cannot be turned into a grammar; `path` says where (from the tool's
    `parameters`)."""

    def __init__(self, index: int, path: str, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.path = path


def call_grammar(
    tools: Sequence[ToolSpec], fmt: ToolFormat, parallel: bool, indexes: Sequence[int] | None = None
) -> str:
    """The grammar of a reply made of one call (several with `parallel`) to any of `tools`
    (`indexes`: where each stands in the request, for errors; by default their order)."""
    from llama_cpp.llama_grammar import SchemaConverter

    syntax = SYNTAX[fmt]
    key = syntax.arguments_key
    defs: dict[str, Any] = {}
    alternatives = []
    for position, tool in enumerate(tools):
        index = indexes[position] if indexes is not None else position
        kind = tool.parameters.get("type") if tool.parameters else None
        if kind not in (None, "object"):
            raise ToolGrammarError(index, ".type", f"a function's parameters are an object, not “{kind}”")
        for path, problem in schema_limits(tool.parameters, ""):
            raise ToolGrammarError(index, path, problem)
        parameters = _lifted(tool.parameters, f"t{index}-", defs, index)
        alternatives.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, key: parameters},
                "required": ["name", key],
                "additionalProperties": False,
            }
        )
    schema: dict[str, Any] = {"oneOf": alternatives} if len(alternatives) > 1 else alternatives[0]
    if defs:
        schema["$defs"] = defs
    converter = SchemaConverter(
        prop_order={"name": 0, key: 1}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    first = indexes[0] if indexes else 0
    try:
        call = converter.visit(converter.resolve_refs(schema, "tools"), "call")
        rules = converter.format_grammar()
    except (AssertionError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        problem = str(exc) if len(str(exc)) < 200 else str(exc)[:200] + "…"
        raise ToolGrammarError(
            first, "", f"the parameters cannot be turned into a grammar ({problem})"
        ) from exc
    # White space is free around the markers: a model that writes "<tool_call>{" or
    # "<tool_call>\n\n{" is not refused (a lazy grammar is fed the text from the marker on).
    parts = [_literal(syntax.opening.strip()), "tool-ws", call]
    if parallel:
        parts.append(f"(tool-ws {_literal(syntax.between.strip())} tool-ws {call})*")
    parts += ["tool-ws", _literal(syntax.closing.strip())]
    root = " ".join(part for part in parts if part)
    grammar = f"{rules}\ntool-ws ::= [ \\t\\n]{{0,4}}\nroot ::= {root}\n"
    if len(grammar) > MAX_GRAMMAR_CHARS:
        raise ToolGrammarError(first, "", "the tools' schemas make a grammar too large to enforce")
    return grammar


def _literal(text: str) -> str:
    """`text` as a GBNF literal ("" when empty: left out). JSON's escapes are GBNF's."""
    return json.dumps(text) if text else ""


def _lifted(parameters: dict[str, Any], prefix: str, defs: dict[str, Any], index: int) -> dict[str, Any]:
    """A tool's parameters with their `$defs` moved into `defs` under names starting with `prefix`
    (each tool's definitions kept apart in one grammar), references rewritten to match."""
    schema = copy.deepcopy(parameters) if parameters else {}
    if not schema or ("type" not in schema and not {"properties", "$ref", "oneOf", "anyOf"} & schema.keys()):
        schema = {"type": "object", **schema}  # arguments are always an object
    for section in ("$defs", "definitions"):
        for name, definition in (schema.pop(section, None) or {}).items():
            defs[f"{prefix}{name}"] = definition
    _rewrite_refs(schema, prefix, index, "")
    for name in [n for n in defs if n.startswith(prefix)]:
        _rewrite_refs(defs[name], prefix, index, f".$defs.{name.removeprefix(prefix)}")
    return schema


def _rewrite_refs(node: Any, prefix: str, index: int, path: str) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _rewrite_refs(item, prefix, index, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        for section in ("#/$defs/", "#/definitions/"):
            if ref.startswith(section) and "/" not in ref[len(section) :]:
                node["$ref"] = f"#/$defs/{prefix}{ref[len(section) :]}"
                break
        else:
            raise ToolGrammarError(
                index,
                f"{path}.$ref",
                f"only references to “#/$defs/…” are followed in parameters, not “{ref}”",
            )
    for key, value in node.items():
        if key != "$ref":
            _rewrite_refs(value, prefix, index, f"{path}.{key}")
