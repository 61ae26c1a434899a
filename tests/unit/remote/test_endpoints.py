"""Remote endpoints as settings and the keyring keep them, and the sampling fields a strict server refuses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from app.core.platform import secrets
from app.core.remote.client import Endpoint, RemoteClient
from app.core.remote.endpoints import (
    EndpointConfig,
    forget_key,
    is_model_key,
    list_models,
    model_key,
    normalize_base_url,
    open_endpoint,
    split_model_key,
    store_key,
)
from app.core.values.sampling import SamplingParams
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("  http://127.0.0.1:8080/v1/  ", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),  # no path: /v1 is what servers use
        ("localhost:11434", "http://localhost:11434/v1"),
        ("https://api.example.com/openai/v1", "https://api.example.com/openai/v1"),
        ("HTTP://[::1]:1234/v1", "http://[::1]:1234/v1"),
    ],
)
def test_base_urls_are_normalized(typed: str, kept: str) -> None:
    assert normalize_base_url(typed) == kept


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("", "Enter the server's base URL"),
        ("ftp://host/v1", "must start with http"),
        ("http://host:99999/v1", "port"),
        ("http:///v1", "no host name"),
        ("http://host/v1?x=1", "query"),
        ("https://user:sk-secret@host/v1", "API key field"),
    ],
)
def test_unusable_base_urls_are_explained(typed: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        normalize_base_url(typed)


def test_settings_entries_are_read_leniently() -> None:
    assert EndpointConfig.from_dict({"base_url": "127.0.0.1:8080"}) == EndpointConfig(
        "127.0.0.1:8080", "http://127.0.0.1:8080/v1"
    )
    assert EndpointConfig.from_dict({"name": " Lab ", "base_url": "http://h/v1"}) == EndpointConfig(
        "Lab", "http://h/v1"
    )
    for bad in (None, "http://h/v1", {"name": "x"}, {"base_url": "ftp://h"}, {"base_url": 3}):
        assert EndpointConfig.from_dict(bad) is None


def test_model_keys_name_the_endpoint_and_the_model() -> None:
    lab = EndpointConfig("Lab", "http://10.0.0.2:8000/v1")
    nested = EndpointConfig("Proxy", "http://10.0.0.2:8000/v1/models/x/v1")  # a longer URL wins
    key = model_key(lab.base_url, "meta-llama/Llama-3.1-8B-Instruct")
    assert key == "http://10.0.0.2:8000/v1/models/meta-llama/Llama-3.1-8B-Instruct"
    assert is_model_key(key) and not is_model_key("/home/me/models/a.gguf") and not is_model_key(None)
    assert split_model_key(key, [lab, nested]) == (lab, "meta-llama/Llama-3.1-8B-Instruct")
    assert split_model_key(model_key(nested.base_url, "m"), [lab, nested]) == (nested, "m")
    assert split_model_key(key, []) is None
    assert split_model_key(lab.base_url + "/models/", [lab]) is None


def test_keys_live_in_the_keyring_and_move_with_the_url(memory_keyring: Any) -> None:
    old = EndpointConfig("Lab", "http://10.0.0.2:8000/v1")
    assert store_key(old, "sk-1") is True
    assert memory_keyring.passwords[("Fireside", "endpoint:http://10.0.0.2:8000/v1")] == "sk-1"
    assert store_key(old, None, old.base_url) is True  # None: unchanged
    assert secrets.get_secret(old.secret_name) == "sk-1"
    moved = EndpointConfig("Lab", "http://10.0.0.3:8000/v1")
    assert store_key(moved, None, old.base_url) is True
    assert secrets.get_secret(moved.secret_name) == "sk-1" and secrets.get_secret(old.secret_name) is None
    assert store_key(moved, "", moved.base_url) is True  # "": forgotten
    assert secrets.get_secret(moved.secret_name) is None
    store_key(moved, "sk-2")
    forget_key(moved.base_url)
    assert memory_keyring.passwords == {}


def test_without_a_keyring_a_key_is_kept_for_the_session_only(no_keyring: Any) -> None:
    config = EndpointConfig("Lab", "http://10.0.0.2:8000/v1")
    assert store_key(config, "sk-1") is False
    assert secrets.get_secret(config.secret_name) == "sk-1"
    assert store_key(config, None, config.base_url) is False  # still only for this session
    assert store_key(EndpointConfig("Open", "http://10.0.0.9/v1"), None) is True  # no key: nothing lost


def test_an_endpoint_is_opened_with_its_key_and_listed(server: FakeOpenAI, memory_keyring: Any) -> None:
    server.api_key = "sk-right"
    config = EndpointConfig("Fake", server.url)
    store_key(config, "sk-right")
    client = open_endpoint(config)
    try:
        assert list_models(client, config).models == ("tiny-model",)
    finally:
        client.close()
    wrong = open_endpoint(config, "sk-wrong")  # a typed key wins over the saved one
    try:
        listed = list_models(wrong, config)
    finally:
        wrong.close()
    assert listed.models == () and listed.kind == "auth" and listed.error and "401" in listed.error


def test_llama_cpp_sampling_fields_are_sent_and_dropped_when_refused(server: FakeOpenAI) -> None:
    client = RemoteClient(Endpoint(server.url, None, "Fake"))
    params = SamplingParams(top_k=12, min_p=0.1, repeat_penalty=1.2, frequency_penalty=0.5, max_tokens=3)
    try:
        client.stream_chat(
            "tiny-model", [{"role": "user", "content": "Hi"}], params, lambda _t: None, threading.Event()
        )
        first = server.requests[-1]
        assert (first["top_k"], first["min_p"], first["repeat_penalty"]) == (12, 0.1, 1.2)
        assert first["frequency_penalty"] == 0.5 and "presence_penalty" not in first  # 0: not sent
        server.refuse_fields = ("top_k", "min_p", "repeat_penalty")  # OpenAI's own API is strict
        pieces: list[str] = []
        stats = client.stream_chat(
            "tiny-model", [{"role": "user", "content": "Hi"}], params, pieces.append, threading.Event()
        )
        assert "".join(pieces) == "".join(server.words[:3]) and stats.completion_tokens == 3
        refused, retried = server.requests[-2:]
        assert "top_k" in refused and "top_k" not in retried and retried["frequency_penalty"] == 0.5
        client.stream_chat(
            "tiny-model", [{"role": "user", "content": "Hi"}], params, lambda _t: None, threading.Event()
        )
        assert "top_k" not in server.requests[-1] and len(server.requests) == 4  # remembered: no refusal
    finally:
        client.close()
