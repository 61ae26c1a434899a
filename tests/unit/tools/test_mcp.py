"""MCP servers through the official SDK: a test server over stdio and over streamable HTTP, its
tools listed and called, a secret from the keyring in its environment, and every way a call can go
wrong (a tool that fails, a time limit, a server that dies mid-call or never answers, one that
cannot start) ending in a clear result, with the next call working again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.platform import secrets
from app.core.tools import mcp_client
from app.core.tools.mcp_client import McpConnection, McpError, model_name
from app.core.tools.mcp_config import McpConfigError, McpServerConfig
from tests.llama_server import free_port

SERVER = str(Path(__file__).resolve().parents[2] / "mcp_server.py")


def _stdio(**changes: object) -> McpServerConfig:
    config = McpServerConfig("test", command=sys.executable, args=(SERVER,), timeout_s=20)
    return McpServerConfig(**{**config.to_dict(), "args": (SERVER,), "env": (), **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The test server over streamable HTTP on a free port: its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "the HTTP test server did not start"
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


def _run(connection: McpConnection, work: object) -> object:
    async def go() -> object:
        try:
            return await work(connection)  # type: ignore[operator]
        finally:
            await connection.close()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["stdio", "http"])
def test_a_servers_tools_are_listed_and_called(kind: str, request: pytest.FixtureRequest) -> None:
    config = (
        _stdio() if kind == "stdio" else McpServerConfig("test", url=request.getfixturevalue("http_server"))
    )

    async def work(connection: McpConnection) -> object:
        tools = await connection.tools()
        added = await connection.call("add", {"a": 2, "b": 40})
        again = await connection.call("add", {"a": 1, "b": 1})  # the same connection, still open
        return tools, added, again

    tools, added, again = _run(McpConnection(config), work)  # type: ignore[misc]
    by_name = {tool.name: tool for tool in tools}
    assert {"add", "secret_word", "sleep", "fail", "die"} <= set(by_name)
    add = by_name["add"]
    assert add.spec.name == "test__add" and add.server == "test" and "Add two" in add.spec.description
    assert add.spec.parameters["properties"].keys() == {"a", "b"}
    assert (added.text, added.is_error) == ("42", False)
    assert again.text == "2"


def test_secret_environment_values_come_from_the_keyring() -> None:
    config = _stdio(secret_env=("SECRET_WORD",))
    assert secrets.set_secret(config.secret_name("SECRET_WORD"), "owl")
    result = _run(McpConnection(config), lambda c: c.call("secret_word", {}))
    assert result.text == "owl"  # type: ignore[attr-defined]
    assert "owl" not in str(config.to_dict())  # never in settings.json
    secrets.set_secret(config.secret_name("SECRET_WORD"), None)
    missing = _run(McpConnection(config), lambda c: c.call("secret_word", {}))
    assert missing.is_error and "not in the keyring" in missing.text  # type: ignore[attr-defined]


def test_every_way_a_call_goes_wrong_ends_in_a_clear_result_and_the_next_call_works() -> None:
    async def work(connection: McpConnection) -> object:
        failed = await connection.call("fail", {"reason": "testing"})
        bad = await connection.call("add", {"a": "x"})
        slow = await connection.call("sleep", {"seconds": 30}, timeout_s=1)
        died = await connection.call("die", {})
        after = await connection.call("add", {"a": 3, "b": 4})  # started again
        return failed, bad, slow, died, after

    failed, bad, slow, died, after = _run(McpConnection(_stdio()), work)  # type: ignore[misc]
    assert failed.is_error and "fail" in failed.text
    assert bad.is_error and "validation" in bad.text
    assert slow.is_error and slow.timed_out and "within 1 s" in slow.text
    assert died.is_error and "stopped during the call to die" in died.text
    assert (after.text, after.is_error) == ("7", False)


def test_a_server_that_cannot_start_or_never_answers_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = _run(
        McpConnection(_stdio(command="/nonexistent/fireside-mcp", args=())), lambda c: c.call("add", {})
    )
    assert missing.is_error and "could not be started" in missing.text  # type: ignore[attr-defined]
    monkeypatch.setattr(mcp_client, "CONNECT_TIMEOUT_S", 2.0)
    mute = _stdio(args=("-c", "import time; time.sleep(60)"))
    with pytest.raises(McpError, match="did not answer within 2 s"):
        _run(McpConnection(mute), lambda c: c.tools())


def test_unreachable_http_server_is_a_clear_error() -> None:
    config = McpServerConfig("gone", url=f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(McpError, match="gone could not be started"):
        _run(McpConnection(config), lambda c: c.tools())


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"name": "has space", "command": "x"}, "name"),
        ({"name": "a"}, "either a command"),
        ({"name": "a", "command": "x", "url": "http://h/mcp"}, "not both"),
        ({"name": "a", "url": "ftp://h/mcp"}, "not an http"),
        ({"name": "a", "command": "x", "env": (("1BAD", "v"),)}, "environment variable"),
        ({"name": "a", "command": "x", "timeout_s": 0}, "time limit"),
    ],
)
def test_unusable_settings_are_refused_with_a_reason(fields: dict[str, object], said: str) -> None:
    with pytest.raises(McpConfigError, match=said):
        McpServerConfig(**fields).validated()  # type: ignore[arg-type]


def test_settings_round_trip_and_damaged_entries_are_dropped() -> None:
    config = _stdio(env=(("MODE", "fast"),), secret_env=("TOKEN",), always_allowed=frozenset({"add"}))
    assert McpServerConfig.from_dict(config.to_dict()) == config
    for damaged in (
        None,
        [],
        {"name": "x"},
        {"name": "ok", "command": "c", "env": "nope"},
        {"name": 3, "url": 5},
    ):
        assert McpServerConfig.from_dict(damaged) is None


def test_model_names_are_valid_openai_function_names() -> None:
    assert model_name("files", "read.file") == "files__read_file"
    assert len(model_name("s" * 32, "t" * 60)) == 64
