"""Structured output: OpenAI's `response_format` turned into a llama.cpp grammar (GBNF), so every
token of the reply keeps it valid JSON (of the schema, when one is given), streamed or not.

llama-cpp-python's converter writes the grammar from a JSON schema. It quietly ignores keywords it
does not know (a `minimum`, a `format: email`), which would let a reply break the schema; so the
schema is walked first and any keyword the grammar cannot enforce is refused by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.api.errors import ApiError
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


class JsonSchemaFormat(BaseModel):
    """`response_format.json_schema`: a named schema (OpenAI requires the name)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    #: OpenAI's strict mode: the grammar always holds the reply to the schema, so both are honoured.
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """`response_format`: plain text, any JSON object, or JSON of a schema."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required when type is “json_schema”")
        if self.type != "json_schema" and self.json_schema is not None:
            raise ValueError(f"json_schema is only read when type is “json_schema”, not “{self.type}”")
        return self

    def grammar(self) -> str | None:
        """The GBNF grammar the reply must follow (None for plain text). Raises ApiError naming what
        in the schema cannot be enforced."""
        from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

        if self.type == "text":
            return None
        if self.type == "json_object":
            return JSON_GBNF  # an object at the top, as OpenAI's JSON mode
        assert self.json_schema is not None
        schema = self.json_schema.schema_
        where = "response_format.json_schema.schema"
        if not schema:  # no schema, or {}: any JSON value
            return JSON_GBNF
        text = json.dumps(schema)
        if len(text) > MAX_SCHEMA_CHARS:
            raise ApiError(
                400, f"{where} is {len(text):,} characters long; at most {MAX_SCHEMA_CHARS:,} are accepted.",
                "schema_too_large", where,
            )  # fmt: skip
        for path, problem in [*unenforceable(schema, where), *schema_limits(schema, where)]:
            raise ApiError(400, f"{path}: {problem}", "unsupported_schema", path)
        try:
            return json_schema_to_gbnf(text)
        except (AssertionError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise ApiError(
                400, f"{where}: this schema cannot be turned into a grammar ({exc}).",
                "unsupported_schema", where,
            ) from exc  # fmt: skip


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
