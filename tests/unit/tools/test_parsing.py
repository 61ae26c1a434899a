"""Replies read back as text and tool calls, in every syntax, whole and piece by piece."""

from __future__ import annotations

import json

import pytest

from app.core.tools.calls import ToolCall
from app.core.tools.parsing import CallReader, read_calls

NAMES = {"get_weather", "get_time"}
WEATHER = {"city": "Paris", "unit": "celsius"}
OPENAI_SHAPE = {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps(WEATHER)}}


def _pieces(text: str, size: int) -> list[str | ToolCall]:
    """The reader's output when `text` arrives `size` characters at a time."""
    reader = CallReader(NAMES)
    out: list[str | ToolCall] = []
    for start in range(0, len(text), size):
        out.extend(reader.feed(text[start : start + size]))
    out.extend(reader.finish())
    return out


def _call(name: str, arguments: dict[str, object]) -> str:
    return json.dumps({"name": name, "arguments": arguments})


@pytest.mark.parametrize(
    "reply",
    [
        f"<tool_call>\n{_call('get_weather', WEATHER)}\n</tool_call>",
        f"<tool_call>{_call('get_weather', WEATHER)}</tool_call>\n",
        f"[TOOL_CALLS][{_call('get_weather', WEATHER)}]",
        f"[TOOL_CALLS]get_weather[ARGS]{json.dumps(WEATHER)}",
        f'<|python_tag|>{{"name": "get_weather", "parameters": {json.dumps(WEATHER)}}}',
        f'  {{"name": "get_weather", "parameters": {json.dumps(WEATHER)}}}',
        json.dumps(OPENAI_SHAPE),
        f"<tool_call>\n{_call('get_weather', WEATHER)}",  # the end of the turn came before the closing tag
    ],
    ids=[
        "hermes",
        "hermes-tight",
        "mistral",
        "mistral-v11",
        "llama3-tag",
        "llama3-bare",
        "openai-shape",
        "unclosed",
    ],
)
@pytest.mark.parametrize("size", [1, 3, 1000])
def test_every_syntax_is_read_as_a_call(reply: str, size: int) -> None:
    pieces = _pieces(reply, size)
    calls = [p for p in pieces if isinstance(p, ToolCall)]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments) == WEATHER
    assert calls[0].id.startswith("call_") and len(calls[0].id) == 29
    assert not "".join(p for p in pieces if isinstance(p, str)).strip()


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_text_before_calls_streams_and_parallel_calls_come_in_order(size: int) -> None:
    reply = (
        "Let me check both. "
        f"<tool_call>\n{_call('get_weather', WEATHER)}\n</tool_call>\n"
        f"<tool_call>\n{_call('get_time', {'zone': 'CET'})}\n</tool_call>"
    )
    pieces = _pieces(reply, size)
    text = "".join(p for p in pieces if isinstance(p, str))
    assert text == "Let me check both. "
    assert [p.name for p in pieces if isinstance(p, ToolCall)] == ["get_weather", "get_time"]
    first_call = next(i for i, p in enumerate(pieces) if isinstance(p, ToolCall))
    assert all(isinstance(p, str) for p in pieces[:first_call])  # the text went out before the calls


def test_text_streams_as_it_comes_and_only_a_possible_marker_is_held() -> None:
    reader = CallReader(NAMES)
    assert reader.feed("Hello there") == ["Hello there"]
    assert reader.feed(", see <tool") == [", see "]  # "<tool" may begin a call
    assert reader.feed("s> are fun") == ["<tools> are fun"]
    assert reader.finish() == []


@pytest.mark.parametrize(
    "reply",
    [
        "<tool_call>\nnot json\n</tool_call> and on",
        f"<tool_call>\n{_call('launch_rocket', {})}\n</tool_call>",  # a tool nobody offered
        '{"answer": 42}',
        '{"name": "get_weather", "arguments": [1, 2]}',
        "[1, 2, 3]",
        '{"name": "get_weather", "arguments": {"city": "Par',  # cut short
    ],
    ids=["not-json", "unknown-tool", "json-answer", "arguments-not-object", "a-list", "cut"],
)
def test_what_is_not_a_call_is_kept_as_the_text_it_was(reply: str) -> None:
    for size in (1, 5, 1000):
        pieces = _pieces(reply, size)
        assert not any(isinstance(p, ToolCall) for p in pieces)
        assert "".join(p for p in pieces if isinstance(p, str)) == reply


def test_one_call_at_most_without_parallel_calls() -> None:
    reply = "".join(f"<tool_call>{_call(name, {})}</tool_call>" for name in ("get_weather", "get_time"))
    text, calls = read_calls(reply, NAMES, parallel=False)
    assert [c.name for c in calls] == ["get_weather"] and text == ""
    _, calls = read_calls(reply, NAMES, parallel=True)
    assert [c.name for c in calls] == ["get_weather", "get_time"]


def test_a_plain_answer_is_all_text() -> None:
    text, calls = read_calls("Paris is the capital of France.", NAMES)
    assert text == "Paris is the capital of France." and calls == []


def test_call_ids_differ() -> None:
    reply = f"<tool_call>{_call('get_time', {})}</tool_call><tool_call>{_call('get_time', {})}</tool_call>"
    _, calls = read_calls(reply, NAMES)
    assert len({c.id for c in calls}) == 2
