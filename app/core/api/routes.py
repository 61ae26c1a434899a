"""The API server's routes: GET /v1/models, POST /v1/chat/completions and POST /v1/completions.

Each reply is queued on the app's one `InferenceThread` with its own event sink, so the window and
API clients share one model and one queue: requests are served in the order they came, and one
made while the window's reply streams waits for it. A streamed reply is server-sent events ending
with `data: [DONE]`; a client that goes away stops its reply, which is then drained and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.core.api import wire
from app.core.api.config import ServerConfig
from app.core.api.guard import read_body, refusal
from app.core.api.mailbox import Mailbox
from app.core.api.request_log import LogListener, RequestLog, RequestState
from app.core.api.schema import ApiError, ChatRequest, CompletionRequest
from app.core.inference.events import Chunk, Event, ReplyDone, ReplyFailed, Started
from app.core.inference.thread import InferenceThread
from app.core.values.replies import StopReason
from app.core.values.sampling import SamplingParams

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Reply:
    """A queued reply's events, carried from the inference thread onto the server's event loop."""

    mailbox: Mailbox
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    def sink(self, event: Event) -> None:
        """Called on the inference thread: hand the event to the server's loop."""
        self.mailbox.post(self.events, event)


class Routes:
    """The request handlers, the requests in progress, and the listeners told about each one."""

    def __init__(
        self, worker: InferenceThread, config: ServerConfig, defaults: Callable[[], SamplingParams]
    ) -> None:
        self.worker = worker
        self.config = config
        #: Sampling used for fields a request leaves out (the window passes its own settings).
        self._defaults = defaults
        self.listeners: list[LogListener] = []
        #: Requests waiting or generating now, by request id (read by the window's queue notice).
        self.active: dict[int, RequestLog] = {}
        self._drains: set[asyncio.Task[None]] = set()  # replies whose client left, until they end
        #: Set while the server stops and cancels replies, so their clients learn the reply was cut,
        #: not finished.
        self.stopping = False
        self._box: tuple[asyncio.AbstractEventLoop, Mailbox] | None = None

    def routes(self) -> list[Route]:
        """The routes, for Starlette."""
        return [
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
        ]

    # ----- helpers ----------------------------------------------------------------------

    def _notify(self, entry: RequestLog) -> None:
        for listener in list(self.listeners):
            try:
                listener(entry)
            except Exception:  # a broken log view must not break serving
                log.exception("API log listener failed")

    def _mailbox(self) -> Mailbox:
        """The mailbox onto the running event loop (one per server run: a restart has a new loop)."""
        loop = asyncio.get_running_loop()
        if self._box is None or self._box[0] is not loop:
            self._box = (loop, Mailbox(loop))
        return self._box[1]

    def _model_id(self) -> str | None:
        loaded = self.worker.loaded
        return loaded.info.path.stem if loaded is not None else None

    def _refuse(self, request: Request, refused: ApiError) -> JSONResponse:
        entry = self._entry(request)
        entry.status = refused.status
        entry.error = "wrong or missing API key" if refused.status == 401 else refused.message
        self._notify(entry)
        return wire.error_response(refused)

    @staticmethod
    def _entry(request: Request) -> RequestLog:
        client = request.client.host if request.client else "?"
        return RequestLog(time.time(), client, request.method, request.url.path)

    # ----- routes -----------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        if (refused := refusal(request, self.config)) is not None:
            return self._refuse(request, refused)
        return JSONResponse(wire.model_list(self._model_id()))

    async def _chat(self, request: Request) -> Response:
        return await self._serve(request, ChatRequest)

    async def _completions(self, request: Request) -> Response:
        return await self._serve(request, CompletionRequest)

    async def _serve(self, request: Request, schema: type[ChatRequest] | type[CompletionRequest]) -> Response:
        if (refused := refusal(request, self.config)) is not None:
            return self._refuse(request, refused)
        entry = self._entry(request)
        try:
            body = await read_body(request, schema)
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
                messages, raw, key = body.turns(), None, body.cache_key()
            else:
                messages, raw, key = [], body.prompt_text(), None
        except ApiError as exc:
            entry.status, entry.error = exc.status, exc.message
            self._notify(entry)
            return wire.error_response(exc)
        entry.model, entry.stream = loaded.info.path.stem, body.stream
        reply = _Reply(self._mailbox())
        request_id = self.worker.generate(
            messages,
            params,
            stop=body.stop_strings(),
            raw_prompt=raw,
            sink=reply.sink,
            coalesce_s=0.0,
            cache_key=key,
        )
        entry.request_id = request_id
        # Queued when every sequence is busy (it starts as one is free), else generating at once.
        entry.state = RequestState.QUEUED if self.worker.ahead(request_id) else RequestState.GENERATING
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
            self.stopping and isinstance(event, ReplyDone) and event.stats.stop_reason is StopReason.USER
        ):
            return None
        return wire.shutdown_error(event.stats.completion_tokens)

    def _finish(self, request_id: int, entry: RequestLog, event: Event) -> None:
        """Record how the reply ended and tell the listeners."""
        self.active.pop(request_id, None)
        entry.state = RequestState.DONE
        entry.duration_s = time.time() - entry.at
        if isinstance(event, ReplyDone):
            stats = event.stats
            entry.status = entry.status or 200
            entry.prompt_tokens, entry.completion_tokens = stats.prompt_tokens, stats.completion_tokens
            entry.tokens_per_s, entry.finish = stats.tokens_per_s, wire.FINISH[stats.stop_reason]
            entry.stop_reason = stats.stop_reason.value
        elif isinstance(event, ReplyFailed):
            entry.status = entry.status or wire.FAILURES.get(event.code, (500, "", ""))[0]
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
            return wire.error_response(wire.failure(event))
        if cut := self._cut_by_shutdown(event):
            entry.status, entry.error = cut.status, cut.message
            self._finish(request_id, entry, event)
            return wire.error_response(cut)
        self._finish(request_id, entry, event)
        return JSONResponse(wire.completion(chat, entry.model, int(entry.at), event.text, event.stats))

    async def _stream(
        self, request_id: int, reply: _Reply, entry: RequestLog, chat: bool, include_usage: bool
    ) -> AsyncIterator[str]:
        """Server-sent events; a client that disconnects cancels this generator, which stops the reply."""
        chunks = wire.StreamChunks(chat, entry.model, int(entry.at))
        chunk, piece = chunks.event, chunks.piece  # bound once: they run for every token
        ended = False
        try:
            if chat:  # OpenAI's first chunk names the role
                yield chunks.role()
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
                    yield wire.sse(cut.body())
                    return
                elif isinstance(event, ReplyDone):
                    ended = True
                    self._finish(request_id, entry, event)
                    yield chunk(piece("", wire.FINISH[event.stats.stop_reason]))
                    if include_usage:
                        yield chunk({}, usage=wire.usage(event.stats))
                    yield wire.DONE
                    return
                elif isinstance(event, ReplyFailed):
                    ended = True
                    entry.status = 200  # the headers went out already; the error travels in the stream
                    self._finish(request_id, entry, event)
                    yield wire.sse(wire.failure(event).body())
                    yield wire.DONE
                    return
        finally:
            if not ended:  # the client went away (or the server is stopping): stop generating for it
                self.worker.cancel(request_id)
                if self.stopping:  # the loop is closing: no task may outlive it
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
