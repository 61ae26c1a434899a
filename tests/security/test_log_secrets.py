"""No secret reaches the log: a session that uses every secret the app holds, through the paths that
log (their failures included), leaves none of them in any file of the log folder, nor on stdout or
stderr.

The secrets: the Hugging Face token (keyring), the API server's key, a remote endpoint's API key
(keyring), an MCP server's secret environment variable (keyring). The session: logging set up as the
app does (logs.setup, verbose, so DEBUG lines of every library are written too), the Hub refusing the
token (401), a remote endpoint refusing its key, API requests with a wrong and the right key, an MCP
server that fails to start with the secret in its environment, errors logged with their tracebacks
(an exception whose text holds each secret, as a library's may) and an unexpected exception reported
by logs.report. Then every log file and the captured output are searched for each secret.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.api.config import ServerConfig, ServingSources
from app.core.api.server import LocalServer
from app.core.hub.client import HubClient, HubError
from app.core.inference.thread import InferenceThread
from app.core.platform import logs, paths, secrets
from app.core.remote.endpoints import EndpointConfig, list_models, open_endpoint, store_key
from app.core.tools.mcp_client import McpConnection
from app.core.tools.mcp_config import McpServerConfig
from tests.conftest import STARTER_REPO
from tests.fake_openai import FakeOpenAI

HF_TOKEN = "hf_SecretTokenAbcdefghijklmnopqrstuvwxyz012"
API_KEY = "fs-api-secret-Qm9vYmFyYmF6cXV4"
WRONG_API_KEY = "fs-wrong-secret-aGVsbG8gd29ybGQ"
REMOTE_KEY = "sk-remote-secret-ZXhhbXBsZWtleQ"
MCP_SECRET = "mcp-env-secret-c2VjcmV0dmFsdWU"
#: The secrets the app holds (the wrong key is a client's: it is searched for too).
HELD = (HF_TOKEN, API_KEY, REMOTE_KEY, MCP_SECRET)
SECRETS = (*HELD, WRONG_API_KEY)


@pytest.fixture
def app_logging(data_dir: Path) -> Iterator[Path]:
    """Logging set up as the app does (verbose), into the data folder's log folder; undone after."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    logs.setup(verbose=True)
    yield paths.log_dir()
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    logs._file_handler = None


def _hub_refuses_the_token(log: logging.Logger) -> None:
    token = secrets.hf_token()
    assert token == HF_TOKEN
    client = HubClient(token=token)
    with pytest.raises(HubError) as caught:
        client.details(STARTER_REPO)
    assert caught.value.kind == "auth", caught.value
    log.warning("Hub: %s", caught.value.message)
    log.error("Hub request failed", exc_info=caught.value)


def _remote_refuses_the_key(log: logging.Logger) -> None:
    fake = FakeOpenAI(api_key="the-key-it-wants").start()
    try:
        config = EndpointConfig("Remote", fake.url)
        store_key(config, REMOTE_KEY)
        client = open_endpoint(config)
        try:
            listed = list_models(client, config)
        finally:
            client.close()
        assert listed.models == () and listed.error, "the endpoint refused the key"
        log.warning("remote endpoint %s: %s", config.name, listed.error)
        # As a library could: the request it made, headers and all.
        log.debug("request headers: %s", {"Authorization": f"Bearer {REMOTE_KEY}"})
    finally:
        fake.stop()


def _api_requests(log: logging.Logger, tmp_path: Path) -> None:
    secrets.set_secret("api-server-key", API_KEY)
    worker = InferenceThread(lambda _event: None)
    worker.start()
    server = LocalServer(
        worker,
        ServerConfig(port=0, api_key=secrets.get_secret("api-server-key")),
        sources=ServingSources(models_folder=lambda: tmp_path),
    )
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/v1/models"
        assert httpx.get(url, headers={"Authorization": f"Bearer {WRONG_API_KEY}"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
        body = {"messages": [{"role": "user", "content": f"my key is {API_KEY}"}]}
        posted = httpx.post(
            url.replace("models", "chat/completions"), json=body, headers={"Authorization": API_KEY}
        )
        assert posted.status_code == 401
    finally:
        server.stop()
        worker.shutdown()
    log.info("a client sent %s", f"Authorization: Bearer {WRONG_API_KEY}")  # a shape, not a known value


def _mcp_server_fails(log: logging.Logger) -> None:
    config = McpServerConfig(
        name="leaky",
        command=sys.executable,
        args=("-c", "import sys; sys.exit(3)"),
        secret_env=("SERVICE_TOKEN",),
    )
    secrets.set_secret(config.secret_name("SERVICE_TOKEN"), MCP_SECRET)
    assert config.environment()["SERVICE_TOKEN"] == MCP_SECRET

    async def attempt() -> Any:
        connection = McpConnection(config)
        try:
            return await connection.call("anything", {})
        finally:
            await connection.close()

    result = asyncio.run(attempt())
    assert result.is_error
    log.warning("MCP server %s: %s (environment %s)", config.name, result.text, config.environment())


def _errors_holding_secrets(log: logging.Logger) -> None:
    for secret in HELD:  # a key a client sent is nowhere but in its request: see _api_requests
        try:
            raise RuntimeError(f"a library put the credential {secret} in its message")
        except RuntimeError:
            log.exception("call failed")
    try:
        raise ValueError(f"unexpected, with {HF_TOKEN} and {MCP_SECRET}")
    except ValueError as exc:
        logs.report(type(exc), exc, exc.__traceback__)
    logging.getLogger("httpx").debug("HTTP Request: GET https://x.example/?token=%s", HF_TOKEN)


def test_no_secret_reaches_the_log_or_the_console(
    app_logging: Path,
    memory_keyring: Any,
    fake_hub: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secrets.set_secret(secrets.HF_TOKEN, HF_TOKEN)
    log = logging.getLogger("app.session")
    _hub_refuses_the_token(log)
    _remote_refuses_the_key(log)
    _api_requests(log, tmp_path)
    _mcp_server_fails(log)
    _errors_holding_secrets(log)
    for handler in logging.getLogger().handlers:
        handler.flush()

    files = [p for p in app_logging.rglob("*") if p.is_file()]
    assert files, "the session wrote no log file"
    written = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in files}
    out, err = capfd.readouterr()
    written["stdout"], written["stderr"] = out, err
    for where, text in written.items():
        for secret in SECRETS:
            assert secret not in text, f"{where} holds the secret {secret[:8]}…"
    log_text = written[logs.LOG_NAME]
    # The session was logged, its errors too, with the secrets' places marked.
    assert "API server listening" in log_text and "unexpected error" in log_text
    assert "call failed" in log_text and "Traceback" in log_text
    assert log_text.count(logs.REDACTED) >= len(HELD)
    assert "Bearer [redacted]" in log_text


def test_redaction_keeps_the_rest_of_the_line() -> None:
    logs.remember_secret("s3cr3t-value-123")
    assert logs.redact("key s3cr3t-value-123 refused") == "key [redacted] refused"
    assert logs.redact("Authorization: bearer abc.def") == "Authorization: bearer [redacted]"
    assert logs.redact("token hf_" + "a" * 30 + " bad") == "token [redacted] bad"
    logs.remember_secret("ab")  # too short to be a secret: replacing it would garble every line
    assert logs.redact("tab and cab") == "tab and cab"


def test_a_malformed_log_call_is_left_to_logging() -> None:
    """The filter never raises nor drops a record: one whose arguments do not fit its message goes on
    unchanged, for logging to report as it does without the filter."""
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "two %s %s", ("one",), None)
    assert logs.RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("two %s %s", ("one",))
    fine = logging.LogRecord("app", logging.WARNING, __file__, 1, "key %s", (HF_TOKEN,), None)
    assert logs.RedactingFilter().filter(fine) is True and fine.getMessage() == "key [redacted]"
