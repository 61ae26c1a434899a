"""A grammar (llama.cpp's GBNF) that holds a reply to tool calls: `tool_choice` "required" or a
named function. Every token then keeps the reply a call, in the model's syntax, to one of the
tools, with arguments of that tool's schema; even a small model cannot answer otherwise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from app.core.tools.calls import ToolSpec
from app.core.tools.formats import SYNTAX, ToolFormat


class ToolGrammarError(ValueError):
    """A tool's parameters cannot be turned into a grammar; `path` says where (from the tool's
    `parameters`)."""

    def __init__(self, index: int, path: str, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.path = path


def call_grammar(tools: Sequence[ToolSpec], fmt: ToolFormat, parallel: bool) -> str:
    """The grammar of a reply made of one call (several with `parallel`) to any of `tools`."""
    from llama_cpp.llama_grammar import SchemaConverter

    syntax = SYNTAX[fmt]
    key = syntax.arguments_key
    defs: dict[str, Any] = {}
    alternatives = []
    for index, tool in enumerate(tools):
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
    try:
        call = converter.visit(converter.resolve_refs(schema, "tools"), "call")
    except (AssertionError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise ToolGrammarError(
            0, "", f"the tools' parameters cannot be turned into a grammar ({exc})"
        ) from exc
    parts = [_literal(syntax.opening), call]
    if parallel:
        parts.append(f"({_literal(syntax.between)} {call})*")
    parts.append(_literal(syntax.closing))
    root = " ".join(part for part in parts if part)
    return f"{converter.format_grammar()}\nroot ::= {root}\n"


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
