"""Chat with an OpenAI-compatible server: vLLM, a llama.cpp server, Ollama, LM Studio, a hosted API.

`RemoteClient` lists an endpoint's models and streams a chat reply over server-sent events (the
OpenAI `chat/completions` format, ending with `data: [DONE]`), with the same stop semantics as the
local engine: `cancel` is checked between pieces, and the reply's stats come back as a ReplyStats.
Every failure becomes a RemoteError whose `kind` says what to tell the user; a stream cut mid-reply
keeps what arrived (`partial`). No Qt here.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from app.core.media.images import ImageError, openai_content
from app.core.platform import logs
from app.core.tools.calls import ToolCall, new_call_id
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import RANDOM_SEED, SamplingParams

#: Servers people run beside Fireside, on their usual ports, offered when they answer.
KNOWN_LOCAL_ENGINES = {
    "Ollama": "http://127.0.0.1:11434/v1",
    "LM Studio": "http://127.0.0.1:1234/v1",
    "llama.cpp server": "http://127.0.0.1:8080/v1",
}
CONNECT_TIMEOUT_S = 5.0
#: A server may think for a long time before the first token (a cold model, a long prompt).
READ_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An OpenAI-compatible server: its base URL (ending in /v1) and optional API key."""

    base_url: str
    api_key: str | None = None
    name: str = ""

    @property
    def label(self) -> str:
        """How the endpoint is shown."""
        return self.name or self.base_url


class RemoteErrorKind(StrEnum):
    """What went wrong with a remote engine, for the words and the advice the user gets."""

    UNREACHABLE = "unreachable"  # no connection, or the request failed before an answer came
    AUTH = "auth"  # 401 or 403: the API key
    NOT_FOUND = "not_found"  # 404: no such model, or nothing at that address
    RATE_LIMITED = "rate_limited"  # 429
    SERVER = "server"  # a 5xx, or an error the server reported mid-reply
    BAD_RESPONSE = "bad_response"  # another 4xx, or an answer Fireside cannot read
    CUT = "cut"  # the stream broke off before the reply ended (what arrived is kept)


class RemoteError(Exception):
    """A request to a remote engine failed; `kind` says how (see RemoteErrorKind)."""

    def __init__(
        self, kind: RemoteErrorKind, message: str, retry_after: float | None = None, partial: str = ""
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.partial = partial


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _server_message(response: httpx.Response) -> str:
    """The server's own words for an error (OpenAI's {"error": {"message": ...}} or plain text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return str(body)[:200]


def _raise_for(response: httpx.Response, endpoint: Endpoint, model: str | None = None) -> None:
    status = response.status_code
    if status < 400:
        return
    said = _server_message(response)
    where = endpoint.label
    if status in (401, 403):
        raise RemoteError(
            RemoteErrorKind.AUTH,
            f"{where} refused the API key ({status}). Check the key saved for this endpoint. {said}".strip(),
        )
    if status == 404:
        what = f"the model “{model}”" if model else "that address"
        raise RemoteError(RemoteErrorKind.NOT_FOUND, f"{where} does not have {what} (404). {said}".strip())
    if status == 429:
        wait = _retry_after(response)
        when = f" Try again in {wait:.0f} s." if wait is not None else " Try again shortly."
        raise RemoteError(
            RemoteErrorKind.RATE_LIMITED, f"{where} is rate limiting requests (429).{when}", retry_after=wait
        )
    if status >= 500:
        raise RemoteError(RemoteErrorKind.SERVER, f"{where} had an internal error ({status}). {said}".strip())
    raise RemoteError(RemoteErrorKind.BAD_RESPONSE, f"{where} answered {status}. {said}".strip())


class RemoteClient:
    """One endpoint. Thread-safe for one request at a time per client (the inference thread's use)."""

    def __init__(self, endpoint: Endpoint, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint
        logs.remember_secret(endpoint.api_key)  # the log never shows it, whatever a library logs
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self._http = httpx.Client(
            base_url=endpoint.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport,
        )
        #: False once the server refused llama.cpp's sampling fields (OpenAI's own API does).
        self._extras_ok = True

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RemoteError(
                RemoteErrorKind.UNREACHABLE,
                f"{self.endpoint.label} cannot be reached ({type(exc).__name__}). Is the server running, "
                "and is the address right?",
            ) from exc
        except httpx.HTTPError as exc:
            raise RemoteError(RemoteErrorKind.UNREACHABLE, f"{self.endpoint.label}: {exc}") from exc

    def _open_stream(self, body: dict[str, Any], params: SamplingParams, model: str) -> httpx.Response:
        """POST a streaming chat request; the open response (status < 400) or a RemoteError. A server
        that refuses the llama.cpp sampling fields by name (OpenAI's API answers 400 "Unrecognized
        request argument") is asked again without them, and this client no longer sends them."""
        extras = _sampling_extras(params) if self._extras_ok else {}
        while True:
            request = self._http.build_request("POST", "chat/completions", json={**body, **extras})
            response = self._http.send(request, stream=True)
            if response.status_code < 400:
                return response
            try:
                response.read()
            finally:
                response.close()
            if extras and response.status_code in (400, 422) and any(k in response.text for k in extras):
                self._extras_ok, extras = False, {}
                continue
            _raise_for(response, self.endpoint, model)

    def models(self, timeout_s: float = 15.0) -> list[str]:
        """The model ids the server offers (GET /models)."""
        response = self._request(
            "GET", "models", timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
        )
        _raise_for(response, self.endpoint)
        try:
            data = response.json().get("data", [])
            return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]
        except (ValueError, AttributeError, TypeError) as exc:
            raise RemoteError(
                RemoteErrorKind.BAD_RESPONSE, f"{self.endpoint.label} sent a model list Fireside cannot read"
            ) from exc

    def stream_chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: SamplingParams,
        on_text: Callable[[str], None],
        cancel: threading.Event,
        *,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
        calls: list[ToolCall] | None = None,
        stop: Sequence[str] = (),
    ) -> ReplyStats:
        """Stream a reply; `on_text` gets each piece. Raises RemoteError (with what arrived, if a
        stream was cut). A set `cancel` ends the reply before the next piece (stop reason USER).
        `tools` and `response_format` are sent as they are (OpenAI's fields); the tool calls of the
        reply are appended to `calls`, their arguments as the server sent them (maybe not JSON)."""
        body: dict[str, Any] = {
            "model": model,
            "messages": _wire_messages(messages, self.endpoint.label),
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed != RANDOM_SEED:
            body["seed"] = params.seed
        if stop:
            body["stop"] = list(stop)
        if tools:
            body["tools"] = tools
        if response_format is not None:
            body["response_format"] = response_format
        if params.frequency_penalty:  # OpenAI's own penalties: sent when set (0 is every server's default)
            body["frequency_penalty"] = params.frequency_penalty
        if params.presence_penalty:
            body["presence_penalty"] = params.presence_penalty
        if cancel.is_set():  # stopped while it waited in the queue: never sent
            return ReplyStats(0.0, 0.0, 0, 0, 0, StopReason.USER, params.seed, 0, params.context_length)
        started = time.perf_counter()
        parts: list[str] = []
        first_at = last_at = 0.0
        pieces = 0
        stop = StopReason.END_OF_TURN
        usage: dict[str, Any] = {}
        finished = False
        pieces_of_calls: dict[int, dict[str, str]] = {}
        try:
            with contextlib.closing(self._open_stream(body, params, model)) as response:
                for event in _sse_events(response.iter_lines()):
                    if cancel.is_set():
                        stop = StopReason.USER
                        finished = True
                        break
                    if event is None:  # [DONE]
                        finished = True
                        break
                    if isinstance(event.get("usage"), dict):
                        usage = event["usage"]
                    for choice in event.get("choices") or []:
                        _gather_calls((choice.get("delta") or {}).get("tool_calls"), pieces_of_calls)
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            last_at = time.perf_counter()
                            first_at = first_at or last_at
                            pieces += 1
                            parts.append(text)
                            on_text(text)
                        reason = choice.get("finish_reason")
                        if reason == "length":
                            stop = StopReason.MAX_TOKENS
                        elif reason:
                            stop = StopReason.END_OF_TURN
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RemoteError(
                RemoteErrorKind.UNREACHABLE,
                f"{self.endpoint.label} cannot be reached ({type(exc).__name__}).",
                partial="",
            ) from exc
        except httpx.HTTPError as exc:  # a connection cut or a read timeout mid-stream
            raise RemoteError(
                RemoteErrorKind.CUT,
                f"The stream from {self.endpoint.label} broke off ({type(exc).__name__}).",
                partial="".join(parts),
            ) from exc
        if not finished:
            raise RemoteError(
                RemoteErrorKind.CUT,
                f"The stream from {self.endpoint.label} ended before the reply did.",
                partial="".join(parts),
            )
        if calls is not None:
            calls += [
                ToolCall(piece["id"] or new_call_id(), piece["name"], piece["arguments"])
                for _index, piece in sorted(pieces_of_calls.items())
                if piece["name"]
            ]
        completion = int(usage.get("completion_tokens") or pieces)
        prompt = int(usage.get("prompt_tokens") or 0)
        rate = (completion - 1) / (last_at - first_at) if completion > 1 and last_at > first_at else 0.0
        return ReplyStats(
            ttft_s=(first_at or time.perf_counter()) - started,
            tokens_per_s=rate,
            prompt_tokens=prompt,
            prompt_tokens_evaluated=prompt,
            completion_tokens=completion,
            stop_reason=stop,
            seed=params.seed,
            context_used=prompt + completion,
            context_length=params.context_length,
        )


def _gather_calls(deltas: Any, calls: dict[int, dict[str, str]]) -> None:
    """Add a streamed `delta.tool_calls` list to the calls so far (OpenAI streams a call's id and
    name first, then its arguments in pieces, each under the call's index)."""
    if not isinstance(deltas, list):
        return
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        index = delta.get("index")
        if not isinstance(index, int):  # no index: a new id is a new call, else the latest goes on
            fresh = isinstance(delta.get("id"), str) and all(c["id"] != delta["id"] for c in calls.values())
            index = len(calls) if fresh or not calls else max(calls)
        call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if isinstance(delta.get("id"), str):
            call["id"] = delta["id"]
        function: dict[str, Any] = delta["function"] if isinstance(delta.get("function"), dict) else {}
        name = function.get("name")
        if isinstance(name, str) and name != call["name"]:
            # OpenAI sends the name once; some servers repeat it with every piece.
            call["name"] += name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["arguments"] += arguments
        elif isinstance(arguments, dict):  # an object instead of JSON text (Ollama's style)
            call["arguments"] += json.dumps(arguments)


def _sampling_extras(params: SamplingParams) -> dict[str, Any]:
    """llama.cpp's sampling fields beyond OpenAI's (llama.cpp server, LM Studio, llama-cpp-python and
    vLLM read them; Ollama ignores them), so the sampling panel means the same for a remote model."""
    return {"top_k": params.top_k, "min_p": params.min_p, "repeat_penalty": params.repeat_penalty}


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any] | None]:
    """JSON payloads of `data:` lines; None for `data: [DONE]`. Comments and other fields are skipped."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            yield None
            return
        try:
            event = json.loads(payload)
        except ValueError:
            continue  # a keep-alive or a vendor extension: not a chunk
        if isinstance(event, dict):
            if isinstance(event.get("error"), dict | str):
                message = event["error"]["message"] if isinstance(event["error"], dict) else event["error"]
                raise RemoteError(
                    RemoteErrorKind.SERVER, f"The server reported an error mid-reply: {message}"
                )
            yield event


def detect_local_engines(
    candidates: dict[str, str] | None = None, timeout_s: float = 0.4
) -> list[tuple[Endpoint, list[str]]]:
    """The known local servers that answer now, with their models (each asked with a short timeout)."""
    found = []
    for name, url in (candidates or KNOWN_LOCAL_ENGINES).items():
        client = RemoteClient(Endpoint(url, name=name))
        try:
            found.append((client.endpoint, client.models(timeout_s)))
        except RemoteError:
            continue
        finally:
            client.close()
    return found


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """A model on a remote engine, as the inference thread is asked to use it (with OpenAI's
    `response_format` for JSON mode, sent as it is)."""

    client: RemoteClient
    model: str
    response_format: dict[str, Any] | None = None


def _wire_messages(messages: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The messages as OpenAI's API takes them: images as image_url parts (data: URLs). The images
    go to this engine only: the user chose it for the conversation."""
    try:
        return [
            {**m, "content": openai_content(m["content"])} if isinstance(m.get("content"), list) else m
            for m in messages
        ]
    except ImageError as exc:
        raise RemoteError(RemoteErrorKind.BAD_RESPONSE, f"{exc} Nothing was sent to {label}.") from exc
