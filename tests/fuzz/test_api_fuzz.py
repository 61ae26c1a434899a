"""Fuzzing the API server's request bodies over real HTTP, with the starter model loaded.

Every field of the chat, completions and embeddings bodies gets any JSON value (huge numbers, lone
surrogates, deep nesting, the wrong type); messages get any shape; raw bodies get broken UTF-8 and
broken JSON. The rule: an answer in OpenAI's shape (a reply, or a 4xx error whose message says
what is wrong), within a time bound; never a 5xx, a dropped connection, or a stream that ends in
an error. Replies are kept short (max_tokens at most 4) so each input costs tens of milliseconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.core.api.config import ServerConfig
from app.core.api.schema import (
    CHAT_NOT_YET,
    COMPLETION_NOT_YET,
    MESSAGE_NOT_YET,
    ChatRequest,
    CompletionRequest,
)
from app.core.api.server import LocalServer
from app.core.inference.thread import InferenceThread
from app.core.platform import paths
from tests.unit.api.served import KEY, MODEL, loaded_worker

#: Seconds one request may take: a refusal is immediate and a reply is at most 4 tokens (x16 choices).
MAX_SECONDS = 20.0
#: Hypothesis's own per-input bound, above the request's so that the assertion names the request.
API_DEADLINE_MS = 30_000

# ----- the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def address(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module (Hypothesis runs many inputs per test; a server each would be slow)."""
    paths.set_data_dir(tmp_path_factory.mktemp("api-fuzz-data"))
    worker: InferenceThread = loaded_worker(starter_model)
    server = LocalServer(worker, ServerConfig(port=0, api_key=KEY))
    server.start()
    yield server.address
    server.stop()
    worker.shutdown()
    paths.set_data_dir(None)


@pytest.fixture(scope="module")
def client(address: str) -> Iterator[httpx.Client]:
    """One HTTP client for the module, with the key."""
    with httpx.Client(
        base_url=address.removesuffix("/v1"), headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    ) as http:
        yield http


# ----- strategies -------------------------------------------------------------------------------

#: Numbers JSON can hold that Python floats cannot, and the edges of the ranges the fields have.
HUGE = st.sampled_from(
    [10**400, -(10**400), 2**63, -(2**63) - 1, 2**31, 1e308, -0.0, 5e-324, 4096, 4097, 0, -1]
)
#: Text with what breaks text: lone surrogates, NUL, right-to-left marks, a template's own syntax.
ODD_TEXT = st.sampled_from(
    [
        "\ud800",
        "a\udfffb",
        "\x00",
        "\u202e",
        "{{ 7*7 }}",
        "{% for x in range(10**9) %}x{% endfor %}",
        "<|im_end|>",
        "",
    ]
)
TEXT = st.text(max_size=30) | ODD_TEXT
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), HUGE, st.floats(allow_nan=False), TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
ROLES = st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "robot", ""])
PART_TYPES = st.sampled_from(["text", "image_url", "input_audio", "file", "video", ""])
PART = st.fixed_dictionaries(
    {"type": PART_TYPES},
    optional={
        "text": JSON,
        "image_url": st.fixed_dictionaries(
            {
                "url": st.sampled_from(
                    ["data:image/png;base64,iVBORw0KGgo=", "data:,", "http://127.0.0.1:9/x.png", "x"]
                )
            }
        )
        | JSON,
    },
)
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES},
    optional={
        "content": TEXT | st.lists(PART, max_size=3) | JSON,
        "tool_calls": JSON,
        "tool_call_id": JSON,
        **{name: JSON for name in MESSAGE_NOT_YET},
    },
)
MESSAGES = st.lists(MESSAGE, max_size=4) | JSON

CHAT_FIELDS = [*ChatRequest.model_fields, *CHAT_NOT_YET, "from_another_server"]
COMPLETION_FIELDS = [*CompletionRequest.model_fields, *COMPLETION_NOT_YET, "from_another_server"]
EMBEDDING_FIELDS = ["model", "input", "encoding_format", "user", "ttl", "dimensions", "from_another_server"]
#: Fields whose valid values would make a reply long (or many): kept small so an input stays quick.
LENGTHS = ("max_tokens", "max_completion_tokens")


def chat_base() -> dict[str, Any]:
    """A valid chat body that a fuzzed field is put into."""
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def short(body: dict[str, Any]) -> dict[str, Any]:
    """The body with any valid reply length brought down to at most 4 tokens."""
    for name in LENGTHS:
        value = body.get(name, 0)
        if value is None:  # null: as long as the context allows
            body[name] = 4
        elif type(value) is int and value > 4:
            body[name] = value % 4 + 1
    if type(body.get("n")) is int and body["n"] > 4:
        body["n"] = body["n"] % 4 + 1
    return body


# ----- the rule ---------------------------------------------------------------------------------


def check(client: httpx.Client, path: str, content: bytes, content_type: str = "application/json") -> int:
    """POST `content` and hold the rule; return the status."""
    started = time.perf_counter()
    with client.stream("POST", path, content=content, headers={"Content-Type": content_type}) as reply:
        text = b"".join(reply.iter_bytes()).decode()
    elapsed = time.perf_counter() - started
    assert elapsed <= MAX_SECONDS, f"one request took {elapsed:.1f} s (bound {MAX_SECONDS} s)"
    assert reply.status_code < 500, f"{reply.status_code}: {text[:500]}"
    if reply.status_code >= 400:
        error = json.loads(text)["error"]
        assert isinstance(error["message"], str) and len(error["message"]) > 10, error
        assert "Traceback" not in error["message"]
        return reply.status_code
    assert reply.status_code == 200
    if reply.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
        assert events and events[-1] == "[DONE]", text[-300:]
        for event in events[:-1]:
            assert "error" not in json.loads(event), event
    else:
        answer = json.loads(text)
        assert answer.get("data") or answer["choices"], answer
    return 200


def dumps(body: object) -> bytes:
    """JSON as a client would send it (ASCII escapes, so lone surrogates travel as \\ud800)."""
    return json.dumps(body).encode()


# ----- properties -------------------------------------------------------------------------------


def test_the_bases_are_answered(client: httpx.Client) -> None:
    """The valid bodies the properties start from get replies (so a refusal below is the input's)."""
    assert check(client, "/v1/chat/completions", dumps(chat_base())) == 200
    assert check(client, "/v1/chat/completions", dumps({**chat_base(), "stream": True})) == 200
    assert check(client, "/v1/completions", dumps({"model": MODEL, "prompt": "Hi", "max_tokens": 2})) == 200
    assert check(client, "/v1/embeddings", dumps({"model": MODEL, "input": "Hi"})) == 200


@settings(deadline=API_DEADLINE_MS)
@given(fields=st.dictionaries(st.sampled_from(CHAT_FIELDS), JSON, min_size=1, max_size=3))
@example(fields={"messages": [{"role": "user", "content": "a\ud800b"}]})
@example(fields={"temperature": 10**400})
@example(fields={"max_tokens": 10**5000})  # past Python's int-to-str limit (4300 digits)
@example(fields={"stop": ["\ud800"] * 17})
@example(fields={"logit_bias": {"1e400": 1, "-1": 10**400}})
@example(
    fields={"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#"}}}}
)
@example(fields={"tools": [{"type": "function", "function": {"name": "\ud800", "parameters": []}}]})
def test_any_chat_field(client: httpx.Client, fields: dict[str, Any]) -> None:
    """Any value in any chat field: a reply or a clear 4xx."""
    check(client, "/v1/chat/completions", dumps(short({**chat_base(), **fields})))


@settings(deadline=API_DEADLINE_MS)
@given(messages=MESSAGES)
@example(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}])
@example(messages=[{"role": "tool", "content": "x", "tool_call_id": 10**400}])
@example(messages=[{"role": "assistant", "tool_calls": [{"function": {"arguments": "{"}}]}])
def test_any_messages(client: httpx.Client, messages: Any) -> None:
    """Messages of any shape: a reply or a clear 4xx."""
    check(client, "/v1/chat/completions", dumps({"model": MODEL, "messages": messages, "max_tokens": 2}))


@settings(deadline=API_DEADLINE_MS)
@given(fields=st.dictionaries(st.sampled_from(COMPLETION_FIELDS), JSON, min_size=1, max_size=3))
@example(fields={"prompt": [[1, 2], [10**400]]})
@example(fields={"prompt": "\udc00"})
def test_any_completion_field(client: httpx.Client, fields: dict[str, Any]) -> None:
    """Any value in any completions field: a reply or a clear 4xx."""
    check(
        client, "/v1/completions", dumps(short({"model": MODEL, "prompt": "Hi", "max_tokens": 2, **fields}))
    )


@settings(deadline=API_DEADLINE_MS)
@given(fields=st.dictionaries(st.sampled_from(EMBEDDING_FIELDS), JSON, min_size=1, max_size=3))
@example(fields={"input": [[-1, 10**400]]})
@example(fields={"input": [[]]})
@example(fields={"input": [""]})
def test_any_embedding_field(client: httpx.Client, fields: dict[str, Any]) -> None:
    """Any value in any embeddings field: vectors or a clear 4xx."""
    check(client, "/v1/embeddings", dumps({"model": MODEL, "input": "Hi", **fields}))


@given(
    raw=st.binary(max_size=200),
    path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]),
)
@example(raw=b'{"model": "x", "messages": [', path="/v1/chat/completions")
@example(raw=b'{"messages": "\xff\xfe"}', path="/v1/chat/completions")
@example(raw=b"[" * 100_000 + b"]" * 100_000, path="/v1/chat/completions")
@example(raw=b'{"a":' * 50_000 + b"1" + b"}" * 50_000, path="/v1/completions")
@example(raw=b'{"max_tokens": ' + b"9" * 5000 + b"}", path="/v1/completions")
@example(raw=b'{"temperature": 1e400, "prompt": "x"}', path="/v1/completions")
@example(raw=b'{"prompt": "x", "prompt": 5}', path="/v1/completions")
@example(raw=b"\xef\xbb\xbf{}", path="/v1/embeddings")
@example(raw=b"NaN", path="/v1/embeddings")
@settings(deadline=API_DEADLINE_MS)
def test_any_raw_body(client: httpx.Client, raw: bytes, path: str) -> None:
    """Bytes that are not (valid) JSON, deep nesting and numbers past every limit: a clear 4xx."""
    assert check(client, path, raw) in {200, 400, 404, 422}


@given(
    kind=st.sampled_from(
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/json; charset=latin-1",
            "APPLICATION/JSON",
        ]
    )
)
@settings(deadline=API_DEADLINE_MS)
def test_any_content_type(client: httpx.Client, kind: str) -> None:
    """A body sent as anything but JSON is refused before it is read; JSON in any case is read."""
    status = check(client, "/v1/chat/completions", dumps(chat_base()), content_type=kind)
    assert status == (200 if kind.split(";")[0].strip().lower() == "application/json" else 415)
