"""The remote-engine client against an OpenAI-compatible server on 127.0.0.1: models, streaming, stop,
and each failure a user can meet (unreachable, bad key, unknown model, rate limit, a crash, a cut stream)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.remote.client import Endpoint, RemoteClient, RemoteError, detect_local_engines
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingParams
from tests.fake_openai import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def _client(fake: FakeOpenAI, key: str | None = None) -> RemoteClient:
    return RemoteClient(Endpoint(fake.url, key, "Test server"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_models_and_a_streamed_reply(server: FakeOpenAI) -> None:
    client = _client(server)
    try:
        assert client.models() == ["tiny-model"]
        pieces: list[str] = []
        stats = client.stream_chat(
            "tiny-model",
            MESSAGES,
            SamplingParams(temperature=0.2, max_tokens=50, seed=7),
            pieces.append,
            threading.Event(),
        )
    finally:
        client.close()
    assert "".join(pieces) == "".join(server.words) and len(pieces) == 20  # piece by piece
    assert stats.stop_reason is StopReason.END_OF_TURN
    assert (stats.prompt_tokens, stats.completion_tokens) == (12, 20)  # from the stream's usage
    assert stats.ttft_s > 0 and stats.tokens_per_s > 0
    sent = server.requests[-1]
    assert sent["stream"] is True and sent["messages"] == MESSAGES
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.2, 50, 7)


def test_max_tokens_is_reported(server: FakeOpenAI) -> None:
    client = _client(server)
    try:
        stats = client.stream_chat(
            "tiny-model", MESSAGES, SamplingParams(max_tokens=5), lambda _t: None, threading.Event()
        )
    finally:
        client.close()
    assert stats.stop_reason is StopReason.MAX_TOKENS and stats.completion_tokens == 5


def test_stop_mid_reply_keeps_what_arrived(server: FakeOpenAI) -> None:
    server.delay_s = 0.05
    client = _client(server)
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(text: str) -> None:
        pieces.append(text)
        if len(pieces) == 3:
            cancel.set()

    try:
        stats = client.stream_chat("tiny-model", MESSAGES, SamplingParams(), on_text, cancel)
    finally:
        client.close()
    assert stats.stop_reason is StopReason.USER and len(pieces) == 3


def test_a_stream_cut_mid_reply_keeps_the_partial_text(server: FakeOpenAI) -> None:
    server.cut_after = 4
    client = _client(server)
    try:
        with pytest.raises(RemoteError) as caught:
            client.stream_chat("tiny-model", MESSAGES, SamplingParams(), lambda _t: None, threading.Event())
    finally:
        client.close()
    assert caught.value.kind == "cut"
    assert caught.value.partial == "".join(server.words[:4])


@pytest.mark.parametrize(
    ("status", "retry_after", "kind", "words"),
    [
        (401, None, "auth", "refused the API key"),
        (429, "7", "rate_limited", "Try again in 7 s"),
        (500, None, "server", "internal error"),
        (400, None, "bad_response", "answered 400"),
    ],
)
def test_http_errors_are_explained(
    server: FakeOpenAI, status: int, retry_after: str | None, kind: str, words: str
) -> None:
    server.status, server.retry_after = status, retry_after
    client = _client(server)
    try:
        with pytest.raises(RemoteError) as caught:
            client.stream_chat("tiny-model", MESSAGES, SamplingParams(), lambda _t: None, threading.Event())
    finally:
        client.close()
    assert caught.value.kind == kind and words in caught.value.message
    if retry_after:
        assert caught.value.retry_after == 7.0


def test_a_key_is_sent_and_a_wrong_one_refused(server: FakeOpenAI) -> None:
    server.api_key = "sk-right"
    good, bad = _client(server, "sk-right"), _client(server, "sk-wrong")
    try:
        assert good.models() == ["tiny-model"]
        with pytest.raises(RemoteError) as caught:
            bad.models()
        assert caught.value.kind == "auth"
        assert "sk-wrong" not in caught.value.message  # a key is never echoed
    finally:
        good.close()
        bad.close()


def test_an_unknown_model_and_an_unreachable_server(server: FakeOpenAI) -> None:
    client = _client(server)
    try:
        with pytest.raises(RemoteError) as caught:
            client.stream_chat(
                "no-such-model", MESSAGES, SamplingParams(), lambda _t: None, threading.Event()
            )
        assert caught.value.kind == "not_found" and "no-such-model" in caught.value.message
    finally:
        client.close()
    nowhere = RemoteClient(Endpoint(f"http://127.0.0.1:{_free_port()}/v1"))
    try:
        with pytest.raises(RemoteError) as caught:
            nowhere.models()
        assert caught.value.kind == "unreachable" and "cannot be reached" in caught.value.message
    finally:
        nowhere.close()


def test_running_local_engines_are_detected(server: FakeOpenAI) -> None:
    found = detect_local_engines({"Fake": server.url, "Nothing": f"http://127.0.0.1:{_free_port()}/v1"})
    assert [(e.name, models) for e, models in found] == [("Fake", ["tiny-model"])]


def test_images_go_to_a_remote_engine_as_image_url_parts(server: FakeOpenAI, tmp_path: Path) -> None:
    from app.core.media.attachments import AttachmentFolder, with_images
    from tests.unit.inference.test_vision import png

    folder = AttachmentFolder(tmp_path / "attachments")
    picture = folder.add_bytes(png((200, 10, 10)), "red.png")
    messages = [{"role": "user", "content": with_images("What is this?", [picture], folder)}]
    client = _client(server)
    try:
        client.stream_chat(
            "tiny-model", messages, SamplingParams(max_tokens=2), lambda _t: None, threading.Event()
        )
        folder.path(picture).unlink()  # gone from the data folder: a clear message, nothing sent
        before = len(server.requests)
        with pytest.raises(RemoteError, match="Nothing was sent to Test server"):
            client.stream_chat("tiny-model", messages, SamplingParams(), lambda _t: None, threading.Event())
    finally:
        client.close()
    assert len(server.requests) == before
    image, text = server.requests[before - 1]["messages"][0]["content"]
    assert text == {"type": "text", "text": "What is this?"}
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/png;base64,")
