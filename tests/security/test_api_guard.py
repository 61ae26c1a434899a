"""The local API server lets in only this computer's programs that know the key, on EVERY route.

The routes are read from the running server's Starlette app, so a route added later is checked too:
its API key is compared with hmac.compare_digest (constant time: a recorder wrapping the real one
sees every comparison), a wrong key is a 401 that says how to send it, a web page's Origin and a
DNS-rebound Host are refused, and a POST body that is not JSON (what a page can send without a CORS
preflight) is refused with a clear 4xx. The server runs for real on a socket (LocalServer); no model
is loaded: every check here is made before a model would be asked anything.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains
from starlette.routing import Route

from app.core.api.config import ServerConfig, ServingSources
from app.core.api.server import LocalServer
from app.core.inference.thread import InferenceThread

KEY = "fs-security-key-0123456789"
#: One connection kept open for all the requests (a new one each time would be most of the run time).
_client = httpx.Client(timeout=30)
BODY = json.dumps({"model": "", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server with a key, in front of a worker with no model, on an empty models folder."""
    folder = tmp_path_factory.mktemp("models")
    worker = InferenceThread(lambda _event: None)
    worker.start()
    served = LocalServer(
        worker, ServerConfig(port=0, api_key=KEY), sources=ServingSources(models_folder=lambda: folder)
    )
    served.start()
    yield served
    _client.close()
    served.stop()
    worker.shutdown()


def endpoints(server: LocalServer) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the server has (a path parameter gets a sample value)."""
    found = []
    for route in server.app.routes:
        assert isinstance(route, Route), f"a route of a kind this test does not know: {route!r}"
        path = route.path.replace("{path:path}", "v1/no-such-thing")
        assert "{" not in path, f"give {route.path}'s parameter a sample value here"
        found += [(method, path) for method in sorted(route.methods or ())]
    assert len(found) >= 9, found  # GET+HEAD /v1/models, 3 POSTs, the catch-all's 5 methods and HEAD
    return found


def send(
    server: LocalServer, method: str, path: str, headers: dict[str, str | bytes], **kw: object
) -> httpx.Response:
    """One request to `server`, JSON body for POST-like methods unless the caller gives its own."""
    if method in ("POST", "PUT", "PATCH") and "content" not in kw:
        kw["content"] = BODY
        headers = {"Content-Type": "application/json", **headers}
    url = f"http://127.0.0.1:{server.port}{path}"
    return _client.request(method, url, headers=headers, **kw)  # type: ignore[arg-type]


def error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an OpenAI-style error body."""
    body = response.json()["error"]
    return body["code"], body["message"]


def test_the_route_list_is_the_apps(server: LocalServer) -> None:
    paths = {path for _method, path in endpoints(server)}
    assert {"/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings"} <= paths


# ----- the API key --------------------------------------------------------------------------------


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, object]]:
    """Every hmac.compare_digest call (made through the real one) while the test runs."""
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def recorder(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recorder)
    return calls


WRONG_KEYS: dict[str, dict[str, str | bytes]] = {
    "same length": {"Authorization": "Bearer " + "x" * len(KEY)},
    "one character off": {"Authorization": "Bearer " + KEY[:-1] + "X"},
    "shorter": {"Authorization": "Bearer " + KEY[:5]},
    "longer": {"Authorization": "Bearer " + KEY + "0"},
    "empty": {"Authorization": "Bearer"},
    "non-ASCII": {"Authorization": ("Bearer " + "ключ-" + KEY).encode()},
    "Latin-1 bytes": {"Authorization": b"Bearer \xe9" + KEY.encode()},
}
#: Not even a Bearer credential: refused before any comparison is needed.
NOT_BEARER: dict[str, dict[str, str | bytes]] = {
    "no header": {},
    "no scheme": {"Authorization": KEY},
    "Basic": {"Authorization": "Basic " + KEY},
    "Bearer glued": {"Authorization": "Bearer" + KEY},
}


@pytest.mark.parametrize("case", sorted(WRONG_KEYS))
def test_a_wrong_key_is_compared_in_constant_time_and_refused_on_every_route(
    server: LocalServer, comparisons: list[tuple[object, object]], case: str
) -> None:
    for method, path in endpoints(server):
        comparisons.clear()
        response = send(server, method, path, WRONG_KEYS[case])
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        if method != "HEAD":  # a HEAD answer has no body
            code, message = error(response)
            assert code == "invalid_api_key" and "Authorization: Bearer KEY" in message, message
        assert len(comparisons) == 1, f"{method} {path}: the key was not compared with compare_digest"
        given_key, expected = comparisons[0]
        assert expected == KEY.encode() and given_key != expected


@pytest.mark.parametrize("case", sorted(NOT_BEARER))
def test_a_missing_bearer_credential_is_refused_on_every_route(server: LocalServer, case: str) -> None:
    for method, path in endpoints(server):
        response = send(server, method, path, NOT_BEARER[case])
        assert response.status_code == 401, (method, path, response.text)
        if method != "HEAD":
            assert error(response)[0] == "invalid_api_key"


def test_the_right_key_is_compared_with_compare_digest_on_every_route(
    server: LocalServer, comparisons: list[tuple[object, object]]
) -> None:
    for method, path in endpoints(server):
        comparisons.clear()
        response = send(server, method, path, {"Authorization": f"Bearer {KEY}"})
        assert response.status_code != 401, (method, path, response.text)
        assert comparisons == [(KEY.encode(), KEY.encode())], (method, path)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60))
def test_any_other_printable_key_is_a_401(server: LocalServer, key: str) -> None:
    if key == KEY:
        return
    response = send(server, "GET", "/v1/models", {"Authorization": f"Bearer {key}"})
    assert response.status_code == 401 and error(response)[0] == "invalid_api_key"


# ----- where a request comes from -----------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {KEY}"}
#: The codes of the guard's refusals.
GUARD_CODES = {"origin_not_allowed", "host_not_allowed", "invalid_api_key", "invalid_content_type"}


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "https://evil.example:8443", "null", "http://localhost.evil.example",
     "http://127.0.0.1.evil.example", "file://", "chrome-extension://abcdef"],
)  # fmt: skip
def test_web_pages_of_other_origins_are_refused_on_every_route(server: LocalServer, origin: str) -> None:
    for method, path in endpoints(server):
        response = send(server, method, path, {**AUTH, "Origin": origin})
        assert response.status_code == 403, (method, path, origin, response.text)
        if method != "HEAD":
            code, message = error(response)
            assert code == "origin_not_allowed" and "not allowed" in message


def test_rebound_host_names_are_refused_on_every_route(server: LocalServer) -> None:
    port = server.port
    for host in (
        f"evil.example:{port}",
        "evil.example",
        f"localhost.evil.example:{port}",
        f"127.0.0.1.nip.io:{port}",
    ):
        for method, path in endpoints(server):
            response = send(server, method, path, {**AUTH, "Host": host})
            assert response.status_code == 403, (method, path, host, response.text)
            if method != "HEAD":
                code, message = error(response)
                assert code == "host_not_allowed" and "loopback" in message, message


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(domains())
def test_any_domain_name_as_host_is_refused(server: LocalServer, domain: str) -> None:
    if domain.lower().rstrip(".") == "localhost":
        return
    response = send(server, "GET", "/v1/models", {**AUTH, "Host": f"{domain}:{server.port}"})
    assert response.status_code == 403 and error(response)[0] == "host_not_allowed", domain


def test_this_computers_names_and_pages_are_let_in_on_every_route(server: LocalServer) -> None:
    port = server.port
    allowed: list[dict[str, str]] = [
        {"Host": f"localhost:{port}"},
        {"Host": f"127.0.0.1:{port}"},
        {"Host": f"[::1]:{port}"},
        {"Host": "localhost"},
        {"Origin": "http://localhost:3000"},
        {"Origin": "http://127.0.0.1:8080"},
        {"Origin": "http://[::1]:5173"},
    ]
    for extra in allowed:
        for method, path in endpoints(server):
            response = send(server, method, path, {**AUTH, **extra})
            # Past the guard: the model list, "no model is loaded", the unknown path, a field refused.
            assert response.status_code not in (401, 403, 415), (method, path, extra, response.text)
            assert response.status_code < 500, response.text
            if method != "HEAD" and response.status_code != 200:
                assert error(response)[0] not in GUARD_CODES, response.text


# ----- what a body may be -------------------------------------------------------------------------

MULTIPART = '--b\r\nContent-Disposition: form-data; name="m"\r\n\r\nx\r\n--b--'
NOT_JSON = {
    "text/plain": ("text/plain", BODY),
    "text/plain with charset": ("text/plain; charset=utf-8", BODY),
    "a form": ("application/x-www-form-urlencoded", "model=x&messages=hi"),
    "a multipart form": ("multipart/form-data; boundary=b", MULTIPART),
    "no type": (None, BODY),
    "JSON-ish type": ("application/json-patch+json", BODY),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(NOT_JSON))
def test_a_body_that_is_not_json_is_refused_on_every_post_route(server: LocalServer, case: str) -> None:
    kind, content = NOT_JSON[case]
    posts = [(m, p) for m, p in endpoints(server) if m in ("POST", "PUT", "PATCH")]
    assert {p for _m, p in posts} >= {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
    for method, path in posts:
        headers: dict[str, str | bytes] = {**AUTH, **({"Content-Type": kind} if kind else {})}
        response = send(server, method, path, headers, content=content.encode())
        assert 400 <= response.status_code < 500, (method, path, case, response.text)
        code, message = error(response)
        if "no-such-thing" in path:  # the catch-all refuses any request, whatever it holds
            assert code == "not_found", response.text
        else:
            assert response.status_code == 415 and code == "invalid_content_type", response.text
            assert "application/json" in message


def test_a_json_body_with_a_charset_is_json(server: LocalServer) -> None:
    """The check is on the media type, so a client naming its charset is still served."""
    headers: dict[str, str | bytes] = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    response = send(server, "POST", "/v1/chat/completions", headers, content=BODY.encode())
    assert response.status_code == 404 and error(response)[0] == "model_not_found"
