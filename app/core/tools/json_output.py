"""JSON output held to a schema by a grammar: what of JSON Schema a grammar can enforce, and the
grammar itself (llama-cpp-python converts a schema to GBNF). Used by the API's `response_format` and
by a preset's JSON mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from app.core.tools.grammar import MAX_DEPTH, schema_limits

#: The keywords the converter turns into grammar rules.
ENFORCED = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems",
        "minItems", "maxItems", "enum", "const", "oneOf", "anyOf", "allOf", "$ref", "pattern",
        "format", "minLength", "maxLength",
    }
)  # fmt: skip
#: Keywords that describe and constrain nothing: accepted as they are.
ANNOTATIONS = frozenset(
    {
        "title", "description", "examples", "default", "$comment", "$schema", "$id", "$defs",
        "definitions", "readOnly", "writeOnly", "deprecated",
    }
)  # fmt: skip
#: Where sub-schemas sit: keyword -> "one" (a schema), "many" (a list), "map" (name -> schema).
NESTED = {
    "items": "one", "additionalProperties": "one",
    "prefixItems": "many", "oneOf": "many", "anyOf": "many", "allOf": "many",
    "properties": "map", "$defs": "map", "definitions": "map",
}  # fmt: skip
#: The largest schema accepted, as JSON text.
MAX_SCHEMA_CHARS = 100_000


class SchemaError(ValueError):
    """A schema cannot hold a reply: `path` says where, the message why."""

    def __init__(self, path: str, message: str, code: str = "unsupported_schema") -> None:
        super().__init__(message)
        self.path = path
        self.code = code


def json_grammar(schema: dict[str, Any] | None, where: str = "schema") -> str:
    """The GBNF grammar of JSON following `schema` (None or {}: any JSON object). Raises SchemaError
    naming the first thing in the schema that cannot be enforced."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if not schema:
        return JSON_GBNF
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_CHARS:
        raise SchemaError(
            where, f"{where} is {len(text):,} characters long; at most {MAX_SCHEMA_CHARS:,} are accepted.",
            "schema_too_large",
        )  # fmt: skip
    for path, problem in [*unenforceable(schema, where), *schema_limits(schema, where)]:
        raise SchemaError(path, f"{path}: {problem}")
    try:
        return json_schema_to_gbnf(text)
    except (AssertionError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise SchemaError(where, f"{where}: this schema cannot be turned into a grammar ({exc}).") from exc


def unenforceable(schema: object, where: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every place in `schema` the grammar could not hold a reply to, as (path, why)."""
    from llama_cpp.llama_grammar import STRING_FORMAT_RULES

    if isinstance(schema, bool):
        return  # true (anything) and false (nothing) are schemas too
    if not isinstance(schema, dict):
        yield where, f"a schema must be a JSON object, not {type(schema).__name__}"
        return
    if depth > MAX_DEPTH:
        yield where, f"the schema is nested more than {MAX_DEPTH} levels deep"
        return
    for key, value in schema.items():
        path = f"{where}.{key}"
        if key not in ENFORCED and key not in ANNOTATIONS:
            yield path, f"“{key}” is not supported: the reply could not be held to it, so it is refused"
            continue
        if key == "format" and not isinstance(value, str):
            yield path, f"format must be a string, not {type(value).__name__}"
        elif key == "format" and value not in STRING_FORMAT_RULES:
            known = ", ".join(sorted(STRING_FORMAT_RULES))
            yield path, f"format “{value}” is not supported (supported: {known})"
        if key == "$ref" and not (isinstance(value, str) and value.startswith("#/")):
            yield path, "only references inside the schema (“#/…”) are followed; nothing is fetched"
        kind = NESTED.get(key)
        if kind == "one":
            yield from unenforceable(value, path, depth + 1)
        elif kind == "many" and isinstance(value, list):
            for index, item in enumerate(value):
                yield from unenforceable(item, f"{path}[{index}]", depth + 1)
        elif kind == "map" and isinstance(value, dict):
            for name, item in value.items():
                yield from unenforceable(item, f"{path}.{name}", depth + 1)
        elif kind is not None:
            yield path, f"“{key}” must hold {'a list of schemas' if kind == 'many' else 'schemas by name'}"
