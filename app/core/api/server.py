"""The local OpenAI-compatible API server: the loaded model for other programs, on this computer.

Starlette routes run on uvicorn in a thread of their own (never on the GUI thread). Each request
becomes a reply queued on the app's one `InferenceThread`, with its own event sink, so the window
and API clients share one model and one queue: requests are served in the order they came, and
one made while the window's reply streams waits for it. Streaming replies are server-sent events
in OpenAI's format, ending with `data: [DONE]`; a client that goes away stops its reply.

Served: GET /v1/models, POST /v1/chat/completions, POST /v1/completions. No Qt here: the window
and `fireside serve` both use `LocalServer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.core.api.config import ServerConfig, is_loopback
from app.core.api.request_log import LogListener, RequestLog, RequestState
from app.core.api.schema import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    find_lone_surrogate,
    validation_error,
)
from app.core.inference.events import Chunk, Event, ReplyDone, ReplyFailed, Started
from app.core.inference.thread import InferenceThread
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import SamplingParams

# What the window and `fireside serve` use of the server, importable from here as before.
__all__ = ["LocalServer", "LogListener", "RequestLog", "RequestState", "ServerConfig", "ServerError"]

log = logging.getLogger(__name__)

#: Request bodies larger than this are refused (a 128k-token conversation is about 0.5 MB of text).
MAX_BODY_BYTES = 4 * 1024 * 1024

_FINISH = {
    StopReason.END_OF_TURN: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.CONTEXT_FULL: "length",
    StopReason.USER: "stop",
}
#: ReplyFailed codes and how they are answered.
_FAILURES = {
    "context_full": (400, "context_length_exceeded", "invalid_request_error"),
    "invalid": (400, "invalid_value", "invalid_request_error"),
    "no_model": (404, "model_not_found", "invalid_request_error"),
}


#: How long stop() lets open connections finish before uvicorn drops them.
GRACEFUL_S = 1


class ServerError(Exception):
    """The server cannot start (port taken, unsafe address); the message is for the user."""


@dataclass(slots=True)
class _Reply:
    """A queued reply's events, carried from the inference thread onto the server's event loop."""

    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    def sink(self, event: Event) -> None:
        """Called on the inference thread: hand the event to the server's loop."""
        # Once the server stopped its loop is closed: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class LocalServer:
    """Serves the InferenceThread's loaded model over an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        worker: InferenceThread,
        config: ServerConfig | None = None,
        *,
        defaults: Callable[[], SamplingParams] = SamplingParams,
    ) -> None:
        self.worker = worker
        self.config = config = config or ServerConfig()
        #: Sampling used for fields a request leaves out (the window passes its own settings).
        self._defaults = defaults
        self._listeners: list[LogListener] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = config.port
        #: Requests waiting or generating now, by request id (read by the window's queue notice).
        self.active: dict[int, RequestLog] = {}
        self._drains: set[asyncio.Task[None]] = set()  # replies whose client left, until they end
        #: Set while stop() cancels replies, so their clients learn the reply was cut, not finished.
        self._stopping = False
        self.app = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
            ],
        )

    # ----- lifecycle --------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The base URL clients use, e.g. http://127.0.0.1:8765/v1."""
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/v1"

    @property
    def running(self) -> bool:
        """True while the server thread serves."""
        return self._thread is not None and self._thread.is_alive()

    def add_listener(self, listener: LogListener) -> None:
        """Call `listener` (on the server's thread) as each request is queued, starts and ends."""
        self._listeners.append(listener)

    def start(self, timeout: float = 10.0) -> None:
        """Bind and serve in a background thread; raises ServerError with a message for the user."""
        config = self.config
        if not is_loopback(config.host):
            if not config.allow_network:
                raise ServerError(
                    f"{config.host} accepts connections from other computers. Choose to allow network "
                    "access explicitly, and set an API key."
                )
            if not config.api_key:
                raise ServerError(
                    f"Serving on {config.host} reaches other computers: set an API key first, so only "
                    "programs that know it can use the model."
                )
        if not 0 <= config.port <= 65535:
            raise ServerError(f"Port {config.port} is not a valid port (1–65535).")
        self._socket = self._bind(config.host, config.port)
        self._stopping = False
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                # Replies are cancelled before the loop is asked to exit, so open streams end within
                # a token or two; this only bounds a connection that will not close.
                timeout_graceful_shutdown=GRACEFUL_S,
            )
        )
        server, sock = self._server, self._socket
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="fireside-api-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError("The API server did not start; see the log for details.")
            time.sleep(0.01)
        log.info("API server listening on %s", self.address)

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        try:
            family, kind, proto, _name, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except socket.gaierror as exc:
            raise ServerError(f"“{host}” is not an address of this computer ({exc.strerror}).") from exc
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(where)
        except OSError as exc:
            sock.close()
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise ServerError(
                    f"Port {port} is already in use by another program. Choose another port."
                ) from exc
            raise ServerError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc
        sock.listen(64)
        sock.set_inheritable(True)
        return sock

    def prepare_stop(self) -> None:
        """From now on a reply that is cancelled ends as cut by the shutdown, not as finished."""
        self._stopping = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: cancel this server's replies, close connections, join the thread."""
        self.prepare_stop()
        for request_id in list(self.active):
            self.worker.cancel(request_id)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("API server thread did not stop within %.0f s", timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    # ----- helpers ----------------------------------------------------------------------

    def _notify(self, entry: RequestLog) -> None:
        for listener in list(self._listeners):
            try:
                listener(entry)
            except Exception:  # a broken log view must not break serving
                log.exception("API log listener failed")

    def _refusal(self, request: Request) -> ApiError | None:
        """Why a request must be refused before anything else (origin, host, key), or None.

        A web page in the user's browser can send requests to 127.0.0.1 too. Browsers name the page in
        `Origin`: only pages served from this computer may use the server. And a page that rebinds its
        own domain name to 127.0.0.1 still sends that name as `Host`: while the server is for this
        computer only, a Host that is not a loopback name is refused.
        """
        origin = request.headers.get("origin")
        if origin and not is_loopback(urlsplit(origin).hostname or ""):
            return ApiError(
                403, f"Requests from web pages at {origin} are not allowed.", "origin_not_allowed"
            )
        if not self.config.allow_network:
            host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
            if not is_loopback(host):
                return ApiError(
                    403, f"Host “{host}” is not this computer's loopback address.", "host_not_allowed"
                )
        if not self._authorized(request):
            return ApiError(
                401,
                "Incorrect or missing API key. Send it as “Authorization: Bearer KEY”.",
                "invalid_api_key",
            )
        return None

    def _authorized(self, request: Request) -> bool:
        key = self.config.api_key
        if not key:
            return True
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())

    def _model_id(self) -> str | None:
        loaded = self.worker.loaded
        return loaded.info.path.stem if loaded is not None else None

    @staticmethod
    def _error(exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    async def _body(self, request: Request, schema: type[BaseModel]) -> Any:
        """Read and validate the JSON body (size limit first, then JSON, then the fields)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            # A form or text/plain body is what a web page can send without asking the browser first.
            raise ApiError(
                415, "Send the body as JSON with “Content-Type: application/json”.", "invalid_content_type"
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ApiError(
                413, f"The request body is larger than {MAX_BODY_BYTES // 2**20} MiB.", "too_large"
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiError(
                    413, f"The request body is larger than {MAX_BODY_BYTES // 2**20} MiB.", "too_large"
                )
            chunks.append(chunk)
        try:
            data = json.loads(b"".join(chunks))
            found = find_lone_surrogate(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}.", "invalid_json") from exc
        except RecursionError:
            raise ApiError(400, "The request body is nested too deeply.", "invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.", "invalid_json")
        if found is not None:
            where, index, char = found
            raise ApiError(
                400,
                f"{where}: the text holds a lone UTF-16 surrogate (U+{ord(char):04X}) at character "
                f"{index}. JSON allows it, but it is half of a character, not Unicode text; send the "
                "whole character (both halves of the pair).",
                "invalid_unicode",
                where,
            )
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from exc

    # ----- routes -----------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        if (refused := self._refusal(request)) is not None:
            return self._refuse(request, refused)
        model = self._model_id()
        data = [{"id": model, "object": "model", "created": 0, "owned_by": "fireside"}] if model else []
        return JSONResponse({"object": "list", "data": data})

    def _refuse(self, request: Request, refused: ApiError) -> JSONResponse:
        entry = self._entry(request)
        entry.status = refused.status
        entry.error = "wrong or missing API key" if refused.status == 401 else refused.message
        self._notify(entry)
        return self._error(refused)

    @staticmethod
    def _entry(request: Request) -> RequestLog:
        client = request.client.host if request.client else "?"
        return RequestLog(time.time(), client, request.method, request.url.path)

    async def _chat(self, request: Request) -> Response:
        return await self._serve(request, ChatRequest)

    async def _completions(self, request: Request) -> Response:
        return await self._serve(request, CompletionRequest)

    async def _serve(self, request: Request, schema: type[ChatRequest] | type[CompletionRequest]) -> Response:
        if (refused := self._refusal(request)) is not None:
            return self._refuse(request, refused)
        entry = self._entry(request)
        try:
            body = await self._body(request, schema)
            loaded = self.worker.loaded
            if loaded is None:
                raise ApiError(
                    404,
                    "No model is loaded in Fireside. Load one in the window, or start "
                    "`fireside serve --model PATH`.",
                    "model_not_found",
                    "model",
                )
            params = body.sampling(self._defaults(), loaded.context_length)
            if isinstance(body, ChatRequest):
                messages, raw = body.turns(), None
            else:
                messages, raw = [], body.prompt_text()
        except ApiError as exc:
            entry.status, entry.error = exc.status, exc.message
            self._notify(entry)
            return self._error(exc)
        entry.model, entry.stream = loaded.info.path.stem, body.stream
        reply = _Reply(asyncio.get_running_loop())
        request_id = self.worker.generate(
            messages, params, stop=body.stop_strings(), raw_prompt=raw, sink=reply.sink, coalesce_s=0.0
        )
        entry.request_id = request_id
        ahead = self.worker.replies_waiting(before=request_id) + (self.worker.running_reply is not None)
        entry.state = RequestState.QUEUED if ahead else RequestState.GENERATING
        self.active[request_id] = entry
        self._notify(entry)
        chat = isinstance(body, ChatRequest)
        if body.stream:
            stream = self._stream(request_id, reply, entry, chat, body.include_usage())
            return StreamingResponse(
                stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        return await self._complete(request, request_id, reply, entry, chat)

    async def _next(self, request_id: int, reply: _Reply, entry: RequestLog) -> Event:
        event = await reply.events.get()
        if isinstance(event, Started):
            was, entry.waited_s, entry.state = entry.state, event.waited_s, RequestState.GENERATING
            if was != RequestState.GENERATING:
                self._notify(entry)
        return event

    def _cut_by_shutdown(self, event: Event) -> ApiError | None:
        """The error for a reply that ended only because the server is stopping, else None."""
        if not (
            self._stopping and isinstance(event, ReplyDone) and event.stats.stop_reason is StopReason.USER
        ):
            return None
        tokens = event.stats.completion_tokens
        return ApiError(
            503,
            f"The Fireside API server is shutting down; the reply was cut after {tokens} tokens.",
            "server_shutting_down",
            kind="server_error",
        )

    def _finish(self, request_id: int, entry: RequestLog, event: Event) -> None:
        """Record how the reply ended and tell the listeners."""
        self.active.pop(request_id, None)
        entry.state = RequestState.DONE
        entry.duration_s = time.time() - entry.at
        if isinstance(event, ReplyDone):
            stats = event.stats
            entry.status = entry.status or 200
            entry.prompt_tokens, entry.completion_tokens = stats.prompt_tokens, stats.completion_tokens
            entry.tokens_per_s, entry.finish = stats.tokens_per_s, _FINISH[stats.stop_reason]
            entry.stop_reason = stats.stop_reason.value
        elif isinstance(event, ReplyFailed):
            entry.status = entry.status or _FAILURES.get(event.code, (500, "", ""))[0]
            entry.error = event.message
        self._notify(entry)

    async def _complete(
        self, request: Request, request_id: int, reply: _Reply, entry: RequestLog, chat: bool
    ) -> Response:
        """Wait for the whole reply (stopping it if the client hangs up) and answer it at once."""
        gone = False
        try:
            while True:
                try:
                    event = await asyncio.wait_for(self._next(request_id, reply, entry), 0.5)
                except TimeoutError:
                    if not gone and await request.is_disconnected():
                        gone = True
                        self.worker.cancel(request_id)
                        entry.status, entry.error = 499, "client disconnected; generation stopped"
                    continue
                if isinstance(event, ReplyDone | ReplyFailed):
                    break
        finally:
            self.worker.cancel(request_id)  # a no-op once it ended; stops it if this task was cancelled
        if isinstance(event, ReplyFailed):
            self._finish(request_id, entry, event)
            return self._error(_failure(event))
        if cut := self._cut_by_shutdown(event):
            entry.status, entry.error = cut.status, cut.message
            self._finish(request_id, entry, event)
            return self._error(cut)
        self._finish(request_id, entry, event)
        stats = event.stats
        ident, created = _ident(chat), int(entry.at)
        choice: dict[str, Any] = {"index": 0, "finish_reason": _FINISH[stats.stop_reason], "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": event.text}
        else:
            choice["text"] = event.text
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion" if chat else "text_completion",
                "created": created,
                "model": entry.model,
                "choices": [choice],
                "usage": _usage(stats),
            }
        )

    async def _stream(
        self, request_id: int, reply: _Reply, entry: RequestLog, chat: bool, include_usage: bool
    ) -> AsyncIterator[str]:
        """Server-sent events; a client that disconnects cancels this generator, which stops the reply."""
        ident, created = _ident(chat), int(entry.at)
        kind = "chat.completion.chunk" if chat else "text_completion"
        ended = False

        def chunk(choice: dict[str, Any], **extra: Any) -> str:
            payload = {"id": ident, "object": kind, "created": created, "model": entry.model}
            payload["choices"] = [choice] if choice else []
            payload.update(extra)
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        def piece(text: str, finish: str | None = None) -> dict[str, Any]:
            if chat:
                delta = {"content": text} if text or finish is None else {}
                return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}

        try:
            if chat:  # OpenAI's first chunk names the role
                yield chunk(
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                )
            while True:
                event = await self._next(request_id, reply, entry)
                if isinstance(event, Chunk):
                    yield chunk(piece(event.text))
                elif cut := self._cut_by_shutdown(event):
                    # No finish_reason and no [DONE]: OpenAI clients raise, so nobody mistakes the
                    # cut text for a whole answer.
                    ended = True
                    entry.status, entry.error = 200, cut.message
                    self._finish(request_id, entry, event)
                    yield f"data: {json.dumps(cut.body(), ensure_ascii=False)}\n\n"
                    return
                elif isinstance(event, ReplyDone):
                    ended = True
                    self._finish(request_id, entry, event)
                    yield chunk(piece("", _FINISH[event.stats.stop_reason]))
                    if include_usage:
                        yield chunk({}, usage=_usage(event.stats))
                    yield "data: [DONE]\n\n"
                    return
                elif isinstance(event, ReplyFailed):
                    ended = True
                    entry.status = 200  # the headers went out already; the error travels in the stream
                    self._finish(request_id, entry, event)
                    yield f"data: {json.dumps(_failure(event).body(), ensure_ascii=False)}\n\n"
                    yield "data: [DONE]\n\n"
                    return
        finally:
            if not ended:  # the client went away (or the server is stopping): stop generating for it
                self.worker.cancel(request_id)
                if self._stopping:  # the loop is closing: no task may outlive it
                    self.active.pop(request_id, None)
                else:
                    self._drains.add(
                        asyncio.get_running_loop().create_task(self._drain(request_id, reply, entry))
                    )

    async def _drain(self, request_id: int, reply: _Reply, entry: RequestLog) -> None:
        """Wait for a reply whose client left to end (it was cancelled), and log what it cost."""
        try:
            while not isinstance(event := await reply.events.get(), ReplyDone | ReplyFailed):
                pass
        finally:
            self._drains = {task for task in self._drains if not task.done()}
        entry.status = 499  # nginx's "client closed request"
        tokens = event.stats.completion_tokens if isinstance(event, ReplyDone) else 0
        entry.error = f"client disconnected after {tokens} tokens; generation stopped"
        self._finish(request_id, entry, event)


def _ident(chat: bool) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)


def _usage(stats: ReplyStats) -> dict[str, int]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "total_tokens": stats.prompt_tokens + stats.completion_tokens,
    }


def _failure(event: ReplyFailed) -> ApiError:
    status, code, kind = _FAILURES.get(event.code, (500, "generation_failed", "server_error"))
    return ApiError(status, event.message, code, kind=kind)
