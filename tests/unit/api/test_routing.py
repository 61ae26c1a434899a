"""Names that route: a request's `model` picks an installed model (loaded just in time, once, within
the memory budget, unloaded when idle), an alias (adapters, system prompt, sampling defaults) or a
remote engine's model; GET /v1/models lists them all; an unknown name is a 404 naming it."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from app.core.api.aliases import Alias
from app.core.api.config import ServerConfig, ServingSources
from app.core.api.server import LocalServer
from app.core.inference.options import LoadOptions
from app.core.inference.thread import InferenceThread
from app.core.remote.endpoints import EndpointConfig
from tests.fake_openai import FakeOpenAI
from tests.lora_writer import write_lora
from tests.unit.api.served import KEY, MODEL, QUESTION, Served

#: Small loads: the tests load several models side by side.
OPTIONS = LoadOptions(context_length=1024, n_parallel=1)


@pytest.fixture(scope="module")
def remote() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(models=["tiny-model", "other-model"]).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def lora(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lora(tmp_path_factory.mktemp("routing-lora") / "sea-lora.gguf", starter_model, strength=0.08)


@pytest.fixture
def serve(
    shared_worker: InferenceThread, starter_f16: Path, memory_keyring: Any
) -> Iterator[Callable[..., Served]]:
    """Start a server in front of the shared worker (the window's model: the starter), with the F16
    copy installed beside it and `config` changes."""
    started: list[LocalServer] = []

    def start(
        extra: tuple[Path, ...] = (), endpoints: tuple[EndpointConfig, ...] = (), **config: Any
    ) -> Served:
        server = LocalServer(
            shared_worker,
            ServerConfig(port=0, api_key=KEY, **config),
            sources=ServingSources(
                options=lambda _path: OPTIONS,
                endpoints=lambda: list(endpoints),
                extra_models=lambda: [str(starter_f16), *map(str, extra)],
            ),
        )
        server.start()
        started.append(server)
        return Served(shared_worker, server)

    yield start
    for server in started:
        server.stop()


def pool_changes(served: Served, done: Callable[[], bool], timeout: float = 60) -> None:
    """Wait (for the pool's reports) until `done()` holds."""
    changed = threading.Event()
    served.server.pool.add_listener(changed.set)
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"the pool holds {served.server.pool.entries()}"
        changed.wait(0.5)
        changed.clear()


def extra_paths(served: Served) -> list[Path]:
    return [e.path for e in served.server.pool.entries() if not e.primary]


def ask(served: Served, model: str, **fields: Any) -> Any:
    return served.client.chat.completions.create(
        model=model, messages=QUESTION, max_tokens=fields.pop("max_tokens", 6), temperature=0, **fields
    )


def test_the_model_list_names_every_installed_model_alias_and_remote_model(
    serve: Callable[..., Served], starter_model: Path, starter_f16: Path, remote: FakeOpenAI
) -> None:
    alias = Alias("my-org/support-assistant-v2", starter_model, system_prompt="Be brief.")
    served = serve(endpoints=(EndpointConfig("lab", remote.url),), aliases=(alias,))
    listed = served.client.models.list().data
    ids = [m.id for m in listed]
    assert ids[0] == MODEL, "the loaded model comes first: clients that take the first find it"
    assert set(ids) == {MODEL, starter_f16.stem, alias.name, "tiny-model", "other-model"}
    by_id = {m.id: m.model_dump() for m in listed}
    assert by_id[MODEL]["state"] == "loaded" and by_id[starter_f16.stem]["state"] == "not-loaded"
    assert by_id[alias.name]["kind"] == "alias" and by_id[alias.name]["model"] == starter_model.stem
    assert by_id["tiny-model"]["owned_by"] == "lab" and by_id["tiny-model"]["kind"] == "remote"


def test_a_model_not_loaded_loads_once_for_two_requests_and_unloads_after_its_ttl(
    serve: Callable[..., Served], starter_f16: Path
) -> None:
    served = serve()
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _i: ask(served, starter_f16.stem, extra_body={"ttl": 1}), range(2)))
    assert all(r.model == starter_f16.stem and r.choices[0].message.content for r in replies)
    assert replies[0].choices[0].message.content == replies[1].choices[0].message.content
    assert served.server.pool.loads == 1, "two requests at once, one load"
    name = f"fireside-api-{starter_f16.stem}"
    # ttl 1 s: unloaded once idle, its thread ended.
    pool_changes(
        served, lambda: not extra_paths(served) and all(t.name != name for t in threading.enumerate())
    )
    # By file name too, and the window's model is still there and answers by its name.
    assert ask(served, starter_f16.name).model == starter_f16.stem
    assert ask(served, MODEL).model == MODEL


def test_unknown_names_and_an_alias_to_a_deleted_model_are_404s_naming_them(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    gone = tmp_path / "deleted.gguf"
    served = serve(aliases=(Alias("support", gone),))
    with pytest.raises(openai.NotFoundError) as caught:
        ask(served, "gpt-4o")
    assert "no model named “gpt-4o”" in caught.value.message and MODEL in caught.value.message
    with pytest.raises(openai.NotFoundError) as caught:
        ask(served, "support")
    assert "The alias “support” names deleted.gguf, which is no longer installed" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        served.client.embeddings.create(model="nomic-embed-text", input="hello")
    answer = served.raw("/chat/completions", json={"model": MODEL, "messages": QUESTION, "ttl": 60})
    assert answer.status_code == 400 and "ttl" in answer.json()["error"]["message"], answer.text
    assert answer.json()["error"]["param"] == "ttl"


def test_an_alias_brings_its_adapter_system_prompt_and_sampling(
    serve: Callable[..., Served], starter_model: Path, lora: Path
) -> None:
    plain = Alias("plain", starter_model, sampling=(("temperature", 0.0), ("max_tokens", 5)))
    tuned = dataclasses.replace(plain, name="tuned", adapters=((lora, 1.5),))
    prompted = dataclasses.replace(plain, name="prompted", system_prompt="Always answer in German.")
    served = serve(aliases=(plain, tuned, prompted))

    def reply(model: str, system: str | None = None) -> Any:
        messages = ([{"role": "system", "content": system}] if system else []) + QUESTION
        return served.client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]

    def same(a: Any, b: Any) -> bool:
        texts = a.choices[0].message.content == b.choices[0].message.content
        return bool(texts and a.usage.prompt_tokens == b.usage.prompt_tokens)

    first, adapted = reply("plain"), reply("tuned")
    assert first.usage is not None and first.usage.completion_tokens <= 5  # the alias's max_tokens
    assert reply("plain").choices[0].message.content == first.choices[0].message.content  # temperature 0
    assert adapted.choices[0].message.content != first.choices[0].message.content  # the adapter, no reload
    # The alias's system prompt is the one the request would have sent; a request's own one wins.
    german = reply("prompted")
    assert same(german, reply("plain", "Always answer in German."))
    assert not same(german, first)
    assert same(reply("prompted", "Be brief."), reply("plain", "Be brief."))
    assert not extra_paths(served), "an alias of the loaded model uses it, with no second load"


def test_the_memory_budget_unloads_idle_models_and_refuses_what_cannot_fit(
    serve: Callable[..., Served], starter_model: Path, starter_f16: Path, tmp_path: Path
) -> None:
    copy = shutil.copyfile(starter_model, tmp_path / "starter-copy.gguf")
    served = serve(extra=(copy,))
    primary = served.server.pool.entries()[0].bytes
    served.server.config = dataclasses.replace(served.server.config, memory_budget=100 << 20)
    with pytest.raises(openai.APIStatusError) as caught:
        ask(served, starter_f16.stem)
    assert (
        caught.value.status_code == 507
        and "more than the whole memory budget (105 MB)" in caught.value.message
    )
    served.server.config = dataclasses.replace(served.server.config, memory_budget=primary + (300 << 20))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(served, starter_f16.stem)
    assert caught.value.status_code == 507
    message = caught.value.message
    assert f"{starter_f16.stem} needs about" in message and f"{MODEL} (" in message, message
    assert "the window's model" in message and "Try again once their requests end" in message

    served.server.config = dataclasses.replace(served.server.config, memory_budget=0)  # Auto
    ask(served, starter_f16.stem)
    f16 = next(e for e in served.server.pool.entries() if not e.primary).bytes
    served.server.config = dataclasses.replace(served.server.config, memory_budget=primary + f16 + (10 << 20))
    assert ask(served, copy.stem).model == copy.stem  # the idle F16 copy made room
    assert [p.name for p in extra_paths(served)] == [copy.name]


def test_remote_models_answer_through_fireside_and_fields_it_does_not_forward_are_refused(
    serve: Callable[..., Served], remote: FakeOpenAI
) -> None:
    served = serve(endpoints=(EndpointConfig("lab", remote.url),))
    reply = ask(served, "tiny-model", max_tokens=3, stop=["never"])
    assert reply.model == "tiny-model" and reply.choices[0].message.content == "word0 word1 word2 "
    sent = remote.requests[-1]
    assert sent["model"] == "tiny-model" and sent["max_tokens"] == 3 and sent["stop"] == ["never"]
    assert ask(served, "lab/other-model").model == "other-model"  # its name, as the list gives it
    with pytest.raises(openai.BadRequestError) as caught:
        ask(served, "tiny-model", logprobs=True)
    assert "logprobs: Fireside does not forward this field" in caught.value.message


def test_an_id_two_remote_engines_offer_is_named_by_engine(
    serve: Callable[..., Served], remote: FakeOpenAI
) -> None:
    served = serve(endpoints=(EndpointConfig("lab", remote.url), EndpointConfig("attic", remote.url + "/")))
    ids = [m.id for m in served.client.models.list().data]
    assert "lab/tiny-model" in ids and "attic/tiny-model" in ids and "tiny-model" not in ids
    with pytest.raises(openai.NotFoundError) as caught:
        ask(served, "tiny-model")
    assert "names several models: lab/tiny-model, attic/tiny-model" in caught.value.message
    assert ask(served, "attic/tiny-model", max_tokens=2).model == "attic/tiny-model"
