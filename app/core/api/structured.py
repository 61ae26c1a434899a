"""Structured output: OpenAI's `response_format` turned into a llama.cpp grammar (GBNF), so every
token of the reply keeps it valid JSON (of the schema, when one is given), streamed or not.

llama-cpp-python's converter writes the grammar from a JSON schema. It quietly ignores keywords it
does not know (a `minimum`, a `format: email`), which would let a reply break the schema; so the
schema is walked first and any keyword the grammar cannot enforce is refused by name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.api.errors import ApiError
from app.core.tools.json_output import SchemaError, json_grammar


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
        if self.type == "text":
            return None
        # json_object: an object at the top, as OpenAI's JSON mode; no schema, or {}: the same.
        schema = self.json_schema.schema_ if self.json_schema is not None else None
        try:
            return json_grammar(schema, "response_format.json_schema.schema")
        except SchemaError as exc:
            raise ApiError(400, str(exc), exc.code, exc.path) from exc
