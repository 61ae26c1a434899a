"""Structured output through the local API server: `response_format` json_object and json_schema,
whole and streamed, the openai SDK's `parse()`, and schemas the grammar cannot enforce refused."""

from __future__ import annotations

import json
from typing import Annotated, Any

import openai
import pydantic
import pytest

from app.core.api.structured import ResponseFormat
from app.core.tools.json_output import unenforceable
from tests.unit.api.served import MODEL, Served

PARIS = [{"role": "user", "content": "Describe Paris as JSON: its name, its country and its population."}]
CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
        "population": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
    },
    "required": ["name", "country", "population"],
    "additionalProperties": False,
}


def _reply(served: Served, stream: bool, **kwargs: Any) -> tuple[str, str]:
    """The reply's text and finish reason, whole or put together from the streamed chunks."""
    args: dict[str, Any] = {"model": MODEL, "messages": PARIS, "max_tokens": 200, "temperature": 0}
    args.update(kwargs)
    if not stream:
        reply = served.client.chat.completions.create(**args)
        return reply.choices[0].message.content or "", str(reply.choices[0].finish_reason)
    text, finish = "", ""
    for chunk in served.client.chat.completions.create(stream=True, **args):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    return text, finish


def _valid_city(value: object) -> None:
    """Check a reply against CITY (the test's own check: no schema library needed for this one)."""
    assert isinstance(value, dict) and set(value) <= set(CITY["properties"])  # type: ignore[arg-type]
    assert {"name", "country", "population"} <= set(value)
    assert isinstance(value["name"], str) and len(value["name"]) <= 40
    assert isinstance(value["country"], str) and len(value["country"]) <= 40
    assert isinstance(value["population"], int) and not isinstance(value["population"], bool)
    tags = value.get("tags", [])
    assert isinstance(tags, list) and len(tags) <= 3
    assert all(isinstance(t, str) and len(t) <= 20 for t in tags)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_json_object_replies_are_json_objects(served: Served, stream: bool) -> None:
    free, _ = _reply(served, stream)
    with pytest.raises(ValueError):
        json.loads(free)  # the model left to itself writes prose about Paris
    text, finish = _reply(served, stream, response_format={"type": "json_object"})
    assert finish == "stop", text
    assert isinstance(json.loads(text), dict), text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("seed", [1, 2])
def test_json_schema_replies_follow_the_schema_even_when_sampled(
    served: Served, stream: bool, seed: int
) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
    text, finish = _reply(served, stream, response_format=response_format, temperature=0.9, seed=seed)
    assert finish == "stop", text
    _valid_city(json.loads(text))


class City(pydantic.BaseModel):
    """What the SDK's parse() is asked for (lengths bounded: a small model rambles otherwise)."""

    name: str = pydantic.Field(max_length=40)
    country: str = pydantic.Field(max_length=40)
    population: int
    landmarks: list[Annotated[str, pydantic.Field(max_length=30)]] = pydantic.Field(max_length=3)
    capital: bool | None = None


def test_the_sdks_parse_fills_a_pydantic_model(served: Served) -> None:
    reply = served.client.chat.completions.parse(
        model=MODEL, messages=PARIS, max_tokens=300, temperature=0, response_format=City
    )
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, City), reply.choices[0].message.content
    assert parsed.name


def test_replies_with_different_formats_at_once_each_keep_their_own(served: Served) -> None:
    """Each sequence of the batch has its own grammar (and one without any)."""
    import concurrent.futures

    formats: list[dict[str, Any] | None] = [
        {"type": "json_object"},
        None,
        {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}},
        {"type": "json_schema", "json_schema": {"name": "yes_no", "schema": {"enum": ["yes", "no"]}}},
    ]

    def ask(response_format: dict[str, Any] | None) -> tuple[str, str]:
        extra = {"response_format": response_format} if response_format else {}
        return _reply(served, False, temperature=0.7, seed=5, **extra)

    with concurrent.futures.ThreadPoolExecutor(len(formats)) as pool:
        replies = list(pool.map(ask, formats))
    assert isinstance(json.loads(replies[0][0]), dict)
    _valid_city(json.loads(replies[2][0]))
    assert json.loads(replies[3][0]) in ("yes", "no")
    assert replies[1][0]  # free text, whatever it is


def _schema(schema: object, name: str = "a") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


BAD_FORMATS = [
    ({"type": "json_schema"}, "response_format", "json_schema is required"),
    ({"type": "xml"}, "response_format.type", "Input should be"),
    ({"type": "json_object", "json_schema": {"name": "a"}}, "response_format", "only read when"),
    (
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "integer", "minimum": 0}}},
        "response_format.json_schema.schema.minimum",
        "“minimum” is not supported",
    ),
    (
        _schema({"properties": {"e": {"format": "email"}}}),
        "response_format.json_schema.schema.properties.e.format",
        "format “email” is not supported",
    ),
    (
        {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"$ref": "https://example.com/s.json"}},
        },
        "response_format.json_schema.schema.$ref",
        "nothing is fetched",
    ),
    (
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "color"}}},
        "response_format.json_schema.schema",
        "cannot be turned into a grammar",
    ),
    (_schema({"format": ["date"]}), "response_format.json_schema.schema.format", "format must be a string"),
    (_schema({}, name="a b"), "response_format.json_schema.name", ""),
    (
        _schema({"type": "string", "maxLength": 10**8}),
        "response_format.json_schema.schema.maxLength",
        "at most 1,000",
    ),
    (_schema("{}"), "response_format.json_schema.schema", ""),
]


@pytest.mark.parametrize(("response_format", "param", "said"), BAD_FORMATS)
def test_formats_that_cannot_be_enforced_are_refused_by_name(
    served: Served, response_format: dict[str, Any], param: str, said: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _reply(served, False, response_format=response_format)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param, error
    assert said in error["message"], error["message"]
    assert served.worker.replies_running() == 0


def test_the_schema_walk_finds_every_unenforceable_keyword() -> None:
    schema = {
        "type": "object",
        "title": "annotations pass",
        "properties": {
            "a": {"type": "number", "exclusiveMaximum": 3},
            "b": {"anyOf": [{"type": "string", "format": "date"}, {"not": {"type": "null"}}]},
        },
        "$defs": {"c": {"type": "string", "contentEncoding": "base64"}},
    }
    found = [path for path, _why in unenforceable(schema, "s")]
    assert found == [
        "s.properties.a.exclusiveMaximum",
        "s.properties.b.anyOf[1].not",
        "s.$defs.c.contentEncoding",
    ]
    deep: dict[str, Any] = {"type": "array"}
    node = deep
    for _ in range(40):
        node["items"] = {"type": "array"}
        node = node["items"]
    assert any("nested more than" in why for _path, why in unenforceable(deep, "s"))
    assert ResponseFormat(type="text").grammar() is None
    assert "root" in (ResponseFormat(type="json_object").grammar() or "")
