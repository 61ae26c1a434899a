"""Tool calling through the local API server with the openai SDK and the starter model: calls held
to their schemas (whole and streamed), a tool's result continuing the chat, the SDK's parse() of a
Pydantic tool, and every malformed tool field refused by name."""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
import pytest

from app.core.tools.grammar import schema_limits
from tests.unit.api.served import MODEL, Served

ASK = [{"role": "user", "content": "What is the weather like in Paris today?"}]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": WEATHER_SCHEMA,
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time now in a time zone.",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 30}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}


def _valid_weather(arguments: str) -> dict[str, Any]:
    """The arguments of a get_weather call, checked against WEATHER_SCHEMA."""
    value = json.loads(arguments)
    assert isinstance(value, dict) and set(value) <= {"city", "unit", "days"}, value
    assert isinstance(value["city"], str) and len(value["city"]) <= 40
    assert value["unit"] in ("celsius", "fahrenheit")
    assert isinstance(value.get("days", 0), int)
    return value


def _ask(served: Served, stream: bool, **kwargs: Any) -> tuple[str | None, list[dict[str, Any]], str]:
    """The reply's content, its tool calls (as dicts) and finish reason, whole or from the chunks."""
    args: dict[str, Any] = {
        "model": MODEL,
        "messages": ASK,
        "max_tokens": 200,
        "temperature": 0,
        "tools": [WEATHER],
    }
    args.update(kwargs)
    if not stream:
        reply = served.client.chat.completions.create(**args)
        message = reply.choices[0].message
        calls = [call.model_dump() for call in message.tool_calls or []]
        return message.content, calls, str(reply.choices[0].finish_reason)
    content, finish = "", ""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in served.client.chat.completions.create(stream=True, **args):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for piece in delta.tool_calls or []:  # the pieces of each call, joined by position
            call = calls.setdefault(
                piece.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = piece.id or call["id"]
            if piece.function is not None:
                call["function"]["name"] += piece.function.name or ""
                call["function"]["arguments"] += piece.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    return content or None, [calls[i] for i in sorted(calls)], finish


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_required_call_is_a_valid_call_even_when_sampled(served: Served, stream: bool, seed: int) -> None:
    content, calls, finish = _ask(served, stream, tool_choice="required", temperature=0.9, seed=seed)
    assert finish == "tool_calls", (content, calls)
    assert calls and not content
    for call in calls:
        assert call["type"] == "function" and call["function"]["name"] == "get_weather"
        assert call["id"].startswith("call_")
        _valid_weather(call["function"]["arguments"])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_named_function_is_the_one_called_and_only_once_without_parallel_calls(
    served: Served, stream: bool
) -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    content, calls, finish = _ask(
        served, stream, tools=[WEATHER, TIME], tool_choice=choice, parallel_tool_calls=False
    )
    assert finish == "tool_calls" and len(calls) == 1, (content, calls)
    assert calls[0]["function"]["name"] == "get_time"
    zone = json.loads(calls[0]["function"]["arguments"])["zone"]
    assert isinstance(zone, str) and len(zone) <= 30


def test_a_tool_result_continues_the_chat(served: Served) -> None:
    _, calls, _ = _ask(served, False, tool_choice="required", parallel_tool_calls=False)
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "It is 31 degrees and sunny in Paris."},
    ]
    reply = served.client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], tool_choice="none", max_tokens=60, temperature=0
    )
    answer = reply.choices[0].message
    assert answer.content and not answer.tool_calls
    assert reply.choices[0].finish_reason in ("stop", "length")
    # The result is in the prompt: a different result is a different prompt.
    other = [*history[:-1], {**history[-1], "content": "Snow."}]
    again = served.client.chat.completions.create(
        model=MODEL, messages=other, tools=[WEATHER], tool_choice="none", max_tokens=1, temperature=0
    )
    assert reply.usage is not None and again.usage is not None
    assert reply.usage.prompt_tokens > again.usage.prompt_tokens


def test_auto_lets_the_model_answer_in_words(served: Served) -> None:
    question = [{"role": "user", "content": "Say hello to me."}]
    content, calls, finish = _ask(served, False, messages=question, tool_choice="auto")
    assert finish in ("stop", "length") or calls, content
    if not calls:
        assert content and "<tool_call>" not in content


class Weather(pydantic.BaseModel):
    """A Pydantic tool, as the SDK's pydantic_function_tool turns it into a strict function."""

    city: str = pydantic.Field(max_length=40)
    unit: str = pydantic.Field(pattern=r"^(celsius|fahrenheit)$")


def test_the_sdks_parse_reads_a_pydantic_tools_arguments(served: Served) -> None:
    reply = served.client.chat.completions.parse(
        model=MODEL,
        messages=ASK,
        max_tokens=200,
        temperature=0,
        tools=[openai.pydantic_function_tool(Weather, name="get_weather")],
        tool_choice="required",
    )
    calls = reply.choices[0].message.tool_calls or []
    assert calls, reply.choices[0].message
    assert isinstance(calls[0].function.parsed_arguments, Weather)


DEEP: dict[str, Any] = {"type": "object"}
_node = DEEP
for _ in range(300):  # a 12 KB body nested 300 levels deep
    _node["properties"] = {"x": {"type": "object"}}
    _node = _node["properties"]["x"]

BAD = [
    (
        {"tools": [{"type": "function", "function": {"description": "no name"}}]},
        "tools[0].function.name",
        "Field required",
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "has space"}}]},
        "tools[0].function.name",
        "pattern",
    ),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type", ""),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name", "offered twice"),
    (
        {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "tool_choice.function.name",
        "not one of",
    ),
    ({"tools": None, "tool_choice": "required"}, "tool_choice", "offers no tools"),
    ({"tool_choice": "sometimes"}, "tool_choice", ""),
    (
        {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "strict": True,
                        "parameters": {
                            "type": "object",
                            "properties": {"n": {"type": "integer", "minimum": 1}},
                        },
                    },
                }
            ]
        },
        "tools[0].function.parameters.properties.n.minimum",
        "strict",
    ),
    (
        {
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "f", "parameters": {"$ref": "https://x.org/s.json"}},
                }
            ],
            "tool_choice": "required",
        },
        "tools[0].function.parameters.$ref",
        "only references",
    ),
    (
        {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {
                            "type": "object",
                            "properties": {"s": {"type": "string", "maxLength": 10**7}},
                        },
                    },
                }
            ]
        },
        "tools[0].function.parameters.properties.s.maxLength",
        "at most 1,000",
    ),
    (
        {
            "tools": [
                WEATHER,
                {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}},
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
        },
        "tools[1].function.parameters.type",
        "are an object",
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "deep", "parameters": DEEP}}]},
        next(schema_limits(DEEP, "tools[0].function.parameters"))[0],
        "nested more than",
    ),
    ({"response_format": {"type": "json_object"}}, "response_format", "cannot be combined"),
    ({"logprobs": True}, "logprobs", "cannot be combined"),
    ({"functions": [{"name": "f"}]}, "functions", "deprecated"),
    (
        {"messages": [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "?"}]},
        "messages[1].tool_call_id",
        "answers no call",
    ),
    ({"messages": [*ASK, {"role": "tool", "content": "?"}]}, "messages[1]", "needs the tool_call_id"),
    (
        {
            "messages": [
                *ASK,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{city: Paris"},
                        }
                    ],
                },
            ]
        },
        "messages[1].tool_calls[0].function.arguments",
        "not JSON",
    ),
    (
        {
            "messages": [
                *ASK,
                {
                    "role": "user",
                    "content": "x",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
                },
            ]
        },
        "messages[1]",
        "only assistant messages",
    ),
    (
        {"messages": [*ASK, {"role": "function", "name": "f", "content": "?"}]},
        "messages[1].role",
        "deprecated",
    ),
]


@pytest.mark.parametrize(("fields", "param", "said"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_malformed_tool_fields_are_refused_by_name(
    served: Served, fields: dict[str, Any], param: str, said: str
) -> None:
    body = {"model": MODEL, "messages": ASK, "max_tokens": 5, "tools": [WEATHER], **fields}
    body = {key: value for key, value in body.items() if value is not None}
    answer = served.raw("/chat/completions", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param, error
    assert said in error["message"], error["message"]
    assert served.worker.replies_running() == 0
