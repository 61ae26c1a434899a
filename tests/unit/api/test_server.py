"""The local API server, driven by the official `openai` client against the real starter model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.core.api.config import ServerConfig
from app.core.api.server import LocalServer, ServerError
from app.core.inference.events import Event, ReplyDone
from app.core.inference.thread import InferenceThread
from app.core.values.sampling import SamplingParams
from tests.unit.api.served import KEY, MODEL, QUESTION, STORY, Served


def _chat(served: Served, **kwargs: object) -> openai.types.chat.ChatCompletion:
    args: dict[str, object] = {"model": MODEL, "messages": QUESTION, "temperature": 0, "max_tokens": 40}
    args.update(kwargs)
    return served.client.chat.completions.create(**args)  # type: ignore[call-overload,no-any-return]


def test_models_lists_the_loaded_model(served: Served) -> None:
    models = served.client.models.list().data
    assert [m.id for m in models] == ["SmolLM2-135M-Instruct.Q4_1"]


def test_every_request_is_logged_also_model_lists_and_unknown_paths(served: Served) -> None:
    served.client.models.list()
    missing = httpx.get(served.server.address + "/embeddings", headers={"Authorization": f"Bearer {KEY}"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "GET /v1/embeddings" in missing.json()["error"]["message"]
    models, unknown = served.wait_done(2)
    assert (models.method, models.path, models.status, models.error) == ("GET", "/v1/models", 200, "")
    assert (unknown.path, unknown.status) == ("/v1/embeddings", 404)
    assert "200" in models.line() and "/v1/models" in models.line()


def test_chat_without_streaming(served: Served) -> None:
    reply = _chat(served, max_tokens=150)
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.object == "chat.completion" and reply.model == "SmolLM2-135M-Instruct.Q4_1"
    assert reply.usage is not None and reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens >= 1
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    entry = served.wait_done(1)[0]
    assert entry.status == 200 and entry.completion_tokens == reply.usage.completion_tokens
    assert entry.tokens_per_s > 0 and "tok/s" in entry.line()


def test_streaming_matches_the_whole_reply(served: Served) -> None:
    whole = _chat(served, messages=STORY, max_tokens=30).choices[0].message.content
    stream = served.client.chat.completions.create(
        model=MODEL,
        messages=STORY,  # type: ignore[arg-type]
        temperature=0,
        max_tokens=30,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 20, "one chunk per token"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 30


def test_stream_is_server_sent_events_ending_with_done(served: Served) -> None:
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 5, "stream": True}
    with httpx.stream(
        "POST",
        served.server.address + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[1][6:])["object"] == "chat.completion.chunk"


def test_stop_sequences_end_the_reply_before_them(served: Served) -> None:
    full = _chat(served, messages=STORY, max_tokens=40).choices[0].message.content or ""
    words = full.split()
    stop = words[len(words) // 2]
    cut = _chat(served, messages=STORY, max_tokens=40, stop=["never-there", stop])
    text = cut.choices[0].message.content or ""
    assert text == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = served.client.chat.completions.create(
        model=MODEL,
        messages=STORY,
        temperature=0,
        max_tokens=40,
        stop=stop,
        stream=True,  # type: ignore[arg-type]
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == text


def test_max_tokens_is_honoured(served: Served) -> None:
    reply = _chat(served, messages=STORY, max_tokens=7)
    assert reply.usage is not None and reply.usage.completion_tokens == 7
    assert reply.choices[0].finish_reason == "length"


def test_seed_makes_sampling_repeatable(served: Served) -> None:
    first = _chat(served, messages=STORY, temperature=1.0, seed=1234, max_tokens=20, frequency_penalty=0.5)
    again = _chat(served, messages=STORY, temperature=1.0, seed=1234, max_tokens=20, frequency_penalty=0.5)
    assert first.choices[0].message.content == again.choices[0].message.content


def test_text_completion(served: Served) -> None:
    reply = served.client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0, stop=["."]
    )
    assert "Paris" in reply.choices[0].text and "." not in reply.choices[0].text
    assert reply.object == "text_completion"
    stream = served.client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0, stop=["."], stream=True
    )
    assert "".join(c.choices[0].text for c in stream) == reply.choices[0].text


def test_a_wrong_or_missing_key_is_refused(served: Served) -> None:
    client = openai.OpenAI(base_url=served.server.address, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=MODEL, messages=QUESTION)  # type: ignore[arg-type]
    assert caught.value.status_code == 401 and "API key" in caught.value.message
    missing = httpx.post(served.server.address + "/chat/completions", json={"messages": QUESTION})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert httpx.get(served.server.address + "/models").status_code == 401
    assert [e.status for e in served.wait_done(3)] == [401, 401, 401]


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (json.dumps({"model": MODEL}).encode(), 400, "messages"),
        (json.dumps({"model": MODEL, "messages": []}).encode(), 400, "at least 1"),
        (json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}).encode(), 400, "role"),
        (json.dumps({"messages": QUESTION, "temperature": "hot"}).encode(), 400, "temperature"),
        (json.dumps({"messages": QUESTION, "temperature": 9}).encode(), 400, "temperature"),
        (json.dumps({"messages": QUESTION, "n": 17}).encode(), 400, "less than or equal to 16"),
        (json.dumps({"messages": QUESTION, "max_tokens": 10**9}).encode(), 400, "max_tokens"),
        (json.dumps({"messages": QUESTION, "max_tokens": 0}).encode(), 400, "max_tokens"),
        (json.dumps({"messages": QUESTION, "stop": ["a"] * 40}).encode(), 400, "stop"),
        (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}
                    ]
                }
            ).encode(),
            400,
            "input_audio",
        ),
        (b"{" + b" " * (33 * 1024 * 1024) + b"}", 413, "larger than"),
        (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nested too deeply"),
    ],
)
def test_malformed_bodies_get_openai_errors(served: Served, body: bytes, status: int, said: str) -> None:
    response = served.raw("/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert said in error["message"] and error["type"] == "invalid_request_error"


BAKERY = (
    "You are Juniper, a patient assistant in a bakery. You answer questions about bread, cakes, flour, "
    "ovens and opening hours. The bakery opens at seven in the morning and closes at six in the evening, "
    "every day except Monday. You always answer in one short, friendly paragraph."
)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_prompt_cache_key_keeps_a_conversation_and_usage_counts_the_cached_tokens(
    served: Served, stream: bool
) -> None:
    def ask(messages: list[dict[str, str]], key: str) -> tuple[str, openai.types.CompletionUsage]:
        args: dict[str, Any] = {"messages": messages, "prompt_cache_key": key, "max_tokens": 6}
        if not stream:
            reply = _chat(served, **args)
            assert reply.usage is not None
            return reply.choices[0].message.content or "", reply.usage
        chunks = list(_chat(served, stream=True, stream_options={"include_usage": True}, **args))
        usage = chunks[-1].usage
        assert usage is not None
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), usage

    system = {"role": "system", "content": f"{BAKERY} ({stream})"}  # this test's own start
    history = [system, {"role": "user", "content": "My name is Ada. Hello!"}]
    text, first = ask(history, f"ada-{stream}")
    assert first.prompt_tokens_details is not None
    # Another conversation with the same long start: without keys it would take Ada's sequence
    # (it shares most of it); with its own key it takes another, and copies the start.
    ask([system, {"role": "user", "content": "Do you sell rye bread?"}], f"bob-{stream}")
    history += [{"role": "assistant", "content": text}, {"role": "user", "content": "What is my name?"}]
    _, second = ask(history, f"ada-{stream}")
    details = second.prompt_tokens_details
    assert details is not None and details.cached_tokens is not None
    # Only the new message was read: the rest was in the conversation's sequence.
    assert first.prompt_tokens < details.cached_tokens < second.prompt_tokens


def test_an_empty_prompt_cache_key_is_refused_by_name(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, prompt_cache_key="")
    assert caught.value.body["param"] == "prompt_cache_key"  # type: ignore[index]


LONG_PROMPT = [
    {
        "role": "system",
        "content": "You are Juniper, a patient assistant in a bakery. You answer questions about bread, "
        "cakes, flour, ovens and opening hours. The bakery opens at seven in the morning and closes at six "
        "in the evening, every day except Monday. You always answer in one short, friendly paragraph.",
    },
    {"role": "user", "content": "Write a short poem about bread."},
]
#: A prompt no other test sends, so no sequence holds it before the test that copies it.
UNIQUE_PROMPT = [LONG_PROMPT[0], {"role": "user", "content": "Write a short poem about rye."}]


def _record_stats(served: Served, monkeypatch: pytest.MonkeyPatch) -> list[ReplyDone]:
    """Every reply the server queues on the real worker, as it ends (seen through its sink)."""
    ends: list[ReplyDone] = []
    generate = served.worker.generate

    def recording(*args: Any, sink: Any = None, **kwargs: Any) -> int:
        def tee(event: Event) -> None:
            if isinstance(event, ReplyDone):
                ends.append(event)
            sink(event)

        return generate(*args, sink=tee, **kwargs)

    monkeypatch.setattr(served.worker, "generate", recording)
    return ends


def test_n_choices_are_sampled_apart_and_the_prompt_is_read_once(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    ends = _record_stats(served, monkeypatch)
    reply = _chat(served, messages=UNIQUE_PROMPT, n=3, temperature=1.0, seed=11, max_tokens=24)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    texts = [c.message.content or "" for c in reply.choices]
    assert all(texts) and len(set(texts)) > 1, "each choice is sampled with a seed of its own"
    assert all(c.finish_reason in ("stop", "length") for c in reply.choices)
    assert len(ends) == 3 and reply.usage is not None
    # The prompt is counted once; the completion tokens of every choice.
    assert reply.usage.prompt_tokens == ends[0].stats.prompt_tokens > 64
    assert reply.usage.completion_tokens == sum(e.stats.completion_tokens for e in ends)
    # Read once: the other choices copied its KV cache and read only its last token.
    evaluated = sorted(e.stats.prompt_tokens_evaluated for e in ends)
    assert evaluated[:2] == [1, 1] and evaluated[2] > 1


def test_n_choices_stream_by_index(served: Served) -> None:
    chunks = list(
        _chat(
            served, n=2, max_tokens=12, stream=True, stream_options={"include_usage": True},
            messages=LONG_PROMPT,
        )
    )  # fmt: skip
    texts = ["", ""]
    finished = [None, None]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finished[choice.index] = finished[choice.index] or choice.finish_reason
    assert texts[0] and texts[0] == texts[1], "greedy: both choices write the same"
    assert finished == ["length", "length"]
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 24


def test_n_choices_on_completions(served: Served) -> None:
    reply = served.client.completions.create(
        model=MODEL, prompt="The capital of France is", n=2, max_tokens=5, temperature=0
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].text and reply.choices[0].text == reply.choices[1].text
    assert reply.usage is not None and reply.usage.completion_tokens == 10


#: Fields Fireside does not honour yet, as a client would send them: (the field named in the error,
#: the create() arguments). Each must be refused by name, never answered as if it had been honoured.
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
SCHEMA = {"name": "answer", "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
CHAT_NOT_HONOURED = [
    ("functions", {"extra_body": {"functions": [TOOL["function"]]}}),
    ("function_call", {"extra_body": {"function_call": {"name": "get_weather"}}}),
    ("prediction", {"extra_body": {"prediction": {"type": "content", "content": "Paris"}}}),
    ("frobnicate", {"extra_body": {"frobnicate": 1}}),
    ("messages[0].name", {"messages": [{"role": "user", "content": "Hi", "name": "ann"}]}),
    ("messages[1].role", {"messages": [*QUESTION, {"role": "function", "content": "22", "name": "a"}]}),
]
COMPLETION_NOT_HONOURED = [
    ("echo", {"echo": True}),
    ("best_of", {"best_of": 2}),
    ("suffix", {"suffix": "and that is all."}),
    ("response_format", {"extra_body": {"response_format": {"type": "json_object"}}}),
    ("tools", {"extra_body": {"tools": [TOOL]}}),
    ("frobnicate", {"extra_body": {"frobnicate": 1}}),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("field", "args"), CHAT_NOT_HONOURED, ids=[f for f, _ in CHAT_NOT_HONOURED])
def test_chat_fields_not_honoured_are_refused_by_name(
    served: Served, field: str, args: dict[str, object], stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, stream=stream, **args)
    assert caught.value.status_code == 400
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == field, error
    assert f"{field}" in error["message"]
    assert error["code"] in ("unsupported_parameter", "unknown_parameter")
    assert served.worker.replies_running() == 0 and served.worker.replies_waiting() == 0  # nothing ran


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("field", "args"), COMPLETION_NOT_HONOURED, ids=[f for f, _ in COMPLETION_NOT_HONOURED]
)
def test_completion_fields_not_honoured_are_refused_by_name(
    served: Served, field: str, args: dict[str, object], stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        served.client.completions.create(  # type: ignore[call-overload]
            model=MODEL, prompt="The capital of France is", max_tokens=4, stream=stream, **args
        )
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == field and field in error["message"], error


def test_the_messages_say_what_is_missing_and_which_field_nobody_defines(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as unsupported:
        _chat(served, extra_body={"functions": [TOOL["function"]]})
    assert "not supported yet (the deprecated function calling: use tools)" in unsupported.value.message
    with pytest.raises(openai.BadRequestError) as unknown:
        _chat(served, extra_body={"temprature": 0.5})
    assert "Unrecognized request argument supplied: temprature" in unknown.value.message


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_values_that_change_nothing_are_accepted(served: Served, stream: bool) -> None:
    chat = _chat(
        served,
        stream=stream,
        max_tokens=3,
        logprobs=False,
        top_logprobs=0,
        tools=[],
        tool_choice="none",
        parallel_tool_calls=False,
        response_format={"type": "text"},
        logit_bias={},
        n=1,
        user="ann",
        stream_options={"include_usage": True} if stream else None,
        messages=[{"role": "user", "content": "Hi", "tool_calls": []}],
    )
    if stream:
        assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in chat)  # type: ignore[union-attr]
    else:
        assert chat.choices[0].finish_reason in ("stop", "length")
    completion = served.client.completions.create(
        model=MODEL,
        prompt="The capital of France is",
        max_tokens=3,
        stream=stream,
        logprobs=None,
        echo=False,
        best_of=1,
        suffix=None,
        logit_bias={},
        extra_body={"user": "ann"},
    )
    if stream:
        assert any(c.choices and c.choices[0].finish_reason for c in completion)  # type: ignore[union-attr]
    else:
        assert completion.choices[0].finish_reason in ("stop", "length")  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/chat/completions", "/completions"])
def test_a_lone_surrogate_is_a_400_naming_where_it_is(served: Served, path: str) -> None:
    # Valid JSON ("\ud800" is how JavaScript writes half of an emoji cut in two), but not Unicode.
    if path == "/completions":
        body, where = b'{"prompt": "Half an emoji: \\ud83d", "max_tokens": 2}', "prompt"
    else:
        body = b'{"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "a\\ud800b"}]}'
        where = "messages[1].content"
    for stream in (False, True):
        sent = body[:-1] + (b', "stream": true}' if stream else b"}")
        response = served.raw(path, content=sent, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == where and error["code"] == "invalid_unicode"
        assert "lone UTF-16 surrogate" in error["message"] and where in error["message"]
    # A whole pair is one character, and is served.
    whole = served.raw(
        path,
        json={"messages": [{"role": "user", "content": "Smile \U0001f600"}], "max_tokens": 2}
        if path == "/chat/completions"
        else {"prompt": "Smile \U0001f600", "max_tokens": 2},
    )
    assert whole.status_code == 200, whole.text


def test_web_pages_and_rebound_host_names_are_refused(served: Served) -> None:
    body = json.dumps({"messages": QUESTION, "max_tokens": 2}).encode()
    json_type = {"Content-Type": "application/json"}
    from_page = served.raw(
        "/chat/completions", content=body, headers={**json_type, "Origin": "https://evil.example"}
    )
    assert from_page.status_code == 403 and from_page.json()["error"]["code"] == "origin_not_allowed"
    rebound = served.raw(
        "/chat/completions", content=body, headers={**json_type, "Host": "evil.example:8765"}
    )
    assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "host_not_allowed"
    simple = served.raw("/chat/completions", content=body, headers={"Content-Type": "text/plain"})
    assert simple.status_code == 415, "a body a page can send without a CORS preflight is refused"
    local_page = served.raw(
        "/chat/completions", content=body, headers={**json_type, "Origin": "http://localhost:3000"}
    )
    assert local_page.status_code == 200, "a web UI served from this computer may use it"


def test_a_prompt_longer_than_the_context_is_refused(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, messages=[{"role": "user", "content": "word " * 3000}], max_tokens=10)
    assert caught.value.code == "context_length_exceeded"


def test_concurrent_clients_are_served_together_and_the_rest_in_order(served: Served) -> None:
    parallel = served.worker.parallel
    assert parallel >= 2
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            stream = served.client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"Say the number {n} and nothing else."}],
                temperature=0,
                max_tokens=40 if n < parallel else 6,
                stream=True,
            )
            results[n] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    clients = parallel + 2
    threads = [threading.Thread(target=ask, args=(n,)) for n in range(clients)]
    for count, thread in enumerate(threads, 1):
        thread.start()
        served.wait_arrived(count)  # a known arrival order: each is in the queue before the next is sent
    for thread in threads:
        thread.join(60)
    assert not errors and sorted(results) == list(range(clients))
    assert all(results.values()), "every client got text"
    done = sorted(served.wait_done(clients), key=lambda e: e.request_id)
    first, rest = done[:parallel], done[parallel:]
    # As many as there are sequences are generated at once; the others wait, in the order they came.
    assert all(e.waited_s < 0.5 for e in first), [e.waited_s for e in first]
    queued = {e.request_id for e in served.log if e.state == "queued"}
    assert {e.request_id for e in rest} <= queued, "requests that had to wait were reported as queued"
    assert not queued & {e.request_id for e in first}
    assert rest[0].waited_s <= rest[1].waited_s + 0.5


@pytest.mark.parametrize("choices", [1, 3])
def test_a_client_that_disconnects_stops_its_reply(served: Served, choices: int) -> None:
    body = {
        "model": MODEL,
        "messages": STORY,
        "max_tokens": 1500,
        "stream": True,
        "temperature": 1.0,
        "seed": 7,
        "n": choices,
    }
    with httpx.stream(
        "POST",
        served.server.address + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,  # httpx's default 5 s is too short for the first tokens of 3 choices on a busy CI
    ) as response:
        lines = response.iter_lines()
        got = [next(lines) for _ in range(2 * choices + 10)]
    assert any('"content": "' in line and '"content": ""' not in line for line in got)
    entry = served.wait_done(1, timeout=10)[0]
    assert entry.status == 499 and entry.stop_reason == "stopped_by_user"
    assert entry.completion_tokens < 200, "generation stopped soon after the client left"
    assert "client disconnected" in entry.error
    assert served.worker.replies_running() == 0
    assert _chat(served).choices[0].message.content, "the next client is served at once"


def test_stopping_the_server_cuts_replies_with_an_error_not_a_finish(shared_worker: InferenceThread) -> None:
    server = LocalServer(shared_worker, ServerConfig(port=0))
    server.start()
    client = openai.OpenAI(base_url=server.address, api_key="none", max_retries=0, timeout=30)
    pieces: list[str] = []
    finishes: list[str] = []
    caught: list[BaseException] = []
    whole: list[BaseException] = []

    def streamed() -> None:
        try:
            stream = client.chat.completions.create(
                model=MODEL,
                messages=STORY,
                max_tokens=2000,
                stream=True,  # type: ignore[arg-type]
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.choices and chunk.choices[0].finish_reason:
                    finishes.append(chunk.choices[0].finish_reason)
        except openai.APIError as exc:
            caught.append(exc)

    def not_streamed() -> None:  # queued behind the stream, so it is cut before its first token
        try:
            client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=2000)  # type: ignore[arg-type]
        except openai.APIError as exc:
            whole.append(exc)

    first = threading.Thread(target=streamed)
    first.start()
    deadline = time.monotonic() + 20
    while len(pieces) < 3:
        assert time.monotonic() < deadline, "the stream did not start"
        time.sleep(0.02)
    second = threading.Thread(target=not_streamed)
    second.start()
    while len(server.active) < 2:
        assert time.monotonic() < deadline, "the second request was not queued"
        time.sleep(0.02)
    server.stop()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive(), "clients were left hanging"
    assert not finishes, "a cut reply must not look finished"
    assert len(caught) == 1 and "shutting down" in str(caught[0]), caught
    assert len(whole) == 1 and isinstance(whole[0], openai.InternalServerError), whole
    assert whole[0].status_code == 503 and "shutting down" in whole[0].message
    assert shared_worker.replies_running() == 0


def test_stopping_the_server_cuts_every_choice_of_a_request(shared_worker: InferenceThread) -> None:
    """n = 3, streamed: a stop mid-reply ends all three choices with the shutdown error, none of
    them with a finish_reason, and leaves no reply running."""
    server = LocalServer(shared_worker, ServerConfig(port=0))
    server.start()
    client = openai.OpenAI(base_url=server.address, api_key="none", max_retries=0, timeout=30)
    pieces: dict[int, list[str]] = {0: [], 1: [], 2: []}
    finishes: list[str] = []
    caught: list[BaseException] = []
    every_choice_writing = threading.Event()

    def streamed() -> None:
        try:
            stream = client.chat.completions.create(
                model=MODEL, messages=STORY, max_tokens=2000, temperature=1.0, seed=3, n=3, stream=True
            )  # type: ignore[call-overload]
            for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        pieces[choice.index].append(choice.delta.content)
                    if choice.finish_reason:
                        finishes.append(choice.finish_reason)
                if all(len(got) >= 2 for got in pieces.values()):
                    every_choice_writing.set()
        except openai.APIError as exc:
            caught.append(exc)
        finally:
            every_choice_writing.set()

    reader = threading.Thread(target=streamed)
    reader.start()
    assert every_choice_writing.wait(30), "the choices did not start"
    assert not caught, caught
    server.stop()
    reader.join(10)
    assert not reader.is_alive(), "the client was left hanging"
    assert not finishes, "a cut choice must not look finished"
    assert len(caught) == 1 and "shutting down" in str(caught[0]), caught
    assert shared_worker.replies_running() == 0


def test_no_model_loaded_is_a_clear_error() -> None:
    worker = InferenceThread(lambda _e: None)
    worker.start()
    server = LocalServer(worker, ServerConfig(port=0))
    server.start()
    try:
        client = openai.OpenAI(base_url=server.address, api_key="none", max_retries=0)
        assert client.models.list().data == []
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="", messages=QUESTION)  # type: ignore[arg-type]
        assert "No model is loaded" in caught.value.message
        with pytest.raises(openai.NotFoundError) as caught:  # a name nothing answers to is named
            client.chat.completions.create(model=MODEL, messages=QUESTION)  # type: ignore[arg-type]
        assert f"no model named “{MODEL}”" in caught.value.message
    finally:
        server.stop()
        worker.shutdown()


def test_the_window_settings_fill_fields_a_request_leaves_out(shared_worker: InferenceThread) -> None:
    used: list[SamplingParams] = []

    def defaults() -> SamplingParams:
        params = SamplingParams(temperature=0.0, max_tokens=3)
        used.append(params)
        return params

    server = LocalServer(shared_worker, ServerConfig(port=0), defaults=defaults)
    server.start()
    try:
        client = openai.OpenAI(base_url=server.address, api_key="none", max_retries=0)
        first = client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=6)  # type: ignore[arg-type]
        second = client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=6)  # type: ignore[arg-type]
        assert first.choices[0].message.content == second.choices[0].message.content  # temperature 0
        assert used
    finally:
        server.stop()


def test_serving_beyond_this_computer_needs_a_choice_and_a_key(shared_worker: InferenceThread) -> None:
    with pytest.raises(ServerError, match="allow network access"):
        LocalServer(shared_worker, ServerConfig(host="0.0.0.0", port=0)).start()
    with pytest.raises(ServerError, match="set an API key"):
        LocalServer(shared_worker, ServerConfig(host="0.0.0.0", port=0, allow_network=True)).start()
    server = LocalServer(shared_worker, ServerConfig(host="0.0.0.0", port=0, api_key=KEY, allow_network=True))
    server.start()
    try:
        assert server.running
    finally:
        server.stop()


def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = InferenceThread(lambda _e: None)
        with pytest.raises(ServerError, match=f"Port {port} is already in use"):
            LocalServer(worker, ServerConfig(port=port)).start()


def _serve(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_fireside_serve_runs_headless_and_stops_on_sigterm(starter_model: Path, tmp_path: Path) -> None:
    process = _serve(
        "--model", str(starter_model), "--port", "0", data_dir=tmp_path, env={"FIRESIDE_API_KEY": KEY}
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Fireside is serving SmolLM2-135M-Instruct.Q4_1 at http://127.0.0.1:" in line, line
        address = line.split(" at ")[1].split(" ")[0]
        client = openai.OpenAI(base_url=address, api_key=KEY, max_retries=0)
        reply = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=10)  # type: ignore[arg-type]
        assert reply.choices[0].message.content and reply.usage and reply.usage.completion_tokens == 10
        assert "200" in process.stdout.readline(), "each request is logged on stdout"
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
        process.wait()


def test_fireside_serve_refuses_the_network_without_a_key(starter_model: Path, tmp_path: Path) -> None:
    process = _serve("--model", str(starter_model), "--host", "0.0.0.0", "--port", "0", data_dir=tmp_path)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "set an API key" in err


def test_fireside_serve_names_a_missing_model(tmp_path: Path) -> None:
    process = _serve("--model", str(tmp_path / "nope.gguf"), "--port", "0", data_dir=tmp_path)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "nope.gguf" in err


def test_fireside_serve_drafts_with_a_draft_model_and_refuses_a_bad_one(
    starter_model: Path, tmp_path: Path
) -> None:
    process = _serve(
        "--model", str(starter_model), "--port", "0", "--draft-model", str(starter_model), data_dir=tmp_path
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Fireside is serving" in line, line
        assert process.stdout.readline().strip() == f"Drafting with {starter_model.name}."
        address = line.split(" at ")[1].split(" ")[0]
        client = openai.OpenAI(base_url=address, api_key="none", max_retries=0)
        reply = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=10)  # type: ignore[arg-type]
        assert reply.usage and reply.usage.completion_tokens == 10
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
        process.wait()
    for args, said in (
        (["--draft-model", str(tmp_path / "nope.gguf")], "nope.gguf: no such file"),
        (["--draft-model", str(starter_model), "--speculative", "off"], "needs --speculative auto"),
        (["--speculative", "always"], "invalid choice: 'always'"),
    ):
        refused = _serve("--model", str(starter_model), "--port", "0", *args, data_dir=tmp_path)
        _out, err = refused.communicate(timeout=60)
        assert refused.returncode == 2 and said in err, err


def test_fireside_serve_loads_another_installed_model_by_name_and_unloads_it_when_idle(
    starter_model: Path, starter_f16: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / starter_f16.name).symlink_to(starter_f16)
    process = _serve(
        "--model", str(starter_model), "--port", "0", "--context-length", "1024", "--idle-unload", "1",
        "--memory-budget", "auto", data_dir=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "load when a request names them" in line and "unloaded after 1 s unused" in line, line
        address = line.split(" at ")[1].split(" ")[0]
        client = openai.OpenAI(base_url=address, api_key="none", max_retries=0)
        reply = client.chat.completions.create(model=starter_f16.stem, messages=QUESTION, max_tokens=4)  # type: ignore[arg-type]
        assert reply.model == starter_f16.stem and reply.usage and reply.usage.completion_tokens == 4

        def state() -> str:
            listed = {m.id: m.model_dump() for m in client.models.list().data}
            return str(listed[starter_f16.stem]["state"])

        deadline = time.monotonic() + 30
        while state() == "loaded":  # unloaded 1 s after its last request
            assert time.monotonic() < deadline, "the idle model was never unloaded"
            time.sleep(0.2)
        assert {m.id for m in client.models.list().data} == {MODEL, starter_f16.stem}
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
        process.wait()
    for args, said in (
        (["--memory-budget", "12"], "“12” is not a size: give a number and a unit"),
        (["--memory-budget", "lots"], "“lots” is not a size"),
        (["--idle-unload", "-5"], "--idle-unload must be 0 (never) to 86400 seconds"),
    ):
        refused = _serve("--model", str(starter_model), "--port", "0", *args, data_dir=tmp_path)
        _out, err = refused.communicate(timeout=60)
        assert refused.returncode == 2 and said in err, err
